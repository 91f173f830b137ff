"""The arithmetic of the latent-space protocols (benchmarks/latent_quality.py) on cases
checkable by hand, and penalized logP against the JT-VAE start file's own values."""

from __future__ import annotations

import math

import pytest

from seqvae.chem import PROPERTIES, count_tanimoto_similarity, penalized_logp, to_mol
from seqvae.metrics.latent_protocols import (
    interpolation_scores,
    optimisation_success,
    reconstruction_rate,
)


# Values printed in JT-VAE's opt.test.logP-SA (and in ../shared/data/zinc250k/README.md).
@pytest.mark.parametrize(
    "smiles, published",
    [("COc1cc2c(cc1OC)CC([NH3+])C2", -2.50504567445), ("OC[C@@H](Br)C(F)(F)Br", -2.45357941743)],
)
def test_penalized_logp_reproduces_the_jtvae_start_file(smiles, published):
    assert penalized_logp(to_mol(smiles)) == pytest.approx(published, abs=1e-6)


def test_penalized_logp_subtracts_the_atoms_of_rings_larger_than_six():
    cyclooctane, cyclohexane = to_mol("C1CCCCCCC1"), to_mol("C1CCCCC1")
    logp, sas = PROPERTIES["logP"].compute, PROPERTIES["SAS"].compute
    assert penalized_logp(cyclooctane) == pytest.approx(logp(cyclooctane) - sas(cyclooctane) - 2)
    assert penalized_logp(cyclohexane) == pytest.approx(logp(cyclohexane) - sas(cyclohexane))


def test_penalized_logp_is_a_named_property():
    from seqvae.chem import compute_properties

    values = compute_properties(["C1CCCCCCC1", "not a molecule"], ["penalized_logP"])
    assert values["plogP"][0] == pytest.approx(penalized_logp(to_mol("C1CCCCCCC1")))
    assert math.isnan(values["plogP"][1])


def test_count_similarity_is_one_for_the_same_molecule_written_twice_and_nan_for_none():
    assert count_tanimoto_similarity(to_mol("OCC"), to_mol("CCO")) == 1.0
    assert 0 < count_tanimoto_similarity(to_mol("CCOc1ccccc1"), to_mol("CCOc1ccccc1C")) < 1
    assert math.isnan(count_tanimoto_similarity(None, to_mol("CCO")))


def test_reconstruction_rate_counts_canonical_matches_over_all_decodings():
    inputs = ["CCO", "c1ccccc1"]
    decodings = [["OCC", "CCO", "CCN", "bad("], ["C1=CC=CC=C1", "c1ccccc1", "c1ccccc1", "c1ccccc1"]]
    # 2 of 4 for ethanol (OCC is the same molecule), 4 of 4 for benzene (Kekulé form included)
    assert reconstruction_rate(inputs, decodings) == pytest.approx(6 / 8)


def test_reconstruction_rate_never_matches_an_invalid_input():
    assert reconstruction_rate(["not a smiles"], [["not a smiles"]]) == 0.0


def test_reconstruction_rate_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 inputs but 1"):
        reconstruction_rate(["C", "CC"], [["C"]])


def test_interpolation_scores_on_a_hand_made_path():
    start, end = "CCCCCCO", "c1ccccc1"
    path = ["CCCCCCO", "CCCCCC", "CCCC(", "CCC", "c1ccccc1"]  # monotone away from the start, one invalid point
    scores = interpolation_scores([start], [end], [path])
    assert scores["endpoint_reconstruction"] == 1.0
    assert scores["path_validity"] == pytest.approx(4 / 5)
    assert scores["smoothness"] == pytest.approx(1.0)
    wrong_end = interpolation_scores([start], ["CCN"], [path])
    assert wrong_end["endpoint_reconstruction"] == 0.5


def test_an_invalid_input_never_counts_as_a_reconstructed_endpoint():
    scores = interpolation_scores(["not a smiles"], ["CCO"], [["also bad", "CC", "CCO"]])
    assert scores["endpoint_reconstruction"] == 0.5


def test_interpolation_smoothness_is_negative_when_the_path_returns_to_the_start():
    path = ["CCCC", "c1ccccc1", "CCCCC", "CCCC"]
    scores = interpolation_scores(["CCCC"], ["CCCC"], [path])
    assert scores["smoothness"] < 0


def test_optimisation_success_takes_the_best_gain_above_each_similarity_threshold():
    start_scores = [0.0, 1.0, 2.0]
    candidates = [
        [(0.9, 0.5), (0.5, 2.0), (0.1, 5.0)],  # gains 0.5 at 0.9, 2.0 at 0.5, 5.0 at 0.1
        [(0.7, 0.5)],                            # only a loss: no success at any threshold
        [],                                      # nothing decoded
    ]
    results = optimisation_success(start_scores, candidates, deltas=(0.0, 0.4, 0.6))
    assert set(results) == {"0", "0.4", "0.6"}
    assert results["0"]["improvement_mean"] == pytest.approx(5.0 / 3)
    assert results["0.4"]["improvement_mean"] == pytest.approx(2.0 / 3)
    assert results["0.6"]["improvement_mean"] == pytest.approx(0.5 / 3)
    assert results["0.6"]["improvement_sd"] == pytest.approx(math.sqrt(((0.5 - 0.5 / 3) ** 2 + 2 * (0.5 / 3) ** 2) / 3))
    for delta in ("0", "0.4", "0.6"):
        assert results[delta]["success_rate"] == pytest.approx(1 / 3)
    assert results["0.4"]["mean_similarity"] == pytest.approx(0.5)
    assert results["0.4"]["improvement_mean_successes"] == pytest.approx(2.0)
    assert math.isnan(optimisation_success([0.0], [[(0.9, -1.0)]], deltas=(0.4,))["0.4"]["improvement_mean_successes"])


def test_a_tiny_model_trained_to_reconstruct_reconstructs_by_the_protocol(tmp_path, make_overrides):
    """Low KL weight, a few molecules, enough steps: greedy reconstruction of the training
    molecules must rise above 0 (the collapsed recipes of before gave exactly 0)."""
    import torch

    import seqvae
    from seqvae.workflow import train_and_evaluate

    molecules = ["CCO", "CCN", "CCCl", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "CCOC", "CNC", "OCCO", "CC#N",
                 "c1ccncc1", "CC(C)O", "C1CCCCC1", "CCBr", "COC(=O)C", "NCCO"]
    corpus = tmp_path / "small.smi"
    corpus.write_text("\n".join(molecules * 4) + "\n")
    overrides = make_overrides(
        corpus, deduplicate=False, validation_fraction=0.1, max_steps=250, per_device_train_batch_size=16,
        learning_rate=5.0e-3, kl_max_weight=0.001, kl_warmup_steps=50, save_steps=1000, logging_steps=50,
        embedding_dim=32, encoder_hidden_size=64, decoder_hidden_size=64, latent_dim=16,
        num_prior_samples=10, num_reconstruction_molecules=5,
    )
    torch.manual_seed(0)
    train_and_evaluate(None, overrides, tmp_path / "run")
    vae = seqvae.load(tmp_path / "run", device="cpu")
    greedy = vae.reconstruct(molecules)
    assert reconstruction_rate(molecules, [[s] for s in greedy]) > 0.25
