"""Where invalid prior samples come from: validity of decodings (greedy and sampled at
temperature 1) from posterior means and posterior draws of test molecules, from midpoints between
two test molecules, from prior draws (plain and scaled down), and from two priors fitted to the
aggregate posterior of training molecules (a full-covariance Gaussian and a diagonal Gaussian
mixture: ex-post density estimation, Ghosh et al. 2020), each decoded with the SMILES grammar
(seqvae.syntax, the default) and without it; writes benchmarks/results/latent_coverage.json.

    python benchmarks/latent_coverage.py --model zinc250k --data_dir ../shared/data/zinc250k
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

import seqvae
from seqvae.data import load_molecules
from seqvae.metrics.molecules import fraction_valid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latent_quality import posterior  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zinc250k", help="run folder, shipped name or Hub id")
    parser.add_argument("--data", default="zinc250k:ddvae_test")
    parser.add_argument("--train_data", default="zinc250k:ddvae_train", help="molecules the fitted priors are fitted on")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--fit_molecules", type=int, default=20000)
    parser.add_argument("--components", type=int, default=100, help="components of the fitted Gaussian mixture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "latent_coverage.json"))
    args = parser.parse_args()

    started = time.monotonic()
    vae = seqvae.load(args.model, device="cpu")
    generator = torch.Generator().manual_seed(args.seed)
    molecules = list(load_molecules(args.data, data_dir=args.data_dir)[0]["smiles"][: args.num])  # file order
    means, logvars = posterior(vae, molecules)
    prior = torch.randn(args.num, means.shape[1], generator=generator)
    training = list(load_molecules(args.train_data, data_dir=args.data_dir)[0]["smiles"])
    picked = torch.randperm(len(training), generator=generator)[: args.fit_molecules].tolist()
    fit_means, fit_logvars = posterior(vae, [training[i] for i in picked])
    draws = fit_means + torch.exp(0.5 * fit_logvars) * torch.randn(fit_means.shape, generator=generator)
    latents = {
        "posterior_means": means,
        "posterior_draws": means + torch.exp(0.5 * logvars) * torch.randn(means.shape, generator=generator),
        "midpoints_of_two_molecules": 0.5 * (means + means[torch.randperm(args.num, generator=generator)]),
        "prior": prior,
        "prior_scaled_0.5": 0.5 * prior,
        "fitted_gaussian": FittedGaussian(draws).sample(prior),
        "fitted_mixture": FittedMixture(draws, args.components, generator).sample(args.num, generator),
    }
    result = {
        "model": args.model, "data": args.data, "num": args.num, "seed": args.seed,
        "fitted_on": f"{args.fit_molecules} molecules of {args.train_data}, one posterior draw each",
        "mixture_components": args.components,
        **{
            f"validity_{label}{suffix}": {
                name: round(fraction_valid(vae.decode(z, strategy=strategy, seed=args.seed, syntax=syntax)), 4)
                for name, z in latents.items()
            }
            for syntax, suffix in ((True, ""), (False, "_without_syntax"))
            for strategy, label in (("greedy", "greedy"), ("sample", "sampled"))
        },
        "norm_mean": {name: round(float(z.norm(dim=1).mean()), 3) for name, z in latents.items()},
        "posterior_mean_std_per_dimension": round(float(means.std(0).mean()), 3),
        "seconds": round(time.monotonic() - started, 1),
    }
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


class FittedGaussian:
    """N(m, S) with the mean and covariance of the draws; ``sample`` maps standard normal noise."""

    def __init__(self, draws: torch.Tensor):
        self.mean = draws.mean(0)
        self.scale = torch.linalg.cholesky(torch.cov(draws.T))

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        return self.mean + noise @ self.scale.T


class FittedMixture:
    """A diagonal Gaussian mixture fitted to the draws by expectation-maximisation."""

    def __init__(self, draws: torch.Tensor, components: int, generator: torch.Generator, iterations: int = 50):
        n, d = draws.shape
        self.means = draws[torch.randperm(n, generator=generator)[:components]].clone()
        self.variances = draws.var(0).expand(components, d).clone()
        self.log_weights = torch.full((components,), -math.log(components))
        for _ in range(iterations):
            squared = ((draws[:, None, :] - self.means[None]) ** 2 / self.variances[None]).sum(-1)
            log_p = -0.5 * (squared + self.variances.log().sum(-1)[None] + d * math.log(2 * math.pi)) + self.log_weights[None]
            resp = (log_p - log_p.logsumexp(1, keepdim=True)).exp()
            counts = resp.sum(0) + 1e-6
            self.means = resp.T @ draws / counts[:, None]
            self.variances = (resp.T @ draws**2 / counts[:, None] - self.means**2).clamp(min=1e-3)
            self.log_weights = (counts / n).log()

    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        chosen = torch.multinomial(self.log_weights.exp(), num, replacement=True, generator=generator)
        noise = torch.randn(num, self.means.shape[1], generator=generator)
        return self.means[chosen] + self.variances[chosen].sqrt() * noise


if __name__ == "__main__":
    main()
