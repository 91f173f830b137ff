"""Latent-space diagnostics of a trained model: is ``z`` used, and how well?

* reconstruction accuracy: greedy decoding from the posterior mean, exact canonical match;
* token accuracy: teacher-forced argmax from the posterior mean, over real target tokens;
* active units (Burda et al. 2016) and the KL of each latent dimension to the prior;
* mutual information I(x; z) under the aggregate posterior (Hoffman & Johnson 2016; He et al.
  2019), see :func:`mutual_information`;
* validity of molecules decoded from the prior against those decoded from the posterior: a
  large gap means the prior has holes the decoder never learned to read (Bowman et al. 2016).

Everything is computed with the encoder in evaluation mode and without gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..chem import canonical_smiles
from ..errors import SeqVAEError
from ..modeling import SeqVAE, eval_mode, gaussian_kl_per_dim
from ..objectives import active_units
from .molecules import fraction_valid, reconstruction_accuracy
from .text import reconstruction_bleu

__all__ = [
    "MUTUAL_INFORMATION_ESTIMATOR",
    "latent_diagnostics",
    "mutual_information",
    "teacher_forced_token_counts",
]

MUTUAL_INFORMATION_ESTIMATOR = (
    "aggregate posterior (Hoffman & Johnson 2016; He et al. 2019): mean over the N evaluated inputs "
    "of log q(z_i|x_i) - log q(z_i), one z_i ~ q(z|x_i) each, with "
    "log q(z_i) = logsumexp_j log q(z_i|x_j) - log N over the full evaluated set (no mini-batches); "
    "at most log N and biased low when the true value approaches log N"
)

# Rows of the [rows, N] pairwise log-density matrix held at once: bounds memory for large N.
_MIXTURE_CHUNK_ROWS = 1024


# ------------------------------------------------------------------------- mutual information


def mutual_information(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> float:
    """I(x; z) in nats from the diagonal Gaussian posteriors of a set of inputs.

    ``I = E_x[KL(q(z|x) || p(z))] - KL(q(z) || p(z))``; the prior terms cancel, leaving
    ``E_x E_{z~q(z|x)}[log q(z|x) - log q(z)]``. The aggregate posterior ``q(z)`` is the
    equal-weight mixture of the posteriors of *all* ``N`` rows given (the full set, not
    mini-batches), so ``log q(z_i) = logsumexp_j log q(z_i|x_j) - log N``. One ``z_i`` is drawn
    from each posterior.

    Bias: each ``z_i`` meets its own posterior in the mixture, so the estimate never exceeds
    ``log N`` and is biased low once the true value nears ``log N`` (evaluate more inputs).

    Each term's expectation is ``KL(q(z|x_i) || q(z)) >= 0``, so a negative estimate is only
    sampling noise around zero; it is reported as 0.

    Args:
        mu: ``[N, latent_dim]`` posterior means.
        logvar: ``[N, latent_dim]`` posterior log-variances.
        generator: CPU random generator for the ``z`` draws (reproducible estimates).

    Returns:
        The estimate in nats, in ``[0, log N]``.
    """
    if mu.dim() != 2 or mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must both be [N, latent_dim], got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    if mu.size(0) == 0:
        raise ValueError("mutual_information needs at least one posterior")
    # float64: with small variances the expanded square below cancels large terms.
    mu = mu.detach().to("cpu", torch.float64)
    logvar = logvar.detach().to("cpu", torch.float64)
    noise = torch.randn(mu.shape, generator=generator, dtype=torch.float64)
    z = SeqVAE.reparameterize(mu, logvar, noise)
    own = _diagonal_gaussian_log_density(z, mu, logvar)
    aggregate = _log_mixture_density(z, mu, logvar)
    estimate = (own - aggregate).mean().item()
    # The two densities come from differently rounded formulas; keep the estimate in its range.
    return min(max(estimate, 0.0), math.log(mu.size(0)))


def _diagonal_gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z_i; mu_i, exp(logvar_i))`` row by row: ``[N, D]`` inputs -> ``[N]``."""
    squared = (z - mu).pow(2) * torch.exp(-logvar)
    return -0.5 * (squared + logvar + math.log(2 * math.pi)).sum(dim=1)


