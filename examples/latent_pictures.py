"""Draw the latent-space pictures of the README from the shipped ZINC250k model (or any run):
an interpolation strip between two test molecules (with the inputs at both ends), a latent map
of 1,000 test molecules coloured by logP, and the constrained-optimisation paths recorded by
``benchmarks/latent_quality.py``.

    python examples/latent_pictures.py --model zinc250k --data_dir ../shared/data/zinc250k --output docs/images

Writes interpolation_strip.png, latent_map.png and optimisation_paths.png.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import seqvae
from seqvae import viz
from seqvae.evaluation import read_molecules

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zinc250k", help="a run folder or a shipped model name")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data" / "zinc250k"))
    parser.add_argument("--benchmark", default=str(ROOT / "benchmarks" / "results" / "latent_quality.json"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    output = Path(args.output)
    vae = seqvae.load(args.model)
    test = read_molecules(str(Path(args.data_dir) / "ddvae_test.smi.gz"), "test")
    start, end = random.Random(args.seed).sample(test, 2)
    written = [viz.interpolation_strip(vae, start, end, steps=7, method="slerp").save(output / "interpolation_strip.png")]
    written.append(viz.latent_map(vae, test[:1000], color_by="logP").save(output / "latent_map.png"))
    paths = json.loads(Path(args.benchmark).read_text())["constrained_optimisation"]["example_paths"]
    points = [point for path in paths for point in path]
    legends = [
        f"step {p['step']}: invalid" if p["penalized_logP"] is None
        else f"step {p['step']}: pen. logP {p['penalized_logP']:.2f}, sim {p['similarity']:.2f}"
        for p in points
    ]
    grid = viz.molecule_grid([p["smiles"] for p in points], legends=legends, per_row=len(paths[0]), max_molecules=len(points), cell_size=(230, 190))
    written.append(grid.save(output / "optimisation_paths.png"))
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
