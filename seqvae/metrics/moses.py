"""The MOSES metric set (Polykovskiy et al. 2020, *Front. Pharmacol.* 11:565644).

Every metric follows the definition of the reference implementation (``molsets`` 0.3.1), so our
numbers line up with published tables:

* ``valid``: share of the raw samples RDKit parses into a non-empty, sanitised molecule;
* ``unique@k``: distinct share of the first ``k`` *valid* molecules (canonical SMILES, duplicates
  kept before the cut); fewer than ``k`` valid molecules gives a warning and uses them all;
* ``FCD``: Frechet distance between Gaussians fitted to ChemNet activations (Preuer et al. 2018;
  the ``fcd_torch`` weights) of the valid samples and of the reference;
* ``SNN``: mean over valid samples of the highest Tanimoto similarity to any reference molecule
  (Morgan radius 2, 1024 bits);
* ``Frag`` / ``Scaf``: cosine similarity of BRICS-fragment counts / Bemis-Murcko scaffold counts
  (scaffolds with at least 2 rings) between samples and reference;
* ``IntDiv`` / ``IntDiv2``: ``1 - mean_i (mean_j T_ij^p)^(1/p)`` over all pairs of valid samples,
  self-pairs included, p = 1 / 2;
* ``Filters``: share of valid samples that pass MOSES's filters (no ring of 8 or more atoms, no
  charged atom, only C N S O F Cl Br H, none of the 22 MCF and 480 PAINS alerts matched on the
  molecule with explicit hydrogens, and a SMILES round trip);
* ``logP`` / ``SA`` / ``QED`` / ``weight``: Wasserstein-1 distance between the property
  distributions of the samples and of the test reference;
* ``Novelty``: share of distinct valid samples absent from the training set. MOSES compares
  with the training file's strings as they are (written canonical by an older RDKit); we
  canonicalise the training set with the installed RDKit, so a changed canonical form cannot
  count a training molecule as novel.

Metrics that need valid molecules (or a non-empty fragment/scaffold count) are ``None``, "not
defined", instead of raising or dividing by zero.

Reference statistics (ChemNet moments, fingerprints, fragment and scaffold counts, property
values) are computed once per reference set and cached on disk under a hash of its content.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import multiprocessing
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numba
import numpy as np
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import AllChem, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold
from tqdm.auto import tqdm

from ..chem import molecule_properties, to_mol, without_rdkit_log
from ..data.storage import cache_root
from ..errors import SeqVAEError
from .molecules import canonical_valid

__all__ = [
    "MOSES_PROPERTIES",
    "ReferenceStatistics",
    "moses_metrics",
    "reference_statistics",
    "canonical_training_set",
    "unique_at_k",
    "novelty",
    "tanimoto_aggregate",
    "similarity_to_nearest_neighbour",
    "internal_diversity",
    "brics_fragments",
    "scaffold",
    "count_similarity",
    "passes_filters",
    "frechet_distance",
    "chemnet_activations",
]

FINGERPRINT_BITS = 1024
# MOSES metric name -> seqvae property name (chem.PROPERTIES): the same RDKit functions.
MOSES_PROPERTIES = {"logP": "logP", "SA": "SAS", "QED": "qed", "weight": "MW"}
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
# Bump when a statistic's definition changes: old cache entries then stop matching.
STATISTICS_VERSION = "1"
DEFAULT_CACHE_DIR = cache_root() / "moses_reference"
CHUNK_SIZE = 2000  # molecules per worker task: small enough for a smooth progress bar


# ------------------------------------------------------------------------ counting metrics


def unique_at_k(canonical: Sequence[str], k: int) -> float | None:
    """Distinct share of the first ``k`` valid molecules (canonical SMILES, in sample order).

    With fewer than ``k`` molecules, MOSES warns and uses all of them; so do we.
    """
    if not canonical:
        return None
    if len(canonical) < k:
        warnings.warn(f"unique@{k}: only {len(canonical)} valid molecules, computed on those", stacklevel=2)
    head = canonical[:k]
    return len(set(head)) / len(head)


def novelty(canonical: Sequence[str], training: set[str]) -> float | None:
    """Share of the distinct valid molecules not in ``training`` (a set of canonical SMILES)."""
    distinct = set(canonical)
    return len(distinct - training) / len(distinct) if distinct else None


# ---------------------------------------------------------------------------- fingerprints


@functools.lru_cache(maxsize=1)
def _morgan_generator():
    # The generator API gives the same bits as the older GetMorganFingerprintAsBitVect(mol, 2, 1024)
    # (tests check this), without its deprecation warning.
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FINGERPRINT_BITS)


def _morgan_bits(mol: Chem.Mol) -> np.ndarray:
    return _morgan_generator().GetFingerprintAsNumPy(mol).astype(np.uint8)


def tanimoto_aggregate(
    reference: np.ndarray, queries: np.ndarray, aggregate: str = "max", power: float = 1.0
) -> np.ndarray:
    """For each query fingerprint, the max or mean Tanimoto similarity to the reference set.

    Args:
        reference: ``[R, bits]`` 0/1 fingerprints.
        queries: ``[Q, bits]`` 0/1 fingerprints.
        aggregate: ``max`` or ``mean`` over the reference.
        power: ``mean`` of ``T ** power``, then the ``1 / power`` root per query (IntDiv2 uses 2).

    Returns:
        ``[Q]`` float64. Two empty fingerprints count as identical (similarity 1), as in MOSES.
    """
    if aggregate not in ("max", "mean"):
        raise ValueError(f"aggregate must be 'max' or 'mean', not {aggregate!r}")
    if len(queries) == 0 or len(reference) == 0:
        return np.zeros(len(queries))
    reference_words, reference_counts = _packed_words(reference)
    query_words, query_counts = _packed_words(queries)
    result = _tanimoto_kernel(
        query_words, query_counts, reference_words, reference_counts, aggregate == "max", float(power)
    )
    if aggregate == "mean" and power != 1:
        result = result ** (1 / power)
    return result


def _packed_words(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0/1 rows -> (``[N, words]`` uint64 bit words, ``[N]`` on-bit counts)."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), axis=1)
    padding = -packed.shape[1] % 8
    if padding:
        packed = np.pad(packed, ((0, 0), (0, padding)))
    return np.ascontiguousarray(packed).view(np.uint64), bits.sum(1).astype(np.int64)


@numba.njit(inline="always")
def _popcount(word):
    # SWAR bit count; LLVM turns it into the CPU's popcnt instruction.
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + ((word >> np.uint64(2)) & np.uint64(0x3333333333333333))
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (word * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(parallel=True, cache=True)
def _tanimoto_kernel(query_words, query_counts, reference_words, reference_counts, take_max, power):
    # Bit words and popcounts: ~16 instructions a pair where a float matrix product spends 1024
    # multiply-adds; 30k samples x 176k test molecules take seconds, not minutes, on 2 cores.
    result = np.empty(query_words.shape[0])
    for i in numba.prange(query_words.shape[0]):
        total = 0.0
        for j in range(reference_words.shape[0]):
            common = 0
            for w in range(query_words.shape[1]):
                common += _popcount(query_words[i, w] & reference_words[j, w])
            union = query_counts[i] + reference_counts[j] - common
            similarity = 1.0 if union == 0 else common / union
            if take_max:
                total = max(total, similarity)
            else:
                total += similarity if power == 1.0 else similarity**power
        result[i] = total if take_max else total / reference_words.shape[0]
    return result


def similarity_to_nearest_neighbour(reference: np.ndarray, samples: np.ndarray) -> float | None:
    """SNN: mean over samples of the highest Tanimoto similarity to the reference fingerprints."""
    if len(samples) == 0 or len(reference) == 0:
        return None
    return float(tanimoto_aggregate(reference, samples, "max").mean())


def internal_diversity(fingerprints: np.ndarray, power: float = 1.0) -> float | None:
    """IntDiv_p: ``1 - mean_i (mean_j T_ij^p)^(1/p)`` over all pairs, self-pairs included."""
    if len(fingerprints) == 0:
        return None
    return float(1 - tanimoto_aggregate(fingerprints, fingerprints, "mean", power).mean())


# -------------------------------------------------------------- fragments, scaffolds, filters


def brics_fragments(mol: Chem.Mol) -> list[str]:
    """SMILES of the pieces left after cutting every BRICS bond (dummy atoms mark the cuts)."""
    return Chem.MolToSmiles(AllChem.FragmentOnBRICSBonds(mol)).split(".")


def scaffold(mol: Chem.Mol, min_rings: int = 2) -> str | None:
    """Bemis-Murcko scaffold SMILES, or ``None`` when it has fewer than ``min_rings`` rings."""
    try:
        core = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    text = Chem.MolToSmiles(core)
    if not text or core.GetRingInfo().NumRings() < min_rings:
        return None
    return text


def count_similarity(reference: Counter, samples: Counter) -> float | None:
    """Cosine similarity of two count vectors over the union of their keys (``None`` if one is empty)."""
    if not reference or not samples:
        return None
    keys = list(reference.keys() | samples.keys())
    a = np.array([reference.get(key, 0) for key in keys], dtype=np.float64)
    b = np.array([samples.get(key, 0) for key in keys], dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


ALERT_FAMILIES = {"mcf": "mcf.csv", "pains": "pains.csv"}  # the 22 MCF and 480 PAINS SMARTS MOSES ships


@dataclass(frozen=True)
class Alert:
    """One structural alert: its name, its SMARTS pattern, and the pattern's fingerprint, whose
    bits a molecule must all have to contain it (a cheap screen before the substructure match)."""

    name: str
    pattern: Chem.Mol
    screen: DataStructs.ExplicitBitVect


@functools.lru_cache(maxsize=len(ALERT_FAMILIES))
def alerts(family: str) -> tuple[Alert, ...]:
    """The alerts of one family (``mcf`` or ``pains``; see ``alerts/README.md``)."""
    import csv

    alerts_found = []
    with resources.files(__package__).joinpath("alerts", ALERT_FAMILIES[family]).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            pattern = Chem.MolFromSmarts(row["smarts"])
            if pattern is None:
                raise SeqVAEError(f"alert {row['name']} in {ALERT_FAMILIES[family]} is not valid SMARTS; reinstall seqvae")
            name = row["name"].removeprefix("<regId=").removesuffix(">")  # PAINS names read <regId=ene_rhod_A(235)>
            alerts_found.append(Alert(name, pattern, Chem.PatternFingerprint(pattern)))
    return tuple(alerts_found)


def _alert_patterns() -> tuple[Chem.Mol, ...]:
    """Every MOSES alert pattern, MCF then PAINS."""
    return tuple(alert.pattern for family in ALERT_FAMILIES for alert in alerts(family))


def matched_alerts(mol: Chem.Mol, families=tuple(ALERT_FAMILIES), first_only: bool = False) -> list[str]:
    """The names of the alerts of ``families`` that ``mol`` contains (only the first with
    ``first_only``). Most patterns are never matched: a molecule whose pattern fingerprint lacks
    one of an alert's bits cannot contain it (faster than a FilterCatalog over the same patterns,
    with identical decisions; see the tests)."""
    with_hydrogens = Chem.AddHs(mol)  # PAINS SMARTS spell hydrogens out as [#1]
    fingerprint = Chem.PatternFingerprint(with_hydrogens)
    found = []
    for family in families:
        for alert in alerts(family):
            if DataStructs.AllProbeBitsMatch(alert.screen, fingerprint) and with_hydrogens.HasSubstructMatch(alert.pattern):
                found.append(alert.name)
                if first_only:
                    return found
    return found


def _has_alert(mol: Chem.Mol) -> bool:
    return bool(matched_alerts(mol, first_only=True))


def passes_filters(mol: Chem.Mol | None) -> bool:
    """MOSES's ``Filters`` test of one molecule (the rule list is in the module docstring)."""
    if mol is None:
        return False
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    atoms = mol.GetAtoms()
    if any(atom.GetFormalCharge() != 0 for atom in atoms):
        return False
    if any(atom.GetSymbol() not in ALLOWED_ATOMS for atom in atoms):
        return False
    if _has_alert(mol):
        return False
    text = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(text) and to_mol(text) is not None


