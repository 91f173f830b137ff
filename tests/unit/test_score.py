"""Per-molecule scores (vae.score, seqvae score) and the table output of seqvae encode, on the
tiny trained model: rows keep their order, invalid rows are flagged, not dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import seqvae
from seqvae import SeqVAEError
from seqvae.data import run_split
from seqvae.modeling import eval_mode
from seqvae.pipeline import SeqVAEPipeline
from seqvae.search import sequence_elbo_terms
from tests.support import run_cli

pytestmark = pytest.mark.usefixtures("restore_logging")

INPUTS = ["CCO", "C1CC(", "c1ccccc1O", "", "CC(=O)Nc1ccccc1", None, "CCN(CC)CC"]


@pytest.fixture(scope="module")
def vae(trained_run):
    return seqvae.load(trained_run.output_dir, device="cpu")


def test_score_keeps_row_order_and_flags_invalid_rows(vae):
    frame = vae.score(INPUTS, progress=False)
    assert frame["smiles"].tolist() == INPUTS
    assert frame["valid"].tolist() == [True, False, True, False, True, False, True]
    valid, invalid = frame[frame["valid"]], frame[~frame["valid"]]
    assert np.isfinite(valid[["reconstruction_nll", "kl", "neg_elbo"]].to_numpy()).all()
    assert np.allclose(valid["neg_elbo"], valid["reconstruction_nll"] + valid["kl"])
    assert (valid["kl"] >= 0).all() and (valid["reconstruction_nll"] > 0).all()
    assert invalid["neg_elbo"].isna().all() and invalid["reconstruction"].isna().all()
    assert not invalid["reconstructed"].any()
    assert valid["reconstruction"].map(lambda s: isinstance(s, str)).all()


def test_a_molecules_score_does_not_depend_on_its_neighbours_or_the_batch(vae):
    alone = vae.score(["c1ccccc1O"], progress=False)
    together = vae.score(INPUTS, batch_size=2, progress=False)
    assert together.loc[2, "neg_elbo"] == pytest.approx(alone.loc[0, "neg_elbo"], rel=1e-5)
    assert together.loc[2, "reconstruction"] == alone.loc[0, "reconstruction"]


def test_elbo_terms_from_the_posterior_mean_match_the_models_forward(vae):
    batch = vae.tokenize(["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1"])
    with torch.no_grad(), eval_mode(vae.model):
        recon, kl, _ = sequence_elbo_terms(vae.model, batch["input_ids"], batch["attention_mask"], torch.zeros(1, 8))
        output = vae.model(batch["input_ids"], batch["attention_mask"], use_posterior_mean=True)
    assert recon.mean().item() == pytest.approx(output.recon_loss.item(), rel=1e-5)
    assert kl.mean().item() == pytest.approx(output.kl.item(), rel=1e-5)


def test_nearest_training_molecule_comes_from_the_run(vae, trained_run):
    train_rows, validation_rows = run_split(trained_run.output_dir)
    training = train_rows["smiles"]
    frame = vae.score([training[0], validation_rows["smiles"][0]], progress=False)
    assert frame.loc[0, "nearest_training"] == training[0]  # a training molecule finds itself...
    assert frame.loc[0, "nearest_training_similarity"] == pytest.approx(1.0)
    assert 0 <= frame.loc[1, "nearest_training_similarity"] <= 1
    own = vae.score([training[0]], training=["CCO", "CCN"], progress=False)
    assert own.loc[0, "nearest_training"] in ("CCO", "CCN")  # ...and training= replaces the run's set


def test_a_model_without_a_run_folder_scores_without_the_training_columns(vae):
    bare = SeqVAEPipeline(vae.model, vae.tokenizer)
    frame = bare.score(["CCO", "xx"], progress=False)
    assert "nearest_training" not in frame.columns and "no run folder" in frame.attrs["note"]
    assert frame["valid"].tolist() == [True, False]


def test_score_progress_false_prints_nothing(vae, capfd):
    capfd.readouterr()
    vae.score(INPUTS * 40, progress=False)  # 280 rows: a bar by default
    assert capfd.readouterr().err == ""
    vae.score(INPUTS, progress=True)
    assert "scoring" in capfd.readouterr().err


def test_score_checks_its_counts(vae):
    with pytest.raises(SeqVAEError, match="num_samples"):
        vae.score(["CCO"], num_samples=0)


# ------------------------------------------------------------------------------- command line


def _molecule_file(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles\nm1,CCO\nm2,C1CC(\nm3,c1ccccc1O\nm4,\nm5,CCN(CC)CC\n")
    return path


def test_seqvae_score_writes_one_row_per_input_row_in_order(capsys, tmp_path, trained_run):
    output = tmp_path / "scored.csv"
    status, out, err = run_cli(
        capsys, "score", "--model", trained_run.output_dir, "--input", _molecule_file(tmp_path), "--output", output
    )
    assert status == 0, err
    frame = pd.read_csv(output, keep_default_na=False, na_values=[""])
    assert frame["line"].tolist() == [2, 3, 4, 5, 6] and frame["id"].tolist() == ["m1", "m2", "m3", "m4", "m5"]
    assert frame["valid"].tolist() == [True, False, True, False, True]
    assert {"neg_elbo", "reconstruction", "reconstructed", "nearest_training", "nearest_training_similarity"} <= set(frame)
    assert "wrote 5 scored rows" in out and "2 invalid (kept, valid=False)" in out


def test_seqvae_score_refuses_an_output_that_is_not_a_table(capsys, tmp_path, trained_run):
    status, _, err = run_cli(
        capsys, "score", "--model", trained_run.output_dir, "--input", _molecule_file(tmp_path), "--output", tmp_path / "x.npy"
    )
    assert status == 2 and ".csv or .parquet" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_encode_table_lines_up_with_the_input(capsys, tmp_path, trained_run, vae, suffix):
    output = tmp_path / f"latents{suffix}"
    status, out, err = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", _molecule_file(tmp_path), "--output", output,
        "--on_invalid", "flag",
    )
    assert status == 0, err
    frame = pd.read_csv(output) if suffix == ".csv" else pd.read_parquet(output)
    assert list(frame.columns[:4]) == ["line", "id", "smiles", "valid"]
    assert list(frame.columns[4:]) == [f"z{i}" for i in range(8)]
    assert frame["line"].tolist() == [2, 3, 4, 5, 6] and frame["id"].tolist() == ["m1", "m2", "m3", "m4", "m5"]
    assert frame["valid"].tolist() == [True, False, True, False, True]
    latents = frame[[f"z{i}" for i in range(8)]].to_numpy()
    expected = vae.encode(["CCO", "c1ccccc1O", "CCN(CC)CC"]).numpy()
    assert np.allclose(latents[[0, 2, 4]], expected, atol=1e-5)
    assert np.isnan(latents[[1, 3]]).all()
    assert not (tmp_path / f"latents{suffix}.rows.csv").exists()


def test_encode_table_with_skip_keeps_each_rows_line(capsys, tmp_path, trained_run):
    output = tmp_path / "latents.csv"
    status, _, err = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", _molecule_file(tmp_path), "--output", output,
        "--on_invalid", "skip",
    )
    assert status == 0, err
    frame = pd.read_csv(output)
    assert frame["line"].tolist() == [2, 4, 6] and frame["id"].tolist() == ["m1", "m3", "m5"]


def test_encode_table_of_a_smi_file_takes_its_names(capsys, tmp_path, trained_run):
    molecules = tmp_path / "mols.smi"
    molecules.write_text("CCO ethanol\nc1ccccc1O phenol\n")
    output = tmp_path / "latents.csv"
    status, _, err = run_cli(capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output)
    assert status == 0, err
    frame = pd.read_csv(output)
    assert frame["name"].tolist() == ["ethanol", "phenol"] and frame["line"].tolist() == [1, 2]


def test_a_wrong_id_column_is_named_with_the_columns(capsys, tmp_path, trained_run):
    status, _, err = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", _molecule_file(tmp_path),
        "--output", tmp_path / "z.csv", "--id_column", "ID_X",
    )
    assert status == 2 and "--id_column 'ID_X'" in err and "columns: id, smiles" in err
