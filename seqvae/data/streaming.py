"""Streamed molecule corpora (``streaming: true``): shard files read lazily as a
``datasets.IterableDataset``, checked and canonicalised on the fly, split into training and
validation rows by a hash of each molecule, tokenised, shuffled in a buffer and split between
processes.

Memory stays flat in the corpus size: a batch of rows, the shuffle buffer, the vocabulary
sample and the report's first skipped rows are all that is held. What streaming gives up:
duplicates are not removed (that needs memory in the corpus size), and the vocabulary is learned
from the first rows only (later tokens outside it become ``<unk>``, counted in the report).
"""

from __future__ import annotations

import functools
import itertools
import logging
import zlib
from pathlib import Path

import datasets
import numpy as np
from datasets.distributed import split_dataset_by_node

from ..chem import STANDARDIZATION_STEPS, property_name
from ..errors import SeqVAEError
from ..tokenization import molecule_encoder
from .molecules import CHANGED, MoleculeCheck, property_names, shown_value
from .normalization import standardizes
from .readers import READ_ERRORS, arrow_table, iter_rows, iter_table_rows
from .report import SkippedRow, StreamReport
from .sources import hub_dataset_name, load_hub_dataset, resolve_corpus

__all__ = ["MoleculeStream", "HashSplit"]

logger = logging.getLogger(__name__)

ROWS_PER_BATCH = 256  # rows checked (and tokenised) at a time


class HashSplit:
    """Which molecules are held out for validation: a seeded hash of the checked SMILES below
    ``fraction``. Deterministic, memory-free, and every row of one molecule falls on one side."""

    def __init__(self, seed: int, fraction: float):
        if not 0.0 <= fraction < 1.0:
            raise SeqVAEError(f"validation_fraction must be in [0, 1), got {fraction}")
        self.salt = zlib.crc32(f"{seed}|".encode())  # the hash of "SEED|SMILES", continued from the seed's
        self.bound = int(fraction * 2**32)

    def held_out(self, smiles: str) -> bool:
        return zlib.crc32(smiles.encode(), self.salt) < self.bound


