"""The trade-off between a latent that carries the molecule and prior samples that are valid:
train several objective settings in one CPU budget on ZINC250k, then plot greedy reconstruction
of held-out molecules against prior validity, with the KL as colour.

    python benchmarks/latent_frontier.py --data_dir ../shared/data/zinc250k [--seconds 600] [--only NAME ...]
    python benchmarks/latent_frontier.py --collect      # redraw from the run folders already there

Each setting is ``recipes/zinc250k_frontier.yaml`` plus the overrides below, trained alone (two
trainings at once on 2 cores slow each other far more than 2x). Every point in
``benchmarks/results/latent_frontier.json`` carries the command that trained it, its wall time
and its run's end-of-training figures (greedy reconstruction of 1,000 validation molecules,
1,000 prior samples at temperature 1, KL and active units on the validation split). The
samples are decoded as the run's own evaluation decoded them: through the SMILES grammar since
it became the default (commit 4ea9b0b), freely before (``latent_frontier.json`` holds the free
points, ``latent_frontier_grammar.json`` the points trained since).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/zinc250k_frontier.yaml"

# name -> (what it tests, recipe overrides)
SETTINGS = {
    "kl1": ("KL weight 1 (the old recipes)", {"kl_max_weight": 1.0}),
    "kl0.05": ("KL weight 0.05", {"kl_max_weight": 0.05}),
    "kl0.01": ("KL weight 0.01 (JT-VAE trained at 0.005)", {"kl_max_weight": 0.01}),
    "kl0.01+mmd100": ("KL weight 0.01 + MMD to the prior, weight 100", {"kl_max_weight": 0.01, "mmd_weight": 100.0}),
    "kl0.05+mmd10": ("KL weight 0.05 + MMD to the prior, weight 10", {"kl_max_weight": 0.05, "mmd_weight": 10.0}),
    "kl0.01+mmd10": ("KL weight 0.01 + MMD to the prior, weight 10", {"kl_max_weight": 0.01, "mmd_weight": 10.0}),
}
# what a run without --only trains: the five points of latent_frontier.json (decoded freely);
# the settings added since are trained by name (latent_frontier_grammar.json)
DEFAULT_SETTINGS = ["kl1", "kl0.05", "kl0.01", "kl0.01+mmd100", "kl0.05+mmd10"]


def command_for(name: str, overrides: dict, data_dir: str, seconds: int, runs: Path) -> list[str]:
    settings = {**overrides, "max_train_seconds": seconds, "data_dir": data_dir}
    return [
        "seqvae", "train", "--config", RECIPE, "--output_dir", str(runs / name),
        *[f"{key}={value}" for key, value in settings.items()],
    ]


def point(name: str, runs: Path, command: list[str]) -> dict | None:
    metrics_path = runs / name / "metrics.json"
    if not metrics_path.is_file():
        return None
    metrics = json.loads(metrics_path.read_text())
    return {
        "name": name,
        "what": SETTINGS[name][0],
        "overrides": SETTINGS[name][1],
        "command": shlex.join(command),
        "reconstruction": metrics.get("reconstruction_accuracy"),
        "prior_validity": metrics.get("validity"),
        "uniqueness": metrics.get("uniqueness"),
        "novelty": metrics.get("novelty"),
        "kl": metrics.get("kl_per_sequence"),
        "active_units": metrics.get("active_units"),
        "recon_per_sequence": metrics.get("recon_per_sequence"),
        "train_seconds": metrics.get("train_seconds"),
        "steps": last_step(runs / name),
    }


def last_step(run_dir: Path) -> int | None:
    """The last optimiser step in the run's training log (the time budget decides it)."""
    log = run_dir / "training_log.jsonl"
    if not log.is_file():
        return None
    steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines() if line.strip()]
    return max(steps, default=None)


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 5))
    kls = [p["kl"] for p in points]
    scatter = axis.scatter(
        [100 * p["prior_validity"] for p in points], [100 * p["reconstruction"] for p in points],
        c=kls, cmap="viridis", s=80, edgecolors="black",
    )
    for p in points:
        axis.annotate(p["name"], (100 * p["prior_validity"], 100 * p["reconstruction"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    figure.colorbar(scatter, label="KL(q(z|x) || p(z)), nats per molecule")
    axis.set_xlabel("prior validity, % of 1,000 samples (temperature 1)")
    axis.set_ylabel("greedy reconstruction, % of 1,000 held-out molecules")
    axis.set_title("ZINC250k, same CPU budget per setting")
    axis.add_patch(plt.Rectangle((95, 85), 5, 15, fill=False, linestyle="--", edgecolor="tab:red"))
    axis.annotate("issue 22 target", (95, 85), textcoords="offset points", xytext=(-70, -14), fontsize=8, color="tab:red")
    axis.set_xlim(0, 100)
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/zinc250k")
    parser.add_argument("--seconds", type=int, default=600, help="training budget of every setting")
    parser.add_argument("--runs", default="runs/frontier")
    parser.add_argument("--only", nargs="*", help="train only these settings")
    parser.add_argument("--collect", action="store_true", help="train nothing; read the run folders")
    parser.add_argument("--output", default="benchmarks/results/latent_frontier.json")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    names = args.only or DEFAULT_SETTINGS
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        sys.exit(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    commands = {name: command_for(name, SETTINGS[name][1], args.data_dir, args.seconds, runs) for name in SETTINGS}
    if not args.collect:
        for name in names:
            print(f"== {name}: {shlex.join(commands[name])}", flush=True)
            subprocess.run(commands[name], check=True)
    points = [p for name in SETTINGS if (p := point(name, runs, commands[name])) is not None]
    if not points:
        sys.exit(f"no finished runs under {runs}")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"seconds_per_setting": args.seconds, "recipe": RECIPE, "points": points}, indent=2) + "\n")
    plot(points, output.with_suffix(".png"))
    for p in points:
        print(f"{p['name']:>22}: reconstruction {p['reconstruction']:.3f}, validity {p['prior_validity']:.3f}, KL {p['kl']:.1f}")
    print(f"wrote {output} and {output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
