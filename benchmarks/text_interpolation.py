"""Sentence interpolation on Penn Treebank: does a path start and end at its inputs, move evenly,
and read fluently? One row per trained text VAE (a setting of the frontier).

For each model, on held-out (test) sentences and a few training sentences:

* endpoint fidelity: greedy reconstruction from the posterior mean of ``--num_sentences`` test
  sentences: exact match, and corpus BLEU for sentences of at most 15 words and for all; and
  how many of 10 training sentences come back exactly (``training_endpoints_exact``, "k/10");
* smoothness: ``--num_paths`` interpolations between test sentences of 8-20 words: the word edit
  distance of each step to the start input, paths that never move, and the change between
  consecutive steps (:func:`seqvae.metrics.text.interpolation_smoothness`);
* fluency: perplexity, under the language-model baseline (``--lm``), of the intermediate
  sentences and of prior samples, each divided by the baseline's perplexity of the real test
  sentences scored (1.0: as fluent as PTB; the issue's target for samples is <= 1.5); empty
  outputs and samples cut at the length limit cannot be scored and are counted instead;
* KL: the mean KL(q(z|x) || p(z)) of the held-out sentences, in nats.

The frontier picture plots endpoint BLEU (<= 15 words) against sample fluency, annotated by KL;
``best`` is the highest endpoint BLEU among settings whose samples stay within 1.5x of the real
sentences' perplexity (the highest BLEU of all when none does).

    python benchmarks/text_interpolation.py --data_dir ../shared/data/ptb --lm runs/ptb_gpt2_lm \\
        --model "Optimus, pretrained LM decoder=runs/ptb_optimus" --model "LSTM, free bits 6 nats=runs/ptb_vae"
    # -> benchmarks/results/text_interpolation.json and text_interpolation.png
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

import seqvae
from seqvae.data import load_texts
from seqvae.metrics.text import importance_weighted_nll, interpolation_smoothness, reconstruction_bleu
from seqvae.modeling import eval_mode, gaussian_kl_per_dim

SHORT_WORDS = 15
FLUENCY_TARGET = 1.5


def parse_model(text: str) -> tuple[str, Path]:
    """``"LABEL=FOLDER"`` (or a bare folder, labelled by its name), as benchmarks/text_ptb.py reads it."""
    label, sep, folder = text.rpartition("=")
    return (label, Path(folder)) if sep else (Path(text).name, Path(text))


@torch.no_grad()
def mean_kl(vae, sentences: list[str], batch_size: int = 64) -> float:
    """Mean KL(q(z|x) || N(0, I)) over ``sentences``, in nats."""
    total = 0.0
    with eval_mode(vae.model):
        for start in range(0, len(sentences), batch_size):
            batch = vae.tokenize(sentences[start : start + batch_size])
            mu, logvar = vae.model.encode(batch["input_ids"], batch["attention_mask"])
            total += gaussian_kl_per_dim(mu, logvar).sum().item()
    return total / len(sentences)


def scorable(language_model, sentences: list[str]) -> list[str]:
    """The sentences the language model can score: not empty, and within its length (a sample
    cut at the generation limit, without its end, is longer)."""
    limit = language_model.config.max_sequence_length
    sentences = language_model.normalize([s for s in sentences if s.strip()])  # as the scorer reads them
    return [s for s in sentences if s.strip() and len(language_model.tokenizer(s)["input_ids"]) <= limit]


def perplexity(language_model, sentences: list[str]) -> float | None:
    """The language model's perplexity of ``sentences`` (exact: it has no latent)."""
    return importance_weighted_nll(language_model, sentences, num_importance_samples=1)["perplexity"] if sentences else None


def endpoint_fidelity(vae, held_out: list[str], training: list[str]) -> dict:
    outputs = vae.reconstruct(held_out)
    short = [(ref, out) for ref, out in zip(held_out, outputs) if len(ref.split()) <= SHORT_WORDS]
    exact_training = sum(a == b for a, b in zip(training, vae.reconstruct(training)))
    return {
        "training_endpoints_exact": f"{exact_training}/{len(training)}",
        "held_out_exact": round(sum(a == b for a, b in zip(held_out, outputs)) / len(held_out), 4),
        "endpoint_bleu_short": round(reconstruction_bleu(*map(list, zip(*short))), 2) if short else None,
        "endpoint_bleu_all": round(reconstruction_bleu(held_out, outputs), 2),
        "short_sentences": len(short),
        "examples": [{"input": a, "output": b} for a, b in list(zip(held_out, outputs))[:5]],
    }


def interpolation_paths(vae, sentences: list[str], count: int, steps: int, method: str, seed: int) -> list[dict]:
    generator = random.Random(seed)
    readable = [s for s in sentences if 8 <= len(s.split()) <= 20]
    paths = []
    for _ in range(count):
        start, end = generator.sample(readable, 2)
        paths.append({"start": start, "end": end, "path": vae.interpolate(start, end, steps=steps, method=method)})
    return paths


