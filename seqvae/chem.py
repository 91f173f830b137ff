"""Small RDKit helpers that return ``None`` instead of raising (datamol style)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rdkit import Chem, RDLogger

__all__ = ["without_rdkit_log", "to_mol", "canonical_smiles", "is_valid", "largest_fragment"]


@contextlib.contextmanager
def without_rdkit_log() -> Iterator[None]:
    """Silence RDKit's parse warnings (they go to stderr, one per bad molecule)."""
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        RDLogger.EnableLog("rdApp.*")


def to_mol(smiles: str | None) -> Chem.Mol | None:
    """Parse a SMILES string; ``None`` for empty, unparsable or unsanitisable input."""
    if not smiles or not isinstance(smiles, str):
        return None
    with without_rdkit_log():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical_smiles(smiles: str | None, isomeric: bool = True) -> str | None:
    """RDKit canonical SMILES, or ``None`` when ``smiles`` is not a valid molecule."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=isomeric)


def is_valid(smiles: str | None) -> bool:
    """True when RDKit parses and sanitises ``smiles`` into a non-empty molecule."""
    return to_mol(smiles) is not None


def largest_fragment(smiles: str) -> str | None:
    """Keep the fragment with most heavy atoms (strips counter-ions and solvents).

    Returns canonical SMILES of that fragment, or ``None`` when ``smiles`` is not valid.
    """
    mol = to_mol(smiles)
    if mol is None:
        return None
    fragments = Chem.GetMolFrags(mol, asMols=True)
    biggest = max(fragments, key=lambda fragment: fragment.GetNumHeavyAtoms())
    return Chem.MolToSmiles(biggest)
