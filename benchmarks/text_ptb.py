"""Penn Treebank test-set table for trained text models: IW-NLL, PPL, KL, MI, AU and BLEU.

Evaluates each run folder on the PTB test set (metric definitions: ``seqvae/metrics/text.py``),
compares the best VAE's IW-NLL with the language-model baseline's NLL, and prints five
interpolations between test sentences (with the reconstruction of each endpoint, also for
training sentences, which should reconstruct). With ``--subset_size N`` every model is scored
again on the same N random test sentences with ``--subset_importance_samples`` K (e.g. 100): a
tighter bound than the full-test K, at a cost the full set would not allow on a CPU.

    seqvae train --config recipes/ptb_lm.yaml data_dir=../shared/data/ptb
    seqvae train --config recipes/ptb_vae.yaml data_dir=../shared/data/ptb
    python benchmarks/text_ptb.py --data_dir ../shared/data/ptb \
        --model "LM baseline=runs/ptb_lm" --model "VAE, cyclical + free bits=runs/ptb_vae"
    # -> benchmarks/results/text_ptb.json and text_ptb.md
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

import torch

import seqvae
from seqvae.data import load_texts
from seqvae.evaluation import text_metrics
from seqvae.metrics.text import importance_weighted_nll

COLUMNS = ("iw_nll", "perplexity", "kl", "mutual_information", "active_units", "reconstruction_bleu")


def parse_model(text: str) -> tuple[str, Path]:
    label, sep, folder = text.rpartition("=")
    if not sep:
        label, folder = Path(text).name, text
    return label, Path(folder)


def interpolations(vae, test: list[str], train: list[str], count: int = 5, steps: int = 6, seed: int = 0) -> dict:
    """``count`` slerp paths between random test sentences and ``count`` between training
    sentences (whose endpoints should decode back to the inputs), plus exact greedy
    reconstruction of 200 random training sentences, overall and by length."""
    generator = random.Random(seed)

    def readable(sentences):  # short enough to read on one line
        return [s for s in sentences if 8 <= len(s.split()) <= 20] or list(sentences)

    def paths(sentences):
        result = []
        for _ in range(count):
            start, end = generator.sample(readable(sentences), 2)
            table = vae.homotopy(start, end, steps=steps, method="slerp")
            result.append({"start": start, "end": end, "path": table["output"].tolist()})
        return result

    test_paths, train_paths = paths(test), paths(train)
    seen = generator.sample(train, min(200, len(train)))
    exact = [a == b for a, b in zip(seen, vae.reconstruct(seen))]
    lengths = [len(s.split()) for s in seen]
    by_length = {}
    for low, high in ((1, 10), (11, 20), (21, 80)):
        picked = [e for e, n in zip(exact, lengths) if low <= n <= high]
        by_length[f"{low}-{high} words"] = {"sentences": len(picked), "exact": round(sum(picked) / max(len(picked), 1), 3)}
    every = test_paths + train_paths
    return {
        "paths": test_paths,
        "training_paths": train_paths,
        "empty_outputs": sum(not text.strip() for p in every for text in p["path"]),
        "training_endpoints_reconstructed": sum((p["path"][0] == p["start"]) + (p["path"][-1] == p["end"]) for p in train_paths) / (2 * len(train_paths)),
        "training_sentences_reconstructed_exactly": round(sum(exact) / len(exact), 3),
        "training_reconstruction_by_length": by_length,
    }


def markdown_table(rows: list[dict]) -> str:
    subset = rows[0].get("subset") if rows else None
    titles = ["model", "IW-NLL", "PPL", "KL", "MI", "AU", "BLEU"]
    if subset:
        titles.append(f"IW-NLL, K={subset['num_importance_samples']}, {subset['num_sentences']} sentences")
    lines = ["| " + " | ".join(titles) + " |", "|---" * len(titles) + "|"]
    for row in rows:
        cells = []
        for key in COLUMNS:
            value = row["metrics"].get(key)
            if key == "active_units" and value is not None:
                cells.append(f"{value}/{row['metrics']['latent_dim']}")
            else:
                cells.append("-" if value is None else f"{value:.2f}")
        if subset:
            cells.append(f"{row['subset']['iw_nll']:.2f}" if row.get("subset") else "-")  # joined rows may lack it
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_table(groups: dict) -> str:
    """Mean ± sd over seeds of each setting."""
    def cell(entry, key):
        mean, sd = entry.get(f"{key}_mean"), entry.get(f"{key}_sd")
        return "-" if mean is None else f"{mean:.2f}" + ("" if sd is None else f" ± {sd:.2f}")

    lines = ["| setting | seeds | IW-NLL | PPL | KL |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {g['runs']} | {cell(g, 'iw_nll')} | {cell(g, 'perplexity')} | {cell(g, 'kl')} |" for name, g in groups.items()]
    return "\n".join(lines)


MIN_KL, MIN_ACTIVE_UNITS = 5.0, 8  # the test of a latent that is used


def compare(rows: list[dict]) -> dict | None:
    """The issue's test: the best VAE that keeps its latent (KL >= 5 nats, >= 8 active units; the
    best of all when none does) against the language model, on the full test set and the subset."""
    language_models = [r for r in rows if not r["metrics"].get("latent_dim")]
    vaes = [r for r in rows if r["metrics"].get("latent_dim")]
    if not (language_models and vaes):
        return None
    kl_kept = lambda r: r["metrics"]["kl"] >= MIN_KL  # noqa: E731
    units_kept = lambda r: r["metrics"]["active_units"] >= MIN_ACTIVE_UNITS  # noqa: E731
    keeping = [r for r in vaes if kl_kept(r) and units_kept(r)]
    best = min(keeping or vaes, key=lambda r: r["metrics"]["iw_nll"])
    baseline = language_models[0]
    verdict = {
        "best_vae": best["label"],
        "best_vae_iw_nll": best["metrics"]["iw_nll"],
        "language_model_nll": baseline["metrics"]["iw_nll"],
        "vae_no_worse_than_lm": best["metrics"]["iw_nll"] <= baseline["metrics"]["iw_nll"],
        "kl_at_least_5": kl_kept(best),
        "active_units_at_least_8": units_kept(best),
    }
    if "subset" in best and "subset" in baseline:
        verdict["subset_vae_minus_lm"] = round(best["subset"]["iw_nll"] - baseline["subset"]["iw_nll"], 3)
        verdict["subset_vae_no_worse_than_lm"] = verdict["subset_vae_minus_lm"] <= 0
    return verdict


SEED_SUFFIX = re.compile(r",? *seed *\d+$")


def seed_groups(rows: list[dict]) -> dict:
    """Runs of one setting with different seeds (labels ending in "seed N"): mean and sample sd of
    IW-NLL, perplexity and KL, and the settled comparison: the VAE's mean IW-NLL against the
    language model's mean + 1 sd, with KL >= 5."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(SEED_SUFFIX.sub("", row["label"]), []).append(row)
    summary = {}
    for name, members in groups.items():
        entry = {"runs": len(members), "latent_dim": members[0]["metrics"].get("latent_dim")}
        for key in ("iw_nll", "perplexity", "kl"):
            values = [m["metrics"][key] for m in members if m["metrics"].get(key) is not None]
            if values:
                entry[f"{key}_mean"] = round(statistics.fmean(values), 3)
                entry[f"{key}_sd"] = round(statistics.stdev(values), 3) if len(values) > 1 else None
        summary[name] = entry
    return summary


