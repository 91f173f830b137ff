"""RDKit helpers that return ``None`` / NaN instead of raising, and molecular properties."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdFingerprintGenerator, rdMolDescriptors
from tqdm.auto import tqdm

from .errors import SeqVAEError

__all__ = [
    "without_rdkit_log",
    "MAX_SMILES_CHARACTERS",
    "to_mol",
    "canonical_smiles",
    "random_smiles",
    "is_valid",
    "largest_fragment",
    "STANDARDIZATION_STEPS",
    "standardize_mol",
    "inchikey",
    "MolecularProperty",
    "PROPERTIES",
    "property_name",
    "molecule_properties",
    "compute_properties",
    "tanimoto_similarity",
    "morgan_fingerprint",
    "count_tanimoto_similarity",
    "penalized_logp",
]


@contextlib.contextmanager
def without_rdkit_log() -> Iterator[None]:
    """Silence RDKit's parse warnings (they go to stderr, one per bad molecule)."""
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        RDLogger.EnableLog("rdApp.*")


# The longest SMILES handed to RDKit. Its parsing and canonicalisation time grows about with the
# cube of the length (a chain of 2,500 atoms takes 0.09 s, 5,000 atoms 0.4 s, 10,000 atoms 3 s,
# and 20,000 atoms crash the process), while the molecules a sequence model reads have at most a
# few hundred symbols: longer strings are refused before RDKit sees them.
MAX_SMILES_CHARACTERS = 5_000


def to_mol(smiles: str | None) -> Chem.Mol | None:
    """Parse a SMILES string; ``None`` for empty, unparsable or unsanitisable input, and for input
    longer than ``MAX_SMILES_CHARACTERS`` (never parsed: RDKit would hang or crash on it)."""
    if not smiles or not isinstance(smiles, str) or len(smiles) > MAX_SMILES_CHARACTERS:
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


