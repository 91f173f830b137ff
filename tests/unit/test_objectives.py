"""Unit tests of seqvae.objectives: KL schedules at their boundaries, free bits, word dropout,
active units."""

from __future__ import annotations

import pytest
import torch

from seqvae.arguments import ObjectiveArguments
from seqvae.errors import SeqVAEError
from seqvae.objectives import active_units, free_bits_kl, kl_weight_at, word_dropout

# ------------------------------------------------------------------------------ schedules


def test_constant_schedule_is_always_max_weight():
    schedule = ObjectiveArguments(kl_schedule="constant", kl_min_weight=0.1, kl_max_weight=0.7, kl_warmup_steps=10)
    assert [kl_weight_at(step, schedule) for step in (0, 5, 10, 10_000)] == [0.7] * 4


def test_linear_schedule_boundaries():
    schedule = ObjectiveArguments(kl_schedule="linear", kl_min_weight=0.2, kl_max_weight=1.0, kl_start_step=100, kl_warmup_steps=200)
    assert kl_weight_at(0, schedule) == pytest.approx(0.2)
    assert kl_weight_at(100, schedule) == pytest.approx(0.2)  # start_step: still the minimum
    assert kl_weight_at(200, schedule) == pytest.approx(0.6)  # half-way through the warm-up
    assert kl_weight_at(300, schedule) == pytest.approx(1.0)  # end of the warm-up
    assert kl_weight_at(10_000, schedule) == pytest.approx(1.0)


def test_linear_schedule_is_monotone_and_bounded():
    schedule = ObjectiveArguments(kl_schedule="linear", kl_min_weight=0.0, kl_max_weight=0.5, kl_start_step=3, kl_warmup_steps=17)
    weights = [kl_weight_at(step, schedule) for step in range(40)]
    assert weights == sorted(weights)
    assert min(weights) == 0.0 and max(weights) == 0.5


def test_linear_schedule_without_warmup_jumps_at_start_step():
    schedule = ObjectiveArguments(kl_schedule="linear", kl_min_weight=0.0, kl_max_weight=1.0, kl_start_step=10, kl_warmup_steps=0)
    assert kl_weight_at(9, schedule) == 0.0
    assert kl_weight_at(10, schedule) == 1.0


def test_sigmoid_schedule_is_the_midpoint_at_its_centre():
    schedule = ObjectiveArguments(kl_schedule="sigmoid", kl_min_weight=0.0, kl_max_weight=1.0, kl_start_step=50, kl_warmup_steps=100)
    assert kl_weight_at(100, schedule) == pytest.approx(0.5, abs=1e-12)
    shifted = ObjectiveArguments(kl_schedule="sigmoid", kl_min_weight=0.2, kl_max_weight=0.6, kl_start_step=0, kl_warmup_steps=10)
    assert kl_weight_at(5, shifted) == pytest.approx(0.4, abs=1e-12)


def test_sigmoid_schedule_rises_monotonically_from_near_min_to_near_max():
    schedule = ObjectiveArguments(kl_schedule="sigmoid", kl_min_weight=0.1, kl_max_weight=1.0, kl_start_step=20, kl_warmup_steps=100)
    weights = [kl_weight_at(step, schedule) for step in range(0, 200)]
    assert all(a < b for a, b in zip(weights, weights[1:]))
    assert kl_weight_at(20, schedule) == pytest.approx(0.1, abs=0.01 * 0.9)  # within 1% of the range
    assert kl_weight_at(120, schedule) == pytest.approx(1.0, abs=0.01 * 0.9)
    assert all(0.1 <= w <= 1.0 for w in weights)


def test_cyclical_schedule_boundaries():
    # 4 cycles over 400 steps: each cycle 100 steps, rising over the first half
    schedule = ObjectiveArguments(kl_schedule="cyclical", kl_min_weight=0.0, kl_max_weight=1.0, kl_num_cycles=4, kl_cycle_ratio=0.5)
    assert kl_weight_at(0, schedule, total_steps=400) == 0.0
    assert kl_weight_at(25, schedule, total_steps=400) == pytest.approx(0.5)
    assert kl_weight_at(50, schedule, total_steps=400) == pytest.approx(1.0)  # ratio * cycle: at the maximum
    assert [kl_weight_at(step, schedule, total_steps=400) for step in range(50, 100)] == [1.0] * 50  # held to the end
    assert kl_weight_at(100, schedule, total_steps=400) == 0.0  # the next cycle starts from the minimum
    assert kl_weight_at(150, schedule, total_steps=400) == pytest.approx(1.0)
    assert kl_weight_at(300, schedule, total_steps=400) == 0.0


