"""Tokenising, splitting and collating: token ids with their lengths, the train / validation
split, and padded batches.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging

import datasets
import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..errors import SeqVAEError
from ..tokenization import molecule_encoder
from . import storage
from .readers import arrow_table
from .report import CorpusReport, SkippedRow
from .storage import cache_root, save_cache_entry

__all__ = ["tokenize_texts", "cut_to_length", "split_train_validation", "tokenize_sequences", "PaddingCollator"]

logger = logging.getLogger(__name__)


def tokenize_texts(
    dataset: datasets.Dataset,
    tokenizer,
    max_length: int,
    long_sentences: str = "skip",
    report: CorpusReport | None = None,
) -> datasets.Dataset:
    """Tokenise sentences; those longer than ``max_length`` tokens (``<bos>``/``<eos>``
    included) are skipped, or cut to ``max_length`` with ``<eos>`` kept last, and counted."""
    if long_sentences not in ("skip", "truncate"):
        raise SeqVAEError(f"long_sentences must be 'skip' or 'truncate', got {long_sentences!r}")
    encoded = tokenize_sequences(dataset, tokenizer)
    too_long = [i for i, length in enumerate(encoded["num_tokens"]) if length > max_length]
    if report is not None and long_sentences == "truncate":
        report.truncated += len(too_long)
    elif report is not None:
        lengths, files, lines, texts = encoded["num_tokens"], encoded["file"], encoded["line"], encoded["text"]
        for i in too_long:
            reason = f"too long ({lengths[i]} tokens > max_length {max_length})"
            report.add_skipped(SkippedRow(files[i], lines[i], texts[i][:80], reason))
        report.rows_kept -= len(too_long)
    if long_sentences == "skip" and too_long:
        if len(too_long) == len(encoded):
            raise SeqVAEError(
                f"every one of the {len(encoded)} sentences is longer than max_length ({max_length} tokens with "
                "<bos>/<eos>); raise max_length or set long_sentences: truncate"
            )
        encoded = encoded.select(sorted(set(range(len(encoded))) - set(too_long)))
    elif too_long:
        encoded = encoded.map(functools.partial(_cut, max_length=max_length, eos=tokenizer.eos_token_id), desc="truncating")
    if report is not None:  # counted on what the model will read
        report.count_unknown_in(encoded, tokenizer.unk_token_id)
    return encoded


def cut_to_length(ids: list[int], max_length: int, eos: int) -> list[int]:
    """``ids`` when they fit, else their first ``max_length - 1`` tokens and ``<eos>``."""
    return ids if len(ids) <= max_length else ids[: max_length - 1] + [eos]


def _cut(row: dict, max_length: int, eos: int) -> dict:
    if row["num_tokens"] <= max_length:
        return row
    return {"input_ids": cut_to_length(row["input_ids"], max_length, eos), "num_tokens": max_length}


def split_train_validation(
    dataset: datasets.Dataset, validation_fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Seeded random split; the validation part has at least one row when the corpus allows."""
    if not 0.0 < validation_fraction < 1.0:
        raise SeqVAEError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if len(dataset) < 2:
        raise SeqVAEError(f"the corpus has {len(dataset)} usable molecule(s); at least 2 are needed")
    size = max(1, round(len(dataset) * validation_fraction))
    # The permutation of datasets' train_test_split(test_size=size, seed=seed), so that runs made
    # with it split the same way; the rows are copied (Arrow take) rather than addressed through
    # an index map, which made every later column read of a 1.6M-row split take a minute.
    order = np.random.default_rng(seed).permutation(len(dataset))
    table = arrow_table(dataset)
    return datasets.Dataset(table.take(order[size:])), datasets.Dataset(table.take(order[:size]))