def random_smiles(smiles: str | None, seed: int) -> str | None:
    """Another SMILES of the same molecule, written from an atom order drawn with ``seed``
    (RDKit's ``MolToRandomSmilesVect``); ``None`` when ``smiles`` is not a valid molecule."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToRandomSmilesVect(mol, 1, randomSeed=seed)[0]


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


# What each standardisation step changes, named as data_report.json counts them.
STANDARDIZATION_STEPS = ("salts_stripped", "charges_neutralised", "tautomers_changed")


@functools.lru_cache(maxsize=1)
def _standardizers():
    """RDKit's fragment chooser, uncharger and tautomer enumerator, built once per process
    (module-level, not on a picklable object: they cannot be pickled to worker processes)."""
    from rdkit.Chem.MolStandardize import rdMolStandardize

    params = rdMolStandardize.CleanupParameters()
    # Heavy atoms decide the largest fragment, as in largest_fragment() and the token bounds.
    params.largestFragmentChooserCountHeavyAtomsOnly = True
    # RDKit's defaults drop every stereocentre next to a tautomeric site (an amino acid's alpha
    # carbon, an enone's E/Z bond) even when the canonical tautomer keeps it: keep real stereo.
    params.tautomerRemoveSp3Stereo = False
    params.tautomerRemoveBondStereo = False
    return (
        rdMolStandardize.LargestFragmentChooser(params),
        rdMolStandardize.Uncharger(),
        rdMolStandardize.TautomerEnumerator(params),
    )


def standardize_mol(mol: Chem.Mol) -> tuple[Chem.Mol, frozenset[str]]:
    """``mol`` standardised with RDKit's ``rdMolStandardize``: largest fragment (salts and
    solvents stripped), uncharged (neutralised where a hydrogen can be added or removed),
    canonical tautomer; in that order. Also returns the steps (of :data:`STANDARDIZATION_STEPS`)
    that changed the molecule, so that a corpus report can count them."""
    chooser, uncharger, tautomers = _standardizers()
    changes = set()
    with without_rdkit_log():  # tautomer enumeration warns on molecules with very many tautomers
        if len(Chem.GetMolFrags(mol)) > 1:
            mol = chooser.choose(mol)
            changes.add("salts_stripped")
        before = Chem.MolToSmiles(mol)
        mol = uncharger.uncharge(mol)
        neutral = Chem.MolToSmiles(mol)
        if neutral != before:
            changes.add("charges_neutralised")
        mol = tautomers.Canonicalize(mol)
        if Chem.MolToSmiles(mol) != neutral:
            changes.add("tautomers_changed")
    return mol, frozenset(changes)


def inchikey(molecule: str | Chem.Mol | None) -> str | None:
    """The standard InChIKey of a SMILES (or RDKit molecule); ``None`` when it is not a valid
    molecule or InChI cannot describe it."""
    mol = to_mol(molecule) if not isinstance(molecule, Chem.Mol) else molecule
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    with without_rdkit_log():  # InChI warns (to stderr) about e.g. unusual valences
        try:
            key = Chem.MolToInchiKey(mol)
        except Exception:  # noqa: BLE001 (RDKit raises several types: InChI kekulizes, and fails on some aromatic rings that sanitise)
            return None
    return key or None


# ------------------------------------------------------------------------------ properties


@dataclass(frozen=True)
class MolecularProperty:
    """A property RDKit computes from a molecule, with its unit and a one-line description."""

    name: str
    unit: str
    description: str
    compute: Callable[[Chem.Mol], float]


def _sa_score(mol: Chem.Mol) -> float:
    return _sascorer().calculateScore(mol)


@functools.lru_cache(maxsize=1)
def _sascorer():
    """RDKit Contrib's SA_Score module (Ertl & Schuffenhauer 2009), which ships in the wheel."""
    from rdkit import RDConfig

    path = Path(RDConfig.RDContribDir) / "SA_Score" / "sascorer.py"
    if not path.is_file():
        raise SeqVAEError(
            f"RDKit's SA_Score scorer is not in this install ({path} is missing); reinstall rdkit "
            "from PyPI, or leave SAS out of the properties"
        )
    spec = importlib.util.spec_from_file_location("seqvae_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def largest_ring_penalty(mol: Chem.Mol) -> int:
    """Atoms beyond 6 in the molecule's largest ring (0 without rings larger than 6)."""
    rings = mol.GetRingInfo().AtomRings()
    return max([len(ring) - 6 for ring in rings] + [0])


def penalized_logp(mol: Chem.Mol) -> float:
    """Crippen logP - SA score - (largest ring size - 6, when positive): the score of the
    ZINC constrained-optimisation benchmark (Kusner et al. 2017; Jin et al. 2018, Table 3),
    unnormalised, as the JT-VAE start file ``opt.test.logP-SA`` lists it."""
    return Crippen.MolLogP(mol) - _sa_score(mol) - largest_ring_penalty(mol)


PROPERTIES = {
    p.name: p
    for p in [
        MolecularProperty("logP", "", "Crippen logP (Wildman & Crippen 1999)", Crippen.MolLogP),
        MolecularProperty("qed", "", "drug-likeness QED, 0..1 (Bickerton et al. 2012)", QED.qed),
        MolecularProperty("SAS", "", "synthetic accessibility, 1 easy..10 hard (Ertl & Schuffenhauer 2009)", _sa_score),
        MolecularProperty("MW", "Da", "molecular weight", Descriptors.MolWt),
        MolecularProperty("TPSA", "Å²", "topological polar surface area (Ertl et al. 2000)", rdMolDescriptors.CalcTPSA),
        MolecularProperty("HBD", "count", "hydrogen-bond donors (Lipinski)", Lipinski.NumHDonors),
        MolecularProperty("HBA", "count", "hydrogen-bond acceptors (Lipinski)", Lipinski.NumHAcceptors),
        MolecularProperty("rotatable_bonds", "count", "rotatable bonds", Lipinski.NumRotatableBonds),
        MolecularProperty("rings", "count", "ring count", rdMolDescriptors.CalcNumRings),
        MolecularProperty("plogP", "", "penalized logP: logP - SAS - ring atoms beyond 6 (Jin et al. 2018)", penalized_logp),
    ]
}
_ALIASES = {
    "logp": "logP", "clogp": "logP", "qed": "qed", "sas": "SAS", "sa": "SAS", "sa_score": "SAS",
    "mw": "MW", "molwt": "MW", "weight": "MW", "molecular_weight": "MW", "tpsa": "TPSA",
    "hbd": "HBD", "h_donors": "HBD", "hba": "HBA", "h_acceptors": "HBA",
    "rotatable_bonds": "rotatable_bonds", "rotb": "rotatable_bonds", "num_rotatable_bonds": "rotatable_bonds",
    "rings": "rings", "ring_count": "rings", "num_rings": "rings",
    "plogp": "plogP", "penalized_logp": "plogP",
}


def property_name(name: str) -> str | None:
    """The canonical name of a built-in property (``"LogP"`` -> ``"logP"``), or ``None``."""
    return _ALIASES.get(str(name).strip().lower())


def molecule_properties(mol: Chem.Mol | None, names: list[str]) -> list[float]:
    """Built-in properties of one molecule (NaN for ``None`` or when RDKit fails)."""
    values = []
    for name in names:
        try:
            values.append(float(PROPERTIES[name].compute(mol)) if mol is not None else math.nan)
        except SeqVAEError:  # a broken install (no SA_Score): every molecule would fail, say why
            raise
        except Exception:  # an RDKit failure on one odd molecule must not stop a batch
            values.append(math.nan)
    return values


def compute_properties(
    smiles: list[str], names: list[str], progress: bool = False, batch_size: int = 1000
) -> dict[str, list[float]]:
    """Built-in properties of many SMILES, in batches with a progress bar.

    Args:
        smiles: molecules; invalid ones get NaN.
        names: property names or aliases (see :data:`PROPERTIES`).

    Returns:
        ``{canonical name: [value per molecule]}``.
    """
    canonical = []
    for name in names:
        if property_name(name) is None:
            raise SeqVAEError(
                f"unknown property {name!r}; built-in properties are {', '.join(PROPERTIES)}"
            )
        canonical.append(property_name(name))
    columns = {name: [] for name in canonical}
    with tqdm(total=len(smiles), desc="properties", disable=not progress, unit="mol") as bar:
        for start in range(0, len(smiles), batch_size):
            for s in smiles[start : start + batch_size]:
                for name, value in zip(canonical, molecule_properties(to_mol(s), canonical)):
                    columns[name].append(value)
            bar.update(min(batch_size, len(smiles) - start))
    return columns


@functools.lru_cache(maxsize=4)
def _morgan_generator(radius: int = 2, bits: int = 2048):
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)


