"""The size adjustment the MOSES agreement benchmark applies to FCD (benchmarks/moses_agreement.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.moses_agreement import at_size, fcd_size_curve


def test_at_size_recovers_a_curve_of_the_form_a_plus_b_over_n():
    curve = {n: 0.4 + 1200.0 / n for n in (5000, 10000, 30000)}
    fit = at_size(curve, 1_000_000)
    assert abs(fit["intercept"] - 0.4) < 1e-9 and abs(fit["slope"] - 1200.0) < 1e-6
    assert abs(fit["value"] - 0.4012) < 1e-9


def test_fcd_of_subsets_falls_with_size_and_extrapolates_near_zero_for_the_same_distribution():
    generator = np.random.default_rng(0)
    dimension = 16
    reference = generator.normal(size=(200_000, dimension))
    statistics = SimpleNamespace(fcd_mean=reference.mean(0), fcd_covariance=np.cov(reference.T))
    samples = generator.normal(size=(4000, dimension))  # same distribution as the reference
    curve = fcd_size_curve(samples, statistics, sizes=(250, 500, 1000, 2000, 4000), repeats=5)
    values = list(curve.values())
    assert values == sorted(values, reverse=True), curve  # the finite-sample bias shrinks with n
    fit = at_size(curve, 1_000_000)
    assert fit["slope"] > 0 and abs(fit["value"]) < 0.2 * values[-1], (fit, curve)
