"""Draw one picture of each kind from a trained conditional model: the README's pictures.

    python examples/make_pictures.py --model runs/zinc250k_cvae --output docs/images

Writes molecule_grid.png, training_curves.png, property_histograms.png, target_plot.png and
report.png (training curves and samples). The latent-space pictures (interpolation strip, latent
map, optimisation paths) come from examples/latent_pictures.py.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import seqvae
from seqvae import viz
from seqvae.data import run_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder of a conditional model trained on logP")
    parser.add_argument("--output", default="docs/images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    output = Path(args.output)

    vae = seqvae.load(args.model)
    validation = run_split(args.model)[1]["smiles"]
    held_out = random.Random(args.seed).sample(list(validation), 1000)
    written = []

    frame = vae.sample_frame(12, seed=args.seed, condition={"logP": 2.5}, temperature=0.8)
    written.append(viz.molecule_grid(frame, properties=["qed"], per_row=4).save(output / "molecule_grid.png"))

    written.append(viz.training_curves(args.model).save(output / "training_curves.png"))

    generated = vae.sample(1000, seed=args.seed, temperature=0.8)
    histograms = viz.property_histograms(generated, held_out, labels=("generated (prior)", "held-out ZINC"))
    written.append(histograms.save(output / "property_histograms.png"))

    frames = [vae.sample_frame(200, seed=args.seed + t, condition={"logP": float(t)}, temperature=0.8, mols=False) for t in range(6)]
    written.append(viz.target_plot(frames).save(output / "target_plot.png"))
    written.append(viz.run_report(args.model).save(output / "report.png"))
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
