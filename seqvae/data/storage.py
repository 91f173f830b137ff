"""Content-hashed caches of checked and tokenised corpora under one cache root
(``SEQVAE_CACHE``, default ``~/.cache/seqvae``), published atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import datasets
from rdkit import __version__ as rdkit_version

from .._version import __version__

__all__ = ["cache_root", "CACHE_MIN_ROWS", "cached_check", "save_cache_entry", "run_check"]


def cache_root() -> Path:
    """seqvae's one cache folder: ``SEQVAE_CACHE`` when set, else ``~/.cache/seqvae``.

    Downloads, checked corpora, tokenised corpora and MOSES reference statistics live under it.
    Read at each call, so setting the variable takes effect without re-importing.
    """
    return Path(os.environ.get("SEQVAE_CACHE") or Path.home() / ".cache" / "seqvae")

logger = logging.getLogger(__name__)


CACHE_MIN_ROWS = 10_000  # smaller files are checked faster than a cache is read


def cached_check(path: Path, num_rows: int, make_raw, check, num_proc: int, progress: bool, key: str = ""):
    """Run ``check`` over a file's ``num_rows`` rows (``make_raw()``), reusing a saved result for the same
    content and settings (then the raw table is never built).

    The cache key covers the file's bytes, the check settings (``check.settings()``: every
    attribute of the check, so canonicalisation, largest fragment and ``standardize`` among
    them), ``key`` (the columns read, the delimiter) and the seqvae and RDKit versions
    (canonical SMILES, tautomers and properties may change between them).
    """
    desc = f"checking {path.name}"
    if num_rows < CACHE_MIN_ROWS:
        return run_check(make_raw(), check, num_proc, progress, desc)
    digest = hashlib.sha256(f"{check.settings()}|{key}|seqvae {__version__}|rdkit {rdkit_version}".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    folder = cache_root() / "checked" / digest.hexdigest()[:24]
    if (folder / "dataset_info.json").is_file():
        logger.info("%s: reusing the checked table in %s", path, folder)
        return datasets.load_from_disk(str(folder))
    checked = run_check(make_raw(), check, num_proc, progress, desc)
    try:
        save_cache_entry(checked, folder)
    except OSError as error:  # a read-only cache only costs time
        logger.warning("could not cache the checked table in %s: %s", folder, error)
    return checked


def save_cache_entry(dataset: datasets.Dataset, folder: Path) -> Path:
    """Save ``dataset`` as the cache entry ``folder``, written aside and renamed into place.

    Two runs on the same corpus (a sweep, say) may both miss the cache and both save: a save
    straight into ``folder`` would overwrite the Arrow file the other run has memory-mapped,
    which kills that run with SIGBUS. The rename publishes a complete entry at once, and the
    run that finds ``folder`` already there keeps the other run's copy instead of replacing it.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    dataset.save_to_disk(str(staging))
    if folder.is_dir() and not (folder / "dataset_info.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)  # left half-written by a crash (entries now appear whole)
    try:
        staging.rename(folder)
    except OSError:  # another run published this entry first: its copy is the same rows
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "dataset_info.json").is_file():
            raise
    return folder


def run_check(raw: datasets.Dataset, check, num_proc: int, progress: bool, desc: str):
    if not progress:
        datasets.disable_progress_bars()
    try:
        return raw.map(
            check,
            batched=True,
            batch_size=1000,
            num_proc=num_proc if num_proc > 1 and len(raw) > 10000 else None,
            desc=desc,
        )
    finally:
        datasets.enable_progress_bars()