class MoleculeStream:
    """The streamed corpus a recipe's data settings name: its shards, the row check and the
    :class:`StreamReport` every pass over it fills.

    Args:
        data_args: a :class:`~seqvae.arguments.DataArguments` (``data``: files, folders, globs,
            or ``hub:NAME``, a Hub dataset read with ``datasets``' own streaming).
        seed: the validation split's salt.
        held_out: hold rows out for validation by hash (off when ``validation_data`` is given).
    """

    def __init__(self, data_args, seed: int, held_out: bool = True):
        if data_args.representation == "text":
            raise SeqVAEError(
                "streaming reads molecule corpora; a text corpus (representation: text) is read whole: "
                "leave streaming off"
            )
        hub = hub_dataset_name(data_args.data, data_args.hub_split)
        if hub:
            load_hub_dataset(*hub, streaming=True)  # a wrong name or split: one clear error now, not a failed shard
        self.hub_datasets = {f"hub:{hub[0]}[{hub[1]}]": hub} if hub else {}
        self.shards = list(self.hub_datasets) or [str(path) for path in resolve_corpus(data_args.data, data_args.data_dir)]
        self.report = StreamReport(sources=list(self.shards))
        self.properties = property_names(data_args.properties)
        read = [p for p in self.properties if property_name(p) is None]  # file columns; built-ins are computed
        self.check = MoleculeCheck(
            data_args.canonicalize, data_args.keep_largest_fragment, data_args.representation, data_args.max_length,
            read, [p for p in self.properties if p not in read], standardizes(data_args),
        )
        self.reading = functools.partial(
            _shard_rows, smiles_column=data_args.smiles_column, read=tuple(read),
            delimiter=data_args.delimiter, report=self.report, corpus=tuple(self.shards), hub=self.hub_datasets,
        )
        self.split = HashSplit(seed, data_args.validation_fraction if held_out else 0.0)
        if data_args.deduplicate:
            logger.info("streaming: duplicate molecules are not removed (that needs memory in the corpus size)")

    def checked(self) -> datasets.IterableDataset:
        """The usable rows of every shard, in file order: ``smiles``, ``text``, the properties,
        and ``first`` (the row's first reading by this process, for the report's counts)."""
        raw_features = datasets.Features(
            {"file": datasets.Value("string"), "line": datasets.Value("int64"), "value": datasets.Value("string"),
             **{f"property:{name}": datasets.Value("string") for name in self.check.read}}
        )
        raw = datasets.IterableDataset.from_generator(
            self.reading, gen_kwargs={"shards": self.shards}, features=raw_features  # one data source per shard
        )
        return raw.map(
            _CheckedRows(self.check, self.report, self.properties), batched=True, batch_size=ROWS_PER_BATCH,
            remove_columns=list(raw_features), features=self._checked_features(),
        )

    def sample(self, size: int) -> tuple[datasets.Dataset, datasets.Dataset]:
        """``(training rows, validation rows)`` among the first ``size`` usable rows, as
        map-style datasets: the tokenizer and the property statistics are learned from the
        first, the second is the validation set."""
        columns = {name: [] for name in self._checked_features()}
        for row in itertools.islice(iter(self.checked()), size):
            for name, value in row.items():
                columns[name].append(value)
        if not columns["smiles"]:
            raise SeqVAEError(f"no usable molecules in {_named(self.shards)}: {self.report.summary()}")
        rows = datasets.Dataset.from_dict(columns, features=self._checked_features()).remove_columns("first")
        held_out = np.array([self.split.held_out(smiles) for smiles in columns["smiles"]], dtype=bool)
        table = arrow_table(rows)  # rows taken, not an index map (whose reads show progress bars)
        return datasets.Dataset(table.filter(~held_out)), datasets.Dataset(table.filter(held_out))

    def training_set(
        self, tokenizer, seed: int, buffer_size: int, process_index: int = 0, num_processes: int = 1, probe=()
    ) -> datasets.IterableDataset:
        """The training rows (validation ones left out), tokenised, shuffled in a buffer of
        ``buffer_size`` rows (shards in a seeded order too; ``set_epoch`` reshuffles) and, with
        several processes, this process's part of them. ``probe``: texts that check the fast
        molecule encoder against the tokenizer (see :func:`~seqvae.tokenization.molecule_encoder`)."""
        training = self.checked().filter(_OnSide(self.split, validation=False), batched=True, batch_size=ROWS_PER_BATCH)
        id_type = "int16" if len(tokenizer) < 2**15 else "int32"
        features = self._checked_features()
        del features["first"]
        features["input_ids"] = datasets.List(datasets.Value(id_type))
        features["num_tokens"] = datasets.Value("int32")
        encoded = training.map(
            _EncodedRows(tokenizer, self.report, probe), batched=True, batch_size=ROWS_PER_BATCH,
            remove_columns=["first"], features=features,
        )
        shuffled = encoded.shuffle(seed=seed, buffer_size=buffer_size)
        if num_processes <= 1:
            return shuffled
        if len(self.shards) % num_processes:
            logger.info(
                "%d shard(s) for %d processes: each process reads (and checks) every row and keeps 1 in %d; "
                "a multiple of %d shards gives each process its own", len(self.shards), num_processes, num_processes,
                num_processes,
            )
        return split_dataset_by_node(shuffled, rank=process_index, world_size=num_processes)

    def _checked_features(self) -> datasets.Features:
        return datasets.Features(
            {"smiles": datasets.Value("string"), "text": datasets.Value("string"),
             **{name: datasets.Value("float64") for name in self.properties}, "first": datasets.Value("bool")}
        )


