"""Corpora through ``datasets``: read, check, canonicalise, report, split, tokenise.

A package cut by concept, one module each, in the order a corpus flows through them:

* :mod:`~seqvae.data.sources`: named corpora (``bundled``, ``moses``, ``zinc250k``, ``ptb``)
  found in ``data_dir`` or downloaded once;
* :mod:`~seqvae.data.readers`: CSV / SMILES / text files into tables, the SMILES column;
* :mod:`~seqvae.data.molecules`: checking and canonicalising molecules, their properties;
* :mod:`~seqvae.data.texts`: sentences from files and Hugging Face Hub datasets;
* :mod:`~seqvae.data.attributes`: text attributes (rules, categorical labels);
* :mod:`~seqvae.data.report`: every skipped row with its file, line and reason;
* :mod:`~seqvae.data.storage`: the cache root and content-hashed caches;
* :mod:`~seqvae.data.encoding`: tokenising, splitting, collating;
* :mod:`~seqvae.data.corpus`: :func:`prepare_corpus`, the whole path from a recipe's data
  settings to encoded training and validation sets.

Rows that cannot be used (empty, invalid SMILES, too long, duplicates) are never dropped
silently: each is counted and listed with its file and line in a :class:`CorpusReport`.
"""

from .attributes import encode_labels, text_attribute
from .corpus import (
    PreparedCorpus,
    load_corpus,
    load_training_corpus,
    prepare_corpus,
    run_split,
    property_statistics,
)
from .encoding import (
    PaddingCollator,
    cut_to_length,
    split_train_validation,
    tokenize_molecules,
    tokenize_texts,
)
from .molecules import load_molecules
from .readers import read_smiles_column
from .report import CorpusReport, SkippedRow
from .sources import NAMED_CORPORA, bundled_corpus_files, resolve_corpus
from .storage import cache_root
from .texts import load_texts

__all__ = [
    "NAMED_CORPORA",
    "bundled_corpus_files",
    "resolve_corpus",
    "read_smiles_column",
    "load_molecules",
    "load_texts",
    "text_attribute",
    "encode_labels",
    "CorpusReport",
    "SkippedRow",
    "cache_root",
    "cut_to_length",
    "tokenize_texts",
    "tokenize_molecules",
    "split_train_validation",
    "PaddingCollator",
    "PreparedCorpus",
    "prepare_corpus",
    "load_corpus",
    "load_training_corpus",
    "property_statistics",
    "run_split",
]