def test_cyclical_schedule_respects_min_weight_and_ratio():
    schedule = ObjectiveArguments(kl_schedule="cyclical", kl_min_weight=0.2, kl_max_weight=1.0, kl_num_cycles=2, kl_cycle_ratio=0.8)
    assert kl_weight_at(0, schedule, total_steps=100) == pytest.approx(0.2)
    assert kl_weight_at(20, schedule, total_steps=100) == pytest.approx(0.6)
    assert kl_weight_at(40, schedule, total_steps=100) == pytest.approx(1.0)
    assert kl_weight_at(49, schedule, total_steps=100) == pytest.approx(1.0)
    assert kl_weight_at(50, schedule, total_steps=100) == pytest.approx(0.2)


def test_kl_schedule_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kl_schedule='exponential'") as info:
        ObjectiveArguments(kl_schedule="exponential")
    assert "constant, linear, sigmoid, cyclical" in str(info.value)


def test_kl_schedule_rejects_max_below_min():
    with pytest.raises(ValueError, match="below kl_min_weight"):
        ObjectiveArguments(kl_schedule="linear", kl_min_weight=1.0, kl_max_weight=0.5)


# ------------------------------------------------------------------------------ free bits


def test_free_bits_without_floors_is_the_plain_sum():
    kl = torch.tensor([0.1, 0.5, 2.0])
    assert free_bits_kl(kl).item() == pytest.approx(2.6)


def test_free_bits_per_dimension_counts_small_dims_as_the_floor_and_stops_their_gradient():
    kl = torch.tensor([0.1, 0.5, 2.0, 0.25], requires_grad=True)
    total = free_bits_kl(kl, per_dim=0.3)
    assert total.item() == pytest.approx(0.3 + 0.5 + 2.0 + 0.3)
    total.backward()
    assert kl.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_free_bits_total_floor_applies_to_the_sum():
    below = torch.tensor([0.1, 0.2], requires_grad=True)
    floored = free_bits_kl(below, total=1.0)
    assert floored.item() == pytest.approx(1.0)
    floored.backward()
    assert below.grad.tolist() == [0.0, 0.0]

    above = torch.tensor([0.7, 0.6], requires_grad=True)
    kept = free_bits_kl(above, total=1.0)
    assert kept.item() == pytest.approx(1.3)
    kept.backward()
    assert above.grad.tolist() == [1.0, 1.0]


def test_free_bits_per_dim_and_total_combine():
    kl = torch.tensor([0.0, 0.0, 0.0])
    assert free_bits_kl(kl, per_dim=0.1, total=1.0).item() == pytest.approx(1.0)
    assert free_bits_kl(kl, per_dim=0.5, total=1.0).item() == pytest.approx(1.5)


# ---------------------------------------------------------------------------- word dropout

PAD, BOS, EOS, UNK = 0, 1, 2, 3


