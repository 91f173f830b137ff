"""How well a conditional text VAE follows the attributes asked for, on Penn Treebank.

For a model trained with ``recipes/ptb_cvae.yaml`` (attributes ``money``: the sentence contains
``$``, and ``length``: its number of words) this measures, from prior samples:

* control rate: the share of ``--num_samples`` sentences generated with ``money=yes`` (and with
  ``money=no``) that contain the token ``$``;
* length error: for each target length (8, 16, 24 words), the mean absolute difference between
  the words of each generated sentence and the target;
* the same for the model with no condition (the baseline the control is compared with);
* each at the classifier-free guidance scales asked for (default 0, plain conditional sampling,
  and 0.5; see ``seqvae.generation.decode_latents``);
* IW-NLL, KL, MI and AU of the same model on PTB test (definitions: ``seqvae/metrics/text.py``),
  so that control is not bought with a collapsed latent. These are measured with no condition
  given (the model's ``log p(x)`` mode, which training keeps by hiding conditions at random).

    seqvae train --config recipes/ptb_cvae.yaml data_dir=../shared/data/ptb
    python benchmarks/text_control.py --model runs/ptb_cvae --data_dir ../shared/data/ptb
    # -> benchmarks/results/text_control.json, .md and .png (achieved against target length,
    #    at the last guidance scale)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import seqvae
from seqvae.data import load_texts
from seqvae.evaluation import text_metrics
from seqvae.viz import target_plot

TARGETS = {"money_yes_rate_at_least": 0.9, "money_no_rate_at_most": 0.1, "length_mae_at_most": 3.0, "kl_at_least": 3.0}


def money_rate(sentences: list[str]) -> float:
    """Share of sentences with ``$`` among their words."""
    return sum("$" in sentence.split() for sentence in sentences) / len(sentences)


def length_error(sentences: list[str], target: int) -> float:
    """Mean absolute difference between each sentence's number of words and ``target``."""
    return sum(abs(len(sentence.split()) - target) for sentence in sentences) / len(sentences)


def generate(vae, condition: dict | None, guidance_scale: float, args) -> list[str]:
    return vae.sample(
        args.num_samples,
        seed=args.seed,
        condition=condition,
        temperature=args.temperature,
        guidance_scale=guidance_scale if condition else 0.0,
        batch_size=500,
    )


def control(vae, guidance_scale: float, args) -> tuple[dict, list]:
    """Samples and the control figures for each condition (and none), and the length-conditioned
    samples as ``sample_frame`` tables (for the figure)."""
    rows, frames = {}, []
    conditions = [("none", None), ("money=yes", {"money": "yes"}), ("money=no", {"money": "no"})]
    conditions += [(f"length={n}", {"length": n}) for n in args.lengths]
    for label, condition in conditions:
        started = time.perf_counter()
        sentences = generate(vae, condition, guidance_scale, args)
        words = [len(s.split()) for s in sentences]
        rows[label] = {
            "condition": condition,
            "money_rate": round(money_rate(sentences), 4),
            "mean_words": round(sum(words) / len(words), 2),
            "empty": sum(not s.strip() for s in sentences),
            "distinct": len(set(sentences)),
            "seconds": round(time.perf_counter() - started, 2),
            "examples": sentences[:5],
        }
        if condition and "length" in condition:
            rows[label]["length_mae"] = round(length_error(sentences, condition["length"]), 3)
            frames.append(pd.DataFrame({"text": sentences, "length": words, "length_target": condition["length"]}))
        for target in args.lengths:  # the unconditioned baseline against each target length
            if condition is None:
                rows[label][f"length_mae_vs_{target}"] = round(length_error(sentences, target), 3)
    return rows, frames


def verdict(rows: dict, metrics: dict, lengths: list[int]) -> dict:
    worst_length = max(rows[f"length={n}"]["length_mae"] for n in lengths)
    return {
        "money_yes_rate": rows["money=yes"]["money_rate"],
        "money_no_rate": rows["money=no"]["money_rate"],
        "worst_length_mae": worst_length,
        "kl": metrics["kl"],
        "money_yes_met": rows["money=yes"]["money_rate"] >= TARGETS["money_yes_rate_at_least"],
        "money_no_met": rows["money=no"]["money_rate"] <= TARGETS["money_no_rate_at_most"],
        "length_met": worst_length <= TARGETS["length_mae_at_most"],
        "kl_met": metrics["kl"] >= TARGETS["kl_at_least"],
    }


