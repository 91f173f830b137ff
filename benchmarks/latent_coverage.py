"""Where invalid prior samples come from: validity of greedy decodings from posterior means of
test molecules, from prior draws, and from prior draws scaled down; writes
benchmarks/results/latent_coverage.json.

    python benchmarks/latent_coverage.py --model zinc250k --data_dir ../shared/data/zinc250k
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import seqvae
from seqvae.data import load_molecules
from seqvae.metrics.molecules import fraction_valid

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zinc250k", help="run folder, shipped name or Hub id")
    parser.add_argument("--data", default="zinc250k:ddvae_test")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "latent_coverage.json"))
    args = parser.parse_args()

    vae = seqvae.load(args.model, device="cpu")
    molecules = load_molecules(args.data, data_dir=args.data_dir)[0]["smiles"][: args.num]  # file order, as in the docs
    means = vae.encode(molecules)
    prior = torch.randn(args.num, means.shape[1], generator=torch.Generator().manual_seed(args.seed))
    latents = {"posterior_means": means, "prior": prior, "prior_scaled_0.5": 0.5 * prior}
    result = {
        "model": args.model, "data": args.data, "num": args.num, "seed": args.seed, "decoding": "greedy",
        "validity": {name: round(fraction_valid(vae.decode(z)), 4) for name, z in latents.items()},
        "norm_mean": {name: round(float(z.norm(dim=1).mean()), 3) for name, z in latents.items()},
        "posterior_mean_std_per_dimension": round(float(means.std(0).mean()), 3),
    }
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
