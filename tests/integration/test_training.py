"""Integration tests of seqvae.training and seqvae.pipeline: tiny runs (<= 30 steps) on ~300
NCI molecules. The shared 20-step run comes from the session fixture ``trained_run``."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import seqvae
from seqvae import SeqVAE, SeqVAEConfig
from seqvae.arguments import ObjectiveArguments
from seqvae.errors import SeqVAEError
from seqvae.objectives import kl_weight_at
from seqvae.pipeline import SeqVAEPipeline
from seqvae.recipe import load_recipe
from seqvae.training import train_model


def read_log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "training_log.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- the run folder


def test_training_writes_the_run_folder(trained_run):
    names = {path.name for path in trained_run.output_dir.iterdir()}
    for required in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "recipe.yaml",
        "training_args.json",
        "data_report.json",
        "training_log.jsonl",
        "metrics.json",
        "samples.csv",
    ):
        assert required in names, required
    assert "training_args.bin" not in names
    assert not [n for n in names if n.endswith((".bin", ".pkl", ".pt", ".pth"))]


def test_training_args_json_records_the_vae_settings(trained_run):
    args = json.loads((trained_run.output_dir / "training_args.json").read_text())
    assert args["max_steps"] == 20
    assert args["kl_schedule"] == "linear"
    assert args["kl_warmup_steps"] == 10
    assert args["per_device_train_batch_size"] == 16


def test_saved_config_matches_the_recipe_and_the_tokenizer(trained_run, tiny_model_kwargs):
    from transformers import AutoTokenizer

    config = SeqVAEConfig.from_pretrained(trained_run.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(trained_run.output_dir)
    for key, value in tiny_model_kwargs.items():
        assert getattr(config, key) == value, key
    assert config.vocab_size == len(tokenizer)
    assert config.max_sequence_length == trained_run.overrides["max_length"]
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.unk_token_id) == (
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.unk_token_id,
    )


def test_data_report_lists_every_row_of_the_corpus(trained_run, nci_smiles):
    report = json.loads((trained_run.output_dir / "data_report.json").read_text())
    assert report["rows_read"] == len(nci_smiles)
    assert report["rows_read"] == report["rows_kept"] + sum(report["skipped_counts"].values())
    assert report["rows_kept"] > 250
    for row in report["skipped"]:
        # the CSV header is line 1, so row i of nci_smiles sits on line i + 2
        assert nci_smiles[row["line"] - 2] == row["value"]


def test_training_log_names_the_units_of_the_vae_terms(trained_run):
    records = [r for r in read_log(trained_run.output_dir) if "loss" in r]
    assert [r["step"] for r in records] == list(range(1, 21))  # logging_steps=1
    for record in records:
        for key in ("recon_per_sequence", "recon_per_token", "kl_per_sequence", "kl_weight"):
            assert key in record, key
        assert record["recon_per_sequence"] > record["recon_per_token"] > 0
        assert record["kl_per_sequence"] >= 0
    evaluation = [r for r in read_log(trained_run.output_dir) if "eval_recon_per_sequence" in r]
    assert len(evaluation) == 1


def test_logged_kl_weight_follows_the_linear_schedule(trained_run):
    schedule = ObjectiveArguments(kl_schedule="linear", kl_min_weight=0.0, kl_max_weight=1.0, kl_start_step=0, kl_warmup_steps=10)
    records = [r for r in read_log(trained_run.output_dir) if "loss" in r]
    # the record at global step s averages the weight used for optimiser step s - 1 (0-based)
    logged = [r["kl_weight"] for r in records]
    expected = [round(kl_weight_at(r["step"] - 1, schedule), 4) for r in records]
    assert logged == pytest.approx(expected, abs=1e-4)
    assert logged[0] == 0.0 and logged[-1] == 1.0


def test_training_changes_the_parameters(trained_run):
    initial = trained_run.initial_state
    final = load_file(str(trained_run.output_dir / "model.safetensors"))
    assert initial, "the fixture did not record the initial parameters"
    assert set(final) <= set(initial)
    changed = {key for key in final if not torch.equal(final[key], initial[key])}
    for key in ("embedding.weight", "posterior.weight", "decoder.output.weight", "decoder.output.bias"):
        assert key in changed, key
    assert any(key.startswith("encoder.") for key in changed)
    assert len(changed) >= 0.8 * len(final)


def test_metrics_json_holds_generation_and_validation_metrics(trained_run):
    metrics = json.loads((trained_run.output_dir / "metrics.json").read_text())
    assert metrics == trained_run.metrics
    for key in ("validity", "uniqueness", "novelty", "reconstruction_accuracy", "token_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert isinstance(metrics["active_units"], int)
    assert 0 <= metrics["active_units"] <= 8
    assert metrics["prior_samples"] == 20
    assert metrics["num_reconstructed"] == 10
    assert metrics["recon_per_sequence"] > 0
    assert metrics["elbo_per_sequence"] == pytest.approx(
        -(metrics["recon_per_sequence"] + metrics["kl_per_sequence"]), abs=1e-3
    )


def test_samples_csv_holds_the_prior_samples_with_validity(trained_run):
    frame = pd.read_csv(trained_run.output_dir / "samples.csv", keep_default_na=False)
    assert list(frame.columns) == ["smiles", "valid"]
    assert len(frame) == 20
    assert frame["valid"].mean() == pytest.approx(trained_run.metrics["validity"], abs=1e-4)


def test_recipe_yaml_reloads_as_the_same_data_model_and_training_settings(trained_run):
    data_args, model_kwargs, training_kwargs, _ = load_recipe(trained_run.output_dir / "recipe.yaml")
    overrides = trained_run.overrides
    assert data_args.data == overrides["data"]
    assert data_args.max_length == overrides["max_length"]
    assert model_kwargs["latent_dim"] == overrides["latent_dim"]
    assert training_kwargs["max_steps"] == overrides["max_steps"]
    assert training_kwargs["kl_warmup_steps"] == overrides["kl_warmup_steps"]


def test_recipe_yaml_also_records_the_evaluation_settings(trained_run):
    _, _, _, eval_args = load_recipe(trained_run.output_dir / "recipe.yaml")
    assert eval_args.num_prior_samples == trained_run.overrides["num_prior_samples"]
    assert eval_args.num_reconstruction_molecules == trained_run.overrides["num_reconstruction_molecules"]


# ----------------------------------------------------------------------------- load and use


def test_loaded_model_samples_reproducibly_with_a_seed(trained_run):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    assert isinstance(vae, SeqVAEPipeline)
    first = vae.sample(20, seed=3)
    assert len(first) == 20 and all(isinstance(s, str) for s in first)
    assert vae.sample(20, seed=3) == first
    assert vae.sample(20, seed=4) != first
    again = seqvae.load(trained_run.output_dir, device="cpu")
    assert again.sample(20, seed=3) == first


def test_loaded_model_has_the_trained_weights(trained_run):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    saved = load_file(str(trained_run.output_dir / "model.safetensors"))
    state = vae.model.state_dict()
    for key, value in saved.items():
        assert torch.equal(state[key], value), key
    assert not vae.model.training


def test_pipeline_encodes_reconstructs_and_interpolates(trained_run):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    molecules = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1"]
    z = vae.encode(molecules)
    assert z.shape == (3, 8)
    assert torch.allclose(vae.encode(molecules[1]), z[1:2], atol=1e-5)  # batching does not matter
    assert len(vae.reconstruct(molecules)) == 3
    path = vae.interpolate("CCO", "c1ccccc1O", steps=4)
    assert len(path) == 4 and all(isinstance(s, str) for s in path)
    frame = vae.sample_frame(5, seed=0)
    assert list(frame.columns) == ["smiles", "valid", "mol", "inchikey"] and len(frame) == 5
    assert "latent_dim=8" in repr(vae)


def test_load_of_a_folder_without_weights_names_the_missing_file(trained_run, tmp_path):
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(trained_run.output_dir / name, incomplete / name)
    with pytest.raises(SeqVAEError, match=r"missing model\.safetensors\. ") as info:
        seqvae.load(incomplete)  # only the weights are missing, and only they are named
    assert str(incomplete) in str(info.value)


def test_load_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(SeqVAEError, match="model folder not found"):
        seqvae.load(tmp_path / "no_such_run")


def test_load_of_a_corrupt_config_raises_seqvae_error(trained_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_run.output_dir, broken, ignore=shutil.ignore_patterns("checkpoint-*"))
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(SeqVAEError, match="cannot load the model"):
        seqvae.load(broken)


# ------------------------------------------------------------------------------------ resume


def test_resume_continues_from_the_last_checkpoint(tmp_path, tiny_csv, make_overrides):
    output_dir = tmp_path / "run"
    first = make_overrides(tiny_csv, max_steps=10, save_steps=5, logging_steps=5)
    train_model(None, first, output_dir)
    assert (output_dir / "checkpoint-10").is_dir()

    resumed = train_model(None, {**first, "max_steps": 20}, output_dir, resume=True)
    state = json.loads((output_dir / "checkpoint-20" / "trainer_state.json").read_text())
    assert state["global_step"] == 20
    loss_steps = [r["step"] for r in read_log(output_dir) if "loss" in r]
    assert loss_steps == [5, 10, 15, 20]  # steps 11-20 only: not restarted from 0
    assert isinstance(resumed.model, SeqVAE)
    assert (output_dir / "model.safetensors").is_file()
    assert not (output_dir / "training_args.bin").exists()


def test_resume_without_a_checkpoint_raises(tmp_path, tiny_csv, make_overrides):
    output_dir = tmp_path / "fresh"
    with pytest.raises(SeqVAEError, match="no checkpoint") as info:
        train_model(None, make_overrides(tiny_csv, max_steps=2), output_dir, resume=True)
    assert str(output_dir) in str(info.value)


# -------------------------------------------------------------------- the trainer's objective


def loss_records(run_dir) -> list[dict]:
    return [r for r in read_log(run_dir) if "loss" in r]


def test_token_reduction_optimises_the_per_token_reconstruction(tmp_path, tiny_csv, make_overrides):
    overrides = make_overrides(
        tiny_csv, max_steps=3, loss_reduction="token", kl_schedule="constant", kl_max_weight=0.0
    )
    train_model(None, overrides, tmp_path / "run")
    records = loss_records(tmp_path / "run")
    assert len(records) == 3
    for record in records:
        assert record["kl_weight"] == 0.0
        assert record["loss"] == pytest.approx(record["recon_per_token"], abs=1e-3)
        assert record["recon_per_sequence"] > 5 * record["loss"]


def test_free_bits_floor_enters_the_training_loss(tmp_path, tiny_csv, make_overrides):
    # 8 latent dims with a 5-nat floor each: the KL term is at least 40 while the real KL is tiny
    overrides = make_overrides(tiny_csv, max_steps=3, kl_schedule="constant", kl_max_weight=1.0, free_bits=5.0)
    train_model(None, overrides, tmp_path / "run")
    records = loss_records(tmp_path / "run")
    assert len(records) == 3
    for record in records:
        assert record["kl_per_sequence"] < 5.0
        assert record["loss"] - record["recon_per_sequence"] == pytest.approx(40.0, abs=1e-2)


@pytest.mark.parametrize(
    "extra",
    [
        {"encoder_type": "transformer", "decoder_type": "transformer", "word_dropout": 0.3,
         "kl_schedule": "cyclical", "kl_num_cycles": 2},
        {"encoder_type": "lstm", "decoder_type": "lstm", "representation": "selfies", "kl_schedule": "sigmoid"},
    ],
    ids=["transformer-word_dropout-cyclical", "lstm-selfies-sigmoid"],
)
def test_other_architectures_and_objectives_train_save_and_sample(tmp_path, tiny_csv, make_overrides, extra):
    from seqvae.chem import is_valid

    overrides = make_overrides(tiny_csv, max_steps=4, **extra)
    run = train_model(None, overrides, tmp_path / "run")
    assert all(math.isfinite(record["loss"]) for record in loss_records(tmp_path / "run"))
    assert run.validation_metrics["eval_recon_per_sequence"] > 0
    vae = seqvae.load(tmp_path / "run", device="cpu")
    config = vae.config
    assert (config.encoder_type, config.decoder_type) == (extra["encoder_type"], extra["decoder_type"])
    assert config.representation == extra.get("representation", "smiles")
    samples = vae.sample(30, seed=0, max_length=40)
    assert len(samples) == 30 and vae.sample(30, seed=0, max_length=40) == samples
    if config.representation == "selfies":
        # Decoded SELFIES come back as SMILES, and they spell a valid molecule whenever every atom
        # has a SELFIES valence rule: selfies allows atoms without one (Si, Cu, Hg...) 8 bonds,
        # more than RDKit accepts, and an untrained model does emit them.
        assert not any(sample.startswith("[C]") for sample in samples)
        ruled = [sample for sample in samples if sample and _atoms_have_selfies_valence_rules(sample)]
        assert ruled and all(is_valid(sample) for sample in ruled)


def test_a_fresh_run_in_an_old_folder_starts_a_fresh_log(tmp_path, tiny_csv, make_overrides):
    output_dir = tmp_path / "run"
    settings = make_overrides(tiny_csv, max_steps=4, save_steps=100, logging_steps=2)
    train_model(None, settings, output_dir)
    train_model(None, settings, output_dir)
    assert [r["step"] for r in loss_records(output_dir)] == [2, 4]


def test_stopping_at_the_time_limit_saves_a_checkpoint_to_resume_from(tmp_path, tiny_csv, make_overrides):
    output_dir = tmp_path / "run"
    # A limit this small stops training after its first step; the step must be saved.
    train_model(None, make_overrides(tiny_csv, max_steps=50, save_steps=100, max_train_seconds=1.0e-6), output_dir)
    checkpoints = sorted(output_dir.glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-1"]


def test_validation_metrics_include_a_loss_for_best_model_selection(trained_run):
    metrics = trained_run.metrics
    expected = metrics["recon_per_sequence"] + metrics["kl_per_sequence"]
    assert metrics["loss"] == pytest.approx(expected, abs=1e-3)


def test_validation_keeps_no_logits_of_past_batches():
    """Every batch's logits [B, T, V] must be let go: kept (ModelOutput holds an item set to None
    through its attribute), PTB's validation set held 8 GB at once."""
    from seqvae.arguments import ObjectiveArguments
    from seqvae.training import validation_metrics

    model = SeqVAE(SeqVAEConfig(vocab_size=12, embedding_dim=8, encoder_hidden_size=8, decoder_hidden_size=8, latent_dim=4))
    outputs, forward = [], model.forward

    def recording_forward(*args, **kwargs):
        outputs.append(forward(*args, **kwargs))
        return outputs[-1]

    model.forward = recording_forward
    ids = torch.randint(4, 12, (6, 5))
    batches = [{"input_ids": ids[:3], "attention_mask": torch.ones(3, 5, dtype=torch.long)},
               {"input_ids": ids[3:], "attention_mask": torch.ones(3, 5, dtype=torch.long)}]
    validation_metrics(model, batches, ObjectiveArguments())
    assert len(outputs) == 2 and all(out["logits"] is None for out in outputs)


