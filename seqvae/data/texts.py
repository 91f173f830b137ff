"""Reading sentence corpora (files, PTB, Hugging Face Hub datasets), with their attribute
columns.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import datasets
import numpy as np

from ..errors import SeqVAEError
from .attributes import reads_as_number, text_attribute
from .normalization import normalize_sentence
from .readers import (
    check_not_json, check_utf8, csv_delimiter, file_kind, load_csv, read_lines, read_parquet, record_lines,
)
from .report import CorpusReport, SkippedRow
from .sources import hub_dataset_name, load_hub_dataset, resolve_corpus

__all__ = ["load_texts", "TEXT_COLUMN_NAMES"]

logger = logging.getLogger(__name__)


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
    delimiter: str | None = None,
) -> tuple[datasets.Dataset, CorpusReport]:
    """Read sentences, one per row, with their attributes, and say what was left out.

    Args:
        source: a ``.txt`` / ``.txt.gz`` file (one sentence per line), a CSV with a text
            column, a folder or glob of such shards, a list of these, ``ptb`` / ``ptb:valid`` / ``ptb:test``, or
            ``hub:NAME`` for a Hugging Face Hub dataset (or ``hub:PATH`` of a local one), with
            ``hub:NAME:SPLIT`` choosing its split.
        text_column: the column holding the sentences (CSV and Hub); detected when ``None``.
        data_dir: where named corpora live locally (otherwise they are downloaded).
        hub_split: the split of a Hub dataset to read when ``source`` names none.
        lowercase: lower-case every sentence.
        attributes: attribute columns to keep (a label, a score), or attributes computed from
            the sentence by ``attribute_rules`` (see :func:`seqvae.data.attributes.text_attribute`).
        attribute_rules: ``{name: rule}``, e.g. ``{"length": "words", "money": "contains:$"}``.
        categorical_attributes: columns read as labels even when they look like numbers; a
            column none of whose values is a number is read as labels anyway.
        delimiter: the field separator of CSV files; detected (comma, tab or semicolon) when
            ``None``.

    Returns:
        A dataset with columns ``text``, ``file`` and ``line`` (where each sentence came
        from, for the report), then one column per attribute (a float, or a label string),
        and the :class:`CorpusReport`. Empty lines and rows whose attribute is empty or not a
        number are skipped and counted; sentence length is checked when tokenising
        (:func:`seqvae.data.encoding.tokenize_texts`).
    """
    rules = dict(attribute_rules or {})
    columns = [name for name in attributes if name not in rules]
    hub = hub_dataset_name(source, hub_split)
    if hub:
        tables = [_hub_texts(*hub, text_column, columns)]
    else:
        paths = resolve_corpus(source, data_dir)
        tables = [_file_texts(Path(path), text_column, columns, delimiter) for path in paths]
    categorical = set(categorical_attributes) | _label_columns(tables, columns)
    report = CorpusReport(sources=[name for name, *_ in tables])
    kept = {"text": [], "file": [], "line": [], **{name: [] for name in columns}}
    for name, values, attribute_values, lines, first_record in tables:
        for offset, value in enumerate(values):
            report.rows_read += 1
            line, record = int(lines[offset]), first_record + offset
            record = record if record != line else None  # named where they differ
            sentence = normalize_sentence(value, lowercase)
            if not sentence:
                report.add_skipped(SkippedRow(name, line, "", "empty line", record))
                continue
            cells = {column: _attribute_value(attribute_values[column][offset], column in categorical) for column in columns}
            problem = next((reason for _, reason in cells.values() if reason), "")
            if problem:
                report.add_skipped(SkippedRow(name, line, sentence[:80], problem, record))
                continue
            kept["text"].append(sentence)
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
        if not any(reads_as_number(value) for _, _, found, *_ in tables for value in found[column])
    }


def _attribute_value(cell, categorical: bool) -> tuple[object, str]:
    """``(label or number, "")`` for a usable cell, ``(None, why not)`` otherwise."""
    text = "" if cell is None else str(cell).strip()
    if categorical:
        return (text, "") if text else (None, "empty label")
    if not reads_as_number(text):
        return None, f"not a number ({text!r})" if text else "empty value"
    return float(text), ""


def _file_texts(
    path: Path, text_column: str | None, columns: list[str] = (), delimiter: str | None = None
) -> tuple[str, list, dict, np.ndarray, int]:
    """``(file name, sentences, {attribute column: values}, the line of each, the record number
    of the first)`` of one text or CSV file."""
    kind = file_kind(path)
    if kind == ".smi":
        raise SeqVAEError(f"{path}: a .smi file holds molecules; give sentences as .txt or .csv")
    if kind == ".parquet":  # rows, not lines: row numbers stand in for line numbers
        table = read_parquet(path)
        sentences = table[_choose_text_column(str(path), table, text_column)]
        return str(path), sentences, _attribute_columns(str(path), table, columns), np.arange(1, len(table) + 1), 1
    num_lines = check_utf8(path)
    if kind == ".txt":
        if text_column is not None:
            raise SeqVAEError(f"{path}: text_column={text_column!r} is for CSV files; a .txt file has one sentence per line")
        if columns:
            raise SeqVAEError(
                f"{path}: a .txt file has no columns, so it cannot give the attribute(s) {', '.join(columns)}; "
                "use a CSV with those columns, or compute them from the text with attribute_rules (words, contains:TOKEN)"
            )
        sentences = read_lines(path)
        return str(path), sentences, {}, np.arange(1, len(sentences) + 1), 1
    check_not_json(path)
    delimiter = csv_delimiter(path, delimiter)
    table = load_csv(path, delimiter=delimiter)
    sentences = table[_choose_text_column(str(path), table, text_column)]
    lines = record_lines(path, delimiter, num_lines, 2, len(table))
    return str(path), sentences, _attribute_columns(str(path), table, columns), lines, 2


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


def _hub_texts(name: str, split: str, text_column: str | None, columns: list[str] = ()) -> tuple[str, list, dict, np.ndarray, int]:
    table = load_hub_dataset(name, split)
    where = f"hub:{name}"
    sentences = table[_choose_text_column(where, table, text_column)]
    return f"{where}[{split}]", sentences, _attribute_columns(where, table, columns), np.arange(len(sentences)), 0


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


TEXT_COLUMN_NAMES = ("text", "sentence", "sentences", "content", "line")
