"""Pretrained Hugging Face backbones (Optimus-style): tiny BERT / GPT-2 / Llama models that the
tests build and save locally stand in for Hub checkpoints, so nothing is downloaded."""

from __future__ import annotations

import sys

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from seqvae.configuration import SeqVAEConfig
from seqvae.errors import SeqVAEError
from tests.support import TOY_SENTENCES
from seqvae.modeling import SeqVAE

SENTENCES = TOY_SENTENCES * 6
WORDS = sorted({word for sentence in SENTENCES for word in sentence.split()})
SIZES = {"hidden": 32, "layers": 2, "heads": 4}


def word_tokenizer(specials: list[str], **roles) -> PreTrainedTokenizerFast:
    vocabulary = {token: index for index, token in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token=roles["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, **roles)


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's arrangement: one <|endoftext|> for bos, eos and unk, no padding token."""
    end = "<|endoftext|>"
    return word_tokenizer([end], bos_token=end, eos_token=end, unk_token=end)


def bert_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return word_tokenizer(specials, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Local folders standing in for Hub models: gpt2, llama (sharing gpt2's tokenizer), bert and
    a masked-LM bert (no causal head)."""
    root = tmp_path_factory.mktemp("hub")
    torch.manual_seed(0)
    h, n, a = SIZES["hidden"], SIZES["layers"], SIZES["heads"]
    folders = {}
    gpt2_vocab, bert_vocab = len(gpt2_tokenizer()), len(bert_tokenizer())
    builds = {
        "gpt2": (GPT2LMHeadModel(GPT2Config(vocab_size=gpt2_vocab, n_embd=h, n_layer=n, n_head=a, n_positions=64)), gpt2_tokenizer()),
        "llama": (
            LlamaForCausalLM(LlamaConfig(vocab_size=gpt2_vocab, hidden_size=h, intermediate_size=2 * h, num_hidden_layers=n,
                                         num_attention_heads=a, num_key_value_heads=2, max_position_embeddings=64)),
            gpt2_tokenizer(),
        ),
        "bert": (BertModel(BertConfig(vocab_size=bert_vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=a,
                                      intermediate_size=2 * h, max_position_embeddings=64)), bert_tokenizer()),
        "bert_mlm": (BertForMaskedLM(BertConfig(vocab_size=bert_vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=a,
                                                intermediate_size=2 * h, max_position_embeddings=64)), bert_tokenizer()),
    }
    for name, (model, tokenizer) in builds.items():
        folders[name] = str(root / name)
        model.save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    folders["corpus"] = root / "train.txt"
    folders["corpus"].write_text("\n".join(SENTENCES) + "\n")
    return folders


def overrides(hub, **extra) -> dict:
    settings = {
        "data": str(hub["corpus"]), "representation": "text", "max_length": 12, "validation_fraction": 0.2,
        "max_steps": 12, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16, "learning_rate": 3e-3,
        "logging_steps": 4, "save_steps": 100, "report_to": "none", "seed": 0, "kl_schedule": "constant",
        "kl_max_weight": 0.1, "num_prior_samples": 4, "num_reconstruction_molecules": 4, "num_importance_samples": 2,
        "embedding_dim": 16, "encoder_hidden_size": 32, "decoder_hidden_size": 32, "latent_dim": 8,
    }
    settings.update(extra)
    return settings


def train(hub, folder, **extra):
    from seqvae.workflow import train_and_evaluate

    return train_and_evaluate(overrides=overrides(hub, **extra), output_dir=folder)


def optimus(hub, **extra) -> dict:
    """A pretrained encoder and decoder sharing one tokenizer (gpt2's, as encoder and decoder)."""
    return {"encoder_type": "pretrained", "encoder_name_or_path": hub["gpt2"], "decoder_type": "pretrained",
            "decoder_name_or_path": hub["llama"], **extra}


@pytest.fixture(scope="module")
def optimus_run(hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("optimus") / "run"
    metrics = train(hub, folder, **optimus(hub))
    return folder, metrics


# ------------------------------------------------------------------------------- the model itself


@pytest.mark.parametrize("decoder", ["gpt2", "llama"])
@pytest.mark.parametrize("training", ["full", "freeze", "lora"])
def test_memory_decoding_step_by_step_equals_teacher_forcing_and_reloads_exactly(hub, tmp_path, decoder, training):
    config = SeqVAEConfig(
        vocab_size=len(gpt2_tokenizer()) + 3, representation="text", latent_dim=8, max_sequence_length=32, encoder_type="pretrained",
        encoder_name_or_path=hub["gpt2"], decoder_type="pretrained", decoder_name_or_path=hub[decoder],
        backbone_training=training, encoder_pooling="mean",
    )
    model = SeqVAE(config).eval()
    assert model.embedding is None  # both sides read their backbone's embeddings
    ids = torch.randint(4, config.vocab_size, (3, 7))
    output = model(ids, use_posterior_mean=True)
    state, steps = model.initial_decoder_state(output.mu), []
    for position in range(ids.size(1) - 1):
        logits, state = model.decode_logits(ids[:, position : position + 1], output.mu, state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), output.logits, atol=1e-5, rtol=1e-4)

    model.save_pretrained(tmp_path)
    assert config.decoder_backbone["vocab_size"] == config.vocab_size  # resized to the run's tokens
    reloaded = SeqVAE.from_pretrained(tmp_path, use_safetensors=True).eval()
    torch.testing.assert_close(reloaded(ids, use_posterior_mean=True).logits, output.logits)

    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    layers = {name for name in trainable if ".h." in name or ".layers." in name}
    if training == "full":
        assert len(trainable) == len(list(model.parameters()))
    elif training == "freeze":
        assert not layers and any("latent_memory" in name for name in trainable)
    else:
        assert layers and all("lora_" in name for name in layers)


def test_z_changes_what_the_pretrained_decoder_predicts(hub):
    config = SeqVAEConfig(vocab_size=len(gpt2_tokenizer()) + 3, representation="text", latent_dim=8, max_sequence_length=32,
                          decoder_type="pretrained", decoder_name_or_path=hub["gpt2"], embedding_dim=16)
    model = SeqVAE(config).eval()
    ids = torch.randint(4, config.vocab_size, (2, 6))
    first, _ = model.decode_logits(ids, torch.zeros(2, 8))
    second, _ = model.decode_logits(ids, torch.ones(2, 8))
    assert (first - second).abs().max() > 1e-3
    assert model.embedding is not None and model.embedding.num_embeddings == config.vocab_size  # the LSTM encoder's


# ------------------------------------------------------------------------ training, saving, using


def test_optimus_run_trains_saves_loads_samples_and_interpolates(optimus_run, hub):
    from seqvae.pipeline import load

    folder, metrics = optimus_run
    assert metrics["kl"] is not None and metrics["iw_nll"] > 0
    vae = load(folder)
    # the decoder's tokenizer is the run's: gpt2's words plus the roles it lacked
    assert vae.tokenizer.convert_tokens_to_ids("market") == gpt2_tokenizer().convert_tokens_to_ids("market")
    assert {"<bos>", "<eos>", "<pad>", "<unk>"} <= set(vae.tokenizer.get_vocab())  # gpt2 had one token for all four
    samples = vae.sample(4, seed=0)
    assert len(samples) == 4 and all(isinstance(text, str) for text in samples)
    path = vae.interpolate("the cat sat on the mat", "shares of the company rose", 4)
    assert len(path) == 4
    z = vae.encode(["the cat sat on the mat"])
    assert z.shape == (1, 8) and vae.decode(z)[0] == path[0]
    greedy = vae.decode(z.repeat(2, 1))
    assert vae.decode(z.repeat(2, 1), strategy="beam", num_beams=1) == greedy  # the cache follows the beams
    assert len(vae.decode(z.repeat(2, 1), strategy="beam", num_beams=3)) == 2


def test_bert_encoder_makes_its_tokenizer_the_runs_with_cls_and_sep_as_bos_and_eos(hub, tmp_path):
    from seqvae.pipeline import load

    train(hub, tmp_path / "run", encoder_type="pretrained", encoder_name_or_path=hub["bert"], encoder_pooling="cls",
          decoder_type="lstm", max_steps=4)
    tokenizer = load(tmp_path / "run").tokenizer
    ids = tokenizer("the cat")["input_ids"]
    assert tokenizer.convert_ids_to_tokens([ids[0], ids[-1]]) == ["[CLS]", "[SEP]"]
    assert len(tokenizer) == len(bert_tokenizer())  # nothing added


@pytest.mark.parametrize("representation", ["text", "smiles"])
def test_language_model_from_scratch_becomes_a_vae_decoder(hub, tmp_path, nci_smiles, representation):
    """Pretrain a GPT-2-config LM with seqvae (latent_dim 0), then start a VAE's decoder from it."""
    from seqvae.pipeline import load

    if representation == "smiles":
        corpus = tmp_path / "molecules.smi"
        corpus.write_text("\n".join(nci_smiles[:120]) + "\n")
        data = {"data": str(corpus), "representation": "smiles", "max_length": 60}
    else:
        data = {}
    architecture = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 80}
    train(hub, tmp_path / "lm", latent_dim=0, decoder_type="pretrained", decoder_backbone=architecture,
          kl_max_weight=0.0, num_importance_samples=1, **data)
    language_model = SeqVAE.from_pretrained(tmp_path / "lm", use_safetensors=True)
    train(hub, tmp_path / "vae", decoder_type="pretrained", decoder_name_or_path=str(tmp_path / "lm"), max_steps=2,
          learning_rate=1e-9, **data)
    vae_model = SeqVAE.from_pretrained(tmp_path / "vae", use_safetensors=True)
    lm_weights = language_model.decoder.backbone.state_dict()
    for name, weight in vae_model.decoder.backbone.state_dict().items():
        torch.testing.assert_close(weight, lm_weights[name], atol=1e-5, rtol=0)  # started from the LM
    # and from its learned memory: with the maps from z at zero, the VAE's decoder is that LM
    torch.testing.assert_close(vae_model.decoder.latent_memory.bias, language_model.decoder.latent_memory.bias, atol=1e-5, rtol=0)
    assert vae_model.decoder.latent_memory.weight.abs().max() < 1e-4
    vae = load(tmp_path / "vae")
    assert vae.tokenizer.get_vocab() == load(tmp_path / "lm").tokenizer.get_vocab()
    assert len(vae.sample(3, seed=0)) == 3


def test_lora_trains_adapters_and_embeddings_only(hub, tmp_path):
    train(hub, tmp_path / "run", **optimus(hub, backbone_training="lora", lora_rank=2), max_steps=6)
    trained = SeqVAE.from_pretrained(tmp_path / "run", use_safetensors=True)
    original = LlamaForCausalLM.from_pretrained(hub["llama"]).state_dict()
    weights = trained.decoder.backbone.state_dict()
    query = "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    torch.testing.assert_close(weights[query], original["model.layers.0.self_attn.q_proj.weight"])
    assert any("lora_B" in name and weight.abs().sum() > 0 for name, weight in weights.items())


# ------------------------------------------------------------------------------------- bad input


def test_a_backbone_that_cannot_be_loaded_is_one_line_naming_it(hub, tmp_path):
    with pytest.raises(SeqVAEError, match=r"decoder_name_or_path '.*no_such_model' cannot be loaded.*network") as error:
        SeqVAE(SeqVAEConfig(vocab_size=20, decoder_type="pretrained", decoder_name_or_path=str(tmp_path / "no_such_model")))
    assert "\n" not in str(error.value)


def test_training_names_an_unloadable_backbone_before_reading_any_data(hub, tmp_path):
    settings = {"decoder_type": "pretrained", "decoder_name_or_path": str(tmp_path / "typo_gpt2")}
    with pytest.raises(SeqVAEError, match="decoder_name_or_path '.*typo_gpt2' cannot be loaded"):
        train(hub, tmp_path / "run", data=str(tmp_path / "absent.txt"), **settings)


def test_a_decoder_without_a_causal_head_is_refused(hub):
    with pytest.raises(SeqVAEError, match="BertForMaskedLM, without a causal language-model head"):
        SeqVAE(SeqVAEConfig(vocab_size=40, decoder_type="pretrained", decoder_name_or_path=hub["bert_mlm"]))


def test_an_encoder_and_decoder_whose_tokenizers_disagree_are_refused_before_reading_data(hub, tmp_path):
    settings = optimus(hub, encoder_name_or_path=hub["bert"], decoder_name_or_path=hub["gpt2"])
    with pytest.raises(SeqVAEError, match="tokenizers of encoder .*bert.* and decoder .*gpt2.* disagree"):
        train(hub, tmp_path / "run", data=str(tmp_path / "absent.txt"), **settings)


def test_lora_without_peft_says_how_to_install_it(hub, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(SeqVAEError, match="pip install peft"):
        SeqVAE(SeqVAEConfig(vocab_size=40, max_sequence_length=32, decoder_type="pretrained", decoder_name_or_path=hub["gpt2"], backbone_training="lora"))


def test_pretrained_side_needs_a_name_or_an_architecture():
    with pytest.raises(ValueError, match="decoder_type 'pretrained' needs decoder_name_or_path"):
        SeqVAEConfig(decoder_type="pretrained")
    with pytest.raises(ValueError, match="encoder_backbone must be a Hugging Face config"):
        SeqVAEConfig(encoder_type="pretrained", encoder_backbone={"n_layer": 2})


def test_the_summary_names_the_backbones(optimus_run, hub):
    from seqvae.pipeline import load

    summary = repr(load(optimus_run[0]))
    assert f"{hub['gpt2']} (pretrained)->{hub['llama']} (pretrained)" in summary
    config = SeqVAEConfig(latent_dim=0, decoder_type="pretrained", decoder_backbone={"model_type": "gpt2"})
    assert config.describe("decoder") == "gpt2 architecture" and config.describe("encoder") == "gru"


def test_first_token_pooling_of_a_left_to_right_encoder_is_refused(hub):
    with pytest.raises(SeqVAEError, match="encoder_pooling: cls .* left-to-right encoder"):
        SeqVAE(SeqVAEConfig(vocab_size=40, max_sequence_length=32, encoder_type="pretrained", encoder_name_or_path=hub["gpt2"], encoder_pooling="cls"))


def test_a_backbone_with_fewer_positions_than_max_length_is_refused(hub):
    with pytest.raises(SeqVAEError, match="64 positions, fewer than max_length 100"):
        SeqVAE(SeqVAEConfig(vocab_size=40, max_sequence_length=100, decoder_type="pretrained", decoder_name_or_path=hub["gpt2"]))


def test_autoencoder_pretraining_would_reset_a_pretrained_decoder_and_is_refused(hub, tmp_path):
    with pytest.raises(SeqVAEError, match="autoencoder_pretraining_steps re-initialises the decoder"):
        train(hub, tmp_path / "run", decoder_type="pretrained", decoder_name_or_path=hub["gpt2"], autoencoder_pretraining_steps=2)


def test_an_encoder_architecture_from_scratch_decodes_left_to_right(hub):
    config = SeqVAEConfig(vocab_size=30, latent_dim=0, max_sequence_length=16, decoder_type="pretrained",
                          decoder_backbone={"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
                                            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16})
    model = SeqVAE(config).eval()
    ids = torch.randint(4, 30, (1, 6))
    changed = ids.clone()
    changed[0, 5] = (ids[0, 5] + 1 - 4) % 26 + 4
    first, _ = model.decode_logits(ids, torch.zeros(1, 0))
    second, _ = model.decode_logits(changed, torch.zeros(1, 0))
    torch.testing.assert_close(first[:, :5], second[:, :5])  # no position sees a later token
