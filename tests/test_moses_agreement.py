"""The acceptance test of the MOSES metrics: 30,000 molecules drawn from the MOSES train split,
evaluated against test and test_scaffolds, reproduce the "Train" row of the MOSES README.

Slow (a few minutes with cached reference statistics, ~15 without) and needs ../shared/data.
The tolerances and their reasons are in ``benchmarks/moses_agreement.py``, which also measures
the spread over draws and the timing.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from seqvae.evaluation import read_molecules
from seqvae.metrics.moses import moses_metrics

ROOT = Path(__file__).resolve().parents[1]
MOSES_DATA = ROOT.parent / "shared" / "data" / "moses"
sys.path.insert(0, str(ROOT / "benchmarks"))
from moses_agreement import TOLERANCE, TRAIN_ROW  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.shared_data,
    pytest.mark.skipif(not MOSES_DATA.is_dir(), reason=f"MOSES data folder {MOSES_DATA} is absent"),
]


def test_thirty_thousand_train_molecules_reproduce_the_moses_train_row():
    train = read_molecules("moses:train", "train", MOSES_DATA)
    test = read_molecules("moses:test", "test", MOSES_DATA)
    scaffolds = read_molecules("moses:test_scaffolds", "test_scaffolds", MOSES_DATA)
    metrics = moses_metrics(random.Random(0).sample(train, 30000), test, scaffolds, n_jobs=2)
    assert metrics["valid"] == 1.0 and metrics["unique@10000"] == 1.0
    differences = {key: round(metrics[key] - published, 5) for key, published in TRAIN_ROW.items()}
    outside = {key: diff for key, diff in differences.items() if abs(diff) > TOLERANCE[key]}
    assert not outside, f"differences from the MOSES Train row beyond tolerance: {outside} (all: {differences})"
