"""Faults at the command line and Python API boundary (issue 24): unwritable outputs are refused
before the work, invalid molecules and out-of-range values are one clear error (or a counted,
mapped skip in batch commands), ``key=value`` overrides may stand anywhere, and library errors
reach the user as one ``error:`` line with exit status 2, never a traceback.

Everything runs on the session's tiny trained model (``trained_run``); no test trains.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import seqvae
from seqvae.cli import build_parser, main, parse_arguments
from seqvae.errors import SeqVAEError
from seqvae.pipeline import SeqVAEPipeline
from tests.support import assert_user_error, run_cli

pytestmark = pytest.mark.usefixtures("restore_logging")

INVALID = "C1CC(("


def assert_api_error(call, *fragments: str) -> str:
    """A :class:`SeqVAEError` on one line, naming every fragment, without a command-line prefix."""
    with pytest.raises(SeqVAEError) as info:
        call()
    message = str(info.value)
    assert not message.startswith("command line:"), message
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.fixture(scope="module")
def vae(trained_run):
    return seqvae.load(trained_run.output_dir, device="cpu")


@pytest.fixture
def blocked(tmp_path):
    """A folder path that cannot be created, even by root: a regular file stands in its way."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    return blocker / "out"


@pytest.fixture
def no_sampling(monkeypatch):
    """Sampling or encoding fails the test: the check must come before the work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(SeqVAEPipeline, "sample_frame", refuse)
    monkeypatch.setattr(SeqVAEPipeline, "sample", refuse)
    monkeypatch.setattr(SeqVAEPipeline, "encode", refuse)


@pytest.fixture
def molecules(tmp_path):
    """Five rows: valid, invalid, empty, valid, invalid (lines 2 to 6 of the CSV)."""
    path = tmp_path / "mols.csv"
    path.write_text(f"smiles\nCCO\n{INVALID}\n\nc1ccccc1O\nxx\n")
    return path


# ----------------------------------------------------------------- outputs checked before work


def test_sample_into_an_unwritable_folder_fails_before_sampling(capsys, trained_run, blocked, no_sampling):
    result = run_cli(capsys, "sample", "--model", trained_run.output_dir, "--num_samples", 5, "--output", blocked / "s.csv")
    assert_user_error(*result, "--output", str(blocked), "not writable")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_sample_into_a_read_only_folder_fails_before_sampling(capsys, trained_run, tmp_path, no_sampling):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = run_cli(capsys, "sample", "--model", trained_run.output_dir, "--output", folder / "s.csv")
    finally:
        folder.chmod(0o700)
    assert_user_error(*result, "--output", "not writable", "Permission denied")


def test_sample_output_that_is_a_folder_is_refused(capsys, trained_run, tmp_path, no_sampling):
    result = run_cli(capsys, "sample", "--model", trained_run.output_dir, "--output", tmp_path)
    assert_user_error(*result, "--output", "is a folder")
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file\n")
    result = run_cli(capsys, "sample", "--model", trained_run.output_dir, "--output", blocker / "s.csv")
    assert_user_error(*result, "--output", f"{blocker} is a file, not a folder")


def test_encode_into_an_unwritable_folder_fails_before_encoding(capsys, trained_run, molecules, blocked, no_sampling):
    result = run_cli(capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", blocked / "z.npy")
    assert_user_error(*result, "--output", "not writable")


def test_evaluate_and_report_outputs_are_checked_first(capsys, trained_run, tmp_path, blocked, no_sampling):
    samples = tmp_path / "samples.smi"
    samples.write_text("CCO\nc1ccccc1O\n")
    result = run_cli(capsys, "evaluate", "--samples", samples, "--output", blocked / "metrics.json")
    assert_user_error(*result, "--output", "not writable")
    result = run_cli(capsys, "evaluate", "--model", trained_run.output_dir, "--num_samples", 5, "--save_samples", blocked / "s.csv")
    assert_user_error(*result, "--save_samples", "not writable")
    result = run_cli(capsys, "report", trained_run.output_dir, "--output", blocked / "report.png")
    assert_user_error(*result, "--output", "not writable")


def test_an_unwritable_logfile_is_one_line(capsys, trained_run, blocked):
    result = run_cli(capsys, "--logfile", blocked / "log.txt", "sample", "--model", trained_run.output_dir)
    assert_user_error(*result, "--logfile", "not writable")


# ---------------------------------------------------------------------------- invalid molecules


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda vae: vae.encode(["CCO", INVALID]), ["'C1CC(('", "input 2 of 2", "not a valid SMILES"]),
        (lambda vae: vae.reconstruct(INVALID), ["'C1CC(('", "not a valid SMILES"]),
        (lambda vae: vae.interpolate(INVALID, "CCO", steps=3), ["interpolation start", "'C1CC(('"]),
        (lambda vae: vae.interpolate("CCO", INVALID, steps=3), ["interpolation end", "'C1CC(('"]),
        (lambda vae: vae.homotopy("CCO", "", steps=3), ["interpolation end", "''"]),
        (lambda vae: vae.neighbours(INVALID), ["'C1CC(('", "not a valid SMILES"]),
        (lambda vae: vae.neighbours(["CCO", INVALID], num_samples=2), ["'C1CC(('", "input 2 of 2"]),
        (lambda vae: vae.encode(["CCO", None]), ["None", "input 2 of 2", "not a string"]),
    ],
)
def test_invalid_molecules_are_refused_by_the_python_api(vae, call, fragments):
    assert_api_error(lambda: call(vae), *fragments)


def test_optimize_refuses_invalid_start_molecules_before_any_work(trained_run):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    vae.model.property_head = torch.nn.Identity()  # a head, so the start molecules are what is checked
    assert_api_error(lambda: vae.optimize(["CCO", INVALID], "anything", steps=1), "1 start molecule(s)", "'C1CC(('")


def test_encode_can_flag_invalid_rows_with_nan_latents(vae):
    latents = vae.encode(["CCO", INVALID, "c1ccccc1O", "C" * 6000], on_invalid="nan")
    assert latents.shape == (4, vae.config.latent_dim)
    assert torch.isnan(latents).any(dim=1).tolist() == [False, True, False, True]
    assert torch.allclose(latents[0], vae.encode("CCO")[0], atol=1e-5)
    assert_api_error(lambda: vae.encode("CCO", on_invalid="skip"), "on_invalid must be 'error' or 'nan'")


def test_cli_interpolate_with_an_invalid_endpoint_is_one_line(capsys, trained_run):
    result = run_cli(capsys, "interpolate", "--model", trained_run.output_dir, "--start", "CCO", "--end", INVALID)
    assert_user_error(*result, "interpolation end", "'C1CC(('", "not a valid SMILES")


def test_cli_encode_refuses_invalid_rows_by_default_and_says_how_to_skip(capsys, trained_run, molecules, tmp_path):
    output = tmp_path / "z.npy"
    result = run_cli(capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output)
    assert_user_error(*result, str(molecules), "line 4", "empty molecule", "--on_invalid skip")
    molecules.write_text(f"smiles\nCCO\n{INVALID}\nc1ccccc1O\nxx\n")
    result = run_cli(capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output)
    assert_user_error(*result, str(molecules), "line 3", "'C1CC(('", "2 invalid rows", "--on_invalid skip")
    assert not output.exists() and not (tmp_path / "z.rows.csv").exists()


def test_cli_encode_skip_drops_and_counts_rows_and_maps_them_to_input_lines(capsys, trained_run, molecules, tmp_path, vae):
    output = tmp_path / "z.npy"
    status, out, err = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output, "--on_invalid", "skip"
    )
    assert status == 0, err
    assert "Traceback" not in err
    latents = np.load(output)
    assert latents.shape == (2, 8) and np.isfinite(latents).all()
    assert np.allclose(latents, vae.encode(["CCO", "c1ccccc1O"]).numpy())
    rows = pd.read_csv(tmp_path / "z.rows.csv", keep_default_na=False)
    assert rows["line"].tolist() == [2, 5] and rows["input"].tolist() == ["CCO", "c1ccccc1O"]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "skipped 3 of 5 rows" in warnings[0] and "line 3" in warnings[0]
    assert "wrote 2 x 8 latents" in out and "z.rows.csv" in out


def test_cli_encode_flag_keeps_every_row_with_nan_latents_and_a_flag(capsys, trained_run, molecules, tmp_path):
    output = tmp_path / "z.npy"
    status, out, err = run_cli(
        capsys, "encode", "--model", trained_run.output_dir, "--input", molecules, "--output", output, "--on_invalid", "flag"
    )
    assert status == 0, err
    latents = np.load(output)
    assert latents.shape == (5, 8)
    assert np.isnan(latents).any(axis=1).tolist() == [False, True, True, False, True]
    rows = pd.read_csv(tmp_path / "z.rows.csv", keep_default_na=False)
    assert rows["line"].tolist() == [2, 3, 4, 5, 6]
    assert rows["valid"].tolist() == [True, False, False, True, False]
    assert "flagged" in err and "3 of 5 rows" in err
    assert "wrote 5 x 8 latents" in out


def test_cli_encode_skip_with_no_valid_row_is_one_line(capsys, trained_run, tmp_path):
    junk = tmp_path / "junk.smi"
    junk.write_text("xx\nyy\n")
    result = run_cli(capsys, "encode", "--model", trained_run.output_dir, "--input", junk, "--output", tmp_path / "z.npy", "--on_invalid", "skip")
    assert_user_error(*result, str(junk), "none of its 2 rows")
    assert not (tmp_path / "z.npy").exists()


# ------------------------------------------------------------------------------ values checked


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["sample", "--temperature", "nan"], "temperature must be > 0 and finite, got nan"),
        (["sample", "--temperature", "inf"], "temperature must be > 0 and finite, got inf"),
        (["sample", "--temperature", "-1"], "temperature must be > 0"),
        (["sample", "--strategy", "greedy", "--temperature", "nan"], "temperature must be > 0 and finite"),
        (["sample", "--top_p", "nan"], "top_p must be in (0, 1], got nan"),
        (["sample", "--top_p", "1.5"], "top_p must be in (0, 1], got 1.5"),
        (["sample", "--top_k", "-2"], "top_k must be >= 0"),
        (["sample", "--guidance_scale", "nan"], "guidance_scale must be >= 0 and finite"),
        (["sample", "--strategy", "beam", "--num_beams", "0"], "num_beams must be at least 1, got 0"),
        (["sample", "--num_samples", "-3"], "num_samples must be at least 1, got -3"),
        (["sample", "--batch_size", "0"], "batch_size must be at least 1, got 0"),
        (["interpolate", "--start", "CCO", "--end", "CCN", "--steps", "0"], "steps must be at least 2, got 0"),
        (["interpolate", "--start", "CCO", "--end", "CCN", "--strategy", "sample", "--temperature", "nan"], "temperature"),
        (["evaluate", "--num_samples", "5", "--temperature", "inf"], "temperature must be > 0 and finite"),
    ],
)
def test_cli_values_out_of_range_are_one_line(capsys, trained_run, argv, fragment):
    result = run_cli(capsys, argv[0], "--model", trained_run.output_dir, *argv[1:])
    assert_user_error(*result, fragment)


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda vae: vae.sample(2, temperature=math.nan), ["temperature must be > 0 and finite, got nan"]),
        (lambda vae: vae.sample(2, temperature=math.inf, strategy="greedy"), ["temperature", "got inf"]),
        (lambda vae: vae.sample(2, top_k=1.5), ["top_k must be >= 0", "whole number", "1.5"]),
        (lambda vae: vae.sample(2, top_p=0.0), ["top_p must be in (0, 1], got 0.0"]),
        (lambda vae: vae.sample(2.5), ["num_samples must be a whole number", "2.5"]),
        (lambda vae: vae.sample(0), ["num_samples must be at least 1, got 0"]),
        (lambda vae: vae.sample(2, batch_size=0), ["batch_size must be at least 1, got 0"]),
        (lambda vae: vae.sample(2, strategy="beam", num_beams=True), ["num_beams must be a whole number"]),
        (lambda vae: vae.sample(2, rerank=0), ["rerank must be an integer >= 1"]),
        (lambda vae: vae.interpolate("CCO", "CCN", steps=1), ["steps must be at least 2, got 1"]),
        (lambda vae: vae.interpolate("CCO", "CCN", steps=3.0), ["steps must be a whole number"]),
        (lambda vae: vae.encode(["CCO"], batch_size=0), ["batch_size must be at least 1, got 0"]),
        (lambda vae: vae.decode(torch.zeros(1, 8), strategy="sample", temperature=0), ["temperature must be > 0"]),
        (lambda vae: vae.neighbours("CCO", scale=math.nan), ["scale >= 0", "nan"]),
        (lambda vae: vae.neighbours("CCO", num_samples=0), ["num_samples must be a whole number >= 1"]),
    ],
)
def test_python_api_values_out_of_range_are_clear_errors(vae, call, fragments):
    assert_api_error(lambda: call(vae), *fragments)


def test_python_api_optimisation_settings_are_checked(trained_run):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    vae.model.property_head = torch.nn.Identity()
    assert_api_error(lambda: vae.optimize(["CCO"], "x", steps=-1), "steps must be at least 0, got -1")
    assert_api_error(lambda: vae.optimize(["CCO"], "x", steps=1, step_size=math.nan), "step_size must be > 0 and finite")
    assert_api_error(lambda: vae.optimize(["CCO"], "x", steps=1, prior_weight=math.inf), "prior_weight must be >= 0 and finite")
    assert_api_error(lambda: vae.optimize(["CCO"], "x", steps=1, decode_every=0), "decode_every must be at least 1")


# ----------------------------------------------------------------- key=value overrides anywhere


def test_train_overrides_may_stand_between_and_after_options():
    args = parse_arguments(
        build_parser(),
        ["train", "--config", "r.yaml", "data_dir=D", "--output_dir", "R", "--max_steps", "5", "latent_dim=8", "seed=1"],
    )
    assert args.overrides == ["data_dir=D", "latent_dim=8", "seed=1"]
    assert (args.config, args.output_dir, args.max_steps) == ("r.yaml", "R", 5)
    args = parse_arguments(build_parser(), ["train", "--max_steps", "5", "latent_dim=8"])
    assert args.overrides == ["latent_dim=8"]


def test_train_passes_every_override_to_the_workflow(capsys, tmp_path, monkeypatch):
    import seqvae.workflow

    received = {}

    def fake_training(recipe, overrides, output_dir, resume=False):
        received.update(recipe=recipe, overrides=overrides, output_dir=output_dir)
        return {"validity": 1.0}

    monkeypatch.setattr(seqvae.workflow, "train_and_evaluate", fake_training)
    status, _, err = run_cli(
        capsys, "train", "--config", "X.yaml", "data_dir=D", "--output_dir", tmp_path / "R", "--max_steps", 5, "latent_dim=8"
    )
    assert status == 0, err
    assert received["overrides"] == {"data_dir": "D", "latent_dim": 8, "max_steps": 5}
    assert received["recipe"] == "X.yaml" and received["output_dir"] == str(tmp_path / "R")


@pytest.mark.parametrize("extra", ["--bogus", "--bogus=1"])
def test_unknown_options_are_still_errors(capsys, extra):
    with pytest.raises(SystemExit) as info:
        main(["train", "--output_dir", "R", "latent_dim=8", extra])
    assert info.value.code == 2
    assert f"unrecognized arguments: {extra}" in capsys.readouterr().err


def test_a_stray_word_after_the_options_is_an_override_error(capsys, tmp_path):
    result = run_cli(capsys, "train", "--output_dir", tmp_path / "R", "latent_dim=8", "--max_steps", 5, "oops")
    assert_user_error(*result, "'oops'", "key=value")


def test_other_commands_keep_refusing_extra_words(capsys, trained_run):
    with pytest.raises(SystemExit) as info:
        main(["sample", "--model", str(trained_run.output_dir), "latent_dim=8"])
    assert info.value.code == 2
    assert "unrecognized arguments: latent_dim=8" in capsys.readouterr().err


# ------------------------------------------------------------- library errors at the boundary


@pytest.mark.parametrize(
    "error, fragments",
    [
        (pickle.UnpicklingError("Weights only load failed: unsupported global os.system\nmore detail"), ["pickled", "os.system"]),
        (PermissionError(13, "Permission denied", "/ro/samples.csv"), ["Permission denied: /ro/samples.csv"]),
        (FileNotFoundError(2, "No such file or directory", "/gone/rng_state.pth"), ["No such file or directory: /gone/rng_state.pth"]),
    ],
)
def test_refused_pickles_and_os_errors_are_one_line(capsys, monkeypatch, error, fragments):
    import seqvae.workflow

    def failing_training(*args, **kwargs):
        raise error

    monkeypatch.setattr(seqvae.workflow, "train_and_evaluate", failing_training)
    result = run_cli(capsys, "train", "--output_dir", "R", "--resume")
    message = assert_user_error(*result, *fragments)
    assert "more detail" not in message and "[Errno" not in message


def test_an_internal_error_still_shows_its_traceback(monkeypatch):
    import seqvae.workflow

    def broken_training(*args, **kwargs):
        raise RuntimeError("a bug, not a user mistake")

    monkeypatch.setattr(seqvae.workflow, "train_and_evaluate", broken_training)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "--output_dir", "R"])


def test_a_pickle_planted_as_the_weights_is_never_run(capsys, trained_run, tmp_path):
    folder = tmp_path / "planted"
    shutil.copytree(trained_run.output_dir, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    result = run_cli(capsys, "sample", "--model", folder, "--num_samples", 2)
    assert_user_error(*result, str(folder))
    with pytest.raises(SeqVAEError) as info:
        seqvae.load(folder, device="cpu")
    assert not str(info.value).startswith("command line:")
    assert not marker.exists()


def test_python_api_train_errors_do_not_start_with_command_line(tmp_path):
    assert_api_error(lambda: seqvae.train(output_dir=tmp_path / "R", max_steps="abc"), "max_steps", "expects int")
