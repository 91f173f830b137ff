"""Property-conditioned generation: properties, data columns, the conditional model, the
pipeline and CLI interfaces, the property head, latent optimisation and control metrics.

The behaviour tests use the session's small conditional model (``conditional_run``) and check
against RDKit that conditioning moves what is generated.
"""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytest
import torch

from seqvae import SeqVAE, SeqVAEConfig, SeqVAEError
from seqvae.chem import (
    PROPERTIES,
    compute_properties,
    is_valid,
    molecule_properties,
    property_name,
    tanimoto_similarity,
    to_mol,
)
from seqvae.cli import main
from seqvae.conditions import check_condition, parse_condition_text, rerank_order
from seqvae.data import PaddingCollator, load_molecules, property_statistics
from seqvae.metrics.conditional import control_metrics, spearman
from seqvae.objectives import hide_conditions
from seqvae.optimization import best_improvement

# ------------------------------------------------------------------------------ properties


def test_built_in_properties_match_rdkit_reference_values():
    values = dict(zip(PROPERTIES, molecule_properties(to_mol("CCO"), list(PROPERTIES))))
    assert values["logP"] == pytest.approx(-0.0014, abs=1e-4)  # Crippen logP of ethanol
    assert values["MW"] == pytest.approx(46.069, abs=1e-2)
    assert values["TPSA"] == pytest.approx(20.23, abs=1e-2)
    assert (values["HBD"], values["HBA"], values["rings"]) == (1, 1, 0)
    assert 0 < values["qed"] < 1 and 1 <= values["SAS"] <= 10


def test_sas_matches_the_zinc250k_published_value():
    # Row 0 of the chemical_vae ZINC250k table: SAS 2.0840945721 (../shared/data/zinc250k/README.md).
    sas = compute_properties(["CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1"], ["SAS"])["SAS"][0]
    assert sas == pytest.approx(2.0840945721, abs=1e-8)


def test_property_aliases_and_unknown_names():
    assert property_name("LogP") == "logP" and property_name("sa") == "SAS" and property_name("MolWt") == "MW"
    assert property_name("activity") is None
    with pytest.raises(SeqVAEError, match="unknown property 'potency'"):
        compute_properties(["CCO"], ["potency"])


def test_invalid_molecules_get_nan_properties():
    values = compute_properties(["CCO", "C1CC", ""], ["logP"])["logP"]
    assert not math.isnan(values[0]) and math.isnan(values[1]) and math.isnan(values[2])


def test_tanimoto_similarity():
    assert tanimoto_similarity("c1ccccc1O", "Oc1ccccc1") == pytest.approx(1.0)
    assert 0 < tanimoto_similarity("CCO", "CCN") < 1
    assert math.isnan(tanimoto_similarity("CCO", "not a molecule"))


# ------------------------------------------------------------------------------ data columns


def test_load_molecules_computes_built_ins_and_reads_csv_columns(write_file):
    path = write_file("mols.csv", "smiles,IC50\nCCO,1.5\nc1ccccc1,2.25\n")
    molecules, report = load_molecules(path, properties=["ic50", "LogP"])
    assert molecules.column_names == ["smiles", "text", "ic50", "logP"]
    assert molecules["ic50"] == [1.5, 2.25]
    assert molecules["logP"] == pytest.approx(compute_properties(["CCO", "c1ccccc1"], ["logP"])["logP"])
    assert report.rows_kept == 2


def test_built_in_names_are_computed_even_when_the_file_has_such_a_column(write_file):
    path = write_file("mols.csv", "smiles,logP\nCCO,99\nCCCC,99\n")
    molecules, _ = load_molecules(path, properties=["logP"])
    assert all(value < 5 for value in molecules["logP"])


def test_rows_with_missing_or_non_numeric_properties_are_skipped_and_reported(write_file):
    path = write_file("mols.csv", "smiles,activity\nCCO,1.0\nCCN,abc\nCCC,\nCCCl,nan\nCCBr,inf\nCCI,2\n")
    molecules, report = load_molecules(path, properties=["activity"])
    assert molecules["smiles"] == ["CCO", "CCI"]
    assert report.skipped_counts == {"property activity missing or not a number": 4}
    assert [row.line for row in report.skipped] == [3, 4, 5, 6]
    assert "'abc'" in report.skipped[0].reason


