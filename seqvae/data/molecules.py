"""Reading molecule corpora: check, canonicalise and measure each SMILES once (cached on disk
for large files), and report what was skipped.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..chem import (
    MAX_SMILES_CHARACTERS,
    STANDARDIZATION_STEPS,
    molecule_properties,
    property_name,
    to_mol,
)
from ..errors import SeqVAEError
from ..tokenization import REPRESENTATIONS, SMILES_REGEX, to_model_text
from .normalization import normalize_smiles_with_changes, smiles_too_long
from .readers import read_columns, table_rows
from .report import CorpusReport, SkippedRow
from .sources import hub_dataset_name, load_hub_dataset, resolve_corpus
from .storage import cached_check, run_check

__all__ = ["load_molecules", "property_names", "MoleculeCheck", "CHANGED", "shown_value"]

logger = logging.getLogger(__name__)


def load_molecules(
    source: str | os.PathLike | list,
    *,
    smiles_column: str | None = None,
    canonicalize: bool = True,
    keep_largest_fragment: bool = False,
    standardize: bool = False,
    representation: str = "smiles",
    max_length: int | None = None,
    deduplicate: bool = True,
    data_dir: str | os.PathLike | None = None,
    progress: bool = False,
    num_proc: int = 1,
    properties: list[str] | None = None,
    delimiter: str | None = None,
    hub_split: str = "train",
) -> tuple[datasets.Dataset, CorpusReport]:
    """Read a corpus, keep the usable molecules and say what happened to the rest.

    Args:
        source: a file, folder or glob of shards, a list of these, ``bundled`` or a named corpus
            (see :func:`~seqvae.data.sources.resolve_corpus`), or ``hub:NAME`` / ``hub:NAME:SPLIT``
            for a Hugging Face Hub dataset (or ``hub:PATH`` of a local one).
        smiles_column: CSV, Parquet or Hub column holding SMILES; detected when ``None``.
        canonicalize: rewrite SMILES in RDKit canonical form.
        keep_largest_fragment: drop counter-ions and solvents (``.``-separated fragments).
        standardize: standardise with RDKit's ``rdMolStandardize`` (largest fragment,
            uncharge, canonical tautomer); the report counts the kept molecules each step changed.
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
        delimiter: the field separator of CSV files; detected (comma, tab or semicolon) when
            ``None``.
        hub_split: the split of a Hub dataset to read when ``source`` names none.

    Returns:
        A dataset with columns ``smiles`` (as used for training), ``text`` (what the
        tokenizer reads: SMILES or SELFIES) and one column per property, and the
        :class:`CorpusReport`. Checked tables of large files are cached on disk (keyed by
        the file's content and the settings), so a second run skips the RDKit work.

    Rows too long for the model are skipped; those far too long (over twice ``max_length`` in
    atoms, or over ``MAX_SMILES_CHARACTERS``) are skipped before RDKit reads them, since its
    time grows with the cube of a molecule's length.
    """
    if representation not in REPRESENTATIONS:
        raise SeqVAEError(f"representation must be one of {', '.join(REPRESENTATIONS)}")
    report = CorpusReport()
    properties = property_names(properties)
    tables = []
    for name, (values, columns, first_record, lines), file in _read_sources(
        source, data_dir, hub_split, smiles_column, properties, delimiter
    ):
        report.sources.append(name)
        computed = [p for p in properties if p not in columns]
        check = MoleculeCheck(
            canonicalize, keep_largest_fragment, representation, max_length, list(columns), computed, standardize
        )
        make_raw = functools.partial(_raw_table, values, columns)
        if file is None:  # a Hub dataset has no file whose bytes could key a cache entry
            checked = run_check(make_raw(), check, num_proc, progress, f"checking {name}")
        else:
            checked = cached_check(
                file, len(values), make_raw, check, num_proc, progress,
                key=f"{smiles_column}|{sorted(columns)}|delimiter {delimiter!r}",
            )
        names = {(f"property:{p}" if p in columns else p): p for p in properties}
        changes = [CHANGED + step for step in STANDARDIZATION_STEPS]
        table = checked.data.table.select(["value", "reason", "smiles", "text", *changes, *names]).rename_columns(
            ["value", "reason", "smiles", "text", *changes, *names.values()]
        )
        records = pa.array(np.arange(first_record, first_record + len(table)))
        tables.append(
            table.append_column("file", pa.repeat(name, len(table)))
            .append_column("line", pa.array(lines))
            .append_column("record", records)
        )
    kept = _keep_usable(pa.concat_tables(tables), deduplicate, report)
    report.rows_kept = len(kept)
    if standardize:
        _count_standardization(kept, report)
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


def _read_sources(source, data_dir, hub_split: str, smiles_column, properties: list[str], delimiter):
    """``(name, FileRows, file)`` for each file of the corpus, read one at a time (so that one
    file's raw rows are held at once); ``file`` is ``None`` for a Hub dataset."""
    hub = hub_dataset_name(source, hub_split)
    if hub:
        name, split = hub
        rows = table_rows(f"hub:{name}", load_hub_dataset(name, split), smiles_column, properties)
        yield f"hub:{name}[{split}]", rows, None
        return
    for path in resolve_corpus(source, data_dir):
        yield str(path), read_columns(Path(path), smiles_column, properties, delimiter), Path(path)


def property_names(properties: list[str] | None) -> list[str]:
    """The recipe's properties under their canonical names (``LogP`` -> ``logP``), checked."""
    names = [property_name(p) or p for p in properties or []]
    if len(set(names)) != len(names) or {"smiles", "text"} & set(names):
        raise SeqVAEError(f"properties must be distinct and not 'smiles' or 'text', got {names}")
    return names


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
        rows = table.take(skipped).select(["file", "line", "record", "value"]).to_pylist()
        for row, reason in zip(rows, reasons[skipped]):
            record = row["record"] if row["record"] != row["line"] else None  # named where they differ
            report.add_skipped(SkippedRow(row["file"], row["line"], shown_value(row["value"].strip()), reason, record))
    return table.filter(pa.array(reasons == ""))


def _count_standardization(kept: pa.Table, report: CorpusReport) -> None:
    """How many kept molecules each standardisation step changed (a duplicate is counted once,
    under the row that stays)."""
    for step in STANDARDIZATION_STEPS:
        changed = pc.sum(kept[CHANGED + step]).as_py() or 0
        report.standardization[step] = report.standardization.get(step, 0) + changed


def shown_value(value: str, limit: int = 200) -> str:
    """A skipped value as the report shows it: whole, or its beginning and length when very long."""
    return value if len(value) <= limit else f"{value[:80]}... ({len(value)} characters)"


def _warn_about_property_rows(report: CorpusReport) -> None:
    """Skipped molecules are expected; skipped property values usually mean a data problem."""
    rows = [row for row in report.skipped if row.reason.startswith("property ")]
    if rows:
        first = rows[0]
        logger.warning(
            "%d row(s) skipped because a property value is missing or not a number; first: %s, line %d: %s "
            "(all are listed in the run's data_report.json)", len(rows), first.file, first.line, first.reason,
        )


CHANGED = "changed:"  # prefix of the checked table's columns: did this standardisation step change the row?


class MoleculeCheck:
    """Batched row check for ``datasets.map``: adds ``smiles``, ``text`` and ``reason`` columns,
    and one ``changed:STEP`` column per standardisation step.

    ``reason`` is empty for a usable molecule. A class (not a closure) so that ``datasets`` can
    fingerprint it for caching and send it to worker processes. Every attribute is part of the
    cache key (:meth:`settings`), ``standardize`` included.
    """

    def __init__(
        self, canonicalize, keep_largest_fragment, representation, max_length, read=(), computed=(), standardize=False
    ):
        self.canonicalize = canonicalize
        self.keep_largest_fragment = keep_largest_fragment
        self.standardize = standardize
        self.representation = representation
        self.max_length = max_length
        self.pattern = REPRESENTATIONS[representation]
        self.read = list(read)  # properties read from the file's columns
        self.computed = list(computed)  # built-in properties computed with RDKit
        self.parse_limits = (PARSE_MARGIN, MAX_SMILES_CHARACTERS)  # in the cache key: a change re-checks

    def settings(self) -> str:
        return repr(sorted(vars(self).items()))

    def __call__(self, batch: dict) -> dict:
        changed = [CHANGED + step for step in STANDARDIZATION_STEPS]
        columns = {"smiles": [], "text": [], "reason": [], **{name: [] for name in changed + self._output_names()}}
        for i, value in enumerate(batch["value"]):
            smiles, text, reason, changes = self.check(value.strip())
            values = {}
            if not reason:
                reason, values = self.property_values(smiles, {n: batch[f"property:{n}"][i] for n in self.read})
            columns["smiles"].append(smiles or "")
            columns["text"].append(text or "")
            columns["reason"].append(reason or "")
            for step in STANDARDIZATION_STEPS:
                columns[CHANGED + step].append(step in changes)
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
        """-> (smiles, model text, None, changes) for a usable molecule, or (None, None, reason,
        changes); ``changes`` are the standardisation steps that changed the molecule."""
        unchanged = frozenset()
        if not value:
            return None, None, "empty", unchanged
        too_long = self.too_long_to_parse(value)
        if too_long:
            return None, None, f"too long ({too_long})", unchanged
        smiles, changes = normalize_smiles_with_changes(
            value, self.canonicalize, self.keep_largest_fragment, self.standardize
        )
        if smiles is None:
            return None, None, "invalid SMILES", unchanged
        text = to_model_text(smiles, self.representation)
        if text is None:
            return None, None, f"not representable as {self.representation}", changes
        if self.max_length is not None:
            num_tokens = len(re.findall(self.pattern, text)) + 2
            if num_tokens > self.max_length:
                return None, None, f"too long ({num_tokens} tokens > max_length {self.max_length})", changes
        return smiles, text, None, changes

    def too_long_to_parse(self, value: str) -> str | None:
        """Why ``value`` is skipped before RDKit reads it, or ``None``.

        Canonicalisation changes a row's token count (it drops ``[H]``, kekulé ``=`` and
        redundant parentheses, renumbers rings, and ``keep_largest_fragment`` and ``standardize``
        drop fragments; uncharging and tautomers move hydrogens and charges, never heavy atoms),
        but it never removes an atom, and every atom is at least one token in SMILES and in
        SELFIES: a row's atoms (of its largest ``.``-separated part when only the largest
        fragment is kept) are a lower bound of its token count, so no row that would fit is lost.
        Rows up to twice ``max_length`` atoms are still parsed, so that one a little too long is
        reported with its exact token count; RDKit reads those in milliseconds.
        """
        problem = smiles_too_long(value)
        if problem or self.max_length is None or len(value) + 2 <= PARSE_MARGIN * self.max_length:
            return problem  # (characters bound atoms from above: a short row needs no count)
        atoms = _fewest_atoms(value, self.keep_largest_fragment or self.standardize)
        if atoms + 2 <= PARSE_MARGIN * self.max_length:
            return None
        return f"at least {atoms + 2} tokens > max_length {self.max_length}: {atoms} atoms, not parsed"


PARSE_MARGIN = 2  # rows with over PARSE_MARGIN * max_length atoms are skipped unparsed
_SMILES_TOKEN = re.compile(SMILES_REGEX)


def _fewest_atoms(smiles: str, largest_part_only: bool) -> int:
    """Atoms the model's sequence keeps at least: every atom symbol but a plain ``[H]`` (which
    canonical SMILES leaves implicit); with ``largest_part_only``, of the ``.``-separated part
    with most of them."""
    counts, atoms = [], 0
    for token in _SMILES_TOKEN.findall(smiles):
        if token == "." and largest_part_only:
            counts.append(atoms)
            atoms = 0
        elif (token[0].isalpha() or token[0] in "[*") and token != "[H]":
            atoms += 1
    return max(counts + [atoms])
