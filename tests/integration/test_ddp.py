"""Data-parallel training on 2 CPU processes (gloo), launched as the README says, with torchrun.

One tiny run (3 epochs, word dropout, row chunks) is shared by most tests; it takes about 20 s.
The processes record what they read (tests/integration/ddp_driver.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from tests.conftest import training_overrides

DRIVER = Path(__file__).with_name("ddp_driver.py")
PROCESSES = 2
BATCH = 16
EVAL_BATCH = 4  # the ~29 validation rows make several batches, so each rank evaluates some
TIMEOUT = 300  # seconds; a deadlock shows as a timeout


def run_ddp(tmp_path: Path, overrides: dict, output_dir: Path, rank_overrides: dict | None = None, resume: bool = False) -> list[dict]:
    """Launch the driver on 2 processes; return each rank's record."""
    returncode, log, record_dir = launch_ddp(tmp_path, overrides, output_dir, rank_overrides, resume)
    assert returncode == 0, log[-5000:]
    return [json.loads((record_dir / f"rank{rank}.json").read_text()) for rank in range(PROCESSES)]


def launch_ddp(tmp_path: Path, overrides: dict, output_dir: Path, rank_overrides: dict | None = None, resume: bool = False) -> tuple[int, str, Path]:
    """Launch the driver on 2 processes; ``(exit status, output, folder of the ranks' records)``. A launch that does not end
    in ``TIMEOUT`` seconds is killed and fails the test (a deadlock)."""
    record_dir = tmp_path / f"records-{len(list(tmp_path.glob('records-*')))}"
    record_dir.mkdir()
    settings = {
        "overrides": overrides, "output_dir": str(output_dir), "record_dir": str(record_dir),
        "rank_overrides": rank_overrides or {}, "resume": resume,
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={PROCESSES}",
               str(DRIVER), json.dumps(settings)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    log = record_dir / "launch.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_tree(process.pid)  # torchrun starts its workers in sessions of their own
            pytest.fail(f"2-process training did not finish in {TIMEOUT} s (deadlock?):\n{log.read_text()[-3000:]}")
    return process.returncode, log.read_text(), record_dir


def _kill_tree(pid: int) -> None:
    parent = psutil.Process(pid)
    for process in [*parent.children(recursive=True), parent]:
        process.kill()


def ddp_overrides(data, **extra) -> dict:
    return training_overrides(
        data, per_device_train_batch_size=BATCH, per_device_eval_batch_size=EVAL_BATCH, dataloader_drop_last=True, word_dropout=0.25,
        max_tokens_per_chunk=120, logging_steps=1, kl_warmup_steps=10, **extra,
    )


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_csv):
    """Three epochs on 2 processes; returns (run folder, records, steps per epoch)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    train_rows = _train_rows(tmp_path, tiny_csv)
    steps_per_epoch = train_rows // (BATCH * PROCESSES)
    output_dir = tmp_path / "run"
    records = run_ddp(tmp_path, ddp_overrides(tiny_csv, max_steps=3 * steps_per_epoch, save_steps=steps_per_epoch), output_dir)
    return output_dir, records, steps_per_epoch


def _train_rows(tmp_path: Path, data) -> int:
    """The training split's size, as one process prepares it."""
    from seqvae.data import prepare_corpus
    from seqvae.recipe import load_recipe

    data_args, _, _, _ = load_recipe(None, ddp_overrides(data))
    return len(prepare_corpus(data_args, seed=0).train_set)


def _rows_by_epoch(records: list[dict]) -> dict[int, list[list[tuple]]]:
    """``{epoch: [rank 0's rows, rank 1's rows]}``."""
    epochs: dict[int, list[list[tuple]]] = {}
    for record in records:
        for batch in record["batches"]:
            epochs.setdefault(batch["epoch"], [[] for _ in records])[record["rank"]].extend(map(tuple, batch["rows"]))
    return epochs


def test_ranks_read_disjoint_shares_in_every_epoch(ddp_run):
    _, records, steps_per_epoch = ddp_run
    epochs = _rows_by_epoch(records)
    assert sorted(epochs) == [0, 1, 2]
    orders = []
    for epoch, per_rank in epochs.items():
        assert [len(rows) for rows in per_rank] == [steps_per_epoch * BATCH] * PROCESSES, epoch
        seen = [row for rows in per_rank for row in rows]
        assert len(set(seen)) == len(seen), f"epoch {epoch}: {len(seen) - len(set(seen))} rows read twice"
        orders.append(seen)
    assert orders[0] != orders[1], "every epoch read the rows in the same order"


def test_row_chunks_differ_between_ranks_and_training_finishes(ddp_run):
    _, records, steps_per_epoch = ddp_run
    chunks = [[batch["chunks"] for batch in record["batches"]] for record in records]
    assert len(chunks[0]) == len(chunks[1]) == 3 * steps_per_epoch
    assert max(max(counts) for counts in chunks) > 1, "no batch was cut into chunks"
    assert any(a != b for a, b in zip(*chunks)), "the ranks never cut their batches differently"


