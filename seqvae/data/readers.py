"""Reading corpus files (CSV, SMILES and text files, gzipped or not, and Parquet files) and Hub
datasets into ``datasets`` tables, and choosing the SMILES column.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..chem import PROPERTIES, property_name, to_mol
from ..errors import SeqVAEError
from .sources import CORPUS_SUFFIXES

__all__ = [
    "SMILES_COLUMN_NAMES", "DELIMITERS", "FileRows", "check_utf8", "check_not_json", "file_kind", "read_smiles_column",
    "read_columns", "iter_rows", "READ_ERRORS", "read_parquet", "table_rows", "iter_table_rows", "csv_delimiter",
    "load_csv", "record_lines", "load_quietly", "arrow_table",
]


SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "smile", "molecule", "mol")
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}  # detected: the first three
BYTE_ORDER_MARK = "\ufeff"  # written first by some Windows editors; read as nothing


class FileRows(NamedTuple):
    """The rows of one corpus file: SMILES, property columns, and where each row starts.

    ``first_record`` is the first row's record number, the row number a spreadsheet shows (the
    header is record 1); ``lines`` holds each row's first line in the file. They differ after
    a CSV value that spans lines (a quoted newline).
    """

    values: list
    columns: dict[str, list]
    first_record: int
    lines: np.ndarray


def _open_text(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def check_utf8(path: Path) -> int:
    """Raise a clear error at the first line that is not UTF-8 text (or holds a NUL byte, as
    binary files do); return the number of lines."""
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
                column = raw.find(b"\x00") + 1  # a NUL byte is valid UTF-8, but no text file holds one
                if column:
                    raise SeqVAEError(
                        f"{path}, line {line_number}: a NUL byte (column {column}): this is a binary file, "
                        "not text; give a .csv, .smi or .txt file"
                    )
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise SeqVAEError(f"cannot read {path}: {error}; check the file is complete") from None
    return line_number


# How a JSON file starts ("{", or "[" then "{", "[", a quote or the line's end); a SMILES never does.
_JSON_START = re.compile(r'\s*(\{|\[\s*($|[\[{"]))')


def check_not_json(path: Path) -> None:
    """Refuse a JSON (or JSON Lines) file by its content, whatever its name says."""
    with _open_text(path) as handle:
        first = next((raw for raw in handle if raw.strip()), b"")
    if _JSON_START.match(first.decode("utf-8").lstrip(BYTE_ORDER_MARK)):
        raise SeqVAEError(f"{path} holds JSON, not {_JSON_ADVICE}")


_JSON_ADVICE = (
    "CSV or text: seqvae reads .csv, .smi and .txt files (optionally .gz) and .parquet files; convert it first, "
    "e.g. pandas.read_json(path).to_csv(\"corpus.csv\", index=False)"
)


def file_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".json", ".jsonl", ".ndjson"):
        raise SeqVAEError(f"{path}: unsupported file type {kind}: JSON is not {_JSON_ADVICE}")
    if kind not in CORPUS_SUFFIXES:
        raise SeqVAEError(
            f"{path}: unsupported file type {kind or '(none)'}; use .csv, .smi or .txt "
            "(optionally .gz), or .parquet"
        )
    return kind


def read_smiles_column(path: Path, smiles_column: str | None = None, delimiter: str | None = None) -> tuple[list, int]:
    """Raw SMILES values of one file and the line number of its first data row."""
    rows = read_columns(path, smiles_column, delimiter=delimiter)
    return rows.values, rows.first_record


def read_columns(
    path: Path, smiles_column: str | None = None, properties: list[str] = (), delimiter: str | None = None
) -> FileRows:
    """Raw SMILES, the CSV columns holding ``properties``, and where each row is in the file.

    Built-in properties (``logP``, ``qed``...) are always computed by RDKit, even when the file
    has such a column, so that training targets and the values measured on generated molecules
    follow one definition. Any other name must be a column (matched exactly, else ignoring
    case); a name that is neither is an error naming both lists. ``delimiter`` separates a
    CSV's fields; detected when ``None`` (see :func:`csv_delimiter`).
    """
    kind = file_kind(path)
    if kind == ".parquet":
        return table_rows(str(path), read_parquet(path), smiles_column, properties)
    num_lines = check_utf8(path)
    if num_lines == 0:
        raise SeqVAEError(f"{path} is empty: it has no lines; give a file with one molecule per row")
    check_not_json(path)
    if kind in (".smi", ".txt"):
        # .smi lines are "SMILES [name ...]": the SMILES is the first whitespace-separated field.
        values = [line.split()[0] if line.strip() else "" for line in read_lines(path)]
        _check_property_names(path, properties, [])
        return FileRows(values, {}, 1, np.arange(1, len(values) + 1))
    delimiter = csv_delimiter(path, delimiter)
    first_record = 2
    table = load_csv(path, delimiter=delimiter)
    column = _choose_smiles_column(path, table, smiles_column)
    if column is None:  # the file has no header: its first line is data
        first_record = 1
        table = load_csv(path, header=None, delimiter=delimiter)
        column = _choose_smiles_column(path, table, smiles_column)
        if column is None:
            raise SeqVAEError(
                f"{path}: no SMILES column found (columns: {', '.join(map(str, table.column_names))}); "
                "name it with smiles_column=NAME"
            )
    lines = record_lines(path, delimiter, num_lines, first_record, len(table))
    return FileRows(table[column], _property_columns(path, table, properties, column), first_record, lines)


def read_parquet(path: Path) -> datasets.Dataset:
    """A Parquet file's rows, its columns typed as written; a damaged file is one clear error."""
    try:
        return datasets.Dataset(pq.read_table(path))
    except (OSError, pa.ArrowException) as error:
        raise SeqVAEError(f"cannot read {path} as Parquet: {error}; check the file is complete") from None


