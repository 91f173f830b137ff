"""How long ``import seqvae`` takes, and what it loads: ``python -X importtime`` in fresh processes.

    python benchmarks/import_time.py                         # this checkout
    python benchmarks/import_time.py --compare OTHER_CHECKOUT  # and another one, interleaved

Reports the median over ``--repeats`` fresh interpreters of the summed self-time of every module
imported, split into the model stack (torch, transformers, and whatever they import: any use of
the model pays it) and the rest, the largest owners of the rest, and which heavy stacks (MOSES
metrics, plotting, datasets...) were loaded at all. Each checkout is imported from its own source
folder (``PYTHONPATH``) with the same interpreter. Writes JSON (``--output``).

``seqvae``'s own self-time includes transformers' lazy scan of its model files, which runs
inside the first ``from transformers import AutoConfig`` and which ``-X importtime`` charges to
the importing module, not to transformers.
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
    """Self-times (microseconds) by owner, from one fresh ``import seqvae``.

    A module's owner is ``MODEL_STACK`` when it, or any module that imported it, belongs to torch or
    transformers (numpy, sympy, tokenizers... come with the model whatever seqvae does); otherwise
    its own top-level package.
    """
    environment = {**os.environ, "PYTHONPATH": str(source)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import seqvae; print(seqvae.__file__)"],
        capture_output=True, text=True, env=environment, check=True, cwd=source,
    )
    loaded_from = result.stdout.strip()
    if not loaded_from.startswith(str(source.resolve())):
        raise SystemExit(f"import seqvae loaded {loaded_from}, not the checkout in {source}")
    by_owner: dict[str, int] = {}
    importers: list[tuple[int, str]] = []  # (depth, top-level package) of the enclosing imports
    # -X importtime prints a module after everything it imported, one level deeper: read bottom up.
    for line in reversed(result.stderr.splitlines()):
        match = LINE.match(line)
        if not match:
            continue
        depth, top = len(match.group(3)), match.group(4).split(".")[0]
        while importers and importers[-1][0] >= depth:
            importers.pop()
        in_model_stack = top in MODEL_STACK or any(package in MODEL_STACK for _, package in importers)
        owner = "MODEL_STACK" if in_model_stack else top
        by_owner[owner] = by_owner.get(owner, 0) + int(match.group(1))
        importers.append((depth, top))
    return by_owner


def largest_outside(runs: list[dict], count: int = 8) -> dict:
    """The owners outside the model stack that cost most (median ms), largest first."""
    owners = {owner for run in runs for owner in run if owner != "MODEL_STACK"}
    medians = {owner: statistics.median(run.get(owner, 0) for run in runs) / 1000 for owner in owners}
    return {owner: round(ms, 1) for owner, ms in sorted(medians.items(), key=lambda item: -item[1])[:count]}


def summary(runs: list[dict]) -> dict:
    def median_ms(select) -> float:
        return round(statistics.median(sum(t for p, t in run.items() if select(p)) for run in runs) / 1000, 1)

    return {
        "total_self_ms": median_ms(lambda p: True),
        "torch_transformers_ms": median_ms(lambda p: p == "MODEL_STACK"),
        "outside_torch_transformers_ms": median_ms(lambda p: p != "MODEL_STACK"),
        "seqvae_own_ms": median_ms(lambda p: p == "seqvae"),
        "largest_outside_ms": largest_outside(runs),
        "loaded": sorted(p for p in WATCHED if all(p in run for run in runs)),
    }


def commit(source: Path) -> str | None:
    """The checkout's commit, with ``+changes`` when its tracked files differ from it."""
    def git(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(source), *arguments], capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return None
    return head.stdout.strip() + ("+changes" if git("diff", "--quiet", "HEAD").returncode else "")


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
    report = {name: {"source": str(sources[name]), "commit": commit(sources[name]), **summary(runs)}
              for name, runs in samples.items()}
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
