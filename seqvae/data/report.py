"""The corpus report: every skipped row with its file, line and reason, and the counts that
``data_report.json`` holds. Nothing is dropped without being counted here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow.compute as pc

from .readers import arrow_table

__all__ = ["SkippedRow", "CorpusReport", "rows_of_unknown_tokens", "rows_with_unknown"]


@dataclass
class SkippedRow:
    """One row left out of the corpus, and why.

    ``line`` is the line the row starts on. ``record`` is set where it differs: after a CSV
    value holding a line break, it is the row's record number, the row number a spreadsheet
    shows (the header is record 1).
    """

    file: str
    line: int
    value: str
    reason: str
    record: int | None = None

    @property
    def reason_kind(self) -> str:
        """The reason without its details: "too long (70 tokens > 64)" -> "too long"."""
        return self.reason.split(" (")[0]


@dataclass
class CorpusReport:
    """What happened to every row of a corpus.

    ``standardization`` counts, with ``standardize`` on, the kept molecules that each step
    changed: ``salts_stripped`` (fragments dropped: counter-ions, solvents),
    ``charges_neutralised`` and ``tautomers_changed``; it is empty when standardisation was off.
    """

    sources: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_kept: int = 0
    skipped_counts: dict[str, int] = field(default_factory=dict)
    unknown_token_sequences: int = 0
    unknown_tokens: int = 0
    truncated: int = 0
    standardization: dict[str, int] = field(default_factory=dict)
    skipped: list[SkippedRow] = field(default_factory=list)

    def count_unknown_in(self, encoded: datasets.Dataset, unk_token_id: int) -> None:
        """Add the ``<unk>`` ids of an encoded dataset to the counts."""
        rows = rows_of_unknown_tokens(encoded, unk_token_id)
        self.unknown_tokens += len(rows)
        self.unknown_token_sequences += len(np.unique(rows))

    def merge(self, other: "CorpusReport") -> None:
        """Add another corpus's counts and skipped rows (e.g. a held-out validation file)."""
        self.sources += other.sources
        self.rows_read += other.rows_read
        self.rows_kept += other.rows_kept
        self.truncated += other.truncated
        for step, count in other.standardization.items():
            self.standardization[step] = self.standardization.get(step, 0) + count
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
        changed = [f"{count} {step.replace('_', ' ')}" for step, count in self.standardization.items() if count]
        if changed:
            parts.append(f"standardised: {', '.join(changed)}")
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
            {"file": r.file, "line": r.line, **({"record": r.record} if r.record is not None else {}),
             "value": r.value, "reason": r.reason}
            for r in self.skipped
        ]
        path.write_text(json.dumps(payload, indent=1))
        return path


def rows_of_unknown_tokens(encoded: datasets.Dataset, unk_token_id: int) -> np.ndarray:
    """The row index of every ``<unk>`` id (column operations, no loop over rows)."""
    ids = arrow_table(encoded)["input_ids"].combine_chunks()
    unknown = pc.equal(pc.list_flatten(ids), unk_token_id)
    return pc.filter(pc.list_parent_indices(ids), unknown).to_numpy()


def rows_with_unknown(encoded: datasets.Dataset, unk_token_id: int) -> list[int]:
    """Indices of the encoded rows holding ``<unk>``."""
    return np.unique(rows_of_unknown_tokens(encoded, unk_token_id)).tolist()