def test_an_unknown_property_names_the_columns_and_the_built_ins(write_file):
    path = write_file("mols.csv", "smiles,activity\nCCO,1.0\n")
    with pytest.raises(SeqVAEError, match=r"unknown property 'potency'.*columns: activity.*logP, qed, SAS"):
        load_molecules(path, properties=["potency"])


def test_a_smi_file_has_no_columns_for_user_properties(write_file):
    path = write_file("mols.smi", "CCO\nCCN\n")
    with pytest.raises(SeqVAEError, match="SMILES list"):
        load_molecules(path, properties=["activity"])
    molecules, _ = load_molecules(path, properties=["qed"])
    assert len(molecules["qed"]) == 2


def test_checked_tables_of_large_files_are_cached(write_file, tmp_path, monkeypatch):
    from seqvae.data import storage

    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 1)
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path / "cache"))
    path = write_file("mols.csv", "smiles\nCCO\nCCN\n")
    first, _ = load_molecules(path, properties=["logP"])
    calls, original = [], storage.run_check
    monkeypatch.setattr(storage, "run_check", lambda *args: calls.append(args) or original(*args))
    second, _ = load_molecules(path, properties=["logP"])
    assert calls == [] and second["logP"] == first["logP"]
    load_molecules(path, properties=["qed"])  # other settings: checked again, not served stale
    assert len(calls) == 1


def test_large_csv_with_a_late_non_numeric_property_skips_only_that_row(write_file):
    # pandas reads CSVs in chunks of 10,000 rows; a column typed by its first chunk must not
    # reject the file when row 10,003 holds text or an empty cell.
    carbons = ["C" * n for n in range(1, 11)]
    rows = [f"{carbons[i % 10]}{'O' * (i // 10 % 40)},{i % 5}" for i in range(10_004)]
    rows[10_002] = rows[10_002].split(",")[0] + ",not measured"
    rows[10_003] = rows[10_003].split(",")[0] + ","
    path = write_file("big.csv", "smiles,activity\n" + "\n".join(rows) + "\n")
    molecules, report = load_molecules(path, properties=["activity"], deduplicate=False)
    assert report.skipped_counts == {"property activity missing or not a number": 2}
    assert [row.line for row in report.skipped] == [10_004, 10_005]
    assert len(molecules) == 10_002


def test_the_cache_key_includes_the_smiles_column(write_file, tmp_path, monkeypatch):
    from seqvae.data import storage

    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 1)
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path / "cache"))
    path = write_file("two.csv", "a,b\nCCO,c1ccccc1\nCCN,CCCl\n")
    first, _ = load_molecules(path, smiles_column="a")
    second, _ = load_molecules(path, smiles_column="b")
    assert first["smiles"] == ["CCO", "CCN"] and second["smiles"] == ["c1ccccc1", "CCCl"]


def test_collator_stacks_property_columns():
    batch = PaddingCollator(0, ["logP", "qed"])([{"input_ids": [1, 5, 2], "logP": 1.0, "qed": 0.5}])
    assert batch["properties"].tolist() == [[1.0, 0.5]]


# ------------------------------------------------------------------------ config and model


def test_property_statistics_from_training_rows(write_file):
    import datasets

    rows = datasets.Dataset.from_dict({"logP": [1.0, 3.0], "activity": [0.0, 2.0]})
    stats = property_statistics(rows, ["logP", "activity"], {"activity": "nM"})
    assert stats["property_means"] == [2.0, 1.0] and stats["property_stds"] == [1.0, 1.0]
    assert stats["property_units"] == ["", "nM"] and stats["property_min"] == [1.0, 0.0]
    with pytest.raises(SeqVAEError, match="same value in every training row"):
        property_statistics(datasets.Dataset.from_dict({"logP": [1.0, 1.0]}), ["logP"], {})
    with pytest.raises(SeqVAEError, match="property_units"):
        property_statistics(rows, ["logP"], {"potency": "nM"})


def test_config_rejects_inconsistent_property_statistics(tiny_config):
    with pytest.raises(ValueError, match="property_means has 1 entries for 2"):
        tiny_config(property_names=["a", "b"], property_means=[0.0])
    with pytest.raises(ValueError, match="property_stds must be > 0"):
        tiny_config(property_names=["a"], property_stds=[0.0])