def _atoms_have_selfies_valence_rules(smiles: str) -> bool:
    """Every atom is an element (and charge) that ``selfies.get_semantic_constraints()`` names."""
    import re

    import selfies

    ruled = set(selfies.get_semantic_constraints()) - {"?"}
    atoms = re.findall(r"Cl|Br|[BCNOPSFI]", re.sub(r"\[[^\]]*\]", "", smiles))  # outside brackets
    for element, sign, digits in re.findall(r"\[\d*([A-Z][a-z]?|[bcnops])[^\]+-]*(?:([+-])(\d*))?", smiles):
        atoms.append(element.capitalize() + (f"{sign}{digits or 1}" if sign else ""))
    return all(atom in ruled for atom in atoms)


@pytest.mark.parametrize("loss_reduction", ["sequence", "token"])
def test_a_batch_run_in_chunks_gives_the_whole_batch_gradient(tiny_config, loss_reduction, monkeypatch, tmp_path):
    from seqvae.arguments import SeqVAETrainingArguments
    from seqvae.data import PaddingCollator
    from seqvae.training import SeqVAETrainer

    # Without the latent's noise both ways see the same z, so the gradients must agree.
    monkeypatch.setattr(SeqVAE, "reparameterize", staticmethod(lambda mu, logvar: mu))
    torch.manual_seed(0)
    model = SeqVAE(tiny_config(dropout=0.0))
    generator = torch.Generator().manual_seed(0)
    rows = [{"input_ids": [1, *torch.randint(4, 16, (n,), generator=generator).tolist(), 2]} for n in (3, 9, 5, 12, 7, 4, 11)]
    batch = PaddingCollator(0)(rows)
    chunk_budget = batch["input_ids"].size(1) * 3  # 7 rows in 3 chunks: 3, 3 and 1 rows

    def loss_and_gradients(max_tokens_per_chunk):
        args = SeqVAETrainingArguments(
            output_dir=str(tmp_path), report_to="none", kl_schedule="constant", loss_reduction=loss_reduction,
            max_tokens_per_chunk=max_tokens_per_chunk,
        )
        trainer = SeqVAETrainer(model=model, args=args)
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which this test skips
        model.zero_grad()
        loss = trainer.training_step(model, dict(batch))
        return loss, [p.grad.clone() for p in model.parameters() if p.grad is not None]

    whole_loss, whole = loss_and_gradients(0)
    chunked_loss, chunked = loss_and_gradients(chunk_budget)
    assert torch.allclose(whole_loss, torch.as_tensor(chunked_loss), rtol=1e-5)
    assert len(whole) == len(chunked) > 0
    for a, b in zip(whole, chunked):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("streaming", [False, True], ids=["in-memory", "streamed"])
def test_randomized_smiles_train_and_record_the_choice(tmp_path, tiny_csv, make_overrides, streaming):
    """Training reads randomly spelled molecules, validation the stored ones (so that its
    figures compare across settings), and the recipe records the choice."""
    import yaml

    overrides = make_overrides(tiny_csv, max_steps=3, randomized_smiles=True, streaming=streaming)
    run = train_model(None, overrides, tmp_path / "run")
    assert all(math.isfinite(record["loss"]) for record in loss_records(tmp_path / "run"))
    assert run.validation_metrics["eval_recon_per_sequence"] > 0
    recipe = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert recipe["randomized_smiles"] is True
