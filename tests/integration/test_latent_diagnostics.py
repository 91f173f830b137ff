"""Tests of seqvae.metrics.latent: the mutual-information estimator on hand-made posteriors,
teacher-forced token counts on a model forced to one token, and latent_diagnostics on the
shared tiny trained run (``trained_run``) and on tiny untrained pipelines."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqvae import SeqVAE, SeqVAEPipeline
from seqvae.errors import SeqVAEError
from seqvae.metrics import latent as latent_module
from seqvae.metrics.latent import (
    latent_diagnostics,
    mutual_information,
    teacher_forced_token_counts,
)
from seqvae.metrics.molecules import reconstruction_accuracy
from seqvae.objectives import active_units
from seqvae.pipeline import load
from seqvae.tokenization import build_tokenizer

TINY_CORPUS = ["CCO", "c1ccccc1", "CC(=O)N", "CCN", "OCC#N"]
TINY_LENGTH = 12


def tiny_pipeline(tiny_config, **overrides) -> SeqVAEPipeline:
    """An untrained pipeline over a five-molecule vocabulary (sequences up to 12 tokens)."""
    tokenizer = build_tokenizer(TINY_CORPUS, "smiles", model_max_length=TINY_LENGTH)
    config = tiny_config(vocab_size=len(tokenizer), max_sequence_length=TINY_LENGTH, **overrides)
    torch.manual_seed(0)
    return SeqVAEPipeline(SeqVAE(config), tokenizer, source="tiny")


def force_token(vae: SeqVAEPipeline, token: str) -> None:
    """Make ``token`` the argmax (and nearly certain sample) of every decoding step."""
    with torch.no_grad():
        vae.model.decoder.output.bias[vae.tokenizer.convert_tokens_to_ids(token)] = 1e4


# ----------------------------------------------------------------------- mutual information


def test_mutual_information_of_identical_posteriors_is_zero():
    mu = torch.tensor([[0.3, -1.0, 2.0]]).repeat(50, 1)
    logvar = torch.tensor([[-0.5, 0.2, -2.0]]).repeat(50, 1)
    assert mutual_information(mu, logvar, torch.Generator().manual_seed(0)) == pytest.approx(0.0, abs=1e-9)


def test_mutual_information_of_separated_sharp_posteriors_reaches_log_n():
    # Eight posteriors 10 apart with sigma ~ 0.007: each z is claimed by its own posterior only.
    mu = 10.0 * torch.eye(8)
    logvar = torch.full((8, 8), -10.0)
    assert mutual_information(mu, logvar, torch.Generator().manual_seed(0)) == pytest.approx(math.log(8), abs=1e-6)


def test_mutual_information_of_one_posterior_is_zero():
    assert mutual_information(torch.randn(1, 4), torch.zeros(1, 4)) == 0.0


def test_mutual_information_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(3)
    mu = torch.randn(30, 3, generator=generator, dtype=torch.float64)
    logvar = torch.randn(30, 3, generator=generator, dtype=torch.float64) - 1.0
    std = torch.exp(0.5 * logvar)
    # The same single draw per posterior as the estimator makes.
    z = mu + torch.randn(30, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * std
    posterior = torch.distributions.Normal(mu, std)
    own = posterior.log_prob(z).sum(dim=1)
    pairwise = torch.distributions.Normal(mu.unsqueeze(0), std.unsqueeze(0)).log_prob(z.unsqueeze(1)).sum(dim=2)
    aggregate = torch.logsumexp(pairwise, dim=1) - math.log(30)
    expected = (own - aggregate).mean().item()
    assert expected > 0.1  # a case where the estimate is informative, not clamped
    assert mutual_information(mu, logvar, torch.Generator().manual_seed(7)) == pytest.approx(expected, rel=1e-9)


def test_mutual_information_does_not_depend_on_the_chunk_size(monkeypatch):
    mu, logvar = torch.randn(40, 5), torch.randn(40, 5) - 2.0
    whole = mutual_information(mu, logvar, torch.Generator().manual_seed(0))
    monkeypatch.setattr(latent_module, "_MIXTURE_CHUNK_ROWS", 7)
    assert mutual_information(mu, logvar, torch.Generator().manual_seed(0)) == pytest.approx(whole, rel=1e-12)


def test_mutual_information_stays_within_zero_and_log_n():
    generator = torch.Generator().manual_seed(1)
    for scale in (0.01, 1.0, 100.0):
        mu = torch.randn(20, 4, generator=generator) * scale
        value = mutual_information(mu, torch.full((20, 4), -3.0), generator)
        assert 0.0 <= value <= math.log(20)


def test_mutual_information_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mu and logvar"):
        mutual_information(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least one"):
        mutual_information(torch.zeros(0, 3), torch.zeros(0, 3))


# ----------------------------------------------------------------------------- token counts


def test_teacher_forced_token_counts_ignore_padding(tiny_config):
    vae = tiny_pipeline(tiny_config)
    force_token(vae, "C")
    c_id = vae.tokenizer.convert_tokens_to_ids("C")
    bos, eos, pad = vae.config.bos_token_id, vae.config.eos_token_id, vae.config.pad_token_id
    input_ids = torch.tensor([[bos, c_id, c_id, eos, pad], [bos, c_id, eos, pad, pad]])
    attention_mask = (input_ids != pad).long()
    z = torch.zeros(2, vae.config.latent_dim)
    # Targets: C C <eos> (2 right) and C <eos> (1 right); padding targets never count.
    assert teacher_forced_token_counts(vae.model, input_ids, attention_mask, z) == (3, 5)


# ------------------------------------------------------------------- on the tiny trained run


@pytest.fixture(scope="module")
def vae(trained_run):
    return load(trained_run.output_dir, device="cpu")


@pytest.fixture(scope="module")
def held_out(nci_smiles):
    from seqvae.chem import canonical_smiles

    return [s for s in nci_smiles[:40] if canonical_smiles(s) is not None][:24]


@pytest.fixture(scope="module")
def diagnostics(vae, held_out):
    return latent_diagnostics(vae, held_out, batch_size=8, num_samples=8, seed=0)


def test_diagnostics_report_json_safe_numbers_in_range(diagnostics, vae, held_out):
    assert json.loads(json.dumps(diagnostics)) == diagnostics
    assert diagnostics["num_molecules"] == len(held_out)
    assert diagnostics["num_skipped"] == 0
    assert diagnostics["latent_dim"] == vae.config.latent_dim
    for key in ("reconstruction_accuracy", "token_accuracy", "prior_sample_validity", "posterior_sample_validity"):
        assert 0.0 <= diagnostics[key] <= 1.0, key
    assert diagnostics["token_accuracy"] > 0.0  # 20 steps teach at least the common tokens
    assert 0 <= diagnostics["active_units"] <= diagnostics["latent_dim"]
    assert diagnostics["num_prior_samples"] == 8
    assert "logsumexp" in diagnostics["mutual_information_estimator"]


def test_diagnostics_kl_per_dimension_sums_to_the_total(diagnostics):
    per_dimension = diagnostics["kl_per_dimension"]
    assert len(per_dimension) == diagnostics["latent_dim"]
    assert all(value >= 0.0 for value in per_dimension)
    assert diagnostics["kl_total"] == pytest.approx(sum(per_dimension), rel=1e-12)
    assert diagnostics["kl_total"] > 0.0


def test_diagnostics_mutual_information_is_bounded_by_log_n(diagnostics, held_out):
    information = diagnostics["mutual_information"]
    assert math.isfinite(information)
    assert 0.0 <= information <= math.log(len(held_out)) + 1e-9
    assert diagnostics["mutual_information_bound"] == pytest.approx(math.log(len(held_out)))


def test_diagnostics_agree_with_the_pipeline(diagnostics, vae, held_out):
    assert diagnostics["reconstruction_accuracy"] == reconstruction_accuracy(held_out, vae.reconstruct(held_out))
    assert diagnostics["active_units"] == active_units(vae.encode(held_out))


def test_diagnostics_token_accuracy_matches_the_models_forward(diagnostics, vae, held_out):
    batch = vae.tokenize(held_out)
    with torch.no_grad():
        out = vae.model(**batch, use_posterior_mean=True)
    real = batch["attention_mask"][:, 1:].bool()
    correct = ((out.logits.argmax(-1) == batch["input_ids"][:, 1:]) & real).sum().item()
    assert diagnostics["token_accuracy"] == pytest.approx(correct / real.sum().item())


def test_diagnostics_are_reproducible_with_a_seed(diagnostics, vae, held_out):
    assert latent_diagnostics(vae, held_out, batch_size=8, num_samples=8, seed=0) == diagnostics


def test_invalid_smiles_are_skipped_and_counted(diagnostics, vae, held_out):
    noisy = ["not a molecule", *held_out[:10], "C1CC", "", None, *held_out[10:]]
    result = latent_diagnostics(vae, noisy, batch_size=8, num_samples=8, seed=0)
    assert result["num_skipped"] == 4
    # The valid molecules are evaluated exactly as without the noise.
    assert {**result, "num_skipped": 0} == diagnostics


def test_rows_the_tokenizer_rejects_are_skipped_and_counted(monkeypatch, vae, held_out):
    rejected = held_out[3]
    original = vae.tokenize

    def strict_tokenize(items):
        if rejected in items:
            raise SeqVAEError(f"cannot convert {rejected!r}")
        return original(items)

    monkeypatch.setattr(vae, "tokenize", strict_tokenize)
    result = latent_diagnostics(vae, held_out[:8], batch_size=4, num_samples=0)
    assert (result["num_molecules"], result["num_skipped"]) == (7, 1)


def test_empty_or_unusable_input_is_an_error(vae):
    with pytest.raises(SeqVAEError, match="empty list"):
        latent_diagnostics(vae, [])
    with pytest.raises(SeqVAEError, match="none of the 2 inputs"):
        latent_diagnostics(vae, ["not a molecule", "C1CC"])


@pytest.mark.parametrize(
    "options, fragment", [({"batch_size": 0}, "batch_size"), ({"num_samples": -1}, "num_samples"), ({"seed": "x"}, "seed")]
)
def test_bad_counts_are_errors(vae, options, fragment):
    with pytest.raises(SeqVAEError, match=fragment):
        latent_diagnostics(vae, ["CCO"], **options)


def test_progress_bar_and_training_mode(capsys, vae, held_out):
    vae.model.train()
    try:
        latent_diagnostics(vae, held_out[:4], num_samples=0, progress=True)
        assert vae.model.training  # the caller's mode comes back
    finally:
        vae.model.eval()
    assert "latent diagnostics" in capsys.readouterr().err


# --------------------------------------------------------------- tiny pipelines, forced outputs


def test_validity_of_prior_and_posterior_samples_follows_the_decoder(tiny_config):
    vae = tiny_pipeline(tiny_config)
    carbons = "C" * (TINY_LENGTH - 1)  # what a decoder that always says "C" produces
    force_token(vae, "C")
    result = latent_diagnostics(vae, [carbons, "CCO"], num_samples=5)
    assert result["prior_sample_validity"] == result["posterior_sample_validity"] == 1.0
    assert result["reconstruction_accuracy"] == 0.5
    force_token(vae, "(")  # now "(" wins every step wherever the SMILES grammar lets it
    result = latent_diagnostics(vae, [carbons, "CCO"], num_samples=5)
    assert result["prior_sample_validity"] == result["posterior_sample_validity"] == 1.0  # closed in time
    vae.smiles_syntax = None  # decoded freely: nothing parses
    result = latent_diagnostics(vae, [carbons, "CCO"], num_samples=5)
    assert result["prior_sample_validity"] == result["posterior_sample_validity"] == 0.0
    assert result["num_prior_samples"] == 5
    assert latent_diagnostics(vae, ["CCO"], num_samples=0)["prior_sample_validity"] is None


def test_conditional_models_encode_without_a_condition(monkeypatch, tiny_config):
    vae = tiny_pipeline(tiny_config, property_names=["logP"], property_means=[1.0], property_stds=[2.0])
    seen = []
    original = vae.model.encode

    def recording_encode(input_ids, attention_mask=None, condition=None):
        seen.append(condition)
        return original(input_ids, attention_mask, condition)

    monkeypatch.setattr(vae.model, "encode", recording_encode)
    result = latent_diagnostics(vae, TINY_CORPUS, batch_size=2, num_samples=3)
    assert seen == [None, None, None]
    assert result["num_molecules"] == len(TINY_CORPUS)
