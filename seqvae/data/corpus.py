"""Recipe-level corpus preparation: from a recipe's data settings to encoded training and
validation sets, the tokenizer, the property statistics and the report (:func:`prepare_corpus`).

This is the one path a CSV takes through ``seqvae train``: read and check (molecules or texts),
split, encode categorical attributes, build the tokenizer on the training rows, tokenise both
splits, and describe the properties for the model's config. With ``streaming: true`` the
training rows are a stream instead (:mod:`~seqvae.data.streaming`), and the tokenizer, the
property statistics and the validation set come from its first rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from .. import runs
from ..chem import PROPERTIES, property_name
from ..errors import SeqVAEError
from ..recipe import load_recipe
from ..tokenization import (
    TEXT_TOKENIZERS,
    build_text_tokenizer,
    build_tokenizer,
    extend_vocabulary,
    molecule_encoder,
)
from .attributes import attribute_labels, encode_labels
from .encoding import split_train_validation, tokenize_sequences, tokenize_texts
from .molecules import load_molecules
from .normalization import standardizes
from .readers import arrow_table
from .report import CorpusReport, rows_with_unknown
from .streaming import MoleculeStream
from .texts import load_texts

__all__ = ["PreparedCorpus", "prepare_corpus", "prepare_streamed_corpus", "load_corpus", "load_training_corpus", "tokenize_corpus", "tokenize_training_corpus", "tokenize_training_rows", "property_statistics", "run_split"]

logger = logging.getLogger(__name__)


@dataclass
class PreparedCorpus:
    """What :func:`prepare_corpus` returns.

    Attributes:
        train_rows, validation_rows: the checked rows (``datasets.Dataset``), before tokenising;
            streamed: the training rows of the first ``vocabulary_sample_size`` rows only.
        train_set, validation_set: the same rows as token ids (validation: the rows the model
            reads, long sentences left out); streamed: ``train_set`` is a
            ``datasets.IterableDataset`` over the whole corpus.
        tokenizer: built on the training rows, or the one given (a resumed run keeps its own).
        report: every skipped row, with its file, line and reason (streamed: a
            :class:`~seqvae.data.report.StreamReport`, filled as the stream is read).
        properties: config entries describing the properties (see :func:`property_statistics`).
        streaming: whether ``train_set`` is a stream.
    """

    train_rows: datasets.Dataset
    validation_rows: datasets.Dataset
    train_set: datasets.Dataset | datasets.IterableDataset
    validation_set: datasets.Dataset
    tokenizer: object
    report: CorpusReport
    properties: dict
    streaming: bool = False

    def training_texts(self) -> list[str]:
        """The training molecules (SMILES) or sentences, as read.

        Streamed, a bounded sample: the training rows among the first
        ``vocabulary_sample_size`` rows (a 100M-row corpus does not fit in memory), so novelty
        measured against it is an upper bound.
        """
        column = "smiles" if "smiles" in self.train_rows.column_names else "text"
        return arrow_table(self.train_rows)[column].to_pylist()


def prepare_corpus(data_args, seed: int, tokenizer=None, process_index: int = 0, num_processes: int = 1) -> PreparedCorpus:
    """Read, check, split and tokenise the corpus a recipe's data settings name.

    Args:
        data_args: a :class:`~seqvae.arguments.DataArguments`.
        seed: the split's and the tokenizer sample's seed.
        tokenizer: keep this tokenizer instead of building one (resuming a run).
        process_index, num_processes: this process's place among the training processes (a
            streamed corpus is split between them; a map-style one is sharded by the Trainer).
    """
    if data_args.streaming:
        return prepare_streamed_corpus(data_args, seed, tokenizer, process_index, num_processes)
    train_rows, validation_rows, report = load_training_corpus(data_args, seed)
    labels = attribute_labels(train_rows, data_args)  # categorical attributes are read as label indices
    train_rows, validation_rows = encode_labels(train_rows, labels), encode_labels(validation_rows, labels, report)
    train_set, validation_set, tokenizer = tokenize_training_corpus(
        train_rows, validation_rows, data_args, report, tokenizer, seed=seed
    )
    properties = property_statistics(
        train_rows, property_columns(data_args), data_args.property_units, labels=labels, rules=data_args.attribute_rules
    )
    return PreparedCorpus(train_rows, validation_rows, train_set, validation_set, tokenizer, report, properties)


def prepare_streamed_corpus(
    data_args, seed: int, tokenizer=None, process_index: int = 0, num_processes: int = 1
) -> PreparedCorpus:
    """:func:`prepare_corpus` for a streamed corpus (``streaming: true``).

    The first ``vocabulary_sample_size`` usable rows are read once: their training rows teach
    the tokenizer and give the property statistics; their held-out rows (a seeded hash of each
    molecule below ``validation_fraction``, so the stream leaves the same molecules out without
    remembering them) are the validation set, unless ``validation_data`` names one. The
    training set is the stream of :meth:`~seqvae.data.streaming.MoleculeStream.training_set`.
    """
    stream, train_rows, validation_rows = streamed_split(data_args, seed)
    texts = arrow_table(train_rows)["text"].to_pylist()
    if tokenizer is None:
        tokenizer = build_corpus_tokenizer(data_args, texts, seed=seed)
    train_set = stream.training_set(
        tokenizer, seed, data_args.shuffle_buffer_size, process_index, num_processes, probe=texts[:1000]
    )
    validation_set = tokenize_corpus(validation_rows, tokenizer, data_args, stream.report)
    properties = property_statistics(train_rows, property_columns(data_args), data_args.property_units)
    return PreparedCorpus(
        train_rows, validation_rows, train_set, validation_set, tokenizer, stream.report, properties, streaming=True
    )


def streamed_split(data_args, seed: int) -> tuple[MoleculeStream, datasets.Dataset, datasets.Dataset]:
    """``(stream, training rows of its sample, validation rows)``: see :func:`prepare_streamed_corpus`."""
    stream = MoleculeStream(data_args, seed, held_out=not data_args.validation_data)
    train_rows, validation_rows = stream.sample(data_args.vocabulary_sample_size)
    if data_args.validation_data:
        validation_rows, validation_report = load_corpus(data_args, progress=True, source=data_args.validation_data)
        stream.report.merge(validation_report)
    elif data_args.deduplicate:
        first = np.sort(np.unique(validation_rows["smiles"], return_index=True)[1])
        validation_rows = datasets.Dataset(arrow_table(validation_rows).take(first))
    if not len(train_rows) or not len(validation_rows):
        side = "training" if not len(train_rows) else "validation"
        raise SeqVAEError(
            f"{', '.join(stream.report.sources[:3])}: no {side} molecule among the first {data_args.vocabulary_sample_size} "
            f"rows ({stream.report.summary()}); raise vocabulary_sample_size or validation_fraction, or give validation_data"
        )
    return stream, train_rows, validation_rows


def property_columns(data_args) -> list[str]:
    """The table columns holding the recipe's properties, by name: built-in molecule
    properties under their canonical spelling (``LogP`` -> ``logP``), everything else as given."""
    if data_args.representation == "text":
        return list(data_args.properties)
    return [property_name(name) or name for name in data_args.properties]


def load_corpus(data_args, progress: bool = False, source: str | None = None):
    """``load_molecules`` (or ``load_texts``) with a recipe's data settings."""
    source = source or data_args.data
    if data_args.representation == "text":
        return load_texts(
            source,
            text_column=data_args.text_column,
            data_dir=data_args.data_dir,
            hub_split=data_args.hub_split,
            lowercase=data_args.lowercase,
            attributes=data_args.properties,
            attribute_rules=data_args.attribute_rules,
            categorical_attributes=data_args.categorical_attributes,
            delimiter=data_args.delimiter,
        )
    return load_molecules(
        source,
        smiles_column=data_args.smiles_column,
        canonicalize=data_args.canonicalize,
        keep_largest_fragment=data_args.keep_largest_fragment,
        standardize=standardizes(data_args),
        representation=data_args.representation,
        max_length=data_args.max_length,
        deduplicate=data_args.deduplicate,
        data_dir=data_args.data_dir,
        progress=progress,
        num_proc=data_args.num_proc,
        properties=data_args.properties,
        delimiter=data_args.delimiter,
        hub_split=data_args.hub_split,
    )


