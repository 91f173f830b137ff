"""Unit tests of seqvae.metrics: MOSES-style validity, uniqueness, novelty, reconstruction."""

from __future__ import annotations

import pytest

from seqvae.metrics import (
    fraction_novel,
    fraction_unique,
    fraction_valid,
    reconstruction_accuracy,
)
from seqvae.metrics.molecules import canonical_valid


def test_canonical_valid_drops_invalid_and_canonicalises_in_order():
    assert canonical_valid(["OCC", "xx", "C1=CC=CC=C1", ""]) == ["CCO", "c1ccccc1"]


@pytest.mark.parametrize(
    "smiles, expected",
    [
        (["CCO", "c1ccccc1", "xx", "C1CC"], 0.5),  # unclosed ring is invalid
        (["CCO", "OCC"], 1.0),
        (["", "(((", "C(C)(C)(C)(C)C"], 0.0),  # pentavalent carbon fails sanitisation
        ([], 0.0),
    ],
)
def test_fraction_valid(smiles, expected):
    assert fraction_valid(smiles) == pytest.approx(expected)


@pytest.mark.parametrize(
    "smiles, expected",
    [
        (["CCO", "OCC", "C(O)C", "c1ccccc1"], 0.5),  # three spellings of ethanol + benzene
        (["CCO", "CCN", "CCC"], 1.0),
        (["CCO", "xx", "yy"], 1.0),  # uniqueness is among valid molecules only
        (["xx"], 0.0),
        ([], 0.0),
    ],
)
def test_fraction_unique_compares_canonical_forms_of_valid_molecules(smiles, expected):
    assert fraction_unique(smiles) == pytest.approx(expected)


def test_fraction_novel_counts_distinct_valid_molecules_absent_from_training():
    training = ["OCC", "c1ccccc1", "not a molecule"]
    generated = ["CCO", "C1=CC=CC=C1", "CCN", "NCC", "CCC", "xx"]
    # distinct valid: ethanol, benzene (both in training, other spellings), ethylamine, propane
    assert fraction_novel(generated, training) == pytest.approx(0.5)
    assert fraction_novel(generated, []) == pytest.approx(1.0)
    assert fraction_novel(["xx"], training) == 0.0
    assert fraction_novel(["CCO"], ["C(O)C"]) == 0.0


def test_reconstruction_accuracy_matches_molecules_not_strings():
    inputs = ["CCO", "c1ccccc1", "CCN", "CC(=O)O"]
    outputs = ["OCC", "C1=CC=CC=C1", "CCC", ""]
    assert reconstruction_accuracy(inputs, outputs) == pytest.approx(0.5)


def test_reconstruction_accuracy_never_counts_invalid_pairs_as_equal():
    assert reconstruction_accuracy(["xx", "yy"], ["xx", "zz"]) == 0.0
    assert reconstruction_accuracy(["CCO"], ["xx"]) == 0.0


def test_reconstruction_accuracy_respects_stereochemistry():
    assert reconstruction_accuracy(["C[C@H](N)O"], ["C[C@@H](N)O"]) == 0.0
    assert reconstruction_accuracy(["C[C@H](N)O"], ["N[C@@H](C)O"]) == 1.0  # same centre, other order


def test_reconstruction_accuracy_of_nothing_is_zero_and_lengths_must_match():
    assert reconstruction_accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="2 inputs but 1 outputs"):
        reconstruction_accuracy(["CCO", "CCN"], ["CCO"])


def test_sample_quality_agrees_with_the_single_metrics():
    from seqvae.metrics import (
        fraction_novel,
        fraction_unique,
        fraction_valid,
        sample_quality,
    )

    samples = ["CCO", "OCC", "c1ccccc1", "not a molecule", "C1=CC=CC=C1", "CCN"]
    training = ["OCC", "NCC"]
    assert sample_quality(samples, training) == {
        "validity": fraction_valid(samples),
        "uniqueness": fraction_unique(samples),
        "novelty": fraction_novel(samples, training),
    }
    assert sample_quality(samples, training)["novelty"] == 1 / 3  # benzene only; ethanol, ethylamine seen
