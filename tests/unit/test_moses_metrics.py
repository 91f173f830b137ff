"""The MOSES metric set: literal values on hand-checkable sets and the molsets reference values."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
from rdkit import Chem

from seqvae.errors import SeqVAEError
from seqvae.metrics import moses
from seqvae.metrics.moses import (
    ReferenceStatistics,
    count_similarity,
    frechet_distance,
    internal_diversity,
    moses_metrics,
    novelty,
    passes_filters,
    reference_statistics,
    scaffold,
    similarity_to_nearest_neighbour,
    tanimoto_aggregate,
    unique_at_k,
)

# The example of molsets 0.3.1's own test suite (tests/test_metrics.py), with the values it
# asserts: our implementation must give the same numbers on it.
MOLSETS_SAMPLES = [
    "CNC",
    "Oc1ccccc1-c1cccc2cnccc12",
    "INVALID",
    "CCCP",
    "Cc1noc(C)c1CN(C)C(=O)Nc1cc(F)cc(F)c1",
    "Cc1nc(NCc2ccccc2)no1-c1ccccc1",
]
MOLSETS_TEST = ["Oc1ccccc1-c1cccc2cnccc12", "COc1cccc(NC(=O)Cc2coc3ccc(OC)cc23)c1"]
MOLSETS_EXPECTED = {
    "valid": 2 / 3,
    "unique@3": 1.0,
    "FCD/Test": 52.58371754126664,
    "SNN/Test": 0.3152585653588176,
    "Frag/Test": 0.3,
    "Scaf/Test": 0.5,
    "IntDiv": 0.7189187309761661,
    "Filters": 0.75,
    "logP": 1.63229,
    # molsets asserts SA 0.5238335295121783. With the same SA_Score algorithm and fragment table
    # (fpscores.pkl.gz is byte-identical, and the Morgan count fingerprints it reads are equal),
    # today's RDKit gives per-molecule scores whose distance is 0.62804; the difference comes
    # from the RDKit version molsets' value was computed with, not from the definition.
    "SA": 0.6280362203189407,
    "QED": 0.20370891752648637,
    "weight": 106.87,
}


def mol(smiles: str) -> Chem.Mol:
    return Chem.MolFromSmiles(smiles)


def test_molsets_reference_example_gives_molsets_values():
    metrics = moses_metrics(MOLSETS_SAMPLES, test=MOLSETS_TEST, k=[3], cache_dir=None)
    for key, expected in MOLSETS_EXPECTED.items():
        assert metrics[key] == pytest.approx(expected, rel=1e-3, abs=1e-4), key


def test_validity_counts_raw_strings_two_of_three():
    metrics = moses_metrics(["CCO", "c1ccccc1", "C1CC"], k=[2], cache_dir=None)
    assert metrics["valid"] == pytest.approx(2 / 3)


def test_unique_at_k_cuts_the_valid_list_after_k_molecules():
    # Canonical forms: OCC and CCO are one molecule.
    assert unique_at_k(["CCO", "CCO", "CCN", "CCC"], 2) == 0.5
    assert unique_at_k(["CCO", "CCN", "CCO", "CCO"], 2) == 1.0


def test_unique_at_k_with_fewer_molecules_warns_and_uses_all():
    with pytest.warns(UserWarning, match="unique@10: only 3 valid molecules"):
        assert unique_at_k(["CCO", "CCO", "CCN"], 10) == pytest.approx(2 / 3)


def test_unique_at_k_of_nothing_is_not_defined():
    assert unique_at_k([], 1000) is None


def test_novelty_is_share_of_distinct_molecules_outside_training():
    assert novelty(["CCO", "CCO", "CCN", "CCC"], {"CCO"}) == pytest.approx(2 / 3)
    assert novelty([], {"CCO"}) is None


def test_novelty_canonicalises_a_training_list():
    metrics = moses_metrics(["CCO", "CCN"], train=["OCC"], k=[2], cache_dir=None)
    assert metrics["Novelty"] == 0.5


def test_tanimoto_literal_values():
    reference = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.uint8)
    queries = np.array([[1, 0, 1, 0]], dtype=np.uint8)
    # |a & b| / |a | b| = 1/3 against both reference rows.
    assert tanimoto_aggregate(reference, queries, "max")[0] == pytest.approx(1 / 3)
    assert tanimoto_aggregate(reference, queries, "mean")[0] == pytest.approx(1 / 3)
    # mean of T^2 then root: sqrt((1/9 + 1/9) / 2) = 1/3.
    assert tanimoto_aggregate(reference, queries, "mean", power=2)[0] == pytest.approx(1 / 3)


def naive_tanimoto(reference, queries, aggregate, power):
    """The definition, pair by pair with Python sets: what the bit-count kernel must reproduce."""
    result = []
    for query in queries:
        q = set(np.flatnonzero(query))
        values = []
        for ref in reference:
            r = set(np.flatnonzero(ref))
            values.append(1.0 if not q | r else len(q & r) / len(q | r))
        if aggregate == "max":
            result.append(max(values))
        else:
            result.append(np.mean(np.array(values) ** power) ** (1 / power))
    return np.array(result)


@pytest.mark.parametrize("bits", [64, 70, 1024])
def test_bit_count_kernel_matches_the_definition(bits):
    rng = np.random.default_rng(bits)
    reference = (rng.random((40, bits)) < 0.1).astype(np.uint8)
    queries = (rng.random((25, bits)) < 0.1).astype(np.uint8)
    reference[0] = 0  # an empty fingerprint, paired with the empty query below
    queries[0] = 0
    for aggregate, power in (("max", 1), ("mean", 1), ("mean", 2)):
        np.testing.assert_allclose(
            tanimoto_aggregate(reference, queries, aggregate, power),
            naive_tanimoto(reference, queries, aggregate, power),
            rtol=1e-12,
        )


def test_two_empty_fingerprints_count_as_identical():
    empty = np.zeros((1, 8), dtype=np.uint8)
    assert tanimoto_aggregate(empty, empty, "max")[0] == 1.0


def test_internal_diversity_of_copies_is_zero_and_of_disjoint_pair_is_half():
    same = np.array([[1, 1, 0, 0]] * 3, dtype=np.uint8)
    assert internal_diversity(same) == pytest.approx(0.0)
    disjoint = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.uint8)
    # Self-pairs included: each row averages T=1 (itself) and T=0 (the other).
    assert internal_diversity(disjoint) == pytest.approx(0.5)
    assert internal_diversity(disjoint, power=2) == pytest.approx(1 - np.sqrt(0.5))
    assert internal_diversity(np.zeros((0, 4), np.uint8)) is None


def test_snn_of_a_set_against_itself_is_one():
    fingerprints = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.uint8)
    assert similarity_to_nearest_neighbour(fingerprints, fingerprints) == pytest.approx(1.0)
    assert similarity_to_nearest_neighbour(fingerprints, fingerprints[:0]) is None


def test_count_similarity_literal_and_not_defined_when_empty():
    assert count_similarity(Counter(a=1, b=1), Counter(a=1, b=1)) == pytest.approx(1.0)
    assert count_similarity(Counter(a=1), Counter(b=1)) == pytest.approx(0.0)
    assert count_similarity(Counter(a=3, b=4), Counter(a=1)) == pytest.approx(3 / 5)
    assert count_similarity(Counter(), Counter(a=1)) is None


def test_scaffold_needs_two_rings():
    assert scaffold(mol("Cc1ccccc1")) is None
    assert scaffold(mol("CCc1ccc2ccccc2c1")) == "c1ccc2ccccc2c1"
    assert scaffold(mol("CCO")) is None


@pytest.mark.parametrize(
    "smiles, passes",
    [
        ("CC(=O)Nc1ccc(O)cc1", True),  # paracetamol
        ("C1CCCCCC1", True),  # 7-membered ring
        ("C1CCCCCCC1", False),  # 8-membered ring: MOSES rejects rings of 8 or more atoms
        ("CC[N+](C)(C)C", False),  # charged atom
        ("CCP", False),  # phosphorus is not allowed
        ("CC1OC1", False),  # epoxide: MCF5
        ("O=C1NC(=S)SC1=Cc1ccccc1", False),  # ene-rhodanine: PAINS
    ],
)
def test_filters(smiles, passes):
    assert passes_filters(mol(smiles)) is passes


def test_screened_alert_matching_gives_the_same_verdicts_as_matching_each_pattern():
    import csv

    from seqvae.data import bundled_corpus_files

    # WEHI's molecules (shipped with RDKit for its PAINS tests) hit many PAINS alerts.
    with open(bundled_corpus_files()[1], newline="") as handle:
        smiles = [row[0] for row, _ in zip(csv.reader(handle), range(600))]
    molecules = [m for m in map(mol, smiles) if m is not None]
    patterns = moses._alert_patterns()
    screened_hits = [moses._has_alert(m) for m in molecules]
    direct_hits = [any(Chem.AddHs(m).HasSubstructMatch(p) for p in patterns) for m in molecules]
    assert screened_hits == direct_hits
    assert 0 < sum(direct_hits) < len(molecules)
    assert len(patterns) == 22 + 480


def test_morgan_bits_match_the_older_rdkit_call_moses_used(nci_smiles):
    from rdkit.Chem import AllChem

    molecules = [m for m in map(Chem.MolFromSmiles, nci_smiles[:200]) if m is not None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for molecule in molecules:
            old = np.array(AllChem.GetMorganFingerprintAsBitVect(molecule, 2, nBits=1024), dtype=np.uint8)
            np.testing.assert_array_equal(moses._morgan_bits(molecule), old)


def test_frechet_distance_matches_fcd_torch_formula():
    from fcd_torch.utils import calculate_frechet_distance

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + 0.5
    args = (a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = calculate_frechet_distance(*args)
    assert frechet_distance(*args) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(args[0], args[1], args[0], args[1]) == pytest.approx(0.0, abs=1e-6)


def test_all_invalid_samples_leave_metrics_not_defined():
    metrics = moses_metrics(["xx", "C1CC", ""], test=MOLSETS_TEST, train=["CCO"], k=[2], cache_dir=None)
    assert metrics["valid"] == 0.0
    for key in ("unique@2", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "Filters", "logP", "Novelty"):
        assert metrics[key] is None, key


def test_empty_sample_list_is_an_error():
    with pytest.raises(SeqVAEError, match="empty"):
        moses_metrics([], cache_dir=None)


def test_keys_follow_moses_get_all_metrics():
    with pytest.warns(UserWarning, match="unique@1000: only 4 valid molecules"):
        metrics = moses_metrics(
            MOLSETS_SAMPLES, test=MOLSETS_TEST, test_scaffolds=MOLSETS_TEST, train=["CNC"], k=[1000, 10000],
            cache_dir=None,
        )
    expected = {
        "valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "FCD/TestSF",
        "SNN/TestSF", "Frag/TestSF", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "logP", "SA", "QED", "weight",
        "Novelty",
    }
    assert set(metrics) == expected
    assert metrics["Novelty"] == pytest.approx(3 / 4)  # 4 distinct valid molecules, CNC is in train


def test_parallel_workers_give_the_same_metrics(nci_smiles, monkeypatch):
    monkeypatch.setattr(moses, "CHUNK_SIZE", 50)
    samples, reference = nci_smiles[:150], nci_smiles[200:260]
    one = moses_metrics(samples, test=reference, k=[100], n_jobs=1, cache_dir=None)
    two = moses_metrics(samples, test=reference, k=[100], n_jobs=2, cache_dir=None)
    assert one == pytest.approx(two, rel=1e-9)


def test_reference_statistics_are_cached_by_content(tmp_path, nci_smiles, monkeypatch):
    reference = nci_smiles[:60]
    first = reference_statistics(reference, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(moses, "_describe_all", fail)
    again = reference_statistics(reference, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.fingerprints, first.fingerprints)
    np.testing.assert_allclose(again.fcd_covariance, first.fcd_covariance)
    assert again.fragments == first.fragments and again.scaffolds == first.scaffolds
    for name in first.properties:
        np.testing.assert_allclose(again.properties[name], first.properties[name])
    with pytest.raises(AssertionError, match="recomputed"):
        reference_statistics(nci_smiles[:61], cache_dir=tmp_path)  # different content: a new key


def test_cached_statistics_give_the_same_metrics(tmp_path, nci_smiles):
    samples, reference = nci_smiles[200:300], nci_smiles[:80]
    fresh = moses_metrics(samples, test=reference, k=[50], cache_dir=None)
    cached = reference_statistics(reference, cache_dir=tmp_path)
    assert isinstance(cached, ReferenceStatistics)
    from_cache = moses_metrics(samples, test=ReferenceStatistics.load(next(tmp_path.iterdir())), k=[50])
    assert from_cache == pytest.approx(fresh, rel=1e-9)


def test_invalid_reference_rows_are_left_out_and_counted(nci_smiles):
    with pytest.warns(UserWarning, match="1 of 31 reference molecules are not valid"):
        statistics = reference_statistics(nci_smiles[:30] + ["not a molecule"], cache_dir=None)
    assert statistics.num_invalid == 1 and statistics.num_molecules == 30


def test_reference_with_fewer_than_two_molecules_is_an_error():
    with pytest.raises(SeqVAEError, match="at least 2"):
        reference_statistics(["CCO", "xx"], cache_dir=None)
    with pytest.raises(SeqVAEError, match="empty"):
        reference_statistics([], cache_dir=None)



def test_chemnet_leaves_out_smiles_rdkit_cannot_read_back(nci_smiles):
    """RDKit writes a few canonical SMILES of valid molecules that it cannot parse again (one,
    ``CCC(=O)Nc1nc(N)c(=O)c2ccccc2c1=C(O)Nc1ccccc1``, came up in 100,000 prior samples of the
    shipped model); fcd_torch stopped at it. It is left out of FCD, with a warning."""
    unreadable = "CCC(=O)Nc1nc(N)c(=O)c2ccccc2c1=C(O)Nc1ccccc1"
    assert Chem.MolFromSmiles(unreadable) is None
    readable = moses.canonical_valid(nci_smiles[:40])
    with pytest.warns(UserWarning, match=f"FCD: 1 of {len(readable) + 1} SMILES left out"):
        activations = moses.chemnet_activations(readable[:20] + [unreadable] + readable[20:])
    assert np.allclose(activations, moses.chemnet_activations(readable), atol=1e-5)