def settled_verdict(groups: dict) -> dict | None:
    """The issue's test over seeds: some VAE group's mean IW-NLL <= the LM group's mean + 1 sd, KL >= 5."""
    language_models = {n: g for n, g in groups.items() if not g["latent_dim"] and g["runs"] > 1}
    vaes = {n: g for n, g in groups.items() if g["latent_dim"] and g["runs"] > 1}
    if not (language_models and vaes):
        return None
    lm_name, lm = next(iter(language_models.items()))
    bound = lm["iw_nll_mean"] + (lm["iw_nll_sd"] or 0.0)
    return {
        name: {
            "vae_iw_nll": f"{g['iw_nll_mean']:.2f} ± {g['iw_nll_sd']:.2f}",
            "lm": lm_name,
            "lm_nll": f"{lm['iw_nll_mean']:.2f} ± {lm['iw_nll_sd']:.2f}",
            "vae_within_lm_plus_1_sd": g["iw_nll_mean"] <= bound,
            "kl_at_least_5": g["kl_mean"] >= MIN_KL,
        }
        for name, g in vaes.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="LABEL=RUN_FOLDER (repeat)")
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/ptb"))
    parser.add_argument("--num_importance_samples", type=int, default=500)
    parser.add_argument("--subset_size", type=int, default=0,
                        help="also score every model on this many random test sentences (0: skip)")
    parser.add_argument("--subset_importance_samples", type=int, default=100, help="K on that subset")
    parser.add_argument("--output", default="benchmarks/results/text_ptb.json")
    parser.add_argument("--include", action="append", default=[],
                        help="an earlier output of this script whose rows join this table (models scored in parallel processes)")
    args = parser.parse_args()
    if not (args.model or args.include):
        parser.error("give at least one --model (or --include an earlier output)")

    test = load_texts("ptb:test", data_dir=args.data_dir)[0]["text"]
    train = load_texts("ptb", data_dir=args.data_dir)[0]["text"]
    subset = random.Random(0).sample(test, min(args.subset_size, len(test))) if args.subset_size > 0 else []
    rows = [row for earlier in args.include for row in json.loads(Path(earlier).read_text())["rows"]]
    for label, folder in map(parse_model, args.model):
        vae = seqvae.load(folder, device="cuda" if torch.cuda.is_available() else "cpu")
        started = time.perf_counter()
        metrics = text_metrics(vae, test, num_importance_samples=args.num_importance_samples, progress=True)
        training = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
        row = {
            "label": label,
            "model": str(folder),
            "summary": repr(vae),
            "metrics": metrics,
            "train_seconds": training.get("train_seconds"),
            "evaluation_seconds": round(time.perf_counter() - started, 1),
        }
        if subset:
            tight = importance_weighted_nll(vae, subset, num_importance_samples=args.subset_importance_samples, progress=True)
            row["subset"] = {key: tight[key] for key in ("iw_nll", "perplexity", "num_sentences")}
            row["subset"]["num_importance_samples"] = args.subset_importance_samples  # an LM's own K is 1: its NLL is exact
        if vae.config.latent_dim:
            row["interpolations"] = interpolations(vae, test, train)
        rows.append(row)
        print(f"{label}: " + ", ".join(f"{k} {metrics.get(k)}" for k in COLUMNS))

    verdict = compare(rows)
    groups = seed_groups(rows)
    result = {
        "what": "PTB test set (3,761 sentences), metric definitions in seqvae/metrics/text.py",
        "command": " ".join(["python"] + sys.argv),
        "num_importance_samples": args.num_importance_samples,
        "subset": {"num_sentences": len(subset), "num_importance_samples": args.subset_importance_samples, "seed": 0} if subset else None,
        "machine": {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(), "python": platform.python_version()},
        "verdict": verdict,
        "seeds": groups,
        "settled": settled_verdict(groups),
        "rows": rows,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown_table(rows) + "\n\n" + seeds_table(groups)
    output.with_suffix(".md").write_text(table + "\n")
    print(table)
    for row in rows:
        found = row.get("interpolations", {})
        for path in found.get("paths", []) + found.get("training_paths", []):
            print(f"\n{row['label']}: {path['start']}  ->  {path['end']}")
            for step, text in enumerate(path["path"]):
                print(f"  {step}  {text}")
        if found:
            print(f"{row['label']}: empty outputs {found['empty_outputs']}, training endpoints reconstructed "
                  f"{found['training_endpoints_reconstructed']:.0%}, training sentences reconstructed exactly "
                  f"{found['training_sentences_reconstructed_exactly']:.0%} {found['training_reconstruction_by_length']}")
    print(f"wrote {output} and {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