def test_a_saved_model_knows_its_properties(tiny_config, tmp_path):
    config = tiny_config(property_names=["logP"], property_units=[""], property_means=[2.5], property_stds=[1.5],
                         property_min=[-1.0], property_max=[6.0], property_head_hidden_size=8)
    SeqVAE(config).save_pretrained(tmp_path)
    loaded = SeqVAE.from_pretrained(tmp_path)
    assert loaded.config.property_names == ["logP"] and loaded.config.property_max == [6.0]
    means, stds = loaded.property_scale()
    assert means.tolist() == [2.5] and stds.tolist() == [1.5]


def conditional_model(tiny_config, **overrides):
    torch.manual_seed(0)
    config = tiny_config(property_names=["logP", "qed"], property_means=[2.0, 0.5], property_stds=[2.0, 0.25],
                         property_head_hidden_size=8, **overrides)
    return SeqVAE(config).eval()


def test_condition_vector_holds_normalised_values_and_given_flags(tiny_config):
    model = conditional_model(tiny_config)
    vector = model.condition_vector(torch.tensor([[4.0, float("nan")]]), 1)
    assert vector.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    assert model.condition_vector(None, 3).abs().sum() == 0 and model.condition_vector(None, 3).shape == (3, 4)


@pytest.mark.parametrize("decoder_type", ["gru", "lstm", "transformer"])
def test_the_condition_reaches_the_decoder(tiny_config, decoder_type):
    model = conditional_model(tiny_config, decoder_type=decoder_type)
    z = torch.randn(2, model.config.latent_dim)
    tokens = torch.tensor([[1, 5, 6], [1, 7, 8]])
    low = model.condition_vector(torch.tensor([[0.0, float("nan")]] * 2), 2)
    high = model.condition_vector(torch.tensor([[5.0, float("nan")]] * 2), 2)
    assert not torch.allclose(model.decode_logits(tokens, z, condition=low)[0], model.decode_logits(tokens, z, condition=high)[0])


@pytest.mark.parametrize("decoder_type", ["gru", "lstm", "transformer"])
def test_generation_reads_the_condition(tiny_config, decoder_type):
    from seqvae.generation import decode_latents, sample_prior

    model = conditional_model(tiny_config, decoder_type=decoder_type)
    z = torch.randn(4, model.config.latent_dim)
    conditions = [model.condition_vector(torch.tensor([[t, float("nan")]]), 1)[0] for t in (-5.0, 9.0)]
    outputs = [decode_latents(model, z, strategy="greedy", max_length=12, condition=c) for c in conditions]
    assert outputs[0] != outputs[1]  # an untrained model too: the condition changes the decoder's input
    per_row = torch.stack([conditions[0], conditions[1], conditions[0]])
    assert len(sample_prior(model, 3, condition=per_row, max_length=8)) == 3


def test_the_condition_reaches_the_encoder(tiny_config):
    model = conditional_model(tiny_config)
    ids = torch.tensor([[1, 5, 6, 2]])
    mu_low, _ = model.encode(ids, condition=model.condition_vector(torch.tensor([[0.0, 0.2]]), 1))
    mu_high, _ = model.encode(ids, condition=model.condition_vector(torch.tensor([[5.0, 0.9]]), 1))
    assert not torch.allclose(mu_low, mu_high)


def test_property_head_learns_only_from_examples_without_conditions(tiny_config):
    model = conditional_model(tiny_config).train()
    ids = torch.tensor([[1, 5, 6, 2], [1, 7, 8, 2]])
    properties = torch.tensor([[1.0, 0.3], [3.0, 0.7]])
    all_given = model(ids, properties=properties, condition_mask=torch.ones(2, 2, dtype=torch.bool))
    assert all_given.property_loss.item() == 0.0
    none_given = model(ids, properties=properties, condition_mask=torch.zeros(2, 2, dtype=torch.bool))
    assert none_given.property_loss.item() > 0
    none_given.loss.backward()
    assert model.property_head[0].weight.grad.abs().sum() > 0
    assert none_given.predicted_properties.shape == (2, 2)


