"""Fault injection into training and the run folder (issue 24): partial checkpoints, killed runs,
divergence, damaged weights, two trainings into one folder, unwritable folders, the time cap.

The kill-and-resume loop over 10 random kill points is slow-marked (``-m slow``); one kill point
runs in the default suite.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import seqvae
from seqvae import runs
from seqvae.errors import SeqVAEError
from seqvae.training import train_model
from seqvae.workflow import train_and_evaluate


def _read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in runs.training_log_path(run_dir).read_text().splitlines() if line.strip()]


def _copy_run(run_dir: Path, destination: Path) -> Path:
    shutil.copytree(run_dir, destination)
    return destination


# ------------------------------------------------------------------ checkpoints and resume


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory, tiny_csv, make_overrides):
    """8 steps with a checkpoint every 2 (the last two kept), trained once for this module."""
    run_dir = tmp_path_factory.mktemp("checkpointed") / "run"
    overrides = make_overrides(tiny_csv, max_steps=8, save_steps=2)
    train_model(None, overrides, run_dir)
    return run_dir, overrides


def test_checkpoints_are_renamed_into_place_complete(checkpointed_run):
    run_dir, _ = checkpointed_run
    names = [checkpoint.name for checkpoint in runs.checkpoints(run_dir)]
    assert names == ["checkpoint-6", "checkpoint-8"]  # save_total_limit 2
    assert all(runs.checkpoint_problem(checkpoint) is None for checkpoint in runs.checkpoints(run_dir))
    assert not (run_dir / runs.STAGING).exists()
    assert not (run_dir / runs.LOCK).exists()  # released at the end


def test_resume_skips_a_partial_newest_checkpoint_and_names_it(checkpointed_run, tmp_path, caplog):
    run_dir = _copy_run(checkpointed_run[0], tmp_path / "run")
    newest = run_dir / "checkpoint-8"
    weights = newest / runs.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:500])  # killed while writing the weights
    (newest / runs.TRAINER_STATE).unlink()
    assert runs.latest_checkpoint(run_dir) == run_dir / "checkpoint-6"
    assert "skipping" in caplog.text and "checkpoint-8" in caplog.text
    run = train_model(None, {**checkpointed_run[1], "max_steps": 10}, run_dir, resume=True)
    assert run.model.config.vocab_size > 0
    assert _read_log(run_dir)[-1]["step"] == 10
    assert seqvae.load(run_dir).sample(3, seed=0)


def test_resume_reads_the_tokenizer_from_the_checkpoint_not_a_damaged_run_folder(checkpointed_run, tmp_path):
    run_dir = _copy_run(checkpointed_run[0], tmp_path / "run")
    (run_dir / "tokenizer_config.json").write_text("")  # killed during the final save
    train_model(None, {**checkpointed_run[1], "max_steps": 10}, run_dir, resume=True)
    assert json.loads((run_dir / "tokenizer_config.json").read_text())  # rewritten whole
    assert len(seqvae.load(run_dir).sample(2, seed=0)) == 2


def test_resume_without_a_complete_checkpoint_says_so(checkpointed_run, tmp_path):
    run_dir = _copy_run(checkpointed_run[0], tmp_path / "run")
    for checkpoint in runs.checkpoints(run_dir):
        (checkpoint / runs.TRAINER_STATE).unlink()
    with pytest.raises(SeqVAEError, match="none of its 2 checkpoint-\\* folders is complete"):
        train_model(None, checkpointed_run[1], run_dir, resume=True)


# ------------------------------------------------------------------------------ divergence


def test_a_diverging_run_skips_its_nan_steps_stops_and_keeps_finite_weights(tiny_csv, make_overrides, tmp_path, monkeypatch):
    from seqvae import training

    calls = {"count": 0}
    real_loss = training.vae_loss

    def loss_turning_nan(outputs, *args, **kwargs):  # NaN from the 5th training step on
        loss, mmd = real_loss(outputs, *args, **kwargs)
        calls["count"] += 1
        return (loss * math.nan if calls["count"] > 4 else loss), mmd

    monkeypatch.setattr(training, "vae_loss", loss_turning_nan)
    run_dir = tmp_path / "run"
    overrides = make_overrides(tiny_csv, max_steps=40, save_steps=2, max_nonfinite_steps=3)
    with pytest.raises(SeqVAEError) as caught:
        train_and_evaluate(None, overrides, run_dir)
    message = str(caught.value)
    assert "training diverged at step 7" in message and "3 steps in a row" in message
    assert "holds the last finite weights (3 step(s) skipped)" in message
    assert runs.weights_problem(run_dir / runs.WEIGHTS) is None
    assert all(runs.checkpoint_problem(checkpoint) is None for checkpoint in runs.checkpoints(run_dir))
    logged = [row["loss"] for row in _read_log(run_dir) if "loss" in row]
    assert all(math.isfinite(value) for value in logged[:4])
    assert all(math.isnan(value) for value in logged[4:7])  # NaN logged as NaN, never as 0
    assert len(seqvae.load(run_dir).sample(2, seed=0)) == 2
    assert not (run_dir / runs.LOCK).exists()


def test_max_nonfinite_steps_and_max_steps_are_checked(tiny_csv, make_overrides, tmp_path):
    with pytest.raises(SeqVAEError, match="max_nonfinite_steps must be >= 1"):
        train_model(None, make_overrides(tiny_csv, max_nonfinite_steps=0), tmp_path / "a")
    with pytest.raises(SeqVAEError, match="max_steps must be >= 1"):
        train_model(None, make_overrides(tiny_csv, max_steps=0), tmp_path / "b")


# ------------------------------------------------------------------------- damaged weights


def test_truncated_weights_are_named_on_load(trained_run, tmp_path):
    run_dir = _copy_run(trained_run.output_dir, tmp_path / "run")
    weights = run_dir / runs.WEIGHTS
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    with pytest.raises(SeqVAEError, match=f"model.safetensors is truncated \\({size // 2} of {size} bytes\\)"):
        seqvae.load(run_dir)


def test_nan_weights_are_refused_on_load(trained_run, tmp_path):
    run_dir = _copy_run(trained_run.output_dir, tmp_path / "run")
    tensors = load_file(run_dir / runs.WEIGHTS)
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], math.nan)
    save_file(tensors, run_dir / runs.WEIGHTS, metadata={"format": "pt"})
    with pytest.raises(SeqVAEError, match=f"non-finite values \\(NaN or inf\\) in 1 tensor\\(s\\), first '{name}'"):
        seqvae.load(run_dir)


def test_random_bytes_inside_the_weights_are_refused_on_load(trained_run, tmp_path):
    run_dir = _copy_run(trained_run.output_dir, tmp_path / "run")
    weights = run_dir / runs.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-4000:-3000] = b"\xff" * 1000  # 0xFFFFFFFF is a float32 NaN
    weights.write_bytes(bytes(data))
    with pytest.raises(SeqVAEError, match="non-finite values"):
        seqvae.load(run_dir)


def test_a_garbage_header_is_named_on_load(trained_run, tmp_path):
    run_dir = _copy_run(trained_run.output_dir, tmp_path / "run")
    (run_dir / runs.WEIGHTS).write_bytes(b"not a safetensors file at all")
    with pytest.raises(SeqVAEError, match="truncated or not a safetensors file|damaged header"):
        seqvae.load(run_dir)


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json", "tokenizer.json"])
def test_an_empty_json_file_of_the_model_folder_is_named_on_load(trained_run, tmp_path, name):
    run_dir = _copy_run(trained_run.output_dir, tmp_path / "run")
    (run_dir / name).write_text("")  # killed while writing it
    with pytest.raises(SeqVAEError, match=f"{name} is damaged \\(an empty file\\)"):
        seqvae.load(run_dir)


# ---------------------------------------------------------------- one run per folder, paths


def test_a_second_training_into_a_busy_folder_fails_at_once_naming_the_first(tiny_csv, make_overrides, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / runs.LOCK).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "started": "now"}))
        started = time.monotonic()
        with pytest.raises(SeqVAEError, match=f"in use by another training \\(process {holder.pid}"):
            train_and_evaluate(None, make_overrides(tiny_csv), run_dir)
        assert time.monotonic() - started < 5  # at once, before the corpus is read
        assert not runs.is_model_folder(run_dir)
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_from_a_dead_process_is_taken_over(tiny_csv, make_overrides, tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (run_dir / runs.LOCK).write_text(json.dumps({"pid": dead_pid, "host": os.uname().nodename, "started": "then"}))
    train_model(None, make_overrides(tiny_csv, max_steps=2), run_dir)
    assert f"stale lock of process {dead_pid}" in caplog.text
    assert runs.is_model_folder(run_dir) and not (run_dir / runs.LOCK).exists()


def test_an_unwritable_output_dir_fails_before_any_work(tiny_csv, make_overrides, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SeqVAEError, match="output_dir .*a_file/run is not writable"):
        train_and_evaluate(None, make_overrides(tiny_csv), blocker / "run")


# ----------------------------------------------------------------------------- the time cap


def test_the_time_cap_is_recorded_where_the_figures_are_read(tiny_csv, make_overrides, tmp_path, caplog):
    run_dir = tmp_path / "run"
    metrics = train_and_evaluate(None, make_overrides(tiny_csv, max_steps=400, max_train_seconds=0.5), run_dir)
    assert metrics["stopped_early"] is True and 1 <= metrics["stopped_at_step"] < 400
    assert metrics["max_steps"] == 400 and metrics["stopped_by"] == "max_train_seconds (0.5 s)"
    assert json.loads((run_dir / runs.METRICS).read_text())["stopped_at_step"] == metrics["stopped_at_step"]
    assert "training stopped early at step" in caplog.text
    from seqvae.viz import _metrics_line

    assert _metrics_line(run_dir).startswith(f"STOPPED EARLY at step {metrics['stopped_at_step']} of 400")


def test_a_run_that_reaches_max_steps_records_no_early_stop(trained_run):
    assert trained_run.metrics["stopped_early"] is False


# --------------------------------------------------------------------------- kill and resume


KILLED_RUN_STEPS = 60


def _train_command(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    keys = {"max_steps": KILLED_RUN_STEPS, "save_steps": 3, "logging_steps": 5, "num_prior_samples": 5,
            "num_reconstruction_molecules": 5, "report_to": "none", "max_length": 80, "per_device_train_batch_size": 16,
            "embedding_dim": 16, "encoder_hidden_size": 32, "decoder_hidden_size": 32, "latent_dim": 8}
    return [sys.executable, "-m", "seqvae", "-q", "train", "--output_dir", str(run_dir), *extra, f"data={corpus}",
            *(f"{key}={value}" for key, value in keys.items())]


def _kill_and_resume(corpus: Path, run_dir: Path, delay: float) -> dict:
    """Start a training, SIGKILL it ``delay`` seconds after its first checkpoint is complete,
    resume; what happened."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(_train_command(corpus, run_dir), env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while runs.latest_checkpoint(run_dir) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    finished_before_kill = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = subprocess.run(_train_command(corpus, run_dir, "--resume"), env=environment, capture_output=True, text=True)
    return {"finished_before_kill": finished_before_kill, "resume_exit": resumed.returncode, "stderr": resumed.stderr}


