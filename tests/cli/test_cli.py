"""Tests of the ``seqvae`` command line: user errors exit 2 with one ``error:`` line and no
traceback; the happy paths run on the session's tiny trained model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqvae.cli import main
from tests.support import assert_user_error, run_cli

ROOT = Path(__file__).resolve().parents[2]
TINY_TRAIN = [
    "max_length=80",
    "per_device_train_batch_size=16",
    "embedding_dim=16",
    "encoder_hidden_size=32",
    "decoder_hidden_size=32",
    "latent_dim=8",
    "transformer_ffn_dim=32",
    "report_to=none",
    "num_prior_samples=5",
    "num_reconstruction_molecules=5",
]


pytestmark = pytest.mark.usefixtures("restore_logging")


# ------------------------------------------------------------------------------ user errors


def test_train_with_a_missing_corpus_file(capsys, tmp_path):
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", "data=/nope.csv")
    assert_user_error(*result, "/nope.csv", "not found")


def test_train_with_a_non_utf8_corpus(capsys, tmp_path):
    corpus = tmp_path / "latin1.csv"
    corpus.write_bytes(b"CCO\n\xff\xfeCC\n")
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", f"data={corpus}")
    assert_user_error(*result, str(corpus), "line 2", "UTF-8")


def test_train_with_a_wrong_smiles_column(capsys, tmp_path, tiny_csv):
    result = run_cli(
        capsys, "train", "--output_dir", tmp_path / "run", f"data={tiny_csv}", "smiles_column=structure"
    )
    assert_user_error(*result, str(tiny_csv), "'structure'", "smiles, id")


def test_train_with_an_all_invalid_corpus(capsys, tmp_path):
    corpus = tmp_path / "junk.csv"
    corpus.write_text("smiles\nxx\nyy\n")
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", f"data={corpus}")
    assert_user_error(*result, str(corpus), "no usable molecules", "2 invalid SMILES")


@pytest.mark.parametrize(
    "name",
    [
        "empty.csv",
        "empty.smi",
    ],
)
def test_train_with_an_empty_corpus(capsys, tmp_path, name):
    corpus = tmp_path / name
    corpus.write_text("")
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", f"data={corpus}")
    assert_user_error(*result, str(corpus))


def test_train_with_an_unsupported_file_type(capsys, tmp_path):
    corpus = tmp_path / "mols.sdf"
    corpus.write_text("CCO\n")
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", f"data={corpus}")
    assert_user_error(*result, str(corpus), "unsupported file type .sdf")


def test_train_with_a_recipe_holding_an_unknown_key(capsys, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: bundled\nlearning_rat: 0.001\n")
    result = run_cli(capsys, "train", "--config", recipe, "--output_dir", tmp_path / "run")
    assert_user_error(*result, str(recipe), "'learning_rat'", "did you mean learning_rate")


@pytest.mark.parametrize(
    "line, fragment",
    [("max_steps: abc", "key 'max_steps' expects int"), ("learning_rate: fast", "key 'learning_rate' expects float")],
)
def test_train_with_a_recipe_holding_a_wrong_type(capsys, tmp_path, line, fragment):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: bundled\n{line}\n")
    result = run_cli(capsys, "train", "--recipe", recipe, "--output_dir", tmp_path / "run")
    assert_user_error(*result, str(recipe), fragment)


def test_train_with_a_missing_recipe(capsys, tmp_path):
    result = run_cli(capsys, "train", "--config", tmp_path / "absent.yaml")
    assert_user_error(*result, "recipe not found", "absent.yaml")


def test_train_with_an_override_that_is_not_key_value(capsys, tmp_path):
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", "max_steps")
    assert_user_error(*result, "key=value")


def test_train_with_an_unknown_kl_schedule(capsys, tmp_path, tiny_csv):
    result = run_cli(
        capsys, "train", "--output_dir", tmp_path / "run", f"data={tiny_csv}", "kl_schedule=exponential"
    )
    assert_user_error(*result, "kl_schedule='exponential'", "cyclical")


def test_train_with_an_invalid_model_setting(capsys, tmp_path, tiny_csv):
    result = run_cli(
        capsys, "train", "--output_dir", tmp_path / "run", f"data={tiny_csv}", "encoder_type=rnn", *TINY_TRAIN
    )
    assert_user_error(*result, "encoder_type", "gru, lstm, transformer")


def test_sample_from_an_incomplete_model_folder(capsys, tmp_path, trained_run):
    folder = tmp_path / "incomplete"
    folder.mkdir()
    (folder / "config.json").write_bytes((trained_run.output_dir / "config.json").read_bytes())
    result = run_cli(capsys, "sample", "--model", folder)
    assert_user_error(*result, str(folder), "model.safetensors", "tokenizer.json")


def test_sample_from_a_missing_model_folder(capsys, tmp_path):
    result = run_cli(capsys, "sample", "--model", tmp_path / "no_run")
    assert_user_error(*result, "model folder not found", "no_run")


def test_encode_with_a_missing_input_file(capsys, tmp_path, trained_run):
    result = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", tmp_path / "absent.csv",
        "--output", tmp_path / "z.npy",
    )
    assert_user_error(*result, "input file not found", "absent.csv")
    assert not (tmp_path / "z.npy").exists()


def test_encode_with_an_empty_row_names_its_line(capsys, tmp_path, trained_run):
    molecules = tmp_path / "mols.csv"
    molecules.write_text("smiles\nCCO\n\nCCN\n")
    result = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", tmp_path / "z.npy"
    )
    assert_user_error(*result, str(molecules), "line 3")


def test_encode_with_an_invalid_smiles_names_its_line(capsys, tmp_path, trained_run):
    molecules = tmp_path / "mols.csv"
    molecules.write_text("smiles\nCCO\nCCN\nC1CC((\n")
    result = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", tmp_path / "z.npy"
    )
    assert_user_error(*result, str(molecules), "line 4", "'C1CC(('", "1 invalid rows")
    assert not (tmp_path / "z.npy").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["sample", "--num_samples", "0"], "num_samples must be at least 1"),
        (["sample", "--temperature", "0"], "temperature must be > 0"),
        (["interpolate", "--start", "CCO", "--end", "CCN", "--steps", "1"], "steps must be at least 2"),
        (["sample", "--top_p", "0"], "top_p must be in (0, 1]"),
        (["sample", "--top_k", "-1"], "top_k must be >= 0"),
        (["sample", "--batch_size", "0"], "batch_size must be at least 1"),
    ],
)
def test_bad_generation_options(capsys, trained_run, argv, fragment):
    result = run_cli(capsys, argv[0], "--model", trained_run.output_dir, *argv[1:])
    assert_user_error(*result, fragment)


def test_argparse_errors_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sample"])  # --model is required
    assert info.value.code == 2
    assert "--model" in capsys.readouterr().err


# ------------------------------------------------------------------------------ happy paths


def test_sample_writes_a_csv_with_smiles_and_validity(capsys, tmp_path, trained_run):
    output = tmp_path / "out" / "samples.csv"
    status, out, err = run_cli(
        capsys, "sample", "--model", trained_run.output_dir, "--num_samples", 5, "--seed", 1, "--output", output
    )
    assert status == 0, err
    frame = pd.read_csv(output, keep_default_na=False)
    assert list(frame.columns) == ["smiles", "valid"]
    assert len(frame) == 5
    assert set(frame["valid"]) <= {True, False}
    assert "wrote 5 samples" in out


def test_sample_with_a_seed_is_reproducible_and_prints_csv_without_output(capsys, trained_run):
    argv = ["sample", "--model", trained_run.output_dir, "--num_samples", 4, "--seed", 7, "--top_k", 5]
    status, first, _ = run_cli(capsys, *argv)
    assert status == 0
    lines = first.splitlines()
    assert lines[0] == "smiles,valid" and len(lines) == 5
    assert run_cli(capsys, *argv)[1] == first


@pytest.mark.parametrize("precision", ["bf16", "int8", "auto"])
def test_sample_with_a_reduced_precision_decodes_in_it(capsys, trained_run, monkeypatch, precision):
    from seqvae import generation

    used = []
    real = generation.in_precision

    def spy(model, asked):
        converted = real(model, asked)
        used.append(getattr(converted, "decoding_precision", "fp32"))
        return converted

    monkeypatch.setattr(generation, "in_precision", spy)
    argv = ["sample", "--model", trained_run.output_dir, "--num_samples", 4, "--seed", 7, "--precision", precision]
    status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    assert out.splitlines()[0] == "smiles,valid" and len(out.splitlines()) == 5
    expected = generation.resolve_precision(precision, "cpu")
    assert used and set(used) == {expected}


@pytest.mark.parametrize("flags, follows_grammar", [([], True), (["--no_syntax"], False)])
def test_sample_follows_the_smiles_grammar_unless_told_not_to(capsys, trained_run, monkeypatch, flags, follows_grammar):
    from seqvae import generation

    given = []
    real = generation.decode_latents

    def spy(model, z, **options):
        given.append(options.get("syntax"))
        return real(model, z, **options)

    monkeypatch.setattr(generation, "decode_latents", spy)
    argv = ["sample", "--model", trained_run.output_dir, "--num_samples", 4, "--seed", 7, *flags]
    status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    assert given and all((grammar is not None) == follows_grammar for grammar in given)


def test_encode_writes_posterior_means_as_npy(capsys, tmp_path, trained_run):
    molecules = tmp_path / "mols.smi"
    molecules.write_text("CCO ethanol\nc1ccccc1O phenol\nCC(=O)Nc1ccccc1 acetanilide\n")
    output = tmp_path / "latents.npy"
    status, out, err = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output
    )
    assert status == 0, err
    latents = np.load(output)
    assert latents.shape == (3, 8)
    assert np.isfinite(latents).all()
    assert "3 x 8" in out


def test_interpolate_prints_a_homotopy_table_with_one_line_per_step(capsys, trained_run):
    status, out, err = run_cli(
        capsys, "interpolate", "--model", trained_run.output_dir, "--start", "CCO", "--end", "c1ccccc1O",
        "--steps", 4,
    )
    assert status == 0, err
    header, *lines = out.splitlines()
    assert header == "step\tweight\toutput" and len(lines) == 4
    assert [line.split("\t")[:2] for line in lines] == [["0", "0.000"], ["1", "0.333"], ["2", "0.667"], ["3", "1.000"]]


def test_train_runs_and_prints_metrics(capsys, tmp_path, tiny_csv):
    output_dir = tmp_path / "cli_run"
    status, out, err = run_cli(
        capsys, "train", "--output_dir", output_dir, "--max_steps", 3, f"data={tiny_csv}", *TINY_TRAIN
    )
    assert status == 0, err
    assert (output_dir / "metrics.json").is_file()
    assert (output_dir / "model.safetensors").is_file()
    printed = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert "validity" in printed and "reconstruction_accuracy" in printed
    args = (output_dir / "training_args.json").read_text()
    assert '"max_steps": 3' in args


# ------------------------------------------------------------------------------- subprocess


def subprocess_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_python_m_seqvae_help_exits_zero():
    result = subprocess.run(
        [sys.executable, "-m", "seqvae", "--help"], cwd=ROOT, env=subprocess_env(),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for command in ("train", "sample", "encode", "interpolate"):
        assert command in result.stdout


def test_python_m_seqvae_user_error_prints_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqvae", "sample", "--model", str(tmp_path / "missing_run")],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing_run" in errors[0]


def test_encoding_a_symbol_outside_the_vocabulary_warns(trained_run, caplog):
    import seqvae

    vae = seqvae.load(trained_run.output_dir)
    with caplog.at_level("WARNING", logger="seqvae.pipeline"):
        latents = vae.encode(["CCO", "C[Xe]C"])
    assert latents.shape[0] == 2
    assert "1 symbol(s) in 1 of 2 input(s)" in caplog.text


@pytest.mark.parametrize(
    "setting, fragment",
    [
        (["kl_min_weight=0.5", "kl_max_weight=0.1"], "below kl_min_weight"),
        (["kl_schedule=cyclical", "kl_cycle_ratio=0"], "kl_cycle_ratio"),
        (["kl_schedule=cyclical", "kl_num_cycles=0"], "kl_num_cycles"),
        (["free_bits=-1"], "free_bits must be >= 0"),
        (["num_prior_samples=0"], "num_prior_samples"),
        (["sample_temperature=0"], "sample_temperature must be > 0"),
    ],
)
def test_train_with_an_invalid_objective_or_evaluation_setting(capsys, tmp_path, tiny_csv, setting, fragment):
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "run", f"data={tiny_csv}", *TINY_TRAIN, *setting)
    assert_user_error(*result, fragment)
    assert not (tmp_path / "run" / "data_report.json").exists()  # rejected before reading the data


def test_encode_creates_the_output_folder(capsys, tmp_path, trained_run):
    molecules = tmp_path / "mols.smi"
    molecules.write_text("CCO\nc1ccccc1\n")
    output = tmp_path / "new" / "folder" / "z.npy"
    status, _, _ = run_cli(capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output)
    assert status == 0 and np.load(output).shape[0] == 2


def test_interpolate_with_sampling_and_a_seed_is_reproducible(capsys, trained_run):
    argv = ["interpolate", "--model", trained_run.output_dir, "--start", "CCO", "--end", "c1ccccc1O",
            "--steps", "4", "--strategy", "sample", "--seed", "7"]
    first = run_cli(capsys, *argv)
    second = run_cli(capsys, *argv)
    assert first[0] == second[0] == 0
    assert first[1] == second[1] and len(first[1].splitlines()) == 1 + 4


def test_equivalent_smiles_get_the_same_latent(trained_run):
    import seqvae

    vae = seqvae.load(trained_run.output_dir)
    latents = vae.encode(["c1ccccc1O", "Oc1ccccc1"])
    assert np.allclose(latents[0].numpy(), latents[1].numpy())
