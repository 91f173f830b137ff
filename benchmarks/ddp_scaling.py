"""Training throughput on 1 process and on N data-parallel processes (torchrun), side by side.

    python benchmarks/ddp_scaling.py --processes 2 --max_steps 300

Both trainings read the same recipe (default ``recipes/quickstart.yaml``) with the same
per-process batch, so N processes read N times the molecules per optimiser step. One process
gets all the machine's threads; each of the N processes gets threads / N. Reports molecules per
second of training (the Trainer's ``train_samples_per_second``, which counts every process's
batches), the ratio, and the peak RSS of each launch (the largest process). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def train(processes: int, threads: int, recipe: str, max_steps: int, output_dir: Path) -> dict:
    """One ``seqvae train`` launch; its throughput, wall time and peak RSS."""
    overrides = [f"max_steps={max_steps}", "save_steps=100000", "report_to=none", "logging_steps=50",
                 "num_prior_samples=10", "num_reconstruction_molecules=10", "max_train_seconds=0"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]
    command = [*launcher, "-m", "seqvae", "train", "--config", recipe, "--output_dir", str(output_dir), *overrides]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    subprocess.run(command, env=environment, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    log = [json.loads(line) for line in (output_dir / "training_log.jsonl").read_text().splitlines()]
    end = next(entry for entry in reversed(log) if "train_samples_per_second" in entry)
    return {
        "processes": processes,
        "threads_per_process": threads,
        "molecules_per_second": round(end["train_samples_per_second"], 1),
        "train_runtime_seconds": round(end["train_runtime"], 1),
        "launch_wall_seconds": round(wall, 1),
        # RUSAGE_CHILDREN keeps the largest child so far: an upper bound once a larger launch ran
        "peak_rss_mb_largest_process_so_far": round(max(peak_kb, before) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/quickstart.yaml")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--machine_note", default="")
    parser.add_argument("--output", default="benchmarks/results/ddp_scaling.json")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):  # interleaved, so that drift hits both alike
            for processes in (1, args.processes):
                threads = max(1, args.threads // processes)
                row = train(processes, threads, args.recipe, args.max_steps, Path(work) / f"run-{processes}-{repeat}")
                rows.append({"repeat": repeat, **row})
                print(json.dumps(rows[-1]))
    single = sorted(row["molecules_per_second"] for row in rows if row["processes"] == 1)
    parallel = sorted(row["molecules_per_second"] for row in rows if row["processes"] == args.processes)
    result = {
        "recipe": args.recipe,
        "max_steps": args.max_steps,
        "runs": rows,
        "median_molecules_per_second": {"1": single[len(single) // 2], str(args.processes): parallel[len(parallel) // 2]},
        "ratio": round(parallel[len(parallel) // 2] / single[len(single) // 2], 3),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__, "note": args.machine_note},
        "command": "python " + " ".join(sys.argv),
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.processes} processes / 1: {result['ratio']}x molecules per second; wrote {args.output}")


if __name__ == "__main__":
    main()