def _check_finished(run_dir: Path, outcome: dict) -> None:
    assert outcome["resume_exit"] == 0, outcome["stderr"][-2000:]
    assert "Traceback" not in outcome["stderr"]
    assert json.loads((run_dir / runs.METRICS).read_text())["stopped_early"] is False
    assert _read_log(run_dir)[-1]["step"] == KILLED_RUN_STEPS, _read_log(run_dir)[-4:]
    assert len(seqvae.load(run_dir).sample(3, seed=0)) == 3
    assert not (run_dir / runs.LOCK).exists()


def test_a_killed_training_resumes_to_a_loadable_model(tiny_csv, tmp_path):
    run_dir = tmp_path / "run"
    _check_finished(run_dir, _kill_and_resume(tiny_csv, run_dir, delay=0.3))


@pytest.mark.slow
def test_kill_and_resume_at_ten_random_moments(tiny_csv, tmp_path):
    moments = random.Random(24).sample([i / 10 for i in range(0, 40)], 10)  # 0-4 s after the first checkpoint
    outcomes = []
    for index, delay in enumerate(moments):
        run_dir = tmp_path / f"run{index}"
        outcome = _kill_and_resume(tiny_csv, run_dir, delay)
        _check_finished(run_dir, outcome)
        outcomes.append(outcome["finished_before_kill"])
    assert not all(outcomes), "every run finished before its kill: the kill points test nothing"
