"""Do our MOSES metrics reproduce the "Train" row of the MOSES README? And how fast are they?

Draws 30,000 molecules from the MOSES train split (the size of MOSES's protocol), evaluates them
against test and test_scaffolds, and compares with the published row. Each seed is a fresh draw,
so the spread over seeds is the sampling noise the tolerances must cover. FCD and Scaf depend on
the number of molecules evaluated, so they are compared at the training split's size (see
SIZE_DEPENDENT below).

Timing, with ``--n_jobs`` worker processes:
* with the cache: the whole metric set of 30,000 samples against the 176k-molecule test set,
  reference statistics read from the cache (the issue's target: <= 5 minutes on 2 cores);
* without it: add the time to compute a 176k-molecule reference's statistics, measured when
  they were computed (stored with the cache entry; test_scaffolds is computed here when absent).

    python benchmarks/moses_agreement.py --data_dir ../shared/data/moses
    # -> benchmarks/results/moses_agreement.json
    python benchmarks/moses_agreement.py --data_dir ../shared/data/moses --timing_only
    # -> benchmarks/results/moses_speed.json (the timing alone, about 6 minutes)
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from collections import Counter

import numpy as np
import torch

from seqvae.chem import to_mol, without_rdkit_log
from seqvae.evaluation import read_molecules
from seqvae.metrics import moses
from seqvae.metrics.moses import DEFAULT_CACHE_DIR, moses_metrics, reference_statistics

# MOSES README (molecularsets/moses), metrics table, row "Train".
TRAIN_ROW = {
    "FCD/Test": 0.008, "FCD/TestSF": 0.4755, "SNN/Test": 0.6419, "SNN/TestSF": 0.5859,
    "Frag/Test": 1.0, "Frag/TestSF": 0.9986, "Scaf/Test": 0.9907, "Scaf/TestSF": 0.0,
    "IntDiv": 0.8567, "IntDiv2": 0.8508, "Filters": 1.0,
}
# Absolute tolerances: the README prints 3-4 decimals, and a 30k draw moves each metric by a
# seed-dependent amount (the spread over seeds, measured here, is below 0.001 for most).
TOLERANCE = {
    "FCD/Test": 0.015, "FCD/TestSF": 0.015, "SNN/Test": 0.003, "SNN/TestSF": 0.003,
    "Frag/Test": 0.001, "Frag/TestSF": 0.001, "Scaf/Test": 0.015, "Scaf/TestSF": 0.005,
    "IntDiv": 0.001, "IntDiv2": 0.001, "Filters": 0.001,
}
# FCD and Scaf depend on how many molecules are evaluated, not only on their distribution: a
# Frechet distance estimated from n molecules is biased upwards by about b/n (Chong & Forsyth
# 2020, "Effectively unbiased FID"), and a count-vector cosine misses rare scaffolds. A 30k draw
# gives FCD/Test 0.05 where the README prints 0.008 and Scaf/Test 0.945 where it prints 0.9907,
# while the published values are what the *whole* training split (1,584,663 molecules) gives
# (benchmarks/results/moses_agreement.json). So these are compared at the split's size:
# * FCD: fit FCD(n) = a + b/n on random subsets of each 30k draw, read it at n = len(train);
# * Scaf: counted over the whole training split.
# History (issue 4 note): fixed tolerances on the 30k values failed for FCD/Scaf; a "floor"
# (30k drawn from the reference, against itself) under-estimated the bias, because such a draw
# overlaps its reference, and missed FCD/TestSF by 0.0025. The size-aware comparison replaced it.
SIZE_DEPENDENT = ("FCD/Test", "FCD/TestSF", "Scaf/Test", "Scaf/TestSF")
SUBSET_SIZES = (5000, 7500, 10000, 15000, 20000, 30000)


def fcd_size_curve(
    activations: np.ndarray, statistics, sizes=SUBSET_SIZES, repeats: int = 3, seed: int = 0
) -> dict[int, float]:
    """Mean FCD against ``statistics`` of random subsets of ``activations``, per subset size."""
    generator = np.random.default_rng(seed)
    curve = {}
    for size in (s for s in sizes if s <= len(activations)):
        draws = 1 if size == len(activations) else repeats
        values = []
        for _ in range(draws):
            subset = activations[generator.choice(len(activations), size, replace=False)]
            mean, covariance = moses._gaussian(subset)
            values.append(moses.frechet_distance(statistics.fcd_mean, statistics.fcd_covariance, mean, covariance))
        curve[size] = float(np.mean(values))
    return curve


def at_size(curve: dict[int, float], size: int) -> dict[str, float]:
    """Least-squares fit of ``value = intercept + slope / n`` to ``curve``, read at ``n = size``."""
    inverse = np.array([1.0 / n for n in curve])
    slope, intercept = np.polyfit(inverse, np.array(list(curve.values())), 1)
    return {"value": float(intercept + slope / size), "intercept": float(intercept), "slope": float(slope)}


def _scaffold_counts(smiles: list[str]) -> Counter:
    with without_rdkit_log():
        return Counter(s for s in (moses.scaffold(to_mol(text)) for text in smiles) if s)


def scaffold_similarity(smiles, references: dict, n_jobs: int) -> dict[str, float]:
    """Scaf of ``smiles`` (here: the whole training split) against each reference's scaffolds."""
    counts = Counter()
    for part in moses._chunked_map(_scaffold_counts, smiles, n_jobs, True, "training-split scaffolds"):
        counts.update(part)  # in place: sum() would copy the growing counter once per chunk
    return {f"Scaf/{suffix}": moses.count_similarity(stats.scaffolds, counts) for suffix, stats in references.items()}