def table_rows(where: str, table: datasets.Dataset, smiles_column: str | None, properties: list[str] = ()) -> FileRows:
    """The rows of a table with named columns (a Parquet file, a Hub dataset): as a CSV's, but
    the rows have no lines, so row numbers (from 1) stand in for them."""
    if len(table) == 0:
        raise SeqVAEError(f"{where} is empty: it has no rows; give a table with one molecule per row")
    column, found = _table_columns(where, table, smiles_column, properties)
    return FileRows(table[column], {prop: table[name] for prop, name in found.items()}, 1, np.arange(1, len(table) + 1))


def iter_table_rows(where: str, batches, smiles_column: str | None = None, properties: list[str] = ()):
    """The lazy counterpart of :func:`table_rows`: ``(row number, SMILES, {property: value as
    text})`` from batches of columns (``{name: values}``), the columns chosen on the first batch."""
    batches = iter(batches)
    first = next(batches, None)
    if not first or not len(next(iter(first.values()), [])):
        raise SeqVAEError(f"{where} is empty: it has no rows; give a table with one molecule per row")
    column, found = _table_columns(where, datasets.Dataset.from_dict(first), smiles_column, properties)
    row = 0
    for batch in itertools.chain([first], batches):
        for i, value in enumerate(batch[column]):
            row += 1
            yield row, _as_text(value), {prop: _as_text(batch[name][i]) for prop, name in found.items()}


def _iter_parquet(path: Path, smiles_column: str | None, properties: list[str]):
    """A Parquet file's rows, read 1,024 at a time (never the whole file: it may not fit in memory)."""
    batches = (batch.to_pydict() for batch in pq.ParquetFile(path).iter_batches(batch_size=1024))
    yield from iter_table_rows(str(path), batches, smiles_column, properties)


def _table_columns(where: str, table: datasets.Dataset, smiles_column, properties) -> tuple[str, dict[str, str]]:
    """``(the SMILES column, {property: its column})`` of a table with a header (never headerless)."""
    names = [str(name) for name in table.column_names]
    column = _choose_smiles_column(where, table, smiles_column)
    if column is None:
        raise SeqVAEError(f"{where}: no SMILES column found (columns: {', '.join(names)}); name it with smiles_column=NAME")
    return column, _property_column_names(where, names, properties, column)


def _as_text(value) -> str:
    return "" if value is None else str(value)  # a missing value reads as an empty cell, as in a CSV


# What a shard read lazily may raise when it is damaged: cut short, not gzip, not UTF-8, not Parquet...
READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, csv.Error, pa.ArrowException)


