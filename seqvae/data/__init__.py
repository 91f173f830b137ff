"""Corpora through ``datasets``: read, check, canonicalise, report, split, tokenise.

A package cut by concept, one module each, in the order a corpus flows through them:

* :mod:`~seqvae.data.sources`: which files a corpus is: a file, a list, a folder or glob of
  shards, or a named corpus (``bundled``, ``moses``, ``zinc250k``, ``ptb``) found in
  ``data_dir`` or downloaded once;
* :mod:`~seqvae.data.readers`: CSV / SMILES / text files into tables, the SMILES column;
* :mod:`~seqvae.data.molecules`: checking and canonicalising molecules, their properties;
* :mod:`~seqvae.data.texts`: sentences from files and Hugging Face Hub datasets;
* :mod:`~seqvae.data.attributes`: text attributes (rules, categorical labels);
* :mod:`~seqvae.data.report`: every skipped row with its file, line and reason;
* :mod:`~seqvae.data.storage`: the cache root and content-hashed caches;
* :mod:`~seqvae.data.encoding`: tokenising, splitting, collating;
* :mod:`~seqvae.data.augmentation`: randomized SMILES while training (``randomized_smiles``);
* :mod:`~seqvae.data.streaming`: corpora larger than memory, read as a checked, tokenised,
  shuffled stream (``streaming: true``);
* :mod:`~seqvae.data.corpus`: :func:`prepare_corpus`, the whole path from a recipe's data
  settings to encoded training and validation sets.

Rows that cannot be used (empty, invalid SMILES, too long, duplicates) are never dropped
silently: each is counted and listed with its file and line in a :class:`CorpusReport`.
"""

import importlib

# Each public name and the module that owns it. They are imported on first use (PEP 562), so that
# ``from seqvae.data.attributes import ...`` does not load the whole corpus stack.
_OWNERS = {
    "NAMED_CORPORA": "sources",
    "bundled_corpus_files": "sources",
    "resolve_corpus": "sources",
    "read_smiles_column": "readers",
    "load_molecules": "molecules",
    "load_texts": "texts",
    "text_attribute": "attributes",
    "encode_labels": "attributes",
    "CorpusReport": "report",
    "StreamReport": "report",
    "SkippedRow": "report",
    "cache_root": "storage",
    "cut_to_length": "encoding",
    "tokenize_texts": "encoding",
    "tokenize_sequences": "encoding",
    "split_train_validation": "encoding",
    "PaddingCollator": "encoding",
    "SmilesRandomizer": "augmentation",
    "PreparedCorpus": "corpus",
    "prepare_corpus": "corpus",
    "prepare_streamed_corpus": "corpus",
    "MoleculeStream": "streaming",
    "load_corpus": "corpus",
    "load_training_corpus": "corpus",
    "property_statistics": "corpus",
    "run_split": "corpus",
}

__all__ = list(_OWNERS)


def __getattr__(name: str):
    if name in _OWNERS:
        value = getattr(importlib.import_module(f".{_OWNERS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqvae.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