def size_adjusted(draws: dict, train: list[str], references: dict, n_jobs: int) -> dict:
    """FCD (extrapolated per draw) and Scaf (whole split) at the training split's size."""
    adjusted = {"train_size": len(train), "fcd_curves": {}, "FCD/Test": [], "FCD/TestSF": []}
    for seed, draw in draws.items():
        activations = moses.chemnet_activations(draw, n_jobs=n_jobs, progress=True)
        for suffix, stats in references.items():
            curve = fcd_size_curve(activations, stats, seed=seed)
            fit = at_size(curve, len(train))
            adjusted["fcd_curves"][f"FCD/{suffix} seed {seed}"] = {"curve": curve, **fit}
            adjusted[f"FCD/{suffix}"].append(fit["value"])
    for key, value in scaffold_similarity(train, references, n_jobs).items():
        adjusted[key] = [value]
    return adjusted


def agrees(key: str, values: list[float]) -> bool:
    return all(abs(value - TRAIN_ROW[key]) <= TOLERANCE[key] for value in values)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/moses"))
    parser.add_argument("--num_samples", type=int, default=30000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n_jobs", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/results/moses_agreement.json")
    parser.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="reference statistics cache")
    parser.add_argument(
        "--timing_only", action="store_true",
        help="only time the metric set (30k vs test, cache on) and write --timing_output; no agreement check",
    )
    parser.add_argument("--timing_output", default="benchmarks/results/moses_speed.json")
    args = parser.parse_args()

    train = read_molecules("moses:train", "train", args.data_dir)
    test = read_molecules("moses:test", "test", args.data_dir)
    test_scaffolds = read_molecules("moses:test_scaffolds", "test_scaffolds", args.data_dir)
    draws = {seed: random.Random(seed).sample(train, args.num_samples) for seed in args.seeds}
    options = {"n_jobs": args.n_jobs, "progress": True}

    timing = {}
    references = {}
    for name, smiles in (("test", test), ("test_scaffolds", test_scaffolds)):
        references[name], seconds = timed(reference_statistics, smiles, name=name, cache_dir=args.cache_dir, **options)
        timing[f"{name}_statistics_seconds"] = references[name].source.get("seconds")  # when first computed
        timing[f"{name}_statistics_load_seconds"] = seconds
    first = draws[args.seeds[0]]
    _, timing["test_only_with_cache_seconds"] = timed(moses_metrics, first, references["test"], **options)
    # Without the cache = computing a 176k reference's statistics + the evaluation above. The test
    # set's own time is known when its cache entry was made by this version; else test_scaffolds'.
    reference_seconds = timing["test_statistics_seconds"] or timing["test_scaffolds_statistics_seconds"]
    if reference_seconds is not None:
        timing["test_only_without_cache_seconds"] = round(timing["test_only_with_cache_seconds"] + reference_seconds, 1)
    if args.timing_only:
        machine = {"cpu_threads": torch.get_num_threads(), "n_jobs": args.n_jobs, "python": platform.python_version()}
        record = {"command": " ".join(["python"] + sys.argv), "machine": machine, "timing": timing}
        Path(args.timing_output).write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(timing))
        print(f"wrote {args.timing_output}")
        return
    runs = {}
    for seed in args.seeds:
        runs[seed], seconds = timed(
            moses_metrics, draws[seed], references["test"], references["test_scaffolds"], **options
        )
        timing.setdefault("with_scaffolds_with_cache_seconds", []).append(seconds)

    references = {"Test": references["test"], "TestSF": references["test_scaffolds"]}
    adjusted = size_adjusted(draws, train, references, args.n_jobs)
    comparison = {}
    for key, published in TRAIN_ROW.items():
        values = [runs[seed][key] for seed in args.seeds]
        compared = adjusted[key] if key in SIZE_DEPENDENT else values
        comparison[key] = {
            "published": published,
            "ours_30k_per_seed": [round(v, 5) for v in values],
            "ours_30k_median": round(statistics.median(values), 5),
            "spread_over_seeds": round(max(values) - min(values), 5),
            "compared_at": f"train size {len(train)}" if key in SIZE_DEPENDENT else f"{args.num_samples} draw",
            "compared_values": [round(v, 5) for v in compared],
            "abs_difference": round(abs(statistics.median(compared) - published), 5),
            "tolerance": TOLERANCE[key],
            "agrees": agrees(key, compared),
        }
    result = {
        "what": f"{args.num_samples} molecules drawn from MOSES train vs the README Train row",
        "source": "MOSES README (github.com/molecularsets/moses), metrics table, row Train",
        "command": " ".join(["python"] + sys.argv),
        "machine": {"cpu_threads": torch.get_num_threads(), "n_jobs": args.n_jobs, "python": platform.python_version()},
        "all_agree": all(entry["agrees"] for entry in comparison.values()),
        "size_adjustment": adjusted,
        "comparison": comparison,
        "other_metrics_seed0": {k: v for k, v in runs[args.seeds[0]].items() if k not in TRAIN_ROW},
        "timing": timing,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, comparison))
    for key, entry in comparison.items():
        print(f"{key:<{width}}  published {entry['published']:<7} ours {entry['compared_values']} "
              f"({entry['compared_at']})  "
              f"{'ok' if entry['agrees'] else 'DIFFERS'} (tol {entry['tolerance']})")
    print(json.dumps(timing))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
