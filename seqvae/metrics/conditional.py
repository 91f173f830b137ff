"""How well conditional generation hits its targets.

For molecules generated at target ``t`` of a property, measured by RDKit:

* MAD: mean absolute deviation ``|measured - t|`` over the *valid* molecules;
* hit rate: share of the generated molecules (invalid ones count as misses) within the
  tolerance of the target; ``hit_rate_valid`` is the same share among valid molecules;
* Spearman correlation between targets and measured values over a grid of targets, per
  molecule and between each target and the mean it achieved.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["TOLERANCES", "control_metrics", "spearman"]

# Hit tolerances of the conditional benchmark (issue 3): logP +-0.5, QED +-0.1, SAS +-0.5.
TOLERANCES = {"logP": 0.5, "qed": 0.1, "SAS": 0.5}


def control_metrics(frame: pd.DataFrame, prop: str, target: float, tolerance: float | None = None) -> dict:
    """MAD, hit rate and the measured distribution of ``prop`` in a sample frame.

    Args:
        frame: ``sample_frame`` output (``valid`` and a ``prop`` column of measured values).
        prop: property name.
        target: the value aimed at (may differ from ``frame``'s own target, e.g. to score
            unconditional samples against a target).
        tolerance: hit tolerance (default: :data:`TOLERANCES`).
    """
    tolerance = TOLERANCES.get(prop, math.nan) if tolerance is None else tolerance
    measured = frame.loc[frame["valid"], prop].astype(float)
    deviation = (measured - target).abs()
    hits = int((deviation <= tolerance).sum())
    return {
        "target": target,
        "mad": _round(deviation.mean()),
        "hit_rate": _round(hits / len(frame)) if len(frame) else 0.0,
        "hit_rate_valid": _round(hits / len(measured)) if len(measured) else 0.0,
        "tolerance": tolerance,
        "measured_mean": _round(measured.mean()),
        "measured_std": _round(measured.std(ddof=0)),
    }


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties); NaN with fewer than two pairs."""
    pairs = pd.DataFrame({"x": list(x), "y": list(y)}).dropna()
    if len(pairs) < 2:
        return math.nan
    return _round(pairs["x"].rank().corr(pairs["y"].rank()))


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits) if value == value else math.nan
