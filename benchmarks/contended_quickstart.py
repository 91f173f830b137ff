"""The quickstart recipe trained while another process keeps one core busy: does the user still
get the recipe's own figures, and how long does it take?

    python benchmarks/contended_quickstart.py                    # ~25 minutes on 2 cores
    python benchmarks/contended_quickstart.py --contended_only   # ~12 minutes
    # -> benchmarks/results/contended_quickstart.json

The recipe is trained twice, as a user would run it (`seqvae train --config
recipes/quickstart.yaml`, seqvae's default thread policy): on the idle machine, then while a
plain Python busy loop (the competitor of benchmarks/throughput.py) keeps one core busy for the
whole training and evaluation. The JSON holds each run's metrics.json figures, its wall time,
and the thread changes that seqvae logged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import BusyCore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("validity", "uniqueness", "novelty", "reconstruction_accuracy", "kl_per_sequence", "active_units", "train_seconds")


def train(output_dir: Path, busy: bool) -> dict:
    """One quickstart training (with a busy core beside it or not): its figures and wall time."""
    command = [sys.executable, "-m", "seqvae.cli", "train", "--config", str(ROOT / "recipes/quickstart.yaml"),
               "--output_dir", str(output_dir)]
    started = time.perf_counter()
    with BusyCore() if busy else contextlib.nullcontext():
        done = subprocess.run(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"training failed (exit {done.returncode})")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    return {
        "wall_seconds": round(seconds, 1),
        **{key: metrics.get(key) for key in FIGURES},
        "thread_changes": [line.split(": ", 1)[-1] for line in done.stderr.splitlines() if "torch uses" in line],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/contended_quickstart.json"))
    parser.add_argument("--contended_only", action="store_true", help="skip the idle run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqvae-contended-"))
    report = {"command": "python benchmarks/" + Path(__file__).name + " " + " ".join(sys.argv[1:]),
              "competitor": "a Python busy loop on one of the 2 cores, for the whole run"}
    if not args.contended_only:
        report["idle"] = train(work / "idle", busy=False)
    report["one_core_busy"] = train(work / "busy", busy=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