def load_training_corpus(data_args, seed: int):
    """``(train rows, validation rows, report)``: a held-out ``validation_data`` corpus when the
    recipe names one, else a seeded random split of ``data``."""
    corpus, report = load_corpus(data_args, progress=True)
    if not data_args.validation_data:
        _check_enough_to_split(corpus, report, data_args.representation)
        return *split_train_validation(corpus, data_args.validation_fraction, seed), report
    validation, validation_report = load_corpus(data_args, progress=True, source=data_args.validation_data)
    report.merge(validation_report)
    return corpus, validation, report


def _check_enough_to_split(corpus, report: CorpusReport, representation: str) -> None:
    """A validation split needs two rows: say which file has fewer, and what became of its rows."""
    if len(corpus) < 2:
        rows = "sentence" if representation == "text" else "molecule"
        raise SeqVAEError(
            f"{', '.join(report.sources)}: {len(corpus)} usable {rows} ({report.summary()}); at least 2 are "
            "needed, one of them held out for validation: add rows, or give validation_data"
        )


def build_corpus_tokenizer(data_args, texts, seed: int = 0):
    """The tokenizer a recipe asks for, trained on the training rows' ``texts`` (a molecule
    vocabulary on a sample of a large corpus: see :func:`tokenize_training_rows`)."""
    if data_args.representation == "text" or data_args.text_tokenizer not in TEXT_TOKENIZERS:
        # a pretrained tokenizer (a backbone's) serves molecules too
        return build_text_tokenizer(
            texts,
            data_args.text_tokenizer,
            vocab_size=data_args.tokenizer_vocab_size,
            min_frequency=data_args.tokenizer_min_frequency,
            model_max_length=data_args.max_length,
        )
    return build_tokenizer(texts, data_args.representation, data_args.max_length, seed=seed)


