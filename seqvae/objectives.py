"""The VAE objective, composed once (:func:`vae_loss`) from the model's ELBO terms, and the
tools against posterior collapse: KL schedules, free bits, word dropout, condition hiding and a
maximum mean discrepancy (MMD) between the batch's latents and the prior. Training and validation
both call :func:`vae_loss`; the settings are :class:`~seqvae.arguments.ObjectiveArguments`.

Schedules are pure functions of the optimiser step, so they can be plotted, tested at their
boundaries and resumed from a checkpoint without hidden state.
"""

from __future__ import annotations

import math

import torch

from .arguments import ObjectiveArguments

__all__ = [
    "vae_loss",
    "kl_weight_at",
    "free_bits_kl",
    "word_dropout",
    "hide_conditions",
    "mmd_to_prior",
    "active_units",
]


def vae_loss(
    outputs,
    objective: ObjectiveArguments,
    kl_weight: float,
    row_share: float = 1.0,
    token_share: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The training objective, composed here and nowhere else:

        recon + kl_weight * free_bits_kl(kl_per_dim) + property_loss_weight * property_mse
              + mmd_weight * mmd_to_prior(z)     (of (z, condition) pairs with mmd_with_conditions)

    Args:
        outputs: a :class:`~seqvae.modeling.SeqVAEOutput` (the model's ELBO terms).
        objective: the settings (reduction, free bits, weights).
        kl_weight: beta at this step (:func:`kl_weight_at`); validation passes 1.
        row_share, token_share: this chunk's share of its batch's rows and target tokens, when a
            batch runs in chunks; per-sequence terms scale by rows, a per-token reconstruction by
            tokens, so the chunks' gradients add up to the whole batch's.
        generator: draws of the MMD's prior sample (validation passes a seeded one).

    Returns:
        ``(loss, mmd)``; ``mmd`` is ``None`` when ``mmd_weight`` is 0.
    """
    per_sequence = objective.loss_reduction == "sequence"
    recon = outputs.recon_loss if per_sequence else outputs.recon_loss_per_token
    kl_term = free_bits_kl(outputs.kl_per_dim, objective.free_bits, objective.free_bits_total)
    loss = (row_share if per_sequence else token_share) * recon + row_share * kl_weight * kl_term
    if outputs.property_loss is not None:
        loss = loss + row_share * objective.property_loss_weight * outputs.property_loss
    mmd = None
    if objective.mmd_weight > 0:
        condition = outputs.condition if objective.mmd_with_conditions else None
        mmd = mmd_to_prior(outputs.z, generator, condition)
        loss = loss + row_share * objective.mmd_weight * mmd
    return loss, mmd


SIGMOID_STEEPNESS = 10.0  # the sigmoid schedule spans about 99% of its range over the rise


def kl_weight_at(step: int, objective: ObjectiveArguments, total_steps: int = 10_000) -> float:
    """KL weight at optimiser ``step`` (0-based) under ``objective``'s ``kl_*`` settings.

    ``total_steps`` (the training length) sets the cycle length of the cyclical schedule.
    """
    low, high = objective.kl_min_weight, objective.kl_max_weight
    start, warmup = objective.kl_start_step, objective.kl_warmup_steps
    if objective.kl_schedule == "constant":
        return high
    if objective.kl_schedule == "linear":
        if warmup <= 0:
            return high if step >= start else low
        progress = (step - start) / warmup
        return low + (high - low) * min(max(progress, 0.0), 1.0)
    if objective.kl_schedule == "sigmoid":
        centre = start + warmup / 2
        scale = max(warmup, 1) / SIGMOID_STEEPNESS
        return low + (high - low) / (1.0 + math.exp(-(step - centre) / scale))
    # cyclical
    cycle_length = max(total_steps / objective.kl_num_cycles, 1.0)
    position = (step % cycle_length) / cycle_length
    return low + (high - low) * min(position / objective.kl_cycle_ratio, 1.0)


def free_bits_kl(
    kl_per_dim: torch.Tensor, per_dim: float = 0.0, total: float = 0.0
) -> torch.Tensor:
    """KL term with free bits: KL below the floor is not penalised (Kingma et al. 2016).

    Args:
        kl_per_dim: ``[latent_dim]`` KL per dimension, averaged over the batch.
        per_dim: floor (nats) for each dimension; ``max(kl_d, per_dim)`` summed over ``d``.
        total: floor (nats) for the summed KL; ``max(sum_d kl_d, total)``.

    Returns:
        A scalar to be weighted by the KL schedule. Gradients vanish for dimensions (or the
        total) under their floor, so the encoder is free to spend that much information.
    """
    if per_dim > 0:
        kl = torch.clamp(kl_per_dim, min=per_dim).sum()
    else:
        kl = kl_per_dim.sum()
    if total > 0:
        kl = torch.clamp(kl, min=total)
    return kl


def word_dropout(
    decoder_input_ids: torch.Tensor,
    probability: float,
    unk_token_id: int,
    keep_token_ids: tuple[int, ...],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace decoder inputs by ``<unk>`` with ``probability`` (Bowman et al. 2016).

    Tokens in ``keep_token_ids`` (padding, ``<bos>``) are never replaced. Returns a new tensor;
    the input is left unchanged so the targets stay intact.
    """
    if probability <= 0:
        return decoder_input_ids
    drop = torch.rand(decoder_input_ids.shape, generator=generator, device=decoder_input_ids.device)
    drop = drop < probability
    for token_id in keep_token_ids:
        drop &= decoder_input_ids != token_id
    return decoder_input_ids.masked_fill(drop, unk_token_id)


def hide_conditions(shape, drop_probability: float, unconditional_probability: float) -> torch.Tensor:
    """``[B, P]`` bool: which properties each training example is conditioned on.

    The twin of word dropout for conditions: each property is hidden with ``drop_probability``
    and whole rows with ``unconditional_probability``, so that any subset of conditions (and
    none) works at sampling time.
    """
    keep = torch.rand(shape) >= drop_probability
    unconditional = torch.rand(shape[0], 1) < unconditional_probability
    return keep & ~unconditional


def mmd_to_prior(
    z: torch.Tensor, generator: torch.Generator | None = None, condition: torch.Tensor | None = None
) -> torch.Tensor:
    """Unbiased squared MMD between latents ``z`` ``[B, latent_dim]`` and as many N(0, I) draws.

    The InfoVAE / WAE-MMD term (Zhao et al. 2019; Tolstikhin et al. 2018): it pulls the
    *aggregate* posterior toward the prior without widening each molecule's own posterior, so a
    low KL weight can keep the molecule in ``z`` while prior samples still land where the decoder
    was trained. Inverse multiquadratic kernels ``C / (C + ||a - b||^2)`` summed over scales of
    ``C = 2 * dim`` for vectors of width ``dim`` (two N(0, I) draws lie ``2 * dim`` apart in squared
    distance, on average).

    With ``condition`` (``[B, condition_size]``, a conditional model's condition vectors), the
    pairs ``(z_i, c_i)`` are compared with ``(prior draw_i, c_i)`` under the product of a kernel
    on ``z`` and one on ``c``. The prior draws do not depend on ``c``, so that sample comes from
    ``N(0, I) x p(c)``, and the term also pulls ``z`` to be independent of the condition: the
    decoder, sampled with ``z ~ N(0, I)`` at any target, must take the properties from ``c``
    (the aim of Fader networks' adversary, Lample et al. 2017, as a kernel test instead).
    """
    batch = z.size(0)
    if batch < 2:
        return z.sum() * 0
    prior = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
    within_z, within_prior, across = _imq_kernel(z, z), _imq_kernel(prior, prior), _imq_kernel(z, prior)
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=z.device)
    if condition is not None:
        condition = condition.to(z.dtype)
        within_condition = _imq_kernel(condition, condition)
        within_z, within_prior = within_z * within_condition, within_prior * within_condition
        # row i's two pairs share c_i: the cross term leaves them out, as each sample leaves out its diagonal
        across = (across * within_condition)[off_diagonal]
    return within_z[off_diagonal].mean() + within_prior[off_diagonal].mean() - 2 * across.mean()


def _imq_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[len(a), len(b)]`` inverse multiquadratic kernel summed over scales of ``2 * dim``."""
    distances = torch.cdist(a, b).pow(2)
    scale = 2 * a.size(1)
    return sum(c * scale / (c * scale + distances) for c in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))


ACTIVE_UNIT_THRESHOLD = 0.01


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Latent dimensions whose posterior mean varies across data: ``Var_x[mu_d(x)] >= threshold``.

    ``mu`` is ``[N, latent_dim]`` over a data set (Burda et al. 2016).
    """
    if mu.size(0) < 2:
        return 0
    return int((mu.float().var(dim=0) >= threshold).sum().item())
