"""Text attributes: the rules that compute them from a sentence, and categorical attributes
read as label indices.
"""

from __future__ import annotations

import math

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SeqVAEError
from .readers import arrow_table
from .report import CorpusReport, SkippedRow

__all__ = ["text_attribute", "rule_labels", "reads_as_number", "encode_labels", "attribute_labels", "check_attribute_settings"]

CONTAINS_LABELS = ("no", "yes")  # the labels of a contains:TOKEN attribute, sorted as learned labels are


def text_attribute(rule: str, sentences: list[str]) -> list:
    """A text attribute computed from each sentence, by the rule a recipe names:

    * ``words``: the number of whitespace-separated words (PTB counts ``$``, ``N`` and ``<unk>``
      as words);
    * ``contains:TOKEN``: ``"yes"`` when ``TOKEN`` is one of the sentence's words, else ``"no"``.
    """
    if rule == "words":
        return [float(len(sentence.split())) for sentence in sentences]
    kind, _, token = rule.partition(":")
    if kind == "contains" and token:
        absent, present = CONTAINS_LABELS
        return [present if token in sentence.split() else absent for sentence in sentences]
    raise SeqVAEError(f"unknown attribute rule {rule!r}: use 'words' or 'contains:TOKEN' (e.g. 'contains:$')")


def rule_labels(rule: str) -> list[str]:
    """The labels of a categorical rule (``[]``: the rule gives numbers)."""
    return list(CONTAINS_LABELS) if rule.startswith("contains:") else []


def reads_as_number(value) -> bool:
    """A finite number, or text that reads as one (``"2.5"``); booleans are not numbers."""
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


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


def attribute_labels(train_rows, data_args) -> dict[str, list[str]]:
    """``{attribute: labels}`` of the categorical text attributes: a rule's fixed labels, or
    the sorted labels of the training rows."""
    if data_args.representation != "text":
        return {}
    labels = {}
    for name in data_args.properties:
        rule = data_args.attribute_rules.get(name)
        if rule:
            found = rule_labels(rule)
        elif train_rows.features[name].dtype in ("string", "large_string"):
            found = sorted(set(train_rows[name]))
        else:
            continue
        if found:
            labels[name] = found
    return labels


def check_attribute_settings(data_args) -> None:
    """Fail before the corpus is read when a recipe's attribute settings cannot work."""
    names = set(data_args.properties)
    given = set(data_args.attribute_rules) | set(data_args.categorical_attributes)
    if given and data_args.representation != "text":
        raise SeqVAEError("attribute_rules and categorical_attributes are for text (representation: text)")
    if given - names:
        raise SeqVAEError(
            f"attribute_rules / categorical_attributes name {', '.join(sorted(given - names))}, which "
            f"{'is' if len(given - names) == 1 else 'are'} not in properties ({', '.join(data_args.properties) or 'empty'}); add them there"
        )
    reserved = names & {"text", "file", "line", "smiles", "input_ids", "num_tokens"}
    if reserved:
        raise SeqVAEError(f"{', '.join(sorted(reserved))}: reserved column name(s); give the property another name")
    for name, rule in data_args.attribute_rules.items():
        text_attribute(rule, [])  # an unknown rule fails here, before the corpus is read