def test_mmd_with_conditions_pairs_each_latent_with_the_condition_the_model_read(tiny_config):
    from seqvae.arguments import ObjectiveArguments
    from seqvae.objectives import mmd_to_prior, vae_loss

    model = conditional_model(tiny_config).train()
    ids = torch.tensor([[1, 5, 6, 2], [1, 7, 8, 2], [1, 6, 5, 2]])
    properties = torch.tensor([[1.0, 0.3], [3.0, 0.7], [2.0, 0.5]])
    out = model(ids, properties=properties, condition_mask=torch.tensor([[True, True], [True, False], [False, False]]))
    assert torch.equal(out.condition, model.condition_vector(torch.tensor([[1.0, 0.3], [3.0, float("nan")], [float("nan")] * 2]), 3))
    objective = ObjectiveArguments(kl_max_weight=0.0, mmd_weight=1.0, mmd_with_conditions=True)
    _, mmd = vae_loss(out, objective, 0.0, generator=torch.Generator().manual_seed(0))
    assert mmd.item() == pytest.approx(mmd_to_prior(out.z, torch.Generator().manual_seed(0), out.condition).item())
    _, plain = vae_loss(out, ObjectiveArguments(kl_max_weight=0.0, mmd_weight=1.0), 0.0, generator=torch.Generator().manual_seed(0))
    assert plain.item() == pytest.approx(mmd_to_prior(out.z, torch.Generator().manual_seed(0)).item())  # z alone
    assert plain.item() != pytest.approx(mmd.item())


def test_unconditional_models_are_unchanged(tiny_config):
    model = SeqVAE(tiny_config()).eval()
    assert model.condition_vector(None, 2) is None and model.property_head is None
    out = model(torch.tensor([[1, 5, 6, 2]]))
    assert out.property_loss is None
    with pytest.raises(ValueError, match="no property head"):
        model.predict_properties(torch.zeros(1, model.config.latent_dim))


def test_hide_conditions_rates():
    torch.manual_seed(0)
    mask = hide_conditions((20000, 3), drop_probability=0.3, unconditional_probability=0.2)
    all_hidden = (~mask).all(dim=1).float().mean().item()
    assert all_hidden == pytest.approx(0.2 + 0.8 * 0.3**3, abs=0.015)
    assert mask.float().mean().item() == pytest.approx(0.8 * 0.7, abs=0.015)


@pytest.mark.parametrize("setting", ["condition_drop_probability=1.5", "unconditional_probability=-0.1", "property_loss_weight=-1"])
def test_invalid_conditioning_settings_are_rejected(setting, tmp_path, tiny_csv, capsys):
    status = main(["train", "--output_dir", str(tmp_path / "run"), f"data={tiny_csv}", setting])
    assert status == 2 and setting.split("=")[0] in capsys.readouterr().err


# ------------------------------------------------------------------- conditions and ranking


_Config = SeqVAEConfig(
    property_names=["logP", "qed", "activity"],
    property_units=["", "", "nM"],
    property_means=[2.5, 0.7, 10.0],
    property_stds=[1.4, 0.14, 5.0],
    property_min=[-6.9, 0.1, 0.0],
    property_max=[8.3, 0.95, 40.0],
)


def test_check_condition_resolves_names_and_converts_numbers():
    assert check_condition(_Config, {"LogP": "2.5", "QED": 0.8, "Activity": 3}) == {"logP": 2.5, "qed": 0.8, "activity": 3.0}
    assert check_condition(_Config, None) == {}


@pytest.mark.parametrize(
    "condition, fragment",
    [
        ({"potency": 1}, "unknown property 'potency': this model is conditioned on logP, qed, activity"),
        ({"logP": "abc"}, "target for logP must be a number, got 'abc'"),
        ({"logP": float("nan")}, "finite number"),
        ({"qed": True}, "must be a number"),
    ],
)
def test_bad_conditions_are_clear_errors(condition, fragment):
    with pytest.raises(SeqVAEError, match=fragment):
        check_condition(_Config, condition)


def test_conditioning_a_model_trained_without_properties_is_an_error(tiny_config):
    with pytest.raises(SeqVAEError, match="trained without properties"):
        check_condition(tiny_config(), {"logP": 2.5})


def test_targets_outside_the_training_range_are_allowed_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="seqvae.conditions"):
        assert check_condition(_Config, {"activity": 50}) == {"activity": 50.0}
    assert "outside the training range [0, 40] nM" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqvae.conditions"):
        check_condition(_Config, {"logP": 7.5})
    assert "tail of the training data" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqvae.conditions"):
        check_condition(_Config, {"logP": 3.0})
    assert caplog.text == ""


