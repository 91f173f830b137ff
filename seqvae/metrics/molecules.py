"""Generation quality of molecules, following the MOSES definitions (Polykovskiy et al. 2020).

* validity: share of generated strings that RDKit parses into a non-empty molecule;
* uniqueness: share of *valid* molecules that are distinct (by canonical SMILES);
* novelty: share of distinct valid molecules absent from the training set (canonical SMILES);
* reconstruction accuracy: share of inputs whose decoded molecule is the same molecule
  (canonical SMILES match).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..chem import canonical_smiles

__all__ = [
    "canonical_valid",
    "canonical_set",
    "fraction_valid",
    "fraction_unique",
    "fraction_novel",
    "sample_quality",
    "reconstruction_accuracy",
]


def canonical_valid(smiles: Iterable[str]) -> list[str]:
    """Canonical SMILES of the valid molecules, in order (invalid ones dropped)."""
    return [c for c in map(canonical_smiles, smiles) if c is not None]


def fraction_valid(smiles: list[str]) -> float:
    """Share of ``smiles`` that are valid molecules (0 for an empty list)."""
    return len(canonical_valid(smiles)) / len(smiles) if smiles else 0.0


def fraction_unique(smiles: list[str]) -> float:
    """Share of the valid molecules that are distinct."""
    valid = canonical_valid(smiles)
    return len(set(valid)) / len(valid) if valid else 0.0


def canonical_set(smiles: Iterable[str]) -> set[str]:
    """Canonical SMILES of the valid molecules, as a set (a training set for novelty)."""
    return {c for c in map(canonical_smiles, smiles) if c is not None}


def _training_set(training_smiles) -> set[str]:
    # A set is taken as already canonical (canonicalising 250k molecules takes a minute).
    return training_smiles if isinstance(training_smiles, (set, frozenset)) else canonical_set(training_smiles)


def fraction_novel(smiles: list[str], training_smiles: Iterable[str]) -> float:
    """Share of distinct valid molecules not in ``training_smiles`` (compared canonically).

    ``training_smiles`` may be a set of canonical SMILES (see :func:`canonical_set`).
    """
    distinct = set(canonical_valid(smiles))
    if not distinct:
        return 0.0
    return len(distinct - _training_set(training_smiles)) / len(distinct)


def sample_quality(smiles: list[str], training_smiles: Iterable[str]) -> dict[str, float]:
    """Validity, uniqueness and novelty together, parsing each molecule once.

    ``training_smiles`` may be a set of canonical SMILES (see :func:`canonical_set`).
    """
    valid = canonical_valid(smiles)
    distinct = set(valid)
    training = _training_set(training_smiles)
    return {
        "validity": len(valid) / len(smiles) if smiles else 0.0,
        "uniqueness": len(distinct) / len(valid) if valid else 0.0,
        "novelty": len(distinct - training) / len(distinct) if distinct else 0.0,
    }


def reconstruction_accuracy(inputs: list[str], outputs: list[str]) -> float:
    """Share of pairs where ``outputs[i]`` is the same molecule as ``inputs[i]``."""
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        return 0.0
    same = sum(
        1
        for a, b in zip(inputs, outputs)
        if (ca := canonical_smiles(a)) is not None and ca == canonical_smiles(b)
    )
    return same / len(inputs)
