"""Output written in chunks as it is made, split across processes (shards), and resumable.

The work (``num_rows`` rows: samples to draw, or input rows to encode) is cut into chunks of
``chunk_size`` rows. Chunk ``k`` is always the same rows and, when sampling, always drawn with
:func:`chunk_seed` ``(seed, k)``, whatever the number of shards; shard ``i`` of ``N`` takes a
contiguous range of chunks (:func:`shard_chunks`). Each chunk is one Parquet file
``part-KKKKK.parquet`` of the output folder, written under a hidden temporary name and renamed
once complete, so that:

* the folder read in name order (``pandas.read_parquet(folder)``) is the whole output in order,
  whichever shards wrote which chunks;
* a killed run leaves only complete chunks, and running the same command again skips them;
* ``_manifest.json`` holds the settings the chunks were made with, and a run with other
  settings is refused rather than mixed in.

Readers of Parquet folders (pyarrow, pandas, polars, DuckDB, Spark) skip names starting with
``_`` or ``.``: the manifest and unfinished chunks are never read as data.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SeqVAEError
from .runs import write_atomically

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkFolder",
    "Shard",
    "chunk_seed",
    "parse_shard",
    "shard_chunks",
    "write_missing_chunks",
]

DEFAULT_CHUNK_SIZE = 10_000  # rows; a killed run loses at most one chunk (~10 s of CPU sampling with zinc250k)
MANIFEST = "_manifest.json"
MANIFEST_FORMAT = "seqvae chunked output 1"
SHARD_FORM = "i/N with 0 <= i < N (e.g. 0/4 for the first of 4 shards), or auto"
_SHARD_PATTERN = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, environ: Mapping[str, str] = os.environ) -> Shard:
    """``"i/N"`` -> ``Shard(i, N)``; ``"auto"``: the process's ``RANK`` / ``WORLD_SIZE``, as
    ``torchrun`` and ``accelerate launch`` set them (``0/1`` when they are not set)."""
    if text == "auto":
        return _shard_from_environment(environ)
    match = _SHARD_PATTERN.fullmatch(text.strip())
    if match is None:
        raise SeqVAEError(f"--shard {text!r}: expected {SHARD_FORM}")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise SeqVAEError(f"--shard {text!r}: N must be at least 1; expected {SHARD_FORM}")
    if index >= count:
        raise SeqVAEError(f"--shard {text!r}: i must be below N (shards count from 0); expected {SHARD_FORM}")
    return Shard(index, count)


def _shard_from_environment(environ: Mapping[str, str]) -> Shard:
    rank, world = environ.get("RANK"), environ.get("WORLD_SIZE")
    if rank is None and world is None:
        return Shard()
    try:
        return parse_shard(f"{int(rank)}/{int(world)}")
    except (TypeError, ValueError, SeqVAEError):
        raise SeqVAEError(
            f"--shard auto: RANK={rank} and WORLD_SIZE={world} do not name a shard; "
            "run under torchrun / accelerate launch, or give --shard i/N"
        ) from None


def chunk_count(num_rows: int, chunk_size: int) -> int:
    return -(-num_rows // chunk_size)


def shard_chunks(shard: Shard, num_chunks: int) -> range:
    """The contiguous chunks shard ``shard`` makes; the shards' ranges, in order, cover every
    chunk once (sizes differ by at most one; with more shards than chunks some are empty)."""
    return range(num_chunks * shard.index // shard.count, num_chunks * (shard.index + 1) // shard.count)


def chunk_seed(seed: int | None, chunk: int) -> int | None:
    """The seed of chunk ``chunk``: a function of ``(seed, chunk)`` only, so a chunk draws the same
    rows whichever shard makes it (``None``: fresh randomness)."""
    if seed is None:
        return None
    import numpy as np

    return int(np.random.SeedSequence([seed % 2**64, chunk]).generate_state(1, np.uint64)[0])


class ChunkFolder:
    """A folder of Parquet chunks and its manifest.

    Args:
        folder: where the chunks go (created when missing).
        command: what makes the rows (``"sample"``, ``"encode"``), recorded in the manifest.
        settings: everything that decides the rows' content; a folder made with other settings
            is refused.
        num_rows: rows of the whole output, over all shards.
        chunk_size: rows per chunk (the last one may hold fewer).
    """

    def __init__(self, folder: str | Path, command: str, settings: dict, num_rows: int, chunk_size: int):
        self.folder = Path(folder)
        self.num_rows = num_rows
        self.chunk_size = chunk_size
        self.num_chunks = chunk_count(num_rows, chunk_size)
        self.manifest = {
            "format": MANIFEST_FORMAT,
            "command": command,
            "num_rows": num_rows,
            "chunk_size": chunk_size,
            "num_chunks": self.num_chunks,
            "settings": json.loads(json.dumps(settings)),  # as read back: lists, not tuples
        }
        self._digits = max(5, len(str(self.num_chunks - 1)))  # names sort in chunk order
        self._check_existing()

    def rows(self, chunk: int) -> range:
        """The rows (over the whole output) of chunk ``chunk``."""
        start = chunk * self.chunk_size
        return range(start, min(start + self.chunk_size, self.num_rows))

    def path(self, chunk: int) -> Path:
        return self.folder / f"part-{chunk:0{self._digits}d}.parquet"

    def is_complete(self, chunk: int) -> bool:
        return self.path(chunk).is_file()

    def complete_chunks(self) -> int:
        return sum(self.is_complete(chunk) for chunk in range(self.num_chunks))

    def write(self, chunk: int, frame: pd.DataFrame, column_types: Mapping | None = None) -> Path:
        """Write chunk ``chunk`` under a temporary name, then rename it: a chunk file exists only
        once complete. ``column_types`` (name -> pyarrow type) fixes the columns whose type one
        chunk alone cannot tell (ids all missing in a chunk read as null), so that every chunk
        has the same schema and the folder reads as one table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not (self.folder / MANIFEST).is_file():  # first chunk: only now, so a run that fails before writes nothing
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(self.folder / MANIFEST, json.dumps(self.manifest, indent=2))
        path = self.path(chunk)
        for stale in self.folder.glob(f".{path.name}.*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for name, column_type in (column_types or {}).items():
            table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(column_type))
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(table.replace_schema_metadata(None), temporary)
        os.replace(temporary, path)
        return path

    def _check_existing(self) -> None:
        """Refuse a folder made with other settings, or one holding files that are not chunks."""
        if not self.folder.is_dir():
            return
        manifest = self.folder / MANIFEST
        if manifest.is_file():
            self._check_manifest(_read_manifest(manifest))
            return
        found = sorted(path.name for path in self.folder.iterdir() if not path.name.startswith("."))  # not temporaries
        if found:
            raise SeqVAEError(
                f"--output {self.folder} holds files but no {MANIFEST} ({', '.join(found[:3])}"
                f"{'...' if len(found) > 3 else ''}): it is not a folder of seqvae chunks; give a new or empty folder"
            )

    def _check_manifest(self, found: dict) -> None:
        expected = self.manifest
        differences = [
            f"{key} {_shown(found.get(key))} there, {_shown(expected[key])} now"
            for key in ("command", "num_rows", "chunk_size")
            if found.get(key) != expected[key]
        ]
        settings = found.get("settings", {})
        differences += [
            f"{key} {_shown(settings.get(key))} there, {_shown(value)} now"
            for key, value in expected["settings"].items()
            if settings.get(key) != value
        ]
        if differences:
            raise SeqVAEError(
                f"--output {self.folder} holds chunks made with other settings ({'; '.join(differences)}): "
                "resuming would mix them; rerun with the settings of its "
                f"{MANIFEST}, or write to another folder (or delete this one to start over)"
            )


def _read_manifest(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        found = None
    if not isinstance(found, dict) or found.get("format") != MANIFEST_FORMAT:
        raise SeqVAEError(f"{path} is not a seqvae chunk manifest; give a new or empty --output folder")
    return found


def _shown(value) -> str:
    return json.dumps(value)


def write_missing_chunks(
    output: ChunkFolder, chunks: Iterable[int], make_chunk: Callable[[int], pd.DataFrame], column_types: Mapping | None = None
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Make and write each of ``chunks`` that is not complete yet, one at a time (only one is
    ever in memory), yielding ``(chunk, frame)`` after each is written."""
    for chunk in chunks:
        if output.is_complete(chunk):
            continue
        frame = make_chunk(chunk)
        output.write(chunk, frame, column_types)
        yield chunk, frame