def test_checkpoints_hold_every_ranks_random_state(ddp_run):
    output_dir, _, steps_per_epoch = ddp_run
    checkpoint = output_dir / f"checkpoint-{3 * steps_per_epoch}"
    assert sorted(path.name for path in checkpoint.glob("rng_state_*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]


def test_one_process_writes_the_run_folder(ddp_run):
    output_dir, records, steps_per_epoch = ddp_run
    steps = [json.loads(line)["step"] for line in (output_dir / "training_log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 3 * steps_per_epoch + 1)), "each step must be logged once"
    assert (output_dir / "metrics.json").exists() and (output_dir / "samples.csv").exists()
    assert "validity" in records[0]["metrics"] and "validity" not in records[1]["metrics"]
    assert records[0]["metrics"]["processes"] == PROCESSES and records[0]["metrics"]["schedule_steps_divided_by"] == PROCESSES
    assert not (output_dir / ".seqvae.lock").exists()


def test_schedule_steps_are_rescaled_by_the_number_of_processes(ddp_run):
    output_dir, _, _ = ddp_run
    weights = {entry["step"]: entry["kl_weight"] for entry in map(json.loads, (output_dir / "training_log.jsonl").read_text().splitlines())
               if "kl_weight" in entry}
    # kl_warmup_steps 10 is written for one process: on 2 it ends after 5 optimiser steps
    assert weights[2] == pytest.approx(0.2)  # logged after step 2, which read global step 1
    assert weights[6] == pytest.approx(1.0)


def test_metrics_equal_a_one_process_evaluation(ddp_run):
    from seqvae.arguments import ObjectiveArguments
    from seqvae.data import PaddingCollator, run_split
    from seqvae.data.corpus import tokenize_corpus
    from seqvae.modeling import SeqVAE
    from seqvae.recipe import load_recipe
    from seqvae.training import validation_metrics
    from transformers import AutoTokenizer

    output_dir, _, _ = ddp_run
    model = SeqVAE.from_pretrained(output_dir, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    data_args = load_recipe(output_dir / "recipe.yaml")[0]
    validation = tokenize_corpus(run_split(output_dir)[1], tokenizer, data_args)
    batches = torch.utils.data.DataLoader(validation, batch_size=EVAL_BATCH, collate_fn=PaddingCollator(tokenizer.pad_token_id, []))
    expected = validation_metrics(model, batches, ObjectiveArguments())
    metrics = json.loads((output_dir / "metrics.json").read_text())
    for key in ("loss", "recon_per_sequence", "kl_per_sequence", "token_accuracy", "active_units"):
        assert metrics[key] == pytest.approx(expected[key], abs=2e-4), key


def test_resume_on_two_processes(ddp_run, tmp_path, tiny_csv):
    output_dir, _, steps_per_epoch = ddp_run
    resumed = tmp_path / "resumed"
    shutil.copytree(output_dir, resumed)
    total = 3 * steps_per_epoch + 4
    records = run_ddp(tmp_path, ddp_overrides(tiny_csv, max_steps=total, save_steps=steps_per_epoch), resumed, resume=True)
    assert [len(record["batches"]) for record in records] == [4, 4]
    assert {batch["epoch"] for record in records for batch in record["batches"]} == {3}
    steps = [entry["step"] for entry in map(json.loads, (resumed / "training_log.jsonl").read_text().splitlines()) if "loss" in entry]
    assert steps[-4:] == list(range(total - 3, total + 1))


def test_time_limits_that_differ_per_rank_stop_both_at_one_step(tmp_path, tiny_csv):
    output_dir = tmp_path / "run"
    records = run_ddp(
        tmp_path, ddp_overrides(tiny_csv, max_steps=2000, save_steps=10_000), output_dir,
        rank_overrides={"0": {"max_train_seconds": 2}, "1": {"max_train_seconds": 1000}},
    )
    assert len(records[0]["batches"]) == len(records[1]["batches"]) < 2000
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["stopped_early"] is True and metrics["stopped_at_step"] == len(records[0]["batches"])


def test_streaming_a_folder_of_shards_on_two_processes(tmp_path, nci_smiles):
    shards = tmp_path / "shards"
    shards.mkdir()
    for index in range(4):
        (shards / f"part-{index}.smi").write_text("\n".join(nci_smiles[index::4]) + "\n")
    steps = 4
    records = run_ddp(tmp_path, ddp_overrides(shards, streaming=True, max_steps=steps, save_steps=10_000, shuffle_buffer_size=64),
                      tmp_path / "run")
    per_rank = [{tuple(row) for batch in record["batches"] for row in batch["rows"]} for record in records]
    assert [len(record["batches"]) for record in records] == [steps, steps]
    assert all(len(rows) == steps * BATCH for rows in per_rank), "a rank read a row twice"
    assert not per_rank[0] & per_rank[1], "the two processes read the same rows"


def test_a_process_whose_shards_hold_no_rows_ends_the_launch_with_an_error(tmp_path, nci_smiles):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "part-0.smi").write_text("\n".join(nci_smiles) + "\n")
    (shards / "part-1.smi").write_text("not_a_molecule\n" * 50)  # every row skipped: rank 1 reads nothing
    returncode, log, _ = launch_ddp(tmp_path, ddp_overrides(shards, streaming=True, max_steps=4, save_steps=10_000), tmp_path / "run")
    assert returncode != 0
    assert "process 1 has no training rows in its share of the stream" in log
