"""How long ``import seqvae`` takes, and what it loads: ``python -X importtime`` in fresh processes.

    python benchmarks/import_time.py                         # this checkout
    python benchmarks/import_time.py --compare OTHER_CHECKOUT  # and another one, interleaved

Reports the median over ``--repeats`` fresh interpreters of the summed self-time of every module
imported, split into torch + transformers (the model's own stack, imported by any use) and the
rest, plus which heavy stacks (MOSES metrics, plotting, datasets...) were loaded at all. Each
checkout is imported from its own source folder (``PYTHONPATH``) with the same interpreter.
Writes JSON (``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

MODEL_STACK = ("torch", "transformers")
WATCHED = ("numba", "fcd_torch", "matplotlib", "datasets", "pyarrow", "pandas", "rdkit", "scipy", "sacrebleu", "selfies")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def one_import(source: Path) -> dict:
    """Self-times (microseconds) by top-level package, from one fresh ``import seqvae``."""
    environment = {**os.environ, "PYTHONPATH": str(source)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import seqvae; print(seqvae.__file__)"],
        capture_output=True, text=True, env=environment, check=True, cwd=source,
    )
    loaded_from = result.stdout.strip()
    if not loaded_from.startswith(str(source.resolve())):
        raise SystemExit(f"import seqvae loaded {loaded_from}, not the checkout in {source}")
    by_package: dict[str, int] = {}
    for line in result.stderr.splitlines():
        match = LINE.match(line)
        if match:
            top = match.group(4).split(".")[0]
            by_package[top] = by_package.get(top, 0) + int(match.group(1))
    return by_package


def summary(runs: list[dict]) -> dict:
    def median_ms(select) -> float:
        return round(statistics.median(sum(t for p, t in run.items() if select(p)) for run in runs) / 1000, 1)

    return {
        "total_self_ms": median_ms(lambda p: True),
        "torch_transformers_ms": median_ms(lambda p: p in MODEL_STACK),
        "outside_torch_transformers_ms": median_ms(lambda p: p not in MODEL_STACK),
        "seqvae_own_ms": median_ms(lambda p: p == "seqvae"),
        "loaded": sorted(p for p in WATCHED if all(p in run for run in runs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[1]), help="checkout to import")
    parser.add_argument("--compare", help="another checkout, measured in the same run (e.g. the previous commit)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default="benchmarks/results/import_time.json")
    args = parser.parse_args()
    sources = {"this": Path(args.source)} | ({"compare": Path(args.compare)} if args.compare else {})
    samples = {name: [] for name in sources}
    for _ in range(args.repeats):  # interleaved, so that a busy moment hits both alike
        for name, source in sources.items():
            samples[name].append(one_import(source))
    report = {name: {"source": str(sources[name]), **summary(runs)} for name, runs in samples.items()}
    if args.compare:
        report["ratio_outside_torch_transformers"] = round(
            report["compare"]["outside_torch_transformers_ms"] / report["this"]["outside_torch_transformers_ms"], 2
        )
    report["repeats"] = args.repeats
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