# --------------------------------------------------------------------------------- FCD


@functools.lru_cache(maxsize=2)
def _chemnet(device: str, n_jobs: int, batch_size: int):
    try:
        from fcd_torch import FCD
    except ImportError:
        raise SeqVAEError("FCD needs the fcd_torch package: pip install fcd_torch") from None
    return FCD(device=device, n_jobs=n_jobs, batch_size=batch_size)


def chemnet_activations(
    smiles: Sequence[str], device: str = "cpu", n_jobs: int = 1, batch_size: int = 512, progress: bool = False
) -> np.ndarray:
    """ChemNet's penultimate activations ``[N, 512]`` of valid SMILES (the ``fcd_torch`` weights).

    ``fcd_torch`` parses each SMILES again and stops at one it cannot read; RDKit writes a few
    canonical SMILES of valid molecules that it cannot read back (aromatic rings with an
    exocyclic double bond, ``c1=C``), so those are left out and counted in a warning.
    """
    model = _chemnet(device, n_jobs, batch_size)
    step = 10 * batch_size
    parts, left_out = [], 0
    with tqdm(total=len(smiles), desc="ChemNet (FCD)", disable=not progress, unit="mol") as bar:
        for start in range(0, len(smiles), step):
            chunk = list(smiles[start : start + step])
            with warnings.catch_warnings():  # fcd_torch calls numpy's deprecated row_stack
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    parts.append(model.get_predictions(chunk))
                except ValueError:  # "Got invalid SMILES": parse this chunk here, once, and skip those
                    with without_rdkit_log():
                        readable = [text for text in chunk if Chem.MolFromSmiles(text) is not None]
                    left_out += len(chunk) - len(readable)
                    parts.append(model.get_predictions(readable))
            bar.update(len(chunk))
    if left_out:
        warnings.warn(
            f"FCD: {left_out} of {len(smiles)} SMILES left out: RDKit cannot read back its own canonical SMILES of "
            "these molecules",
            stacklevel=2,
        )
    return np.concatenate(parts) if parts else np.zeros((0, 512))


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet distance of two Gaussians: ``|m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))``.

    ``tr((C_a C_b)^(1/2))`` is the sum of the square roots of the eigenvalues of the symmetric
    ``C_a^(1/2) C_b C_a^(1/2)``: no general matrix square root, so no complex round-off to drop.
    """
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    difference = mean_a - mean_b
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def _gaussian(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if len(activations) < 2:  # a covariance needs two molecules
        return None
    return activations.mean(0), np.cov(activations.T)


# ---------------------------------------------------------- per-molecule work, in parallel


def _describe(smiles: list[str], with_filters: bool) -> dict:
    """Fingerprints, fragments, scaffolds, properties (and filters) of a chunk of molecules."""
    bits, fragments, scaffolds, passed, invalid = [], Counter(), Counter(), [], 0
    values = {name: [] for name in MOSES_PROPERTIES}
    with without_rdkit_log():
        for text in smiles:
            mol = to_mol(text)
            if mol is None:
                invalid += 1
                continue
            bits.append(np.packbits(_morgan_bits(mol)))
            fragments.update(brics_fragments(mol))
            if (core := scaffold(mol)) is not None:
                scaffolds[core] += 1
            for name, value in zip(MOSES_PROPERTIES, molecule_properties(mol, list(MOSES_PROPERTIES.values()))):
                values[name].append(value)
            if with_filters:
                passed.append(passes_filters(mol))
    return {
        "bits": np.stack(bits) if bits else np.zeros((0, FINGERPRINT_BITS // 8), np.uint8),
        "fragments": fragments,
        "scaffolds": scaffolds,
        "values": values,
        "passed": passed,
        "invalid": invalid,
    }


def _chunked_map(work, items: Sequence[str], n_jobs: int, progress: bool, desc: str) -> list:
    """``work`` on chunks of ``items``, in ``n_jobs`` processes, with one progress bar."""
    chunks = [list(items[i : i + CHUNK_SIZE]) for i in range(0, len(items), CHUNK_SIZE)]
    results = []
    with tqdm(total=len(items), desc=desc, disable=not progress, unit="mol") as bar:
        if n_jobs > 1 and len(chunks) > 1:
            # fork: cheap start, nothing to re-import; the workers use RDKit only, never torch.
            with multiprocessing.get_context("fork").Pool(n_jobs) as pool:
                for chunk, result in zip(chunks, pool.imap(work, chunks)):
                    results.append(result)
                    bar.update(len(chunk))
        else:
            for chunk in chunks:
                results.append(work(chunk))
                bar.update(len(chunk))
    return results


def _describe_all(smiles: Sequence[str], with_filters: bool, n_jobs: int, progress: bool, desc: str) -> dict:
    parts = _chunked_map(functools.partial(_describe, with_filters=with_filters), smiles, n_jobs, progress, desc)
    empty_bits = np.zeros((0, FINGERPRINT_BITS // 8), np.uint8)
    return {
        "bits": np.concatenate([p["bits"] for p in parts]) if parts else empty_bits,
        "fragments": sum((p["fragments"] for p in parts), Counter()),
        "scaffolds": sum((p["scaffolds"] for p in parts), Counter()),
        "values": {name: np.array([v for p in parts for v in p["values"][name]]) for name in MOSES_PROPERTIES},
        "passed": [flag for p in parts for flag in p["passed"]],
        "invalid": sum(p["invalid"] for p in parts),
    }


def canonical_training_set(
    smiles: Sequence[str], *, n_jobs: int = 1, progress: bool = False, cache_dir: str | Path | None = DEFAULT_CACHE_DIR
) -> set[str]:
    """Canonical SMILES of a training set, for ``Novelty``; cached like reference statistics.

    (MOSES's 1.6M-molecule training split takes minutes to canonicalise on 2 cores.)
    """
    smiles = list(smiles)
    path = Path(cache_dir) / f"{_content_key(smiles)}.canonical.txt.gz" if cache_dir is not None else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return set(handle.read().split("\n")) - {""}
    canonical = {c for part in _chunked_map(canonical_valid, smiles, n_jobs, progress, "training set") for c in part}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with gzip.open(partial, "wt", encoding="utf-8") as handle:
            handle.write("\n".join(sorted(canonical)))
        partial.replace(path)
    return canonical


# ------------------------------------------------------------------ reference statistics


@dataclass
class ReferenceStatistics:
    """What the metrics need of a reference set, computed once and cached.

    Attributes:
        num_molecules: valid reference molecules the statistics describe.
        fcd_mean, fcd_covariance: ChemNet activation moments ``[512]``, ``[512, 512]``.
        fingerprints: Morgan bits ``[N, 1024]`` uint8.
        fragments, scaffolds: BRICS fragment and scaffold counts.
        properties: ``logP``, ``SA``, ``QED``, ``weight`` values ``[N]``.
        num_invalid: reference rows RDKit could not parse (left out).
    """

    num_molecules: int
    fcd_mean: np.ndarray
    fcd_covariance: np.ndarray
    fingerprints: np.ndarray
    fragments: Counter
    scaffolds: Counter
    properties: dict[str, np.ndarray]
    num_invalid: int = 0
    source: dict = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Arrays as safetensors, counts and metadata as JSON (nothing pickled)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {
            "fcd_mean": self.fcd_mean,
            "fcd_covariance": self.fcd_covariance,
            "fingerprints": np.packbits(self.fingerprints, axis=1),
            **{f"property.{name}": values for name, values in self.properties.items()},
        }
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, folder / "arrays.safetensors")
        counts = {
            "num_molecules": self.num_molecules,
            "num_invalid": self.num_invalid,
            "source": self.source,
            "fragments": self.fragments,
            "scaffolds": self.scaffolds,
        }
        (folder / "counts.json").write_text(json.dumps(counts))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ReferenceStatistics:
        from safetensors.numpy import load_file

        folder = Path(folder)
        arrays = load_file(folder / "arrays.safetensors")
        counts = json.loads((folder / "counts.json").read_text())
        return cls(
            num_molecules=counts["num_molecules"],
            fcd_mean=arrays["fcd_mean"],
            fcd_covariance=arrays["fcd_covariance"],
            fingerprints=np.unpackbits(arrays["fingerprints"], axis=1, count=FINGERPRINT_BITS),
            fragments=Counter(counts["fragments"]),
            scaffolds=Counter(counts["scaffolds"]),
            properties={k.removeprefix("property."): v for k, v in arrays.items() if k.startswith("property.")},
            num_invalid=counts["num_invalid"],
            source=counts["source"],
        )


def _content_key(smiles: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in smiles:
        digest.update(str(text).encode())
        digest.update(b"\n")
    digest.update(f"v{STATISTICS_VERSION} rdkit {rdBase.rdkitVersion}".encode())
    return digest.hexdigest()[:32]


def reference_statistics(
    smiles: Sequence[str],
    *,
    n_jobs: int = 1,
    device: str = "cpu",
    progress: bool = False,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    name: str = "reference",
) -> ReferenceStatistics:
    """Statistics of a reference set, read from the cache when this exact set was seen before.

    The cache key hashes the SMILES (in order), the statistics version and the RDKit version;
    ``cache_dir=None`` computes without caching. Invalid reference rows are left out and counted.
    """
    smiles = list(smiles)
    if not smiles:
        raise SeqVAEError(f"the {name} set is empty: give a file with reference molecules")
    folder = Path(cache_dir) / _content_key(smiles) if cache_dir is not None else None
    if folder is not None and (folder / "counts.json").is_file():
        try:
            return ReferenceStatistics.load(folder)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
            warnings.warn(f"ignoring an unreadable cache entry {folder} ({error}); recomputing", stacklevel=2)
    started = time.perf_counter()
    described = _describe_all(smiles, False, n_jobs, progress, f"{name} molecules")
    valid = [text for text in smiles if to_mol(text) is not None] if described["invalid"] else smiles
    if len(valid) < 2:
        raise SeqVAEError(f"the {name} set has {len(valid)} valid molecule(s); the metrics need at least 2")
    if described["invalid"]:
        warnings.warn(f"{described['invalid']} of {len(smiles)} {name} molecules are not valid; left out", stacklevel=2)
    mean, covariance = _gaussian(chemnet_activations(valid, device, n_jobs, progress=progress))
    statistics = ReferenceStatistics(
        num_molecules=len(valid),
        fcd_mean=mean,
        fcd_covariance=covariance,
        fingerprints=np.unpackbits(described["bits"], axis=1, count=FINGERPRINT_BITS),
        fragments=described["fragments"],
        scaffolds=described["scaffolds"],
        properties=described["values"],
        num_invalid=described["invalid"],
        source={"name": name, "rows": len(smiles), "seconds": round(time.perf_counter() - started, 1)},
    )
    if folder is not None:
        statistics.save(folder)
    return statistics


# ------------------------------------------------------------------------------ the set


def _wasserstein(reference: np.ndarray, samples: np.ndarray) -> float | None:
    from scipy.stats import wasserstein_distance

    reference, samples = reference[~np.isnan(reference)], samples[~np.isnan(samples)]
    return float(wasserstein_distance(reference, samples)) if len(reference) and len(samples) else None


def _against(reference: ReferenceStatistics, described: dict, gaussian, suffix: str) -> dict:
    """FCD, SNN, Frag and Scaf of the samples against one reference set."""
    return {
        f"FCD/{suffix}": None
        if gaussian is None
        else frechet_distance(reference.fcd_mean, reference.fcd_covariance, *gaussian),
        f"SNN/{suffix}": similarity_to_nearest_neighbour(reference.fingerprints, described["fingerprints"]),
        f"Frag/{suffix}": count_similarity(reference.fragments, described["fragments"]),
        f"Scaf/{suffix}": count_similarity(reference.scaffolds, described["scaffolds"]),
    }


def _as_statistics(reference, name: str, options: dict) -> ReferenceStatistics | None:
    if reference is None or isinstance(reference, ReferenceStatistics):
        return reference
    return reference_statistics(list(reference), name=name, **options)


def moses_metrics(
    samples: Sequence[str],
    test: Sequence[str] | ReferenceStatistics | None = None,
    test_scaffolds: Sequence[str] | ReferenceStatistics | None = None,
    train: Sequence[str] | set[str] | None = None,
    *,
    k: Sequence[int] = (1000, 10000),
    n_jobs: int = 1,
    device: str = "cpu",
    progress: bool = False,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
) -> dict[str, float | None]:
    """The MOSES metrics of ``samples``, keyed as MOSES's ``get_all_metrics`` keys them.

    Args:
        samples: generated strings, invalid ones included (they count against ``valid``).
        test, test_scaffolds: reference SMILES or their :class:`ReferenceStatistics`; the
            ``/Test`` and ``/TestSF`` metrics are computed for the ones given, and the
            property distances against ``test``.
        train: training SMILES for ``Novelty`` (a set is taken as canonical SMILES already).
        k: the ``unique@k`` cut-offs.
        n_jobs: worker processes for RDKit work and ChemNet's SMILES parsing.
        device: where ChemNet runs.
        progress: show progress bars.
        cache_dir: reference-statistics cache; ``None`` to recompute.

    Returns:
        ``{name: value}`` with ``None`` for metrics not defined on these samples.
    """
    samples = [str(s) if s is not None else "" for s in samples]
    if not samples:
        raise SeqVAEError("no samples to evaluate: the sample list is empty")
    options = {"n_jobs": n_jobs, "device": device, "progress": progress, "cache_dir": cache_dir}
    test = _as_statistics(test, "test", options)
    test_scaffolds = _as_statistics(test_scaffolds, "test_scaffolds", options)

    canonical = canonical_valid(samples)
    metrics: dict[str, float | None] = {"valid": len(canonical) / len(samples)}
    for cut in k:
        metrics[f"unique@{cut}"] = unique_at_k(canonical, cut)

    described = _describe_all(canonical, True, n_jobs, progress, "sample molecules")
    described["fingerprints"] = np.unpackbits(described["bits"], axis=1, count=FINGERPRINT_BITS)
    gaussian = None
    if test is not None or test_scaffolds is not None:
        gaussian = _gaussian(chemnet_activations(canonical, device, n_jobs, progress=progress))
    for reference, suffix in ((test, "Test"), (test_scaffolds, "TestSF")):
        if reference is not None:
            metrics.update(_against(reference, described, gaussian, suffix))
    metrics["IntDiv"] = internal_diversity(described["fingerprints"], 1)
    metrics["IntDiv2"] = internal_diversity(described["fingerprints"], 2)
    metrics["Filters"] = float(np.mean(described["passed"])) if described["passed"] else None
    if test is not None:
        for name in MOSES_PROPERTIES:
            metrics[name] = _wasserstein(test.properties[name], described["values"][name])
    if train is not None:
        if not isinstance(train, (set, frozenset)):
            train = canonical_training_set(train, n_jobs=n_jobs, progress=progress, cache_dir=cache_dir)
        metrics["Novelty"] = novelty(canonical, train)
    return metrics
