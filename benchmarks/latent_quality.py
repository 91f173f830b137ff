"""How much of the molecule a trained model's latent carries, by the published protocols;
writes benchmarks/results/latent_quality.json and .md (our row beside the published ones).

    python benchmarks/latent_quality.py --model runs/zinc250k_vae --data_dir ../shared/data/zinc250k

On the ZINC250k DD-VAE split (its 5,000 test molecules; JT-VAE's 800 optimisation starts are
among them, none in train or valid):

* ``reconstruction``: each test molecule encoded ``--encodings`` times (z drawn from q(z|x)),
  each z decoded ``--decodings`` times by sampling at temperature 1; the share of decodings equal
  to the input (Gomez-Bombarelli et al. 2018; Jin et al. 2018, Table 1). Also greedy decoding
  of the posterior mean (``greedy_from_mean``).
* ``prior_validity``: ``--prior_latents`` z from N(0, I), each decoded ``--prior_decodings``
  times (JT-VAE's validity protocol); with uniqueness and novelty (against the training split)
  of all valid samples, and FCD / SNN against the test split on the first ``--fcd_samples``.
* ``latent``: KL per molecule, active units, mutual information on 1,000 test molecules.
* ``interpolation``: ``--pairs`` random test pairs, ``--path_steps`` points each (ends
  included), greedy decoding; endpoint reconstruction, path validity and smoothness.
* ``constrained_optimisation``: JT-VAE's Table 3 protocol. A predictor of penalized logP is
  fitted on the posterior means of ``--predictor_molecules`` training molecules; from each
  start's posterior mean, ``--ascent_steps`` steps of gradient ascent on it, of fixed length
  ``--ascent_step_length``; every point decoded greedily; per threshold delta, the best gain
  among decoded molecules with similarity >= delta (Morgan count fingerprints, radius 2).
  Scored with penalized logP (the paper) and with logP - SA (the released script).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import seqvae
from seqvae.chem import PROPERTIES, count_tanimoto_similarity, to_mol, without_rdkit_log
from seqvae.evaluation import evaluate, read_molecules
from seqvae.generation import decode_latents, ids_to_strings, interpolate_latents
from seqvae.metrics.latent import latent_diagnostics
from seqvae.metrics.latent_protocols import (
    OPTIMISATION_DELTAS,
    interpolation_scores,
    optimisation_success,
    reconstruction_rate,
)
from seqvae.metrics.molecules import canonical_set, sample_quality
from seqvae.modeling import SeqVAE

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("reconstruction", "prior_validity", "latent", "interpolation", "constrained_optimisation")
OPTIMISATION_STARTS = "jtvae_opt_test.logP-SA.txt"

# Published rows (percentages as fractions). Reconstruction and prior validity: Jin et al. 2018,
# Table 1 (CVAE, GVAE, SD-VAE figures as quoted there); constrained optimisation: Table 3.
PUBLISHED = {
    "CVAE (Gomez-Bombarelli et al. 2018)": {"reconstruction": 0.446, "prior_validity": 0.007},
    "GVAE (Kusner et al. 2017)": {"reconstruction": 0.537, "prior_validity": 0.072},
    "SD-VAE (Dai et al. 2018)": {"reconstruction": 0.762, "prior_validity": 0.435},
    "JT-VAE (Jin et al. 2018)": {
        "reconstruction": 0.767,
        "prior_validity": 1.0,
        "constrained_optimisation": {
            "0": {"improvement_mean": 1.91, "improvement_sd": 2.04, "success_rate": 0.975},
            "0.2": {"improvement_mean": 1.68, "improvement_sd": 1.85, "success_rate": 0.971},
            "0.4": {"improvement_mean": 0.84, "improvement_sd": 1.45, "success_rate": 0.836},
            "0.6": {"improvement_mean": 0.21, "improvement_sd": 0.71, "success_rate": 0.464},
        },
    },
}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    vae = seqvae.load(args.model, device=args.device)
    data_dir = Path(args.data_dir)
    test = read_molecules(str(data_dir / "ddvae_test.smi.gz"), "test")[: args.num_test]
    started = time.monotonic()
    report = {
        "model": args.model,
        "settings": {key: value for key, value in vars(args).items() if key not in ("model", "output")},
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
    }
    sections = [
        ("reconstruction", lambda: reconstruction(vae, test, args)),
        ("prior_validity", lambda: prior_validity(vae, test, data_dir, args)),
        ("latent", lambda: latent_use(vae, test, args)),
        ("interpolation", lambda: interpolation(vae, test, args)),
        ("constrained_optimisation", lambda: constrained_optimisation(vae, data_dir, args)),
    ]
    for name, measure in sections:
        if name in args.skip:
            continue
        section_started = time.monotonic()
        report[name] = measure()
        report[name]["seconds"] = round(time.monotonic() - section_started, 1)
        print(f"{name}: {json.dumps({k: v for k, v in report[name].items() if not isinstance(v, (dict, list))})}", flush=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    write(report, Path(args.output))
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a run folder or a shipped model name (seqvae.load)")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data" / "zinc250k"))
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "latent_quality.json"))
    parser.add_argument("--num_test", type=int, default=5000, help="test molecules for reconstruction")
    parser.add_argument("--encodings", type=int, default=10)
    parser.add_argument("--decodings", type=int, default=10)
    parser.add_argument("--prior_latents", type=int, default=1000)
    parser.add_argument("--prior_decodings", type=int, default=100)
    parser.add_argument("--fcd_samples", type=int, default=10000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--path_steps", type=int, default=10)
    parser.add_argument("--optimisation_starts", type=int, default=800)
    parser.add_argument("--starts_file", default=OPTIMISATION_STARTS, help="start molecules (SMILES first on each line), in --data_dir or a path; "
                        "the step length was chosen on the 800 lowest-penalized-logP molecules of the valid split, not on this file")
    parser.add_argument("--predictor_molecules", type=int, default=20000)
    parser.add_argument("--ascent_steps", type=int, default=80)
    parser.add_argument("--ascent_step_length", type=float, default=0.05, help="chosen on the valid split's 800 lowest-penalized-logP molecules among 0.02, 0.05, 0.1, 0.25")
    parser.add_argument("--batch_size", type=int, default=1000, help="sequences decoded at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_syntax", action="store_true", help="decode without the SMILES grammar (seqvae.syntax), as before it existed")
    parser.add_argument("--device", default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="sections to leave out")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- the sections


def posterior(vae, smiles: list[str], batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, logvar)`` of each molecule, encoded without conditions."""
    means, logvars = [], []
    with torch.no_grad():
        for start in range(0, len(smiles), batch_size):
            batch = vae.tokenize(smiles[start : start + batch_size])
            mu, logvar = vae.model.encode(batch["input_ids"], batch["attention_mask"])
            means.append(mu)
            logvars.append(logvar)
    return torch.cat(means), torch.cat(logvars)


