"""How well a conditional VAE hits property targets; writes benchmarks/results/conditional.json.

    python benchmarks/conditional.py --model runs/zinc250k_cvae [--num_samples 1000] [--rerank 4]

For each target of the grid (logP 0..5 step 1; QED 0.5, 0.7, 0.9; SAS 2, 3, 4; and logP 6 and 7,
which lie beyond the bulk of ZINC250k) it samples ``--num_samples`` molecules conditioned on that
one property and reports validity, uniqueness, novelty against the run's training split, MAD
(mean absolute deviation of the RDKit-measured property from the target, valid molecules) and
hit rate within tolerance (logP +-0.5, QED +-0.1, SAS +-0.5; invalid molecules count as
misses). Then:

* ``spearman``: rank correlation between target and measured value over the in-distribution
  grid, per molecule and between each target and its measured mean (with and without the two
  out-of-distribution logP targets);
* ``unconditional``: the same model sampled without a condition, scored against every target,
  so the effect of conditioning is visible;
* ``reranked``: each target again, drawing ``--rerank`` times as many molecules and keeping the
  best by the property head (RDKit only parses them: valid candidates rank first, so validity
  is ~100% here); ``reranked_logP`` does the same for logP 0..5 with ``--rerank_logp``;
* ``other_seeds``: the logP targets 0..5 of plain sampling again with ``--repeats`` other seeds,
  so the headline MAD comes with its sampling spread;
* ``guided``: the logP targets 0..5 again with classifier-free guidance (``--guidance_scale``);
* ``joint``: two multi-property conditions (``logP=2.5, qed=0.8`` and ``logP=2, SAS=3``);
* ``property_head``: correlation of the head's predictions with RDKit on held-out molecules;
* ``latent_optimization``: from ``--optimization_molecules`` held-out molecules, the share whose
  logP improves by >= 1 while staying >= 0.4 Tanimoto-similar (Morgan r=2) to the start.

A figure of measured against target values is written next to the JSON when matplotlib is
installed.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import seqvae
from seqvae.chem import PROPERTIES, compute_properties
from seqvae.metrics.conditional import TOLERANCES, control_metrics, spearman
from seqvae.metrics.molecules import canonical_set, sample_quality
from seqvae.recipe import load_recipe
from seqvae.optimization import best_improvement
from seqvae.data import run_split

ROOT = Path(__file__).resolve().parents[1]
GRID = (
    [("logP", float(t), False) for t in range(6)]
    + [("qed", t, False) for t in (0.5, 0.7, 0.9)]
    + [("SAS", t, False) for t in (2.0, 3.0, 4.0)]
    + [("logP", t, True) for t in (6.0, 7.0)]
)
JOINT = [{"logP": 2.5, "qed": 0.8}, {"logP": 2.0, "SAS": 3.0}]


def measure(frame: pd.DataFrame, training: set[str], condition: dict[str, float]) -> dict:
    result = {key: round(value, 4) for key, value in sample_quality(frame["smiles"].tolist(), training).items()}
    for prop, target in condition.items():
        result[prop] = control_metrics(frame, prop, target)
    return result


def grid_runs(vae, training, args, rerank: int, guidance_scale: float = 0.0, only: str | None = None):
    results, frames = [], {}
    for index, (prop, target, out_of_distribution) in enumerate(GRID):
        if prop not in vae.property_names or (only and (prop != only or out_of_distribution)):
            continue
        started = time.perf_counter()
        frame = vae.sample_frame(
            args.num_samples, seed=args.seed + index, condition={prop: target},
            temperature=args.temperature, rerank=rerank, guidance_scale=guidance_scale,
        )
        entry = {"property": prop, "target": target, "out_of_distribution": out_of_distribution}
        entry.update(measure(frame, training, {prop: target}))
        entry["seconds"] = round(time.perf_counter() - started, 1)
        results.append(entry)
        frames[(prop, target)] = frame
        print(f"  {prop}={target:g} (rerank {rerank}, guidance {guidance_scale:g}): valid {entry['validity']:.3f}  MAD {entry[prop]['mad']:.3f}  "
              f"hit {entry[prop]['hit_rate']:.3f}  ({entry['seconds']} s)", flush=True)
    return results, frames


def other_seeds(vae, training, args) -> dict:
    """The headline logP MAD (targets 0..5, plain sampling) with ``args.repeats`` other seeds."""
    seeds, mads = [], []
    if args.repeats > 0:
        print(f"logP targets 0..5 with {args.repeats} other seeds:", flush=True)
    for repeat in range(1, args.repeats + 1):
        reseeded = argparse.Namespace(**{**vars(args), "seed": args.seed + 100 * repeat})
        runs, _ = grid_runs(vae, training, reseeded, rerank=1, only="logP")
        seeds.append(reseeded.seed)
        mads.append(logp_mad_mean(runs))
    return {"seeds": seeds, "logP_mad_mean_over_targets_0_to_5": mads}


def correlations(frames: dict[tuple, pd.DataFrame]) -> dict:
    summary = {}
    for prop in TOLERANCES:
        for label, keep_ood in (("in_distribution", False), ("with_out_of_distribution", True)):
            points = [(t, f) for (p, t), f in frames.items() if p == prop
                      and (keep_ood or not any(g == (p, t, True) for g in GRID))]
            if len(points) < 2 or (label == "with_out_of_distribution" and prop != "logP"):
                continue
            targets, measured, means = [], [], []
            for target, frame in points:
                values = frame.loc[frame["valid"], prop].tolist()
                targets += [target] * len(values)
                measured += values
                means.append(float(np.mean(values)) if values else float("nan"))
            summary[f"{prop}/{label}"] = {
                "targets": [t for t, _ in points],
                "measured_means": [round(m, 4) for m in means],
                "spearman_per_molecule": spearman(targets, measured),
                "spearman_of_means": spearman([t for t, _ in points], means),
            }
    return summary


def head_correlation(vae, smiles: list[str]) -> dict:
    predicted = vae.predict_properties(smiles)
    built_in = [p for p in vae.property_names if p in PROPERTIES]
    measured = compute_properties(smiles, built_in)
    result = {"molecules": len(smiles)}
    for prop in built_in:
        pairs = pd.DataFrame({"p": predicted[prop], "m": measured[prop]})
        result[prop] = {
            "pearson": round(float(pairs["p"].corr(pairs["m"])), 4),
            "spearman": spearman(pairs["p"], pairs["m"]),
            "mae": round(float((pairs["p"] - pairs["m"]).abs().mean()), 4),
        }
    return result


def latent_optimization(vae, smiles: list[str], args) -> dict:
    started = time.perf_counter()
    path = vae.optimize(smiles, "logP", steps=args.optimization_steps, step_size=args.step_size,
                        prior_weight=args.prior_weight, decode_every=5)
    best = best_improvement(path, "logP", min_similarity=0.4)
    success = best["improvement"] >= 1.0
    return {
        "start_molecules": len(smiles),
        "objective": "maximise logP (property head), then measured by RDKit",
        "steps": args.optimization_steps,
        "step_size": args.step_size,
        "prior_weight": args.prior_weight,
        "success_rule": "logP improves by >= 1.0 with Tanimoto similarity >= 0.4 to the start",
        "success_fraction": round(float(success.mean()), 4),
        "mean_best_improvement": round(float(best["improvement"].mean()), 4),
        "median_best_improvement": round(float(best["improvement"].median()), 4),
        "valid_fraction_along_paths": round(float(path["valid"].mean()), 4),
        "examples": best[success].head(5).to_dict(orient="records"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def mean_of(entries: list[dict], pick) -> float:
    return round(float(np.mean([pick(e) for e in entries])), 4)


def logp_mad_mean(grid: list[dict]) -> float:
    """The headline figure: logP MAD averaged over the in-distribution logP targets (0..5)."""
    return mean_of([e for e in grid if e["property"] == "logP" and not e["out_of_distribution"]],
                   lambda e: e["logP"]["mad"])


def headline(grid: list[dict], spearmans: dict) -> dict:
    logp = [e for e in grid if e["property"] == "logP" and not e["out_of_distribution"]]
    summary = {}
    if logp:
        summary = {
            "logP_mad_mean_over_targets_0_to_5": logp_mad_mean(grid),
            "logP_validity_mean_over_targets_0_to_5": mean_of(logp, lambda e: e["validity"]),
            "logP_spearman_of_means_0_to_5": spearmans["logP/in_distribution"]["spearman_of_means"],
            "logP_spearman_per_molecule_0_to_5": spearmans["logP/in_distribution"]["spearman_per_molecule"],
        }
    for prop in ("qed", "SAS"):
        entries = [e for e in grid if e["property"] == prop]
        if entries:
            summary[f"{prop}_mad_mean_over_targets"] = mean_of(entries, lambda e: e[prop]["mad"])
    if grid:
        summary["validity_mean_over_grid"] = mean_of(grid, lambda e: e["validity"])
    return summary


def plot(frames: dict[tuple, pd.DataFrame], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [8, 3, 3]})
    for axis, prop in zip(axes, ("logP", "qed", "SAS")):
        points = sorted(((t, f) for (p, t), f in frames.items() if p == prop), key=lambda point: point[0])
        if not points:
            continue
        data = [f.loc[f["valid"], prop].dropna().to_numpy() for _, f in points]
        targets = [t for t, _ in points]
        axis.violinplot(data, positions=range(len(points)), showmedians=True)
        axis.scatter(range(len(points)), targets, marker="_", s=400, color="red", label="target")
        axis.set_xticks(range(len(points)), [f"{t:g}" for t in targets])
        axis.set_xlabel(f"target {prop}")
        axis.set_ylabel(f"measured {prop} (RDKit)")
    axes[0].legend(loc="upper left")
    figure.suptitle("Conditional generation: measured property of valid samples vs target")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def _json_safe(value):
    """NaN (e.g. MAD with no valid molecule) becomes null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return None if value != value else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run folder of a conditional model")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--rerank", type=int, default=4, help="oversampling factor of the re-ranked runs (1: skip)")
    parser.add_argument("--rerank_logp", type=int, default=16,
                        help="a larger oversampling factor, for the logP targets 0..5 only (1: skip)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--guidance_scale", type=float, default=1.0,
                        help="classifier-free guidance of the extra logP runs (0: skip them)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="sample the logP targets 0..5 again with this many other seeds (0: skip)")
    parser.add_argument("--optimization_molecules", type=int, default=100)
    parser.add_argument("--optimization_steps", type=int, default=100)
    parser.add_argument("--step_size", type=float, default=0.05)
    parser.add_argument("--prior_weight", type=float, default=0.1)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "conditional.json"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    vae = seqvae.load(args.model, device="cpu" if not torch.cuda.is_available() else None)
    if "logP" not in vae.property_names:
        parser.error(f"{args.model} is not conditioned on logP (its properties: {vae.property_names}); "
                     "the grid and latent optimisation of this benchmark need logP")
    train_rows, validation_rows = run_split(args.model)
    canonical = load_recipe(Path(args.model) / "recipe.yaml")[0].canonicalize
    training = set(train_rows["smiles"]) if canonical else canonical_set(train_rows["smiles"])
    held_out = validation_rows.shuffle(seed=args.seed)["smiles"]
    print(f"{vae}\ntraining molecules: {len(training):,}; held-out: {len(held_out):,}", flush=True)

    print("conditioned on one property:", flush=True)
    grid, frames = grid_runs(vae, training, args, rerank=1)
    spearmans = correlations(frames)
    unconditional_frame = vae.sample_frame(args.num_samples, seed=args.seed + 1000, temperature=args.temperature)
    unconditional = measure(unconditional_frame, training, {})
    unconditional["scored_against_each_target"] = [
        {"property": p, "target": t, **control_metrics(unconditional_frame, p, t)}
        for p, t, _ in GRID if p in vae.property_names
    ]
    repeated = other_seeds(vae, training, args)
    reranked = []
    if args.rerank > 1:
        print(f"re-ranked by the property head ({args.rerank}x candidates):", flush=True)
        reranked, _ = grid_runs(vae, training, args, rerank=args.rerank)
    reranked_more = []
    if args.rerank_logp > 1:
        print(f"re-ranked, {args.rerank_logp}x candidates (logP targets 0..5):", flush=True)
        reranked_more, _ = grid_runs(vae, training, args, rerank=args.rerank_logp, only="logP")
    guided = []
    if args.guidance_scale > 0:
        print(f"classifier-free guidance {args.guidance_scale:g} (logP targets 0..5):", flush=True)
        guided, _ = grid_runs(vae, training, args, rerank=1, guidance_scale=args.guidance_scale, only="logP")
    joint = []
    for index, condition in enumerate(JOINT):
        if not set(condition) <= set(vae.property_names):
            continue
        frame = vae.sample_frame(args.num_samples, seed=args.seed + 2000 + index, condition=condition,
                                 temperature=args.temperature)
        joint.append({"condition": condition, **measure(frame, training, condition)})

    result = {
        "benchmark": "conditional generation (issue 3)",
        "model": str(args.model),
        "model_summary": repr(vae),
        "properties": vae.property_names,
        "training_ranges": {p: [vae.config.property_min[i], vae.config.property_max[i]]
                            for i, p in enumerate(vae.property_names)},
        "num_samples_per_target": args.num_samples,
        "temperature": args.temperature,
        "seed": args.seed,
        "headline": headline(grid, spearmans),
        "grid": grid,
        "spearman": spearmans,
        "other_seeds": repeated,
        "unconditional": unconditional,
        "reranked": {"oversampling": args.rerank, "grid": reranked},
        "reranked_logP": {"oversampling": args.rerank_logp, "grid": reranked_more},
        "guided": {"guidance_scale": args.guidance_scale, "grid": guided},
        "joint": joint,
        "property_head": head_correlation(vae, held_out[:2000]),
        "latent_optimization": latent_optimization(vae, held_out[: args.optimization_molecules], args),
        "environment": {
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(vae.model.device), "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(_json_safe(result), indent=1))
    if plot(frames, output.with_suffix(".png")):
        print(f"figure: {output.with_suffix('.png')}")
    print(json.dumps(result["headline"], indent=1))
    print(f"latent optimisation: {result['latent_optimization']['success_fraction']:.1%} of "
          f"{result['latent_optimization']['start_molecules']} improved logP by >= 1 at similarity >= 0.4")
    print(f"wrote {output} ({result['total_seconds']} s)")


if __name__ == "__main__":
    main()