def markdown(by_scale: dict, metrics: dict) -> str:
    lines = ["| condition | guidance | sentences with $ | mean words | length MAE | distinct |", "|---|---|---|---|---|---|"]
    first_scale = next(iter(by_scale))
    for scale, (rows, _) in by_scale.items():
        for label, row in rows.items():
            if label == "none" and scale != first_scale:
                continue  # no condition: guidance does not apply, the same samples
            mae = row.get("length_mae")
            lines.append(
                f"| {label} | {'-' if label == 'none' else f'{scale:g}'} | {row['money_rate']:.1%} | {row['mean_words']:.1f} | "
                f"{'-' if mae is None else f'{mae:.2f}'} | {row['distinct']} |"
            )
    lines += [
        "",
        "| PTB test (no condition given) | IW-NLL | PPL | KL | MI | AU |",
        "|---|---|---|---|---|---|",
        f"| | {metrics['iw_nll']:.2f} | {metrics['perplexity']:.1f} | {metrics['kl']:.2f} | "
        f"{metrics['mutual_information']:.2f} | {metrics['active_units']}/{metrics['latent_dim']} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder of a model trained with recipes/ptb_cvae.yaml")
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/ptb"))
    parser.add_argument("--test", default="ptb:test", help="test sentences for IW-NLL / KL / AU")
    parser.add_argument("--num_samples", type=int, default=500)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 24])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--guidance_scales", type=float, nargs="+", default=[0.0, 0.5],
        help="classifier-free guidance scales to measure (0: plain conditional sampling)",
    )
    parser.add_argument("--num_importance_samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/text_control.json")
    args = parser.parse_args(argv)

    vae = seqvae.load(args.model, device="cuda" if torch.cuda.is_available() else "cpu")
    missing = {"money", "length"} - set(vae.property_names)
    if missing:
        raise SystemExit(f"{args.model} is not conditioned on {', '.join(sorted(missing))}: train it with recipes/ptb_cvae.yaml")
    started = time.perf_counter()
    by_scale = {scale: control(vae, scale, args) for scale in args.guidance_scales}
    control_seconds = time.perf_counter() - started
    test = load_texts(args.test, data_dir=args.data_dir)[0]["text"]
    metrics = text_metrics(vae, test, num_importance_samples=args.num_importance_samples, progress=True)
    metrics.pop("likelihood")
    training = json.loads((Path(args.model) / "metrics.json").read_text()) if (Path(args.model) / "metrics.json").is_file() else {}
    result = {
        "what": "control of money ($) and length (words) by a conditional VAE on PTB, from prior samples",
        "command": " ".join(["python", *(sys.argv if argv is None else ["benchmarks/text_control.py", *argv])]),
        "model": str(args.model),
        "summary": repr(vae),
        "train_seconds": training.get("train_seconds"),
        "sampling": {"num_samples": args.num_samples, "temperature": args.temperature, "seed": args.seed},
        "targets": TARGETS,
        "guidance": {
            str(scale): {"verdict": verdict(rows, metrics, args.lengths), "conditions": rows}
            for scale, (rows, _) in by_scale.items()
        },
        "test_metrics": {"sentences": len(test), "num_importance_samples": args.num_importance_samples, **metrics},
        "control_seconds": round(control_seconds, 1),
        "machine": {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(), "python": platform.python_version()},
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(by_scale, metrics)
    output.with_suffix(".md").write_text(table + "\n")
    target_plot(by_scale[args.guidance_scales[-1]][1], "length").save(output.with_suffix(".png"))
    print(table)
    for scale, (rows, _) in by_scale.items():
        for label, row in rows.items():
            print(f"\n{label} (guidance {scale:g}):")
            for sentence in row["examples"]:
                print(f"  {sentence}")
    for scale, found in result["guidance"].items():
        print(f"\nverdict with guidance {scale}: {json.dumps(found['verdict'])}")
    print(f"wrote {output}, {output.with_suffix('.md')} and {output.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
