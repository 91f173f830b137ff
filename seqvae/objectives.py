"""Training objectives against posterior collapse: KL schedules, free bits, word dropout, and a
maximum mean discrepancy (MMD) between the batch's latents and the prior.

Schedules are pure functions of the optimiser step, so they can be plotted, tested at their
boundaries and resumed from a checkpoint without hidden state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "KL_SCHEDULES",
    "KLSchedule",
    "kl_weight_at",
    "free_bits_kl",
    "word_dropout",
    "mmd_to_prior",
    "active_units",
]

KL_SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")


@dataclass(frozen=True)
class KLSchedule:
    """How the KL weight (beta) moves with the optimiser step.

    Attributes:
        kind: ``constant`` (always ``max_weight``), ``linear`` (``min_weight`` to ``max_weight``
            over ``warmup_steps`` after ``start_step``), ``sigmoid`` (Bowman et al. 2016: a
            logistic curve centred at ``start_step + warmup_steps / 2``) or ``cyclical``
            (Fu et al. 2019: ``num_cycles`` cycles over ``total_steps``; in each, a linear rise
            over ``ratio`` of the cycle, then ``max_weight`` for the rest).
        min_weight, max_weight: the weight's range.
        start_step: steps spent at ``min_weight`` before the rise (linear and sigmoid).
        warmup_steps: length of the rise (linear and sigmoid).
        total_steps: training length, used by the cyclical schedule.
        num_cycles: cycles of the cyclical schedule.
        ratio: rising fraction of each cycle.
        sigmoid_steepness: slope of the sigmoid; 10 spans about 99% of the range over the rise.
    """

    kind: str = "linear"
    min_weight: float = 0.0
    max_weight: float = 1.0
    start_step: int = 0
    warmup_steps: int = 1000
    total_steps: int = 10000
    num_cycles: int = 4
    ratio: float = 0.5
    sigmoid_steepness: float = 10.0

    def __post_init__(self):
        if self.kind not in KL_SCHEDULES:
            raise ValueError(
                f"kl_schedule={self.kind!r} is not supported; choose one of {', '.join(KL_SCHEDULES)}"
            )
        if self.max_weight < self.min_weight:
            raise ValueError(
                f"kl max_weight ({self.max_weight}) is below min_weight ({self.min_weight})"
            )


def kl_weight_at(step: int, schedule: KLSchedule) -> float:
    """KL weight at optimiser ``step`` (0-based) under ``schedule``."""
    low, high = schedule.min_weight, schedule.max_weight
    if schedule.kind == "constant":
        return high
    if schedule.kind == "linear":
        if schedule.warmup_steps <= 0:
            return high if step >= schedule.start_step else low
        progress = (step - schedule.start_step) / schedule.warmup_steps
        return low + (high - low) * min(max(progress, 0.0), 1.0)
    if schedule.kind == "sigmoid":
        centre = schedule.start_step + schedule.warmup_steps / 2
        scale = max(schedule.warmup_steps, 1) / schedule.sigmoid_steepness
        return low + (high - low) / (1.0 + math.exp(-(step - centre) / scale))
    # cyclical
    cycle_length = max(schedule.total_steps / schedule.num_cycles, 1.0)
    position = (step % cycle_length) / cycle_length
    return low + (high - low) * min(position / schedule.ratio, 1.0)


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


def mmd_to_prior(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unbiased squared MMD between latents ``z`` ``[B, latent_dim]`` and as many N(0, I) draws.

    The InfoVAE / WAE-MMD term (Zhao et al. 2019; Tolstikhin et al. 2018): it pulls the
    *aggregate* posterior toward the prior without widening each molecule's own posterior, so a
    low KL weight can keep the molecule in ``z`` while prior samples still land where the decoder
    was trained. Inverse multiquadratic kernels ``C / (C + ||a - b||^2)`` summed over scales of
    ``C = 2 * latent_dim`` (the expected squared distance of two prior draws is ``2 * latent_dim``).
    """
    batch, dim = z.shape
    if batch < 2:
        return z.sum() * 0
    prior = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=z.device)

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        distances = torch.cdist(a, b).pow(2)
        return sum(scale * 2 * dim / (scale * 2 * dim + distances) for scale in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))

    within_z = kernel(z, z)[off_diagonal].mean()
    within_prior = kernel(prior, prior)[off_diagonal].mean()
    across = kernel(z, prior).mean()
    return within_z + within_prior - 2 * across


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across data: ``Var_x[mu_d(x)] >= threshold``.

    ``mu`` is ``[N, latent_dim]`` over a data set (Burda et al. 2016).
    """
    if mu.size(0) < 2:
        return 0
    return int((mu.float().var(dim=0) >= threshold).sum().item())