def decoder_inputs(rows: int = 200, length: int = 50) -> torch.Tensor:
    """``<bos>`` then tokens 4..19, with the last 10 positions of every other row padded."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 20, (rows, length), generator=generator)
    ids[:, 0] = BOS
    ids[::2, -10:] = PAD
    return ids


def test_word_dropout_with_zero_probability_returns_the_input_unchanged():
    ids = decoder_inputs()
    out = word_dropout(ids, 0.0, UNK, keep_token_ids=(PAD, BOS))
    assert torch.equal(out, ids)


def test_word_dropout_never_replaces_bos_or_padding():
    ids = decoder_inputs()
    out = word_dropout(ids, 0.99, UNK, keep_token_ids=(PAD, BOS), generator=torch.Generator().manual_seed(1))
    protected = (ids == PAD) | (ids == BOS)
    assert torch.equal(out[protected], ids[protected])
    assert (out[~protected] == UNK).float().mean() > 0.95


def test_word_dropout_replaces_about_p_of_the_other_tokens():
    ids = decoder_inputs()
    p = 0.3
    out = word_dropout(ids, p, UNK, keep_token_ids=(PAD, BOS), generator=torch.Generator().manual_seed(2))
    candidates = (ids != PAD) & (ids != BOS)
    n = int(candidates.sum())  # 8,800 tokens
    rate = (out[candidates] == UNK).float().mean().item()
    # binomial std is sqrt(p(1-p)/n) ~ 0.005; allow 5 std
    assert abs(rate - p) < 5 * (p * (1 - p) / n) ** 0.5
    changed = out != ids
    assert torch.equal(changed, (out == UNK) & candidates)  # only <unk> is ever written


def test_word_dropout_does_not_modify_its_input_and_is_reproducible():
    ids = decoder_inputs()
    copy = ids.clone()
    first = word_dropout(ids, 0.5, UNK, keep_token_ids=(PAD, BOS), generator=torch.Generator().manual_seed(3))
    assert torch.equal(ids, copy)
    assert not torch.equal(first, ids)
    again = word_dropout(ids, 0.5, UNK, keep_token_ids=(PAD, BOS), generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)


# ---------------------------------------------------------------------------- active units


def test_active_units_counts_dimensions_whose_mean_varies_at_least_the_threshold():
    generator = torch.Generator().manual_seed(0)
    n = 5000
    mu = torch.stack(
        [
            torch.randn(n, generator=generator) * 1.0,  # var ~1: active
            torch.randn(n, generator=generator) * 0.2,  # var ~0.04: active
            torch.randn(n, generator=generator) * 0.05,  # var ~0.0025: inactive
            torch.full((n,), 3.0),  # constant: inactive
        ],
        dim=1,
    )
    assert active_units(mu) == 2
    assert active_units(mu, threshold=0.001) == 3
    assert active_units(mu, threshold=2.0) == 0


def test_active_units_threshold_is_inclusive():
    mu = torch.tensor([[0.0, 0.0], [0.5, 0.0]])  # unbiased variance exactly 0.125 in dim 0
    assert active_units(mu, threshold=0.125) == 1
    assert active_units(mu, threshold=0.126) == 0


def test_active_units_of_a_single_row_is_zero():
    assert active_units(torch.randn(1, 8)) == 0


def test_mmd_to_prior_is_near_zero_for_prior_draws_and_large_for_a_shifted_batch():
    from seqvae.objectives import mmd_to_prior

    generator = torch.Generator().manual_seed(0)
    matched = torch.randn(256, 16, generator=generator)
    shifted = matched + 3.0
    squeezed = matched * 0.05  # a near-deterministic encoder piling its codes near the origin
    near_zero = mmd_to_prior(matched, torch.Generator().manual_seed(1)).item()
    assert abs(near_zero) < 0.05
    assert mmd_to_prior(shifted, torch.Generator().manual_seed(1)).item() > 20 * max(abs(near_zero), 1e-3)
    assert mmd_to_prior(squeezed, torch.Generator().manual_seed(1)).item() > 20 * max(abs(near_zero), 1e-3)


def test_mmd_to_prior_gradient_pulls_a_shifted_batch_toward_the_origin():
    from seqvae.objectives import mmd_to_prior

    z = (torch.randn(128, 8, generator=torch.Generator().manual_seed(0)) + 2.0).requires_grad_(True)
    mmd_to_prior(z, torch.Generator().manual_seed(1)).backward()
    # gradient descent moves z against the gradient: toward the prior's mean (every coordinate down)
    assert (z.grad.mean(dim=0) > 0).all()


def test_mmd_with_conditions_sees_a_latent_that_encodes_the_condition():
    """Both batches are N(0, I) in z alone, so the plain MMD cannot tell them apart; paired with
    the condition, the latent that copies it is far from N(0, I) x p(c)."""
    from seqvae.objectives import mmd_to_prior

    generator = torch.Generator().manual_seed(0)
    condition = torch.randn(256, 2, generator=generator)
    independent = torch.randn(256, 8, generator=generator)
    dependent = torch.cat([condition, independent[:, 2:]], dim=1)  # z's first two dims are c
    seeded = lambda: torch.Generator().manual_seed(1)  # noqa: E731 - the same prior draws for each
    assert abs(mmd_to_prior(dependent, seeded()).item()) < 0.05
    near_zero = mmd_to_prior(independent, seeded(), condition).item()
    assert abs(near_zero) < 0.05
    assert mmd_to_prior(dependent, seeded(), condition).item() > 0.1 > 2 * abs(near_zero)


def test_mmd_with_conditions_gradient_removes_the_condition_from_z():
    from seqvae.objectives import mmd_to_prior

    generator = torch.Generator().manual_seed(0)
    condition = torch.randn(256, 1, generator=generator)
    z = torch.cat([condition, torch.randn(256, 3, generator=generator)], dim=1).requires_grad_(True)
    mmd_to_prior(z, torch.Generator().manual_seed(1), condition).backward()
    # descending the gradient must weaken z's correlation with c: the step on dim 0 opposes c
    step = -z.grad[:, 0]
    assert torch.corrcoef(torch.stack([step, condition[:, 0]]))[0, 1] < -0.5


def test_mmd_with_conditions_needs_an_mmd_weight():
    with pytest.raises(SeqVAEError, match="mmd_weight"):
        ObjectiveArguments(mmd_with_conditions=True)


def test_mmd_to_prior_of_a_single_row_is_zero():
    from seqvae.objectives import mmd_to_prior

    assert mmd_to_prior(torch.ones(1, 4)).item() == 0.0