def decode(vae, z: torch.Tensor, strategy: str, generator: torch.Generator, args, bar=None) -> list[str]:
    """Strings for ``z``, decoded as the facade decodes: following the SMILES grammar unless
    ``--no_syntax``."""
    with torch.no_grad():
        ids = decode_latents(
            vae.model, z, strategy=strategy, generator=generator, batch_size=args.batch_size,
            on_finished=None if bar is None else bar.update, syntax=None if args.no_syntax else vae.smiles_syntax,
        )
    return ids_to_strings(vae.tokenizer, ids, vae.representation)


def reconstruction(vae, test: list[str], args) -> dict:
    generator = torch.Generator().manual_seed(args.seed)
    mu, logvar = posterior(vae, test)
    greedy = decode(vae, mu, "greedy", generator, args)
    per_molecule = args.encodings * args.decodings
    decodings: list[list[str]] = []
    chunk = max(1, args.batch_size * 8 // per_molecule)  # molecules per decode call
    with tqdm(total=len(test) * per_molecule, desc="reconstruction (sampled)", unit="seq") as bar:
        for start in range(0, len(test), chunk):
            m, lv = mu[start : start + chunk], logvar[start : start + chunk]
            noise = torch.randn(m.size(0), args.encodings, m.size(1), generator=generator).to(m.device)
            z = SeqVAE.reparameterize(m.unsqueeze(1), lv.unsqueeze(1), noise)  # [n, encodings, d]
            z = z.repeat_interleave(args.decodings, dim=1).reshape(-1, m.size(1))
            outputs = decode(vae, z, "sample", generator, args, bar)
            decodings += [outputs[i * per_molecule : (i + 1) * per_molecule] for i in range(m.size(0))]
    return {
        "rate": reconstruction_rate(test, decodings),
        "greedy_from_mean": reconstruction_rate(test, [[s] for s in greedy]),
        "num_molecules": len(test),
        "encodings": args.encodings,
        "decodings": args.decodings,
    }


def prior_validity(vae, test: list[str], data_dir: Path, args) -> dict:
    generator = torch.Generator().manual_seed(args.seed + 1)
    z = torch.randn(args.prior_latents, vae.config.latent_dim, generator=generator).to(vae.device)
    z = z.repeat_interleave(args.prior_decodings, dim=0)
    with tqdm(total=z.size(0), desc="prior samples", unit="seq") as bar:
        samples = decode(vae, z, "sample", generator, args, bar)
    train = canonical_set(read_molecules(str(data_dir / "ddvae_train.smi.gz"), "train"))
    quality = sample_quality(samples, train)  # validity, uniqueness among valid, novelty among distinct
    # samples come 100 per latent: FCD / SNN read a random subset across all latents
    chosen = np.random.default_rng(args.seed).choice(len(samples), size=min(args.fcd_samples, len(samples)), replace=False)
    with without_rdkit_log():
        moses = evaluate([samples[i] for i in chosen], reference=test, k=(1000,), n_jobs=2)
    return {
        **quality,
        "FCD/Test": moses.get("FCD/Test"),
        "SNN/Test": moses.get("SNN/Test"),
        "num_samples": len(samples),
        "num_for_fcd": min(args.fcd_samples, len(samples)),
        "prior_latents": args.prior_latents,
        "decodings_per_latent": args.prior_decodings,
    }


def latent_use(vae, test: list[str], args) -> dict:
    diagnostics = latent_diagnostics(vae, test[:1000], num_samples=0, seed=args.seed)
    return {
        key: diagnostics[key]
        for key in ("kl_total", "active_units", "latent_dim", "mutual_information", "mutual_information_bound", "num_molecules")
    }


def interpolation(vae, test: list[str], args) -> dict:
    rng = np.random.default_rng(args.seed)
    pairs = [rng.choice(len(test), size=2, replace=False) for _ in range(args.pairs)]
    starts, ends = [test[i] for i, _ in pairs], [test[j] for _, j in pairs]
    mu, _ = posterior(vae, starts + ends)
    paths_z = torch.cat([interpolate_latents(mu[i], mu[len(pairs) + i], args.path_steps) for i in range(len(pairs))])
    outputs = decode(vae, paths_z, "greedy", None, args)
    paths = [outputs[i * args.path_steps : (i + 1) * args.path_steps] for i in range(len(pairs))]
    return {**interpolation_scores(starts, ends, paths), "pairs": len(pairs), "steps": args.path_steps}


def constrained_optimisation(vae, data_dir: Path, args) -> dict:
    starts_file = data_dir / args.starts_file if (data_dir / args.starts_file).is_file() else Path(args.starts_file)
    starts = [line.split()[0] for line in starts_file.read_text().splitlines() if line.strip()]
    starts = starts[: args.optimisation_starts]
    predictor = fit_score_predictor(vae, data_dir, args)
    mu, _ = posterior(vae, starts)
    path = ascend(predictor["model"], mu, args.ascent_steps, args.ascent_step_length)  # [steps+1, n, d]
    decoded = decode(vae, path.reshape(-1, path.size(-1)), "greedy", None, args)
    with without_rdkit_log():
        start_mols = [to_mol(s) for s in starts]
    scores = {"penalized_logP": _penalized_logp, "logP_minus_SA": _logp_minus_sa}
    start_scores = {name: [score(m) for m in start_mols] for name, score in scores.items()}
    candidates = {name: [[] for _ in starts] for name in scores}
    n = len(starts)
    valid_points = 0
    with without_rdkit_log():
        for index, smiles in enumerate(tqdm(decoded, desc="scoring the paths", unit="mol")):
            mol = to_mol(smiles)
            if mol is None:
                continue
            valid_points += 1
            start = index % n
            similarity = count_tanimoto_similarity(start_mols[start], mol)
            for name, score in scores.items():
                candidates[name][start].append((similarity, score(mol)))
    results = {name: optimisation_success(start_scores[name], candidates[name], OPTIMISATION_DELTAS) for name in scores}
    return {
        **results["penalized_logP"],
        "example_paths": example_paths(starts, decoded, args.ascent_steps, count=4, every=10),
        "logP_minus_SA": results["logP_minus_SA"],
        "path_validity": valid_points / len(decoded),
        "predictor_r2_validation": predictor["r2"],
        "num_starts": n,
        "ascent_steps": args.ascent_steps,
        "ascent_step_length": args.ascent_step_length,
    }


def example_paths(starts: list[str], decoded: list[str], steps: int, count: int, every: int) -> list[list[dict]]:
    """Every ``every``-th decoded point of the first ``count`` starts' paths (for pictures)."""
    n = len(starts)
    paths = []
    for start in range(min(count, n)):
        points = []
        for step in range(0, steps + 1, every):
            smiles = decoded[step * n + start]
            mol = to_mol(smiles)
            points.append({
                "step": step,
                "smiles": smiles,
                "penalized_logP": None if mol is None else _penalized_logp(mol),
                "similarity": None if mol is None else count_tanimoto_similarity(to_mol(starts[start]), mol),
            })
        paths.append(points)
    return paths


def _penalized_logp(mol) -> float:
    return PROPERTIES["plogP"].compute(mol)


def _logp_minus_sa(mol) -> float:
    return PROPERTIES["logP"].compute(mol) - PROPERTIES["SAS"].compute(mol)


def fit_score_predictor(vae, data_dir: Path, args) -> dict:
    """An MLP from posterior means to penalized logP, fitted on training molecules (10% held
    out for its R^2)."""
    train = read_molecules(str(data_dir / "ddvae_train.smi.gz"), "train")
    rng = np.random.default_rng(args.seed)
    chosen = [train[i] for i in rng.choice(len(train), size=min(args.predictor_molecules, len(train)), replace=False)]
    with without_rdkit_log():
        targets = torch.tensor([_penalized_logp(to_mol(s)) for s in tqdm(chosen, desc="penalized logP", unit="mol")])
    mu, _ = posterior(vae, chosen)
    mu = mu.cpu()
    split = int(0.9 * len(chosen))
    mean, std = targets[:split].mean(), targets[:split].std()
    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(mu.size(1), 256), torch.nn.GELU(), torch.nn.Linear(256, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    normalised = (targets - mean) / std
    for _ in range(60):  # epochs
        order = torch.randperm(split)
        for batch in order.split(256):
            loss = torch.nn.functional.mse_loss(model(mu[batch]).squeeze(1), normalised[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        held_out = model(mu[split:]).squeeze(1)
        r2 = 1 - torch.mean((held_out - normalised[split:]) ** 2) / torch.var(normalised[split:])
    return {"model": model.to(vae.device).eval(), "r2": float(r2)}


def ascend(predictor, z0: torch.Tensor, steps: int, step_length: float) -> torch.Tensor:
    """``[steps + 1, N, d]``: ``z0`` and the points of fixed-length gradient ascent steps."""
    points = [z0.detach()]
    z = z0.detach().clone()
    for _ in range(steps):
        z.requires_grad_(True)
        (gradient,) = torch.autograd.grad(predictor(z).sum(), [z])
        z = (z + step_length * gradient / gradient.norm(dim=1, keepdim=True).clamp(min=1e-12)).detach()
        points.append(z)
    return torch.stack(points)


# ------------------------------------------------------------------------------ the output


def markdown_table(report: dict) -> str:
    """Our row beside the published ones."""
    percent = lambda value: "-" if value is None or value != value else f"{100 * value:.1f}%"  # noqa: E731 (NaN != NaN)
    settings = report["settings"]
    lines = [
        f"| model | reconstruction ({settings['encodings']}x{settings['decodings']}) | greedy from mean | prior validity | uniqueness | novelty |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in PUBLISHED.items():
        lines.append(f"| {name} | {percent(row['reconstruction'])} | - | {percent(row['prior_validity'])} | - | - |")
    recon, prior = report.get("reconstruction", {}), report.get("prior_validity", {})
    lines.append(
        f"| **seqvae** ({report['model']}) | {percent(recon.get('rate'))} | {percent(recon.get('greedy_from_mean'))} | "
        f"{percent(prior.get('validity'))} | {percent(prior.get('uniqueness'))} | {percent(prior.get('novelty'))} |"
    )
    optimisation = report.get("constrained_optimisation")
    if optimisation:
        lines += ["", "| delta | JT-VAE improvement | JT-VAE success | seqvae improvement | seqvae success |", "|---|---|---|---|---|"]
        for delta, published in PUBLISHED["JT-VAE (Jin et al. 2018)"]["constrained_optimisation"].items():
            ours = optimisation[delta]
            lines.append(
                f"| {delta} | {published['improvement_mean']:.2f} ± {published['improvement_sd']:.2f} | "
                f"{percent(published['success_rate'])} | {ours['improvement_mean']:.2f} ± {ours['improvement_sd']:.2f} | "
                f"{percent(ours['success_rate'])} |"
            )
    if "latent" in report:
        latent = report["latent"]
        lines += ["", f"Latent: KL {latent['kl_total']:.1f} nats per molecule, {latent['active_units']}/{latent['latent_dim']} "
                  f"active units, mutual information {latent['mutual_information']:.2f} nats (bound {latent['mutual_information_bound']:.2f})."]
    if "interpolation" in report:
        path = report["interpolation"]
        lines.append(f"Interpolation: endpoints {percent(path['endpoint_reconstruction'])}, path validity "
                     f"{percent(path['path_validity'])}, smoothness {path['smoothness']:.2f}.")
    grammar = "without the SMILES grammar" if settings.get("no_syntax") else "following the SMILES grammar (seqvae.syntax)"
    lines.append(f"Decoded {grammar}.")
    return "\n".join(lines) + "\n"


def write(report: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown_table(report))
    print(markdown_table(report))
    print(f"wrote {output} and {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
