"""Peak memory and speed of ``seqvae sample`` writing chunks, against the one-file output, by count.

    OMP_NUM_THREADS=1 python benchmarks/sharded_sampling.py                       # ~9 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/sharded_sampling.py --counts 50000 200000 1000000
    # -> benchmarks/results/sharded_sampling.json

Each measurement is one ``seqvae sample --model zinc250k`` in its own child process (this script
with ``--worker``, which runs the command line in-process and reports its peak resident memory),
so that each figure is one command's own:

* chunked: ``--chunk_size`` rows per Parquet chunk into an output folder, for each of
  ``--counts``; only one chunk is in memory, so peak memory should not grow with the count;
* in memory: ``--output samples.csv`` (everything kept, written at the end), for each of
  ``--in_memory_counts``, for comparison.

Seconds are the whole command's (imports and model loading included), so molecules/s is a little
lower than the sampler's own rate for small counts. The validity of each output is read back
afterwards, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "sharded_sampling.json"
SHARED_MACHINE_NOTE = (
    "measured on a 2-core machine shared with other CPU-heavy jobs (another engineer's tests and runs): "
    "molecules/s are lower bounds; peak RSS is each command's own and not affected"
)


def worker(argv: list[str]) -> None:
    """Run ``seqvae`` with ``argv`` in this process; print its seconds and peak RSS as JSON."""
    import contextlib
    import resource

    from seqvae.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result line
        status = main(argv)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"seqvae {' '.join(argv)} exited with {status}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # Linux: kilobytes
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def measure(argv: list[str], output: Path, count: int) -> dict:
    """One command in a child process, and the validity of what it wrote."""
    import pandas as pd

    print(f"[sharded_sampling] seqvae {' '.join(argv)}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, __file__, "--worker", "--", *argv], stdout=subprocess.PIPE, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    frame = pd.read_parquet(output) if output.is_dir() else pd.read_csv(output, keep_default_na=False)
    if len(frame) != count:
        raise SystemExit(f"{output} holds {len(frame)} rows, not {count}")
    return {
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "seconds": round(result["seconds"], 1),
        "molecules_per_second": round(count / result["seconds"], 1),
        "valid": round(float(frame["valid"].mean()), 4),
    }


def growth_per_100k(rows: dict) -> float | None:
    """Peak RSS growth (MB per 100,000 molecules) between the smallest and the largest count."""
    counts = sorted(int(count) for count in rows)
    if len(counts) < 2:
        return None
    low, high = rows[str(counts[0])], rows[str(counts[-1])]
    return round((high["peak_rss_mb"] - low["peak_rss_mb"]) / (counts[-1] - counts[0]) * 1e5, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="zinc250k")
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--in_memory_counts", type=int, nargs="*", default=[10_000, 200_000])
    parser.add_argument("--chunk_size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--machine_note", default=SHARED_MACHINE_NOTE, help="how busy the machine was")
    args = parser.parse_args()

    common = ["sample", "--model", args.model, "--seed", str(args.seed)]
    chunked, in_memory = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.counts:
            folder = Path(scratch) / f"chunks_{count}"
            argv = [*common, "--num_samples", str(count), "--chunk_size", str(args.chunk_size), "--output", str(folder)]
            chunked[str(count)] = measure(argv, folder, count)
        for count in args.in_memory_counts:
            path = Path(scratch) / f"samples_{count}.csv"
            in_memory[str(count)] = measure([*common, "--num_samples", str(count), "--output", str(path)], path, count)

    report = {
        "command": " ".join([f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}", "python", *sys.argv]),
        "model": args.model,
        "seed": args.seed,
        "chunk_size": args.chunk_size,
        "cpus": os.cpu_count(),
        "note": args.machine_note,
        "chunked": chunked,
        "in_memory": in_memory,
        "peak_rss_growth_mb_per_100k": {"chunked": growth_per_100k(chunked), "in_memory": growth_per_100k(in_memory)},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:])
    else:
        main()