def iter_rows(path: Path, smiles_column: str | None = None, properties: list[str] = (), delimiter: str | None = None):
    """The rows of one file, read lazily: ``(line, SMILES value, {property: value as text})``.

    The streaming counterpart of :func:`read_columns` (the same column detection, from the
    file's first lines), holding one row at a time. A damaged file raises one of
    ``READ_ERRORS`` when the damage is reached, after the rows before it.
    """
    kind = file_kind(path)
    if kind == ".parquet":
        yield from _iter_parquet(path, smiles_column, properties)
        return
    if kind in (".smi", ".txt"):
        _check_property_names(path, properties, [])
        yield from _iter_lines(path)
        return
    delimiter = csv_delimiter(path, delimiter)
    has_header, smiles_index, property_indices = _csv_layout(path, smiles_column, properties, delimiter)
    with _open_text(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        reader, start, header_pending = csv.reader(handle, delimiter=delimiter), 1, has_header
        for record in reader:
            line, start = start, reader.line_num + 1  # a quoted value may span lines
            if header_pending and record:
                header_pending = False
                continue
            yield line, _cell(record, smiles_index), {prop: _cell(record, i) for prop, i in property_indices.items()}


def _cell(record: list[str], index: int) -> str:
    return record[index] if index < len(record) else ""  # a short record: the value is missing


def _iter_lines(path: Path):
    """``(line, first field, {})`` for each line of a SMILES or text file."""
    with _open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8")
            if number == 1:
                text = text.lstrip(BYTE_ORDER_MARK)
            fields = text.split()
            yield number, fields[0] if fields else "", {}


def _csv_layout(path: Path, smiles_column, properties, delimiter: str) -> tuple[bool, int, dict[str, int]]:
    """``(has a header, index of the SMILES column, {property: column index})``, decided on the
    file's first records as :func:`read_columns` decides on the whole file."""
    records = [record for record in _records(_head(path), delimiter) if record]
    if not records:
        raise SeqVAEError(f"{path} is empty: it has no rows; give a file with one molecule per row")
    width = max(map(len, records))
    names = [*records[0], *(str(i) for i in range(len(records[0]), width))]
    column = _choose_smiles_column(path, _head_table(records[1:], names), smiles_column)
    has_header = column is not None
    if not has_header:  # no header: positional names, as read_columns gives them
        names = [str(i) for i in range(width)]
        column = _choose_smiles_column(path, _head_table(records, names), smiles_column)
        if column is None:
            raise SeqVAEError(f"{path}: no SMILES column found; name it with smiles_column=NAME")
    found = _property_column_names(path, names, properties, column)
    return has_header, names.index(column), {prop: names.index(name) for prop, name in found.items()}


def _head_table(records: list[list[str]], names: list[str]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({name: [_cell(record, i) for record in records] for i, name in enumerate(names)})


def read_lines(path: Path) -> list[str]:
    """The lines of a text file (one row each), without line ends or a byte-order mark."""
    lines = load_quietly("text", path, encoding="utf-8-sig")["text"]
    if lines and lines[0].startswith(BYTE_ORDER_MARK):  # left by a reader that ignored the encoding
        lines[0] = lines[0][len(BYTE_ORDER_MARK):]
    return lines


def _property_columns(path: Path, table, properties, smiles_column) -> dict[str, list]:
    names = _property_column_names(path, [str(name) for name in table.column_names], properties, smiles_column)
    return {prop: table[name] for prop, name in names.items()}


def _property_column_names(path: Path, names: list[str], properties, smiles_column) -> dict[str, str]:
    """``{property: the column holding it}`` for the properties that are not built-in."""
    names = [name for name in names if name != smiles_column]
    found = {}
    for prop in properties:
        if property_name(prop) is not None:
            continue
        match = prop if prop in names else next((n for n in names if n.lower() == prop.lower()), None)
        if match is not None:
            found[prop] = match
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


def csv_delimiter(path: Path, requested: str | None = None) -> str:
    """The requested delimiter (one character; ``tab`` or ``\\t`` for a tab), or the one detected.

    Detected: the first of comma, tab and semicolon that splits the file's first records into
    the same number (two or more) of fields; a comma when none does (a one-column file).
    """
    if requested is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(requested, requested)
        if len(delimiter) != 1 or delimiter in "\"\r\n":
            raise SeqVAEError(
                f"delimiter must be one character (e.g. ',', ';' or tab), got {requested!r}"
            )
        return delimiter
    sample = _head(path)
    for delimiter in (",", "\t", ";"):
        records = [record for record in _records(sample, delimiter) if "".join(record).strip()]
        widths = {len(record) for record in records[:-1] or records}  # the last may be cut short
        if len(widths) == 1 and widths.pop() > 1:
            return delimiter
    return ","


def _records(text: str, delimiter: str) -> list[list[str]]:
    """The CSV records of ``text``; none when a field is over the csv module's size limit."""
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:  # a field over 128 KiB: this is no table of molecules or sentences
        return []


def _head(path: Path, size: int = 1 << 16, records: int = 50) -> str:
    """The first whole lines of a file (up to ``size`` bytes and ``records`` lines), as text."""
    with _open_text(path) as handle:
        lines = []
        for raw in handle:
            lines.append(raw)
            if len(lines) >= records or sum(map(len, lines)) >= size:
                break
    if len(lines) > 1 and not lines[-1].endswith(b"\n"):
        lines.pop()  # cut short: its field count would be wrong
    return b"".join(lines).decode("utf-8", errors="replace").lstrip(BYTE_ORDER_MARK)


def record_lines(path: Path, delimiter: str, num_lines: int, first_record: int, num_rows: int) -> np.ndarray:
    """The line on which each of a CSV's ``num_rows`` rows starts (rows from ``first_record``).

    A row is one line unless a quoted value holds a line break; only then is the file read
    again, record by record, to find where each starts.
    """
    lines = np.arange(first_record, first_record + num_rows)
    if num_lines == first_record - 1 + num_rows:  # one line per record
        return lines
    starts, line = [], 1
    with _open_text(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for _ in reader:
                starts.append(line)
                line = reader.line_num + 1
        except csv.Error:  # a field over the csv module's size limit: keep the record numbers
            return lines
    found = starts[first_record - 1 : first_record - 1 + num_rows]
    return np.array(found) if len(found) == num_rows else lines


def load_csv(path: Path, header="infer", delimiter: str | None = None) -> datasets.Dataset:
    """A CSV file's rows, every value as text; ``delimiter`` is detected when ``None``."""
    delimiter = csv_delimiter(path, delimiter)
    try:
        # Every column is read as text: pandas reads in chunks of 10,000 rows and would fix a
        # column's type from the first chunk, rejecting the file when a later value differs
        # ("2.5" in a column of integers, "n/a" among numbers). Numbers are parsed row by row
        # later, so a bad value skips one row. Blank lines become empty rows (not skipped), so
        # line numbers stay true; "n/a" or "NA" stay as written, so the report shows them.
        # index_col=False: a first row with more fields than the header would otherwise have its
        # first field taken as an index, and every column read one place to the right.
        text_columns = {index: str for index in range(_count_columns(path, delimiter))}
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # that first row: an error as later ones are
            table = load_quietly(
                "csv", path, header=header, sep=delimiter, encoding="utf-8-sig", skip_blank_lines=False,
                keep_default_na=False, converters=text_columns, index_col=False,
            )
    except Exception as error:  # pandas' parser errors come in several types
        cause = error.__cause__ or error
        if isinstance(cause, pd.errors.ParserWarning):
            raise SeqVAEError(
                f"{path}, line 2: more fields than the header has; quote values that hold the delimiter "
                f"({DELIMITERS.get(delimiter, repr(delimiter))}), or set delimiter if it is another"
            ) from None
        lines = _count_lines(path)
        if lines == 0:
            raise SeqVAEError(f"{path} holds only blank lines; give a file with one row per line") from None
        if header == "infer" and lines == 1:  # datasets refuses a header-only file
            raise SeqVAEError(f"{path} has a header line but no rows; add molecules below the header") from None
        raise SeqVAEError(
            f"{path}: cannot parse as CSV with the delimiter {DELIMITERS.get(delimiter, repr(delimiter))} "
            f"({' '.join(str(cause).split())}); set delimiter if it is another"
        ) from None
    if len(table) == 0:
        raise SeqVAEError(f"{path} has a header line but no rows; add molecules below the header")
    return table


def _count_lines(path: Path) -> int:
    """Non-empty lines of a text file."""
    with _open_text(path) as handle:
        return sum(1 for raw in handle if raw.strip())


def _count_columns(path: Path, delimiter: str) -> int:
    """Fields in the first non-empty line of a CSV file."""
    with _open_text(path) as handle:
        for raw in handle:
            line = raw.decode("utf-8").strip()
            if line:
                return len(next(iter(_records(line, delimiter)), line.split(delimiter)))
    return 1


def load_quietly(builder: str, path: Path, **options) -> datasets.Dataset:
    """``datasets.load_dataset`` for one local file, in memory, without its progress bars (or its
    log line on a parse failure: the caller turns that into one clear error)."""
    bars_were_enabled = datasets.is_progress_bar_enabled()
    verbosity = datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        return datasets.load_dataset(
            builder, data_files=str(path), split="train", keep_in_memory=True, **options
        )
    finally:
        datasets.logging.set_verbosity(verbosity)
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