def test_a_condition_must_be_a_dict_without_repeats():
    with pytest.raises(SeqVAEError, match="dict of property: target"):
        check_condition(_Config, ["logP=2"])
    with pytest.raises(SeqVAEError, match="logP is given twice"):
        check_condition(_Config, {"logP": 1, "LogP": 2})


def test_parse_condition_text():
    assert parse_condition_text(["logP=2.5", " qed = 0.8"]) == {"logP": "2.5", "qed": "0.8"}
    for bad in ["logP", "=2", "logP="]:
        with pytest.raises(SeqVAEError, match="NAME=VALUE"):
            parse_condition_text([bad])


def test_rerank_order_puts_the_closest_predictions_first():
    predicted = torch.tensor([[0.0, 0.7, 0.0], [2.4, 0.1, 0.0], [2.6, 0.8, 0.0], [9.0, 0.8, 0.0]])
    assert rerank_order(predicted, _Config, {"logP": 2.5}) == [1, 2, 0, 3]
    # Distances are in standard deviations: qed 0.1 off (0.7 sd) outweighs logP 0.1 off (0.07 sd).
    assert rerank_order(predicted, _Config, {"logP": 2.5, "qed": 0.8})[0] == 2


# ------------------------------------------------------------------------------ metrics


def test_control_metrics_counts_invalid_molecules_as_misses():
    frame = pd.DataFrame({"valid": [True, True, True, False], "logP": [2.0, 2.4, 4.0, float("nan")]})
    result = control_metrics(frame, "logP", 2.5)
    assert result["mad"] == pytest.approx((0.5 + 0.1 + 1.5) / 3, abs=1e-4)
    assert result["hit_rate"] == 0.5 and result["hit_rate_valid"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["tolerance"] == 0.5


def test_spearman():
    assert spearman([1, 2, 3], [10, 20, 30]) == 1.0
    assert spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert math.isnan(spearman([1], [2]))


def test_best_improvement_respects_the_similarity_floor():
    path = pd.DataFrame({
        "start": ["A", "A", "A", "B"],
        "smiles": ["A", "A1", "A2", "B"],
        "valid": [True, True, True, True],
        "similarity": [1.0, 0.5, 0.2, 1.0],
        "logP": [1.0, 2.5, 5.0, 3.0],
        "logP_start": [1.0, 1.0, 1.0, 3.0],
    })
    best = best_improvement(path, "logP", min_similarity=0.4).set_index("start")
    assert best.loc["A", "smiles"] == "A1" and best.loc["A", "improvement"] == pytest.approx(1.5)
    assert best.loc["B", "improvement"] == 0.0


# ------------------------------------------------- behaviour of a small trained conditional VAE


def _measured_mean(frame: pd.DataFrame, prop: str) -> float:
    valid = frame.loc[frame["valid"], prop]
    assert len(valid) >= 30, f"too few valid molecules ({len(valid)}) to compare means"
    return valid.mean()


def test_conditioning_on_logp_moves_the_measured_logp(conditional_run):
    vae = conditional_run.vae
    low = vae.sample_frame(300, seed=0, condition={"logP": 1.0})
    high = vae.sample_frame(300, seed=0, condition={"logP": 4.0})
    assert _measured_mean(high, "logP") - _measured_mean(low, "logP") > 0.5


def test_one_model_serves_any_subset_of_conditions(conditional_run):
    vae = conditional_run.vae
    # QED alone (logP hidden) still steers QED...
    low = vae.sample_frame(300, seed=1, condition={"qed": 0.4})
    high = vae.sample_frame(300, seed=1, condition={"qed": 0.8})
    assert _measured_mean(high, "qed") - _measured_mean(low, "qed") > 0.02
    # ...both together work, and so does no condition at all.
    both = vae.sample_frame(200, seed=2, condition={"logP": 4.0, "qed": 0.6})
    assert {"logP_target", "logP_error", "qed_target", "qed_error"} <= set(both.columns)
    assert _measured_mean(both, "logP") > _measured_mean(low, "logP")
    free = vae.sample_frame(200, seed=3)
    assert free["valid"].mean() > 0.2 and "logP_target" not in free.columns


def test_sample_frame_reports_target_measured_value_and_error(conditional_run):
    frame = conditional_run.vae.sample_frame(50, seed=0, condition={"logP": 2.0})
    measured = compute_properties(frame["smiles"].tolist(), ["logP"])["logP"]
    assert frame["logP"].tolist() == pytest.approx(measured, nan_ok=True)
    assert (frame["logP_target"] == 2.0).all()
    valid = frame["valid"]
    assert (frame.loc[valid, "logP_error"] == frame.loc[valid, "logP"] - 2.0).all()


def test_property_head_predictions_correlate_with_rdkit(conditional_run, conditional_corpus):
    smiles = pd.read_csv(conditional_corpus)["smiles"].head(500).tolist()
    predicted = conditional_run.vae.predict_properties(smiles)
    measured = compute_properties(smiles, ["logP"])["logP"]
    assert spearman(predicted["logP"], measured) > 0.5


def test_reranking_brings_the_head_predictions_closer_to_the_target(conditional_run):
    vae = conditional_run.vae
    plain = vae.sample(100, seed=4, condition={"logP": 4.0})
    reranked = vae.sample(100, seed=4, condition={"logP": 4.0}, rerank=4)
    # over the valid molecules: an invalid SMILES has no latent (predict_properties refuses it)
    distance = lambda smiles: (vae.predict_properties([s for s in smiles if is_valid(s)])["logP"] - 4.0).abs().mean()  # noqa: E731
    assert len(reranked) == 100 and distance(reranked) < distance(plain)
    # Valid candidates come first, and the RDKit-measured logP moves toward the target too.
    assert sum(map(is_valid, reranked)) >= sum(map(is_valid, plain))
    measured = lambda smiles: pd.Series(compute_properties(smiles, ["logP"])["logP"]).mean()  # noqa: E731
    assert measured(reranked) > measured(plain)


def test_guidance_pushes_further_toward_the_target(conditional_run):
    vae = conditional_run.vae
    plain = vae.sample_frame(300, seed=5, condition={"logP": 4.0})
    guided = vae.sample_frame(300, seed=5, condition={"logP": 4.0}, guidance_scale=2.0)
    assert _measured_mean(guided, "logP") > _measured_mean(plain, "logP")
    with pytest.raises(SeqVAEError, match="guidance_scale must be >= 0"):
        vae.sample(2, condition={"logP": 4.0}, guidance_scale=-1.0)


def test_rerank_needs_a_condition_and_a_head(conditional_run, trained_run):
    import seqvae

    with pytest.raises(SeqVAEError, match="rerank needs a condition"):
        conditional_run.vae.sample(5, rerank=2)
    with pytest.raises(SeqVAEError, match="rerank must be an integer"):
        conditional_run.vae.sample(5, rerank=0, condition={"logP": 1})
    with pytest.raises(SeqVAEError, match="trained without properties"):
        seqvae.load(trained_run.output_dir, device="cpu").sample(5, rerank=2, condition={"logP": 1})


def test_latent_optimisation_raises_the_predicted_property(conditional_run, conditional_corpus):
    vae = conditional_run.vae
    assert all(p.grad is None for p in vae.model.parameters())
    starts = pd.read_csv(conditional_corpus)["smiles"].head(8).tolist()
    path = vae.optimize(starts, "logP", steps=30, step_size=0.1, decode_every=10)
    assert sorted(path["step"].unique()) == [0, 10, 20, 30]
    assert {"start", "smiles", "valid", "similarity", "logP", "logP_start", "qed"} <= set(path.columns)
    first = path[path["step"] == 0]["predicted_score"].to_numpy()
    last = path[path["step"] == 30]["predicted_score"].to_numpy()
    assert (last > first).all()
    # Minimising goes the other way; a callable objective works on named predictions.
    down = vae.optimize(starts[:2], {"logP": -1.0}, steps=10, decode_every=10)
    assert (down[down["step"] == 10]["predicted_score"].to_numpy() > down[down["step"] == 0]["predicted_score"].to_numpy()).all()
    custom = vae.optimize(starts[:2], lambda p: p["qed"] - p["logP"], steps=5, decode_every=5)
    assert len(custom) == 4
    assert all(p.grad is None for p in vae.model.parameters())  # only z was differentiated


@pytest.mark.parametrize(
    "objective, fragment",
    [
        ("potency", "unknown property 'potency'"),
        (42, "objective must be"),
        ({}, "objective must be"),
        ({"logP": "up"}, "weight of logP must be a number"),
    ],
)
def test_bad_optimisation_objectives(conditional_run, objective, fragment):
    with pytest.raises(SeqVAEError, match=fragment):
        conditional_run.vae.optimize(["CCO"], objective, steps=1)


def test_optimisation_rejects_invalid_start_molecules(conditional_run):
    with pytest.raises(SeqVAEError, match="not valid SMILES"):
        conditional_run.vae.optimize(["C1CC"], "logP", steps=1)


def test_a_conditional_run_stores_its_training_statistics(conditional_run):
    from seqvae.data import run_split

    train_rows, validation_rows = run_split(conditional_run.output_dir)  # the split, re-created
    config = conditional_run.vae.config
    logp = pd.Series(train_rows["logP"])
    assert config.property_means[0] == pytest.approx(logp.mean())
    assert config.property_stds[0] == pytest.approx(logp.std(ddof=0))
    assert config.property_min[0] == pytest.approx(logp.min()) and config.property_max[0] == pytest.approx(logp.max())
    assert "property_mse" in conditional_run.metrics and len(validation_rows) > 0


# ------------------------------------------------------------------------------ command line


def _cli(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_samples_at_a_condition(capsys, tmp_path, conditional_run):
    output = tmp_path / "samples.csv"
    status, out, _ = _cli(capsys, "sample", "--model", conditional_run.output_dir, "--num_samples", 20,
                          "--condition", "logP=3", "--condition", "QED=0.7", "--seed", 0, "--output", output)
    assert status == 0 and "logP target 3: mean absolute error" in out
    frame = pd.read_csv(output)
    assert len(frame) == 20 and {"smiles", "valid", "logP", "logP_target", "logP_error", "qed_target"} <= set(frame.columns)


@pytest.mark.parametrize(
    "condition, fragment",
    [
        ("logP=abc", "target for logP must be a number, got 'abc'"),
        ("potency=3", "unknown property 'potency'"),
        ("logP", "NAME=VALUE"),
    ],
)
def test_cli_bad_conditions_exit_2_without_traceback(capsys, conditional_run, condition, fragment):
    status, out, err = _cli(capsys, "sample", "--model", conditional_run.output_dir, "--num_samples", 2,
                            "--condition", condition)
    assert status == 2 and "Traceback" not in err + out
    assert fragment in err


def test_cli_condition_on_a_model_without_properties_exits_2(capsys, trained_run):
    status, _, err = _cli(capsys, "sample", "--model", trained_run.output_dir, "--num_samples", 2,
                          "--condition", "logP=2")
    assert status == 2 and "trained without properties" in err


def test_train_with_a_non_numeric_property_column_reports_the_rows(tmp_path, conditional_corpus, make_overrides):
    from seqvae.training import train_model

    lines = conditional_corpus.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",not measured"
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("\n".join(lines) + "\n")
    run = train_model(None, make_overrides(corpus, properties=["activity"], max_steps=2), tmp_path / "run")
    assert run.report.skipped_counts.get("property activity missing or not a number") == 1
    assert [row.line for row in run.report.skipped if row.reason.startswith("property")] == [6]
    assert run.model.config.property_names == ["activity"]


def test_train_with_a_property_column_holding_no_numbers_exits_2(capsys, tmp_path):
    corpus = tmp_path / "assay.csv"
    corpus.write_text("smiles,activity\nCCO,high\nCCN,low\nCCC,\n")
    status, out, err = _cli(capsys, "train", "--output_dir", tmp_path / "run", f"data={corpus}", "properties=[activity]")
    assert status == 2 and "Traceback" not in err + out
    assert "no usable molecules" in err and "property activity missing or not a number" in err


def test_skipped_property_rows_are_announced_with_their_line(write_file, caplog):
    path = write_file("mols.csv", "smiles,activity\nCCO,1.0\nCCN,n/a\n")
    with caplog.at_level(logging.WARNING, logger="seqvae.data"):
        load_molecules(path, properties=["activity"])
    assert "1 row(s) skipped" in caplog.text and "line 3" in caplog.text and "'n/a'" in caplog.text