def tokenize_sequences(dataset: datasets.Dataset, tokenizer, report: CorpusReport | None = None):
    """Add ``input_ids`` and ``num_tokens`` columns to the ``text`` column (SMILES, SELFIES or
    sentences), encoded in batches straight into Arrow.

    A corpus of ``CACHE_MIN_ROWS`` rows or more is written to ``~/.cache/seqvae/tokenized``
    (keyed by all its columns and the vocabulary) and read back memory-mapped: training memory
    does not grow with the corpus, and the next run with the same rows reuses the file.

    Unknown tokens (symbols outside the vocabulary) become ``<unk>``; they are counted into
    ``report`` when one is given.
    """
    table = arrow_table(dataset)
    folder = None
    if len(table) >= storage.CACHE_MIN_ROWS:
        folder = cache_root() / "tokenized" / _table_digest(table, tokenizer.backend_tokenizer.to_str())
        if (folder / "dataset_info.json").is_file():
            return _counted(datasets.load_from_disk(str(folder)), tokenizer, report)
    texts = table["text"].to_pylist()
    encoder = molecule_encoder(tokenizer, texts[:1000]) or (lambda batch: tokenizer(batch)["input_ids"])
    id_type = pa.int16() if len(tokenizer) < 2**15 else pa.int32()
    ids, lengths = [], []
    bar = tqdm(total=len(texts), desc="tokenising", unit="seq", disable=len(texts) < 200_000)
    for start in range(0, len(texts), 50_000):
        batch_ids = encoder(texts[start : start + 50_000])
        bar.update(len(batch_ids))
        batch_lengths = np.fromiter(map(len, batch_ids), dtype=np.int32, count=len(batch_ids))
        offsets = np.concatenate([[0], np.cumsum(batch_lengths)]).astype(np.int32)
        values = np.fromiter(itertools.chain.from_iterable(batch_ids), dtype=np.int32, count=int(offsets[-1]))
        ids.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(values).cast(id_type)))
        lengths.append(pa.array(batch_lengths))
    bar.close()
    encoded = datasets.Dataset(
        table.append_column("input_ids", pa.chunked_array(ids, pa.list_(id_type)))
        .append_column("num_tokens", pa.chunked_array(lengths, pa.int32()))
    )
    if folder is not None:  # written once, then read back memory-mapped
        try:
            encoded = datasets.load_from_disk(str(save_cache_entry(encoded, folder)))
        except OSError as error:  # a read-only cache only costs memory
            logger.warning("could not cache the tokenised corpus in %s: %s", folder, error)
    return _counted(encoded, tokenizer, report)


def _counted(encoded: datasets.Dataset, tokenizer, report: CorpusReport | None) -> datasets.Dataset:
    if report is not None:
        report.count_unknown_in(encoded, tokenizer.unk_token_id)
    return encoded


def _table_digest(table: pa.Table, vocabulary: str) -> str:
    """A key for a table (every column's name, type and Arrow buffers, in row order) and a
    vocabulary.

    The cache entry holds every column of the table, not only the token ids: keyed by the texts
    alone, a run with attribute columns (``ptb_cvae.yaml``) reused the entry of a run without
    them (``ptb_vae.yaml``) on the same sentences, and its collator failed on the missing column.
    """
    layout = [(field.name, str(field.type)) for field in table.schema]
    digest = hashlib.sha256(f"{vocabulary}|{len(table)}|{layout}|num_tokens".encode())  # the added columns too
    for column in table.columns:
        for chunk in column.chunks:
            digest.update(f"{chunk.offset}|{len(chunk)}".encode())  # a slice shares its parent's buffers
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()[:24]


class PaddingCollator:
    """Pads ``input_ids`` to the longest sequence of the batch (no fixed-length padding).

    With ``property_names``, also stacks those columns into a ``properties`` tensor ``[B, P]``.
    With a ``randomizer`` (:class:`~seqvae.data.augmentation.SmilesRandomizer`), molecules are
    spelled from a random atom order; :meth:`for_evaluation` leaves them as stored.
    """

    def __init__(self, pad_token_id: int, property_names: list[str] = (), randomizer=None):
        self.pad_token_id = pad_token_id
        self.property_names = list(property_names)
        self.randomizer = randomizer

    def for_evaluation(self) -> "PaddingCollator":
        """The same collator without randomized SMILES: validation reads each molecule as stored."""
        return PaddingCollator(self.pad_token_id, self.property_names)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        ids = [row["input_ids"] for row in rows]
        if self.randomizer is not None:
            ids = self.randomizer([row["smiles"] for row in rows], ids)
        sequences = [torch.as_tensor(row) for row in ids]
        input_ids = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=self.pad_token_id)
        attention_mask = torch.zeros_like(input_ids)
        for i, sequence in enumerate(sequences):
            attention_mask[i, : len(sequence)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.property_names:
            batch["properties"] = torch.tensor(
                [[row[name] for name in self.property_names] for row in rows], dtype=torch.float32
            )
        return batch