def morgan_fingerprint(smiles: str, radius: int = 2, bits: int = 2048):
    """The Morgan bit fingerprint of a SMILES (``None`` when it does not parse)."""
    mol = to_mol(smiles)
    return None if mol is None else _morgan_generator(radius, bits).GetFingerprint(mol)


def tanimoto_similarity(smiles_a: str, smiles_b: str, radius: int = 2, bits: int = 2048) -> float:
    """Tanimoto similarity of Morgan fingerprints; NaN when either molecule is invalid."""
    fingerprint_a, fingerprint_b = morgan_fingerprint(smiles_a, radius, bits), morgan_fingerprint(smiles_b, radius, bits)
    if fingerprint_a is None or fingerprint_b is None:
        return math.nan
    return DataStructs.TanimotoSimilarity(fingerprint_a, fingerprint_b)


@functools.lru_cache(maxsize=1)
def _count_morgan_generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=2)


def count_tanimoto_similarity(mol_a: Chem.Mol | None, mol_b: Chem.Mol | None) -> float:
    """Tanimoto similarity of unhashed Morgan count fingerprints of radius 2, the similarity of
    the JT-VAE constrained-optimisation protocol (its ``GetMorganFingerprint(mol, 2)``); NaN
    when either molecule is missing."""
    if mol_a is None or mol_b is None:
        return math.nan
    generator = _count_morgan_generator()
    return DataStructs.TanimotoSimilarity(generator.GetSparseCountFingerprint(mol_a), generator.GetSparseCountFingerprint(mol_b))