def evaluate(vae, language_model, held_out, training, args) -> dict:
    started = time.perf_counter()
    paths = interpolation_paths(vae, held_out, args.num_paths, args.steps, args.method, args.seed)
    samples = vae.sample(args.num_samples, seed=args.seed)
    intermediate = [sentence for p in paths for sentence in p["path"][1:-1]]
    test_ppl = perplexity(language_model, scorable(language_model, held_out))
    fluency = {"test_ppl": round(test_ppl, 2)}
    for name, sentences in (("interpolation", intermediate), ("sample", samples)):
        kept = scorable(language_model, sentences)
        value = perplexity(language_model, kept)
        fluency[f"{name}_ppl"] = None if value is None else round(value, 2)
        fluency[f"{name}_ppl_ratio"] = None if value is None else round(value / test_ppl, 3)
        fluency[f"{name}_not_scored"] = len(sentences) - len(kept)  # empty, or unfinished at the length limit
    return {
        "kl": round(mean_kl(vae, held_out), 2),
        "latent_dim": vae.config.latent_dim,
        **endpoint_fidelity(vae, held_out, training),
        "smoothness": interpolation_smoothness([p["path"] for p in paths], [p["start"] for p in paths]),
        "fluency": fluency,
        "paths": paths[:3],
        "samples": samples[:5],
        "seconds": round(time.perf_counter() - started, 1),
    }


def choose_best(rows: list[dict]) -> dict:
    fluent = [r for r in rows if (r["fluency"]["sample_ppl_ratio"] or float("inf")) <= FLUENCY_TARGET]
    best = max(fluent or rows, key=lambda r: r["endpoint_bleu_short"] or 0.0)
    return {
        "label": best["label"],
        "model": best["model"],
        "endpoint_bleu_short": best["endpoint_bleu_short"],
        "training_endpoints_exact": best["training_endpoints_exact"],
        "sample_ppl_ratio": best["fluency"]["sample_ppl_ratio"],
        "kl": best["kl"],
        "chosen_by": f"highest endpoint BLEU (<= {SHORT_WORDS} words) among settings with sample PPL ratio <= {FLUENCY_TARGET}"
        + ("" if fluent else " (none met it: highest BLEU of all)"),
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        x, y = row["endpoint_bleu_short"] or 0.0, row["fluency"]["sample_ppl_ratio"] or 0.0
        axis.scatter(x, y, s=40 + 2 * row["kl"])
        axis.annotate(f"{row['label']}\nKL {row['kl']:.0f}", (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    axis.axhline(FLUENCY_TARGET, color="grey", linestyle="--", linewidth=0.8)
    axis.set_xlabel(f"held-out endpoint BLEU (sentences <= {SHORT_WORDS} words)")
    axis.set_ylabel("LM perplexity of prior samples / of test sentences")
    axis.set_title("PTB interpolation frontier (marker size: KL)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="LABEL=RUN_FOLDER (repeat)")
    parser.add_argument("--lm", required=True, help="run folder of the language-model baseline (fluency judge)")
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/ptb"))
    parser.add_argument("--num_sentences", type=int, default=500, help="held-out test sentences reconstructed")
    parser.add_argument("--num_paths", type=int, default=20)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--method", default="linear", choices=["linear", "slerp"])
    parser.add_argument("--num_samples", type=int, default=300, help="prior samples judged for fluency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/text_interpolation.json")
    args = parser.parse_args()

    generator = random.Random(args.seed)
    test = load_texts("ptb:test", data_dir=args.data_dir)[0]["text"]
    train = load_texts("ptb", data_dir=args.data_dir)[0]["text"]
    held_out = generator.sample(test, min(args.num_sentences, len(test)))
    training = generator.sample(train, 10)
    language_model = seqvae.load(args.lm)
    rows = []
    for label, folder in map(parse_model, args.model):
        row = {"label": label, "model": str(folder), **evaluate(seqvae.load(folder), language_model, held_out, training, args)}
        print(f"{label}: KL {row['kl']}, endpoints {row['training_endpoints_exact']}, BLEU<=15 {row['endpoint_bleu_short']}, "
              f"sample PPL ratio {row['fluency']['sample_ppl_ratio']}", flush=True)
        rows.append(row)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    picture = output.with_suffix(".png")
    plot(rows, picture)
    result = {
        "what": "PTB sentence interpolation: endpoint fidelity, smoothness and fluency per setting (benchmarks/text_interpolation.py)",
        "command": "python benchmarks/text_interpolation.py " + " ".join(f"--model '{r['label']}={r['model']}'" for r in rows) + f" --lm {args.lm}",
        "settings": vars(args),
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version()},
        "best": choose_best(rows),
        "rows": rows,
        "picture": str(picture),
    }
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["best"], indent=1))


if __name__ == "__main__":
    main()
