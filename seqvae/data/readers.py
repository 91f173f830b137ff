"""Reading corpus files (CSV, SMILES and text files, gzipped or not) into ``datasets`` tables,
and choosing the SMILES column.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import datasets
import pyarrow as pa

from ..chem import PROPERTIES, property_name, to_mol
from ..errors import SeqVAEError

__all__ = ["SMILES_COLUMN_NAMES", "check_utf8", "file_kind", "read_smiles_column", "read_columns", "load_csv", "load_quietly", "arrow_table"]


SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "smile", "molecule", "mol")


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


def file_kind(path: Path) -> str:
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
    kind = file_kind(path)
    num_lines = check_utf8(path)
    if num_lines == 0:
        raise SeqVAEError(f"{path} is empty: it has no lines; give a file with one molecule per row")
    if kind in (".smi", ".txt"):
        table = load_quietly("text", path)
        # .smi lines are "SMILES [name ...]": the SMILES is the first whitespace-separated field.
        values = [line.split()[0] if line.strip() else "" for line in table["text"]]
        _check_property_names(path, properties, [])
        return values, {}, 1
    table = load_csv(path)
    column = _choose_smiles_column(path, table, smiles_column)
    if column is None:  # the file has no header: its first line is data
        table = load_csv(path, header=None)
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


def load_csv(path: Path, header="infer") -> datasets.Dataset:
    try:
        # Every column is read as text: pandas reads in chunks of 10,000 rows and would fix a
        # column's type from the first chunk, rejecting the file when a later value differs
        # ("2.5" in a column of integers, "n/a" among numbers). Numbers are parsed row by row
        # later, so a bad value skips one row. Blank lines become empty rows (not skipped), so
        # line numbers stay true; "n/a" or "NA" stay as written, so the report shows them.
        text_columns = {index: str for index in range(_count_columns(path))}
        table = load_quietly(
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


def load_quietly(builder: str, path: Path, **options) -> datasets.Dataset:
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


def arrow_table(dataset: datasets.Dataset) -> pa.Table:
    """The rows of ``dataset`` as one Arrow table, in order (no copy unless it has an index map)."""
    if dataset._indices is not None:  # noqa: SLF001 (datasets keeps selections as an index map)
        dataset = dataset.flatten_indices()
    return dataset.data.table
