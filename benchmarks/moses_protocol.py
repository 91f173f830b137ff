"""The MOSES protocol for one trained model: 30,000 samples, metrics against test and
test_scaffolds, novelty against train; JSON plus a markdown table beside the published rows.

    python benchmarks/moses_protocol.py --model runs/moses_cpu --data_dir ../shared/data/moses
    # -> benchmarks/results/moses_protocol.json and .md

The published rows are copied from the metrics table of the MOSES README
(github.com/molecularsets/moses; Polykovskiy et al. 2020, Front. Pharmacol. 11:565644): mean
over 3 independent runs (the README's +- std is left out here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from seqvae.evaluation import evaluate, read_molecules
from seqvae.pipeline import load

COLUMNS = [
    "valid", "unique@1000", "unique@10000", "FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test",
    "Frag/TestSF", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty",
]
PUBLISHED = {
    "Train": [1.0, 1.0, 1.0, 0.008, 0.4755, 0.6419, 0.5859, 1.0, 0.9986, 0.9907, 0.0, 0.8567, 0.8508, 1.0, 1.0],
    "CharRNN": [0.9748, 1.0, 0.9994, 0.0732, 0.5204, 0.6015, 0.5649, 0.9998, 0.9983, 0.9242, 0.1101, 0.8562,
                0.8503, 0.9943, 0.8419],
    "AAE": [0.9368, 1.0, 0.9973, 0.5555, 1.0572, 0.6081, 0.5677, 0.991, 0.9905, 0.9022, 0.0789, 0.8557, 0.8499,
            0.996, 0.7931],
    "VAE": [0.9767, 1.0, 0.9984, 0.099, 0.567, 0.6257, 0.5783, 0.9994, 0.9984, 0.9386, 0.0588, 0.8558, 0.8498,
            0.997, 0.6949],
    "JTN-VAE": [1.0, 1.0, 0.9996, 0.3954, 0.9382, 0.5477, 0.5194, 0.9965, 0.9947, 0.8964, 0.1009, 0.8551, 0.8493,
                0.976, 0.9143],
    "LatentGAN": [0.8966, 1.0, 0.9968, 0.2968, 0.8281, 0.5371, 0.5132, 0.9986, 0.9972, 0.8867, 0.1072, 0.8565,
                  0.8505, 0.9735, 0.9498],
}


def markdown_table(ours_name: str, ours: dict) -> str:
    header = "| model | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, values in PUBLISHED.items():
        lines.append(f"| {name} (MOSES README) | " + " | ".join(f"{v:g}" for v in values) + " |")
    cells = ["n/a" if ours.get(c) is None else f"{ours[c]:.4f}" for c in COLUMNS]
    lines.append(f"| **{ours_name} (seqvae, measured)** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder of a model trained on MOSES train")
    parser.add_argument("--data_dir", default=None, help="folder with the MOSES csv files (default: download)")
    parser.add_argument("--num_samples", type=int, default=30000)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n_jobs", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/results/moses_protocol.json")
    args = parser.parse_args()

    vae = load(args.model)
    sets = {name: read_molecules(f"moses:{name}", name, args.data_dir) for name in ("test", "test_scaffolds", "train")}
    started = time.perf_counter()
    samples = vae.sample(args.num_samples, seed=args.seed, temperature=args.temperature, batch_size=1000, progress=True)
    sampling_seconds = time.perf_counter() - started
    report = evaluate(
        samples, model=vae, reference=sets["test"], scaffold_reference=sets["test_scaffolds"], train=sets["train"],
        n_jobs=args.n_jobs, progress=True, seed=args.seed,
    )
    report["details"]["sampling_seconds"] = round(sampling_seconds, 1)
    report["protocol"] = {
        "model": str(args.model),
        "num_samples": args.num_samples,
        "temperature": args.temperature,
        "seed": args.seed,
        "command": " ".join(["python"] + sys.argv),
        "published_source": "MOSES README metrics table (github.com/molecularsets/moses), means of 3 runs",
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(Path(args.model).name, report)
    output.with_suffix(".md").write_text(
        f"# MOSES protocol: {args.model}\n\n{args.num_samples} samples at temperature {args.temperature}, "
        f"seed {args.seed}. Published rows: MOSES README (Polykovskiy et al. 2020).\n\n{table}\n"
    )
    print(table)
    print(f"wrote {output} and {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