def _shard_rows(shards: list[str], smiles_column, read: tuple, delimiter, report: StreamReport, corpus: tuple, hub: dict):
    """The raw rows of ``shards`` (``file``, ``line``, ``value``, ``property:NAME``). A shard that
    cannot be read to its end is counted as skipped and named in the report, and the stream goes
    on with the next; when every shard of the ``corpus`` has failed, there is nothing to train
    on: an error. ``hub``: ``{shard: (name, split)}`` for a Hub dataset, whose row numbers
    stand in for lines. (``datasets`` calls this once per shard.)"""
    for shard in shards:
        line = 0
        try:
            for line, value, cells in _rows_of(shard, smiles_column, list(read), delimiter, hub):
                yield {"file": shard, "line": line, "value": value, **{f"property:{n}": cells[n] for n in read}}
        except (*READ_ERRORS, SeqVAEError) as error:
            report.shard_failed(shard, line + 1, error)
            if set(corpus) <= set(report.failed_shards):
                failures = "; ".join(f"{Path(name).name}: {report.failed_shards[name]}" for name in corpus)
                raise SeqVAEError(f"no shard of the corpus could be read ({failures})") from None


def _rows_of(shard: str, smiles_column, read: list[str], delimiter, hub: dict):
    if shard not in hub:
        return iter_rows(Path(shard), smiles_column, read, delimiter)
    batches = load_hub_dataset(*hub[shard], streaming=True).iter(batch_size=ROWS_PER_BATCH)
    return iter_table_rows(shard, batches, smiles_column, read)


class _CheckedRows:
    """Batched map: check each raw row (:class:`~seqvae.data.molecules.MoleculeCheck`), count it
    in the report on its first reading, and keep the usable ones."""

    def __init__(self, check: MoleculeCheck, report: StreamReport, properties: list[str]):
        self.check, self.report = check, report
        self.outputs = {name: f"property:{name}" if name in check.read else name for name in properties}

    def __call__(self, batch: dict) -> dict:
        read = {f"property:{name}": batch[f"property:{name}"] for name in self.check.read}
        checked = self.check({"value": batch["value"], **read})
        kept = {"smiles": [], "text": [], **{name: [] for name in self.outputs}, "first": []}
        for i, reason in enumerate(checked["reason"]):
            first = self.report.first_reading(batch["file"][i], batch["line"][i])
            if first:
                self._count(batch, checked, i)
            if reason:
                continue
            kept["smiles"].append(checked["smiles"][i])
            kept["text"].append(checked["text"][i])
            for name, column in self.outputs.items():
                kept[name].append(checked[column][i])
            kept["first"].append(first)
        self.report.write_if_due()
        return kept

    def _count(self, batch: dict, checked: dict, i: int) -> None:
        report, reason = self.report, checked["reason"][i]
        report.rows_read += 1
        if reason:
            value = shown_value(batch["value"][i].strip())
            report.add_skipped(SkippedRow(batch["file"][i], batch["line"][i], value, reason))
            return
        report.rows_kept += 1
        for step in STANDARDIZATION_STEPS:
            if checked[CHANGED + step][i]:
                report.standardization[step] = report.standardization.get(step, 0) + 1


class _OnSide:
    """Batched filter: the rows on the training (or the validation) side of a :class:`HashSplit`."""

    def __init__(self, split: HashSplit, validation: bool):
        self.split, self.validation = split, validation

    def __call__(self, batch: dict) -> list[bool]:
        return [self.split.held_out(smiles) == self.validation for smiles in batch["smiles"]]


class _EncodedRows:
    """Batched map: ``input_ids`` and ``num_tokens`` of each row, as
    :func:`~seqvae.data.encoding.tokenize_sequences` gives them; ``<unk>`` ids are counted in the
    report on a row's first reading."""

    def __init__(self, tokenizer, report: StreamReport, probe=()):
        self.tokenizer, self.report = tokenizer, report
        self.encoder = molecule_encoder(tokenizer, probe)
        self.unk = tokenizer.unk_token_id

    def __call__(self, batch: dict) -> dict:
        ids = self.encoder(batch["text"]) if self.encoder else self.tokenizer(batch["text"])["input_ids"]
        for row, first in zip(ids, batch["first"]):
            unknown = row.count(self.unk) if first else 0
            if unknown:
                self.report.unknown_tokens += unknown
                self.report.unknown_token_sequences += 1
        return {"input_ids": ids, "num_tokens": [len(row) for row in ids]}


def _named(shards: list[str], limit: int = 3) -> str:
    return ", ".join(shards[:limit]) + (f" and {len(shards) - limit} more shard(s)" if len(shards) > limit else "")
