"""Unit tests of seqvae.modeling and seqvae.configuration: shapes, the ELBO, padding, decoding
step by step, saving and loading through transformers."""

from __future__ import annotations

import itertools

import pytest
import torch
import transformers
from torch.nn import functional as F

import seqvae
from seqvae import SeqVAE, SeqVAEConfig, SeqVAEOutput
from seqvae.arguments import ObjectiveArguments
from seqvae.modeling import gaussian_kl_per_dim
from seqvae.objectives import vae_loss

KINDS = ("gru", "lstm", "transformer")
VOCAB = 16


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three sequences ``<bos> ... <eos>`` of lengths 5, 9 and 3, padded with 0."""
    rows = [[1, 5, 6, 7, 2], [1, 4, 5, 6, 7, 8, 9, 10, 2], [1, 11, 2]]
    width = max(map(len, rows))
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
    return input_ids, (input_ids != 0).long()


@pytest.mark.parametrize("encoder_type, decoder_type", list(itertools.product(KINDS, KINDS)))
def test_forward_returns_every_field_with_the_right_shape(tiny_config, encoder_type, decoder_type):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(encoder_type=encoder_type, decoder_type=decoder_type))
    input_ids, mask = padded_batch()
    out = model(input_ids=input_ids, attention_mask=mask)

    assert isinstance(out, SeqVAEOutput)
    batch, length = input_ids.shape
    assert out.logits.shape == (batch, length - 1, VOCAB)
    for name in ("mu", "logvar", "z"):
        assert getattr(out, name).shape == (batch, 8), name
    assert out.kl_per_dim.shape == (8,)
    for name in ("loss", "recon_loss", "recon_loss_per_token", "kl", "num_target_tokens"):
        value = getattr(out, name)
        assert value.dim() == 0, name
        assert torch.isfinite(value.float()), name
    assert out.num_target_tokens.item() == int(mask[:, 1:].sum())

    out.loss.backward()
    for prefix in ("embedding", "encoder", "posterior", "decoder"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), prefix


def test_loss_is_reconstruction_plus_weighted_kl(tiny_config):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config()).eval()
    input_ids, mask = padded_batch()
    out = model(input_ids=input_ids, attention_mask=mask)
    assert torch.allclose(out.loss, out.recon_loss + out.kl)  # the negative ELBO
    weighted, _ = vae_loss(out, ObjectiveArguments(), kl_weight=0.3)
    assert torch.allclose(weighted, out.recon_loss + 0.3 * out.kl)
    assert torch.allclose(out.kl_per_dim.sum(), out.kl)
    assert (out.kl_per_dim >= 0).all()


def test_reconstruction_loss_ignores_padding_and_is_summed_per_sequence(tiny_config):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config()).eval()
    input_ids, mask = padded_batch()
    out = model(input_ids=input_ids, attention_mask=mask, use_posterior_mean=True)
    targets = input_ids[:, 1:]
    real = mask[:, 1:].bool()
    nll = F.cross_entropy(out.logits.transpose(1, 2), targets, reduction="none") * real
    assert torch.allclose(out.recon_loss, nll.sum(dim=1).mean(), atol=1e-5)
    assert torch.allclose(out.recon_loss_per_token, nll.sum() / real.sum(), atol=1e-6)


def test_kl_is_zero_for_the_standard_normal_posterior():
    mu, logvar = torch.zeros(4, 8), torch.zeros(4, 8)
    assert torch.equal(gaussian_kl_per_dim(mu, logvar), torch.zeros(4, 8))


def test_kl_matches_the_closed_form():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, 1.0]])
    expected = torch.tensor([[0.5, 0.5 * (torch.e - 1.0 - 1.0)]])
    assert torch.allclose(gaussian_kl_per_dim(mu, logvar), expected)


def test_reparameterize_returns_mu_when_variance_vanishes():
    mu = torch.randn(5, 8)
    z = SeqVAE.reparameterize(mu, torch.full_like(mu, -60.0))
    assert torch.allclose(z, mu, atol=1e-10)


def test_reparameterize_samples_with_the_posterior_spread():
    torch.manual_seed(0)
    mu = torch.full((20000, 1), 2.0)
    z = SeqVAE.reparameterize(mu, torch.full_like(mu, torch.log(torch.tensor(0.25)).item()))
    assert abs(z.mean().item() - 2.0) < 0.02
    assert abs(z.std().item() - 0.5) < 0.02


def test_use_posterior_mean_decodes_from_mu(tiny_config):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config()).eval()
    input_ids, mask = padded_batch()
    out = model(input_ids=input_ids, attention_mask=mask, use_posterior_mean=True)
    assert torch.equal(out.z, out.mu)


@pytest.mark.parametrize(
    "encoder_type, bidirectional",
    [("gru", True), ("gru", False), ("lstm", True), ("lstm", False), ("transformer", False)],
)
def test_padding_does_not_change_the_encoding(tiny_config, encoder_type, bidirectional):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(encoder_type=encoder_type, encoder_bidirectional=bidirectional)).eval()
    alone = torch.tensor([[1, 5, 6, 7, 2]])
    batch = torch.tensor([[1, 5, 6, 7, 2, 0, 0, 0, 0], [1, 4, 5, 6, 7, 8, 9, 10, 2]])
    with torch.no_grad():
        mu_alone, logvar_alone = model.encode(alone)
        mu_batch, logvar_batch = model.encode(batch)
    assert torch.allclose(mu_alone[0], mu_batch[0], atol=1e-5)
    assert torch.allclose(logvar_alone[0], logvar_batch[0], atol=1e-5)
    # the longer molecule must not be encoded like the short one
    assert not torch.allclose(mu_batch[0], mu_batch[1], atol=1e-3)


@pytest.mark.parametrize("encoder_type", ["gru", "lstm"])
def test_bidirectional_encoder_reads_each_sequence_backwards_within_its_length(tiny_config, encoder_type):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(encoder_type=encoder_type, encoder_bidirectional=True)).eval()
    encoder = model.encoder
    assert encoder.output_size == 2 * 32
    assert model.posterior.in_features == 64
    batch = torch.tensor([[1, 5, 6, 7, 2, 0, 0], [1, 4, 5, 6, 7, 8, 2]])
    with torch.no_grad():
        summary = encoder(model.embedding(batch), (batch != 0).long())
        short = model.embedding(torch.tensor([[1, 5, 6, 7, 2]]))
        forward_out, _ = encoder.forward_rnn(short)
        backward_out, _ = encoder.backward_rnn(short.flip(1))
    assert summary.shape == (2, 64)
    assert torch.allclose(summary[0, :32], forward_out[0, -1], atol=1e-5)
    assert torch.allclose(summary[0, 32:], backward_out[0, -1], atol=1e-5)


def test_unidirectional_encoder_has_half_the_summary_size(tiny_config):
    model = SeqVAE(tiny_config(encoder_bidirectional=False))
    assert model.encoder.output_size == 32 and model.encoder.backward_rnn is None
    assert model.posterior.in_features == 32


@pytest.mark.parametrize("decoder_type", KINDS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_step_by_step_decoding_matches_teacher_forcing(tiny_config, decoder_type, num_layers):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(decoder_type=decoder_type, decoder_num_layers=num_layers)).eval()
    z = torch.randn(2, 8)
    tokens = torch.tensor([[1, 5, 6, 7, 8, 9, 4], [1, 9, 8, 7, 6, 5, 4]])
    with torch.no_grad():
        teacher_forced, _ = model.decode_logits(tokens, z)
        state = model.initial_decoder_state(z)
        steps = []
        for t in range(tokens.size(1)):
            logits, state = model.decode_logits(tokens[:, t : t + 1], z, state)
            steps.append(logits)
    stepped = torch.cat(steps, dim=1)
    assert stepped.shape == teacher_forced.shape == (2, 7, VOCAB)
    assert torch.allclose(stepped, teacher_forced, atol=1e-5)


@pytest.mark.parametrize("decoder_type", KINDS)
def test_decoder_output_depends_on_z(tiny_config, decoder_type):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(decoder_type=decoder_type)).eval()
    tokens = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        a, _ = model.decode_logits(tokens, torch.zeros(1, 8))
        b, _ = model.decode_logits(tokens, torch.ones(1, 8))
    assert not torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("encoder_type, decoder_type", [("gru", "gru"), ("transformer", "lstm"), ("lstm", "transformer")])
def test_save_and_load_round_trip_gives_identical_outputs_from_safetensors(
    tiny_config, tmp_path, encoder_type, decoder_type
):
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(encoder_type=encoder_type, decoder_type=decoder_type)).eval()
    model.save_pretrained(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "model.safetensors" in names and "config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))]

    loaded = SeqVAE.from_pretrained(tmp_path).eval()
    ignore = {"_name_or_path"}
    saved = {k: v for k, v in model.config.to_dict().items() if k not in ignore}
    assert {k: v for k, v in loaded.config.to_dict().items() if k not in ignore} == saved
    input_ids, mask = padded_batch()
    with torch.no_grad():
        before = model(input_ids=input_ids, attention_mask=mask, use_posterior_mean=True)
        after = loaded(input_ids=input_ids, attention_mask=mask, use_posterior_mean=True)
    assert torch.equal(before.mu, after.mu)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.loss, after.loss)


def test_automodel_loads_a_saved_seqvae_after_importing_seqvae(tiny_config, tmp_path):
    assert seqvae.SeqVAE is SeqVAE
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(decoder_type="transformer"))
    model.save_pretrained(tmp_path)
    loaded = transformers.AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, SeqVAE)
    assert isinstance(transformers.AutoConfig.from_pretrained(tmp_path), SeqVAEConfig)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_config_round_trips_through_json(tiny_config, tmp_path):
    config = tiny_config(encoder_type="lstm", decoder_type="transformer", dropout=0.1, representation="selfies")
    config.save_pretrained(tmp_path)
    loaded = SeqVAEConfig.from_pretrained(tmp_path)
    for key in ("encoder_type", "decoder_type", "latent_dim", "dropout", "representation", "unk_token_id"):
        assert getattr(loaded, key) == getattr(config, key), key


def test_config_rejects_unknown_encoder_type_naming_allowed_values():
    with pytest.raises(ValueError, match="encoder_type") as info:
        SeqVAEConfig(encoder_type="rnn")
    assert "gru, lstm, transformer" in str(info.value)


def test_config_rejects_unknown_decoder_type_and_representation():
    with pytest.raises(ValueError, match="decoder_type"):
        SeqVAEConfig(decoder_type="mlp")
    with pytest.raises(ValueError, match="representation"):
        SeqVAEConfig(representation="inchi")


@pytest.mark.parametrize(
    "key, value",
    [("latent_dim", -1), ("latent_dim", 2.5), ("embedding_dim", 2.5), ("vocab_size", 0), ("encoder_num_layers", -2)],
)
def test_config_rejects_non_positive_or_non_integer_sizes(key, value):
    with pytest.raises(ValueError, match=key):
        SeqVAEConfig(**{key: value})


def test_latent_dim_zero_is_allowed_only_without_a_property_head():
    assert SeqVAEConfig(latent_dim=0).latent_dim == 0  # the language-model baseline
    with pytest.raises(ValueError, match="property head reads z"):
        SeqVAEConfig(latent_dim=0, property_head_hidden_size=16, property_names=["logP"])


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_config_rejects_dropout_outside_zero_one(dropout):
    with pytest.raises(ValueError, match="dropout"):
        SeqVAEConfig(dropout=dropout)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_config_rejects_transformer_width_not_divisible_by_heads(side):
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        SeqVAEConfig(**{f"{side}_type": "transformer", f"{side}_hidden_size": 30, "num_attention_heads": 4})
    # the same width is fine for an RNN
    SeqVAEConfig(**{f"{side}_type": "gru", f"{side}_hidden_size": 30, "num_attention_heads": 4})