def _log_mixture_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log (1/N) sum_j N(z_i; mu_j, exp(logvar_j))`` for every row ``z_i``: ``[N, D]`` -> ``[N]``."""
    count, dim = mu.shape
    precision = torch.exp(-logvar)  # [N, D]
    scaled_mean = mu * precision
    mean_term = (mu.pow(2) * precision).sum(dim=1)  # [N]
    normaliser = logvar.sum(dim=1) + dim * math.log(2 * math.pi)  # [N]
    log_densities = []
    for rows in z.split(_MIXTURE_CHUNK_ROWS):
        # (z - mu)^2 / var expanded, so that all pairs (i, j) are matrix products, not [C, N, D].
        squared = rows.pow(2) @ precision.T - 2 * rows @ scaled_mean.T + mean_term  # [C, N]
        pairwise = -0.5 * (squared.clamp(min=0.0) + normaliser)
        log_densities.append(torch.logsumexp(pairwise, dim=1) - math.log(count))
    return torch.cat(log_densities)


# ------------------------------------------------------------------------------ token accuracy


def teacher_forced_token_counts(
    model: SeqVAE, input_ids: torch.Tensor, attention_mask: torch.Tensor, z: torch.Tensor
) -> tuple[int, int]:
    """Correct argmax predictions and real target tokens of teacher-forced decoding from ``z``.

    Args:
        model: the VAE; conditional models decode with no condition given.
        input_ids: ``[B, T]`` ``<bos> tokens <eos>`` padded.
        attention_mask: ``[B, T]`` 1 for real tokens.
        z: ``[B, latent_dim]`` latents to decode from (usually the posterior means).

    Returns:
        ``(correct, total)`` over the non-padding targets ``input_ids[:, 1:]``.
    """
    logits, _ = model.decode_logits(input_ids[:, :-1], z)
    targets = input_ids[:, 1:]
    real = attention_mask[:, 1:].bool()
    correct = (logits.argmax(dim=-1) == targets) & real
    return int(correct.sum()), int(real.sum())


# ---------------------------------------------------------------------------------- diagnostics


@dataclass
class _PosteriorPass:
    """What one pass of the encoder and decoder over the evaluated inputs collects."""

    inputs: list[str] = field(default_factory=list)
    means: list[torch.Tensor] = field(default_factory=list)
    logvars: list[torch.Tensor] = field(default_factory=list)
    reconstructed: list[str] = field(default_factory=list)
    posterior_samples: list[str] = field(default_factory=list)
    correct_tokens: int = 0
    target_tokens: int = 0
    skipped: int = 0


def latent_diagnostics(
    vae,
    smiles: list[str],
    *,
    batch_size: int = 256,
    num_samples: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """How a trained model uses its latent space, measured on ``smiles``.

    Conditional models (``config.num_properties > 0``) encode and decode with no condition
    given, as :meth:`SeqVAEPipeline.encode` does, so ``z`` has to carry the properties itself.
    Inputs that are not valid molecules (or that the tokenizer cannot encode) are skipped and
    counted in ``num_skipped``. Text models are measured too: reconstruction is then an exact
    string match, and the two validity entries are ``None``.

    Args:
        vae: a :class:`~seqvae.pipeline.SeqVAEPipeline` (``seqvae.load(run_dir)``).
        smiles: the molecules to evaluate, e.g. a held-out set (a few thousand is plenty; the
            mutual information compares all pairs, ``N^2`` work).
        batch_size: inputs encoded and decoded at once.
        num_samples: molecules decoded from the prior for ``prior_sample_validity`` (0: skip).
        seed: seed of every random draw (posterior noise, sampling, the MI estimate).
        progress: show progress bars.

    Returns:
        JSON-safe numbers: ``num_molecules`` (evaluated), ``num_skipped``, ``latent_dim``,
        ``reconstruction_accuracy``, ``token_accuracy``, ``active_units``,
        ``kl_per_dimension`` (mean KL(q(z|x) || N(0, I)) of each dimension, nats),
        ``kl_total`` (their sum, nats per molecule), ``mutual_information`` (nats),
        ``mutual_information_bound`` (``log num_molecules``, the estimator's ceiling),
        ``mutual_information_estimator``, ``prior_sample_validity`` (``num_samples`` decoded
        from ``z ~ N(0, I)`` with the model's usual sampling), ``num_prior_samples`` and
        ``posterior_sample_validity`` (one molecule sampled from ``z ~ q(z|x)`` per input).

    Raises:
        SeqVAEError: ``smiles`` is empty or holds no usable input, or a count is out of range.
    """
    items = _checked_inputs(smiles)
    _check_int_at_least("batch_size", batch_size, minimum=1)
    _check_int_at_least("num_samples", num_samples, minimum=0)
    _check_int_at_least("seed", seed, minimum=0)
    usable = [item for item in items if _is_usable(item, vae.representation)]
    noise = torch.Generator().manual_seed(seed)
    with torch.no_grad(), eval_mode(vae.model):
        collected = _posterior_pass(vae, usable, batch_size, noise, progress)
        collected.skipped += len(items) - len(usable)
        if not collected.inputs:
            raise SeqVAEError(
                f"none of the {len(items)} inputs could be evaluated (invalid molecules or symbols the "
                "tokenizer cannot encode); pass valid SMILES such as the held-out split of the run"
            )
        prior_samples = vae.sample(num_samples, seed=seed, progress=progress) if num_samples else []
    mu, logvar = torch.cat(collected.means), torch.cat(collected.logvars)
    kl_per_dimension = [float(value) for value in gaussian_kl_per_dim(mu, logvar).mean(dim=0)]
    information = mutual_information(mu, logvar, torch.Generator().manual_seed(_draw_seed(noise)))
    molecules = vae.representation != "text"
    return {
        "num_molecules": len(collected.inputs),
        "num_skipped": collected.skipped,
        "latent_dim": int(mu.size(1)),
        "reconstruction_accuracy": _reconstruction_accuracy(collected.inputs, collected.reconstructed, molecules),
        "token_accuracy": collected.correct_tokens / max(collected.target_tokens, 1),
        "active_units": active_units(mu),
        "kl_per_dimension": kl_per_dimension,
        "kl_total": float(sum(kl_per_dimension)),
        "mutual_information": information,
        "mutual_information_bound": math.log(len(collected.inputs)),
        "mutual_information_estimator": MUTUAL_INFORMATION_ESTIMATOR,
        "prior_sample_validity": fraction_valid(prior_samples) if molecules and prior_samples else None,
        "num_prior_samples": num_samples,
        "posterior_sample_validity": fraction_valid(collected.posterior_samples) if molecules else None,
        "reconstruction_bleu": None if molecules else reconstruction_bleu(collected.inputs, collected.reconstructed),
    }


def _posterior_pass(vae, usable: list[str], batch_size: int, noise: torch.Generator, progress: bool) -> _PosteriorPass:
    """Encode ``usable`` in batches; decode greedily from ``mu`` and by sampling from ``q(z|x)``."""
    collected = _PosteriorPass()
    model = vae.model
    with tqdm(total=len(usable), desc="latent diagnostics", unit="mol", disable=not progress) as bar:
        for start in range(0, len(usable), batch_size):
            chunk = usable[start : start + batch_size]
            kept, batch = _tokenize_skipping_failures(vae, chunk)
            collected.skipped += len(chunk) - len(kept)
            bar.update(len(chunk))
            if not kept:
                continue
            mu, logvar = model.encode(batch["input_ids"], batch["attention_mask"])  # no condition
            correct, total = teacher_forced_token_counts(model, batch["input_ids"], batch["attention_mask"], mu)
            epsilon = torch.randn(mu.shape, generator=noise).to(mu.device)
            z = SeqVAE.reparameterize(mu, logvar, epsilon)
            collected.inputs.extend(kept)
            collected.means.append(mu.float().cpu())
            collected.logvars.append(logvar.float().cpu())
            collected.reconstructed.extend(vae.decode(mu, strategy="greedy"))
            collected.posterior_samples.extend(vae.decode(z, strategy="sample", seed=_draw_seed(noise)))
            collected.correct_tokens += correct
            collected.target_tokens += total
    return collected


def _tokenize_skipping_failures(vae, chunk: list[str]) -> tuple[list[str], dict | None]:
    """``vae.tokenize(chunk)``; when it rejects the batch, retry row by row and drop the rows it rejects."""
    try:
        return chunk, vae.tokenize(chunk)
    except SeqVAEError:
        kept = [item for item in chunk if _tokenizes(vae, item)]
        return kept, (vae.tokenize(kept) if kept else None)


def _tokenizes(vae, item: str) -> bool:
    try:
        vae.tokenize([item])
    except SeqVAEError:
        return False
    return True


def _is_usable(item, representation: str) -> bool:
    if not isinstance(item, str) or not item.strip():
        return False
    return representation == "text" or canonical_smiles(item) is not None


def _reconstruction_accuracy(inputs: list[str], outputs: list[str], molecules: bool) -> float:
    if molecules:
        return reconstruction_accuracy(inputs, outputs)
    return sum(a == b for a, b in zip(inputs, outputs)) / len(inputs)


def _checked_inputs(smiles) -> list:
    if isinstance(smiles, str):  # one molecule, as the pipeline's methods accept
        smiles = [smiles]
    try:
        items = list(smiles)
    except TypeError:
        raise SeqVAEError(f"latent_diagnostics needs a list of SMILES strings, got {type(smiles).__name__}") from None
    if not items:
        raise SeqVAEError(
            "latent_diagnostics got an empty list of molecules; pass the SMILES to evaluate, "
            "e.g. the held-out split of the run"
        )
    return items


def _check_int_at_least(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SeqVAEError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _draw_seed(generator: torch.Generator) -> int:
    """A fresh seed from ``generator``, so that each random consumer gets its own stream."""
    return int(torch.randint(0, 2**62, (), generator=generator))
