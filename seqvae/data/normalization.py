"""How a run reads its inputs, one definition for training and inference.

Training reads its corpus through these functions, and a loaded model reads the strings it is
given through the same ones, with the settings its run saved (``canonicalize``,
``keep_largest_fragment``, ``standardize``, ``lowercase``), so that an input reaches the model as
the training rows did.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem

from ..chem import MAX_SMILES_CHARACTERS, canonical_smiles, largest_fragment, standardize_mol, to_mol
from ..errors import SeqVAEError
from .sources import is_named_corpus

__all__ = [
    "InputNormalization",
    "normalize_smiles",
    "normalize_smiles_with_changes",
    "normalize_sentence",
    "smiles_too_long",
    "standardizes",
]


def normalize_smiles(
    value: str, canonicalize: bool = True, keep_largest_fragment: bool = False, standardize: bool = False
) -> str | None:
    """The SMILES a model reads for ``value``, or ``None`` when it is not a valid molecule.

    ``standardize`` runs RDKit's standardisation (largest fragment, uncharge, canonical
    tautomer; see :func:`~seqvae.chem.standardize_mol`) and writes canonical SMILES;
    otherwise ``keep_largest_fragment`` keeps the fragment with most heavy atoms (canonical
    SMILES); otherwise ``canonicalize`` rewrites the molecule in RDKit canonical form, and
    without any of them a valid SMILES is kept as written.

    Raises:
        SeqVAEError: ``value`` is longer than ``MAX_SMILES_CHARACTERS``; it is refused before
            RDKit parses it, which would take minutes or crash the process.
    """
    return normalize_smiles_with_changes(value, canonicalize, keep_largest_fragment, standardize)[0]


def normalize_smiles_with_changes(
    value: str, canonicalize: bool = True, keep_largest_fragment: bool = False, standardize: bool = False
) -> tuple[str | None, frozenset[str]]:
    """:func:`normalize_smiles`, with the standardisation steps that changed the molecule
    (names from :data:`~seqvae.chem.STANDARDIZATION_STEPS`; empty without ``standardize``)."""
    problem = smiles_too_long(value)
    if problem:
        raise SeqVAEError(f"the SMILES {value[:40]!r}... is too long ({problem}); shorten or drop it")
    if standardize:
        return _standardized_smiles(value)
    if keep_largest_fragment:
        return largest_fragment(value), frozenset()
    if canonicalize:
        return canonical_smiles(value), frozenset()
    return (value if to_mol(value) is not None else None), frozenset()


def _standardized_smiles(value: str) -> tuple[str | None, frozenset[str]]:
    mol = to_mol(value)
    if mol is None:
        return None, frozenset()
    mol, changes = standardize_mol(mol)
    return Chem.MolToSmiles(mol), changes


def smiles_too_long(value: str) -> str | None:
    """Why ``value`` is too long for RDKit ("20000 characters > 5000, the most seqvae parses"), or ``None``."""
    if len(value) <= MAX_SMILES_CHARACTERS:
        return None
    return f"{len(value)} characters > {MAX_SMILES_CHARACTERS}, the most seqvae parses"


def normalize_sentence(text: str, lowercase: bool = False) -> str:
    """One space between words and none around them; lower-cased when the run was."""
    sentence = " ".join(str(text or "").split())
    return sentence.lower() if lowercase else sentence


def standardizes(data_args) -> bool:
    """Whether a run standardises its molecules: the recipe's ``standardize``, or when it is not
    set, yes for a user's own files and no for the named corpora, kept as published."""
    if data_args.standardize is not None:
        return bool(data_args.standardize)
    if data_args.representation == "text":
        return False
    return not is_named_corpus(data_args.data)


@dataclass(frozen=True)
class InputNormalization:
    """A run's input settings (the fields of the same name in its data settings).

    ``standardize`` comes last so that positional construction written before it still means
    what it did.
    """

    representation: str = "smiles"
    canonicalize: bool = True
    keep_largest_fragment: bool = False
    lowercase: bool = False
    standardize: bool = False

    @classmethod
    def of(cls, data_args) -> "InputNormalization":
        """The normalisation a recipe's :class:`~seqvae.arguments.DataArguments` trains with."""
        return cls(
            data_args.representation,
            data_args.canonicalize,
            data_args.keep_largest_fragment,
            data_args.lowercase,
            standardizes(data_args),
        )

    def __call__(self, item: str) -> str | None:
        """``item`` as the model reads it; ``None`` for an invalid molecule."""
        if self.representation == "text":
            return normalize_sentence(item, self.lowercase)
        return normalize_smiles(item, self.canonicalize, self.keep_largest_fragment, self.standardize)
