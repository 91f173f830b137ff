"""The corpus report: every skipped row with its file, line and reason, and the counts that
``data_report.json`` holds. Nothing is dropped without being counted here.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow.compute as pc

from .readers import arrow_table

__all__ = ["SkippedRow", "CorpusReport", "StreamReport", "rows_of_unknown_tokens", "rows_with_unknown"]

logger = logging.getLogger(__name__)


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
        staging = path.with_name(f".{path.name}.partial")  # a reader never sees half a report
        staging.write_text(json.dumps(payload, indent=1))
        staging.replace(path)
        return path


@dataclass
class StreamReport(CorpusReport):
    """The report of a streamed corpus, filled while the rows are read.

    Each row is counted once, on its first reading by this process (later epochs read it
    again); in a data-parallel run each process counts the rows it reads. Memory stays flat:
    only the first ``listed_limit`` skipped rows are listed, the others are counted.
    ``failed_shards`` names each shard that could not be read to its end, with the error.
    After :meth:`write`, the file is written again as the stream goes on (at most every
    ``WRITE_INTERVAL`` seconds, and at once when a shard fails).
    """

    streamed: bool = True
    listed_limit: int = 10_000
    unlisted_skips: int = 0
    failed_shards: dict[str, str] = field(default_factory=dict)

    WRITE_INTERVAL = 30.0

    def __post_init__(self):
        self._read_up_to: dict[str, int] = {}  # per shard, the last line counted
        self._path: Path | None = None
        self._written_at = 0.0

    def first_reading(self, file: str, line: int) -> bool:
        """Whether this row is read for the first time (rows of a shard come in line order)."""
        if line <= self._read_up_to.get(file, 0):
            return False
        self._read_up_to[file] = line
        return True

    def add_skipped(self, row: SkippedRow) -> None:
        self.skipped_counts[row.reason_kind] = self.skipped_counts.get(row.reason_kind, 0) + 1
        if len(self.skipped) < self.listed_limit:
            self.skipped.append(row)
        else:
            self.unlisted_skips += 1

    def shard_failed(self, file: str, line: int, error: Exception) -> None:
        """Count a shard that broke off at ``line`` (once), name it, and write the report now."""
        if file in self.failed_shards:
            return
        message = " ".join(str(error).split()) or type(error).__name__
        self.failed_shards[file] = message
        reason = f"unreadable shard ({type(error).__name__}: {message}; rest of the shard skipped)"
        self.add_skipped(SkippedRow(file, line, "", reason))
        logger.warning("%s: unreadable after line %d (%s); its remaining rows are skipped", file, line - 1, message)
        self.write_if_due(now=True)

    def write(self, path: str | Path) -> Path:
        self._path, self._written_at = Path(path), time.monotonic()
        return super().write(path)

    def write_if_due(self, now: bool = False) -> None:
        """Write the report again where :meth:`write` last put it, when it is time to."""
        if self._path is None or not (now or time.monotonic() - self._written_at >= self.WRITE_INTERVAL):
            return
        if _in_loader_worker():  # a worker's copy counts only its own rows: the main process writes
            return
        try:
            self.write(self._path)
        except OSError as error:  # a report that cannot be written must not stop training
            logger.warning("could not update %s: %s", self._path, error)

    def summary(self) -> str:
        failed = f", {len(self.failed_shards)} unreadable shard(s)" if self.failed_shards else ""
        return f"{super().summary()}{failed} (streamed: rows read so far)"


def _in_loader_worker() -> bool:
    import torch.utils.data

    return torch.utils.data.get_worker_info() is not None


def rows_of_unknown_tokens(encoded: datasets.Dataset, unk_token_id: int) -> np.ndarray:
    """The row index of every ``<unk>`` id (column operations, no loop over rows)."""
    ids = arrow_table(encoded)["input_ids"].combine_chunks()
    unknown = pc.equal(pc.list_flatten(ids), unk_token_id)
    return pc.filter(pc.list_parent_indices(ids), unknown).to_numpy()


def rows_with_unknown(encoded: datasets.Dataset, unk_token_id: int) -> list[int]:
    """Indices of the encoded rows holding ``<unk>``."""
    return np.unique(rows_of_unknown_tokens(encoded, unk_token_id)).tolist()