def tokenize_training_corpus(train_rows, validation_rows, data_args, report, tokenizer=None, seed: int = 0):
    """``(train set, validation set, tokenizer)``, encoded; the tokenizer is built on the training
    rows unless one is given (a resumed run keeps its own)."""
    if tokenizer is None:
        tokenizer = build_corpus_tokenizer(data_args, arrow_table(train_rows)["text"].to_pylist(), seed=seed)
        train_set, tokenizer = tokenize_training_rows(train_rows, tokenizer, data_args, report)
    else:
        train_set = tokenize_corpus(train_rows, tokenizer, data_args, report)
    return train_set, tokenize_corpus(validation_rows, tokenizer, data_args, report), tokenizer


def tokenize_training_rows(train_rows, tokenizer, data_args, report):
    """``(encoded rows, tokenizer)``. A molecule vocabulary learned from a sample of a large
    corpus gets the tokens the sample missed, and the rows are encoded again with them, so no
    training token becomes ``<unk>``. A pretrained subword tokenizer is kept as it is."""
    splitter = molecule_encoder(tokenizer) if data_args.representation != "text" else None
    if splitter is None:
        return tokenize_corpus(train_rows, tokenizer, data_args, report), tokenizer
    encoded = tokenize_corpus(train_rows, tokenizer, data_args)
    unknown_rows = rows_with_unknown(encoded, tokenizer.unk_token_id)
    missing = splitter.unknown_tokens(encoded.select(unknown_rows)["text"]) if unknown_rows else set()
    if missing:
        logger.info("adding %d token(s) the vocabulary sample missed: %s", len(missing), " ".join(sorted(missing)))
        tokenizer = extend_vocabulary(tokenizer, sorted(missing))
        encoded = tokenize_corpus(train_rows, tokenizer, data_args)
    report.count_unknown_in(encoded, tokenizer.unk_token_id)
    return encoded, tokenizer


def tokenize_corpus(rows, tokenizer, data_args, report=None):
    """Token ids for molecules (already length-checked) or sentences (checked here)."""
    if data_args.representation == "text":
        return tokenize_texts(rows, tokenizer, data_args.max_length, data_args.long_sentences, report)
    return tokenize_sequences(rows, tokenizer, report)


def property_statistics(
    rows, names: list[str], units: dict[str, str], labels: dict[str, list[str]] | None = None, rules: dict[str, str] | None = None
) -> dict:
    """Config entries describing the properties: names, units, mean / std and range; the labels
    of categorical ones (whose values are label indices, used as they are) and the rules of
    computed text attributes."""
    if not names:
        return {}
    labels, rules = labels or {}, rules or {}
    unknown_units = sorted(set(units) - set(names))
    if unknown_units:
        raise SeqVAEError(f"property_units names {unknown_units}, which are not among properties {names}")
    table = rows.select_columns(names).to_pandas()
    stds = table.std(ddof=0)
    constant = [name for name in names if not stds[name] > 0]
    if constant:
        raise SeqVAEError(
            f"property {', '.join(constant)} has the same value in every training row; "
            "a constant cannot be a condition, leave it out of properties"
        )
    numeric = {name: name not in labels for name in names}
    return {
        "property_names": names,
        "property_units": [PROPERTIES[name].unit if name in PROPERTIES else units.get(name, "") for name in names],
        "property_means": [float(table[name].mean()) if numeric[name] else 0.0 for name in names],
        "property_stds": [float(stds[name]) if numeric[name] else 1.0 for name in names],
        "property_min": [float(table[name].min()) for name in names],
        "property_max": [float(table[name].max()) for name in names],
        "property_labels": [labels.get(name, []) for name in names],
        "property_rules": [rules.get(name, "") for name in names],
    }


def run_split(run_dir: str | Path):
    """The ``(train, validation)`` rows of a finished run, re-created from its recipe.

    Reading the corpus with the run's settings and splitting with its seed gives the same rows
    (large corpora come from the on-disk cache of checked tables; a streamed run gives the
    training rows of its vocabulary sample). Used for novelty against the training set and for
    held-out molecules in benchmarks.
    """
    data_args, _, training_kwargs, _ = load_recipe(runs.recipe_path(run_dir))
    seed = training_kwargs.get("seed", 42)
    if data_args.streaming:  # a streamed run's training rows are too many: the sample it learned from
        return streamed_split(data_args, seed)[1:]
    train_rows, validation_rows, _ = load_training_corpus(data_args, seed)
    return train_rows, validation_rows
