"""The run folder: every file ``seqvae train`` writes, by name, and their reading and writing.

A run folder is one Hugging Face-style model folder plus what training measured::

    config.json, model.safetensors      the model (SeqVAE.save_pretrained)
    tokenizer.json, tokenizer_config.json, special_tokens_map.json
    recipe.yaml                         the exact settings, a recipe `seqvae train --config` accepts
    training_args.json                  TrainingArguments as JSON (the Trainer's pickle is removed)
    data_report.json                    every skipped row, with file, line and reason
    training_log.jsonl                  one line per logged step
    metrics.json                        the end-of-training evaluation
    samples.csv                         prior samples (smiles, valid; or text)
    report.png                          training curves and samples
    checkpoint-N/                       Trainer checkpoints, for --resume (written under .staging/,
                                        renamed into place when complete)
    .seqvae.lock                        while a training runs: which process holds the folder

No other module spells these names. Nothing here is unpickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import yaml

from .arguments import DataArguments
from .errors import SeqVAEError
from .recipe import load_recipe

__all__ = [
    "MODEL_FILES",
    "SHARED_FILES",
    "is_model_folder",
    "missing_model_files",
    "write_recipe",
    "read_data_settings",
    "trained_on",
    "write_training_args",
    "data_report_path",
    "training_log_path",
    "read_training_log",
    "write_metrics",
    "read_metrics",
    "write_samples",
    "read_samples",
    "report_path",
    "latest_checkpoint",
    "checkpoints",
    "checkpoint_step",
    "recipe_path",
    "check_writable",
    "write_atomically",
    "publish_folder",
    "weights_problem",
    "model_folder_problem",
    "checkpoint_problem",
    "run_lock",
    "LOCK",
    "STAGING",
]

logger = logging.getLogger(__name__)

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
RECIPE = "recipe.yaml"
TRAINING_ARGS = "training_args.json"
PICKLED_TRAINING_ARGS = "training_args.bin"
DATA_REPORT = "data_report.json"
TRAINING_LOG = "training_log.jsonl"
METRICS = "metrics.json"
SAMPLES = "samples.csv"
REPORT = "report.png"
MODEL_CARD = "README.md"
CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE = "trainer_state.json"
LOCK = ".seqvae.lock"  # held by the process training into the folder
STAGING = ".staging"  # files are written here, then renamed into place when complete

MODEL_FILES = (CONFIG, WEIGHTS, TOKENIZER)  # what loading a model needs
SHARED_FILES = (MODEL_CARD, METRICS, RECIPE, DATA_REPORT)  # copied with a saved or shared model


# --- folders


def check_writable(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and make sure files can be written in it, before any work
    starts; a :class:`SeqVAEError` naming ``what`` (e.g. "--output_dir") and the folder otherwise."""
    folder = Path(folder)
    probe = folder / f".seqvae-write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SeqVAEError(f"{what} {folder} is not writable ({reason}); choose a folder you can write to") from None
    return folder


def write_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``: a reader
    (or a run killed mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path


def publish_folder(staged: Path, destination: Path) -> None:
    """Move every file of the complete folder ``staged`` into ``destination`` (one rename each,
    the weights last so that a model is never newer than its config), then remove ``staged``."""
    names = sorted((p.name for p in staged.iterdir() if p.is_file()), key=lambda name: name == WEIGHTS)
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.replace(staged / name, destination / name)
    shutil.rmtree(staged, ignore_errors=True)


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """One training per run folder: ``.seqvae.lock`` names the process holding it.

    A second training into the folder fails at once naming the holder; a lock left by a process
    that no longer runs (a crash, a kill) is taken over with a warning. Re-entrant within one
    process (``seqvae train`` holds it while its training step takes it again). The processes of
    one multi-process launch (torchrun / accelerate set ``RANK``) share the lock rank 0 holds.
    """
    path = Path(run_dir) / LOCK
    if path in _HELD_LOCKS or int(os.environ.get("RANK", "0")) > 0:
        yield path
        return
    _take_lock(path)
    _HELD_LOCKS.add(path)
    try:
        yield path
    finally:
        _HELD_LOCKS.discard(path)
        path.unlink(missing_ok=True)


_HELD_LOCKS: set[Path] = set()


def _take_lock(path: Path) -> None:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):  # a second try after removing a stale lock
        try:
            with open(path, "x") as handle:
                json.dump(holder, handle)
            return
        except FileExistsError:
            other = _lock_holder(path)
            if _is_running(other):
                raise SeqVAEError(
                    f"{path.parent} is in use by another training (process {other.get('pid')} on "
                    f"{other.get('host')}, since {other.get('started')}); wait for it, or choose another --output_dir"
                ) from None
            logger.warning("%s: taking over a stale lock of process %s (no longer running)", path.parent, other.get("pid"))
            path.unlink(missing_ok=True)
    raise SeqVAEError(f"could not take the lock {path}; another process keeps creating it")


def _lock_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # unreadable or half-written: treated as stale


def _is_running(holder: dict) -> bool:
    """Whether the lock's process still runs (a lock from another host is assumed live)."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# --- the model


def missing_model_files(folder: str | Path) -> list[str]:
    """The files of :data:`MODEL_FILES` that ``folder`` lacks."""
    return [name for name in MODEL_FILES if not (Path(folder) / name).is_file()]


def is_model_folder(folder: str | Path) -> bool:
    """A folder holding a model's config (complete or not: :func:`missing_model_files` says)."""
    return (Path(folder) / CONFIG).is_file()


def model_folder_problem(folder: str | Path) -> str | None:
    """What is damaged in a model folder (a JSON file that does not parse, truncated or
    non-finite weights), naming the file; ``None`` when it can be loaded."""
    folder = Path(folder)
    for name in (CONFIG, TOKENIZER, "tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return f"{name} is damaged ({'an empty file' if path.stat().st_size == 0 else 'not JSON'})"
    return weights_problem(folder / WEIGHTS)


def weights_problem(path: str | Path) -> str | None:
    """What is wrong with a ``model.safetensors`` file, or ``None`` when it reads whole and every
    value is finite. Reads the header itself first (a truncated file is named, not a traceback)."""
    path = Path(path)
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            if size < 8 or header_size > size - 8:
                return f"{path.name} is truncated or not a safetensors file ({size} bytes)"
            header = json.loads(handle.read(header_size))
    except (OSError, ValueError) as error:
        return f"{path.name} has a damaged header ({error.__class__.__name__})"
    end = max((entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"), default=0)
    if size < 8 + header_size + end:
        return f"{path.name} is truncated ({size} of {8 + header_size + end} bytes)"
    return _non_finite_tensors(path)


def _non_finite_tensors(path: Path) -> str | None:
    import torch
    from safetensors import safe_open  # the loader transformers uses; no pickle involved

    bad = []
    with safe_open(str(path), framework="pt") as weights:
        for name in weights.keys():
            tensor = weights.get_tensor(name)
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                bad.append(name)
    if bad:
        return f"{path.name} holds non-finite values (NaN or inf) in {len(bad)} tensor(s), first {bad[0]!r}"
    return None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (an incomplete write, damaged weights), or ``None``."""
    state = checkpoint / TRAINER_STATE
    try:
        json.loads(state.read_text())
    except FileNotFoundError:
        return f"no {TRAINER_STATE} (the write did not finish)"
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is damaged"
    return weights_problem(checkpoint / WEIGHTS)


# --- settings


def write_recipe(run_dir: Path, data_args, model_kwargs: dict, training_kwargs: dict, evaluation_args) -> Path:
    """The exact settings of this run, as a recipe that ``seqvae train --config`` accepts."""
    resolved = {**asdict(data_args), **model_kwargs, **training_kwargs, **asdict(evaluation_args)}
    return write_atomically(Path(run_dir) / RECIPE, yaml.safe_dump(resolved, sort_keys=False))


def recipe_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RECIPE


def read_data_settings(run_dir: str | Path | None) -> DataArguments:
    """The data settings the run trained with (how it read its inputs); the defaults when the
    folder has no ``recipe.yaml`` (a model saved without its run, or a Hub model)."""
    path = Path(run_dir) / RECIPE if run_dir else None
    if path is None or not path.is_file():
        return DataArguments(standardize=False)
    try:
        settings = load_recipe(path)[0]
    except SeqVAEError as error:
        logger.warning("%s is not readable (%s); reading inputs with the default data settings", path, error)
        return DataArguments(standardize=False)
    if "standardize" not in (yaml.safe_load(path.read_text()) or {}):
        settings.standardize = False  # a run from before the setting existed did not standardise
    return settings


def trained_on(run_dir: str | Path) -> str | None:
    """The ``data`` a run trained on, as its recipe names it (``None`` without a recipe)."""
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        return None
    try:
        data = (yaml.safe_load(path.read_text()) or {}).get("data")
    except yaml.YAMLError:
        return None
    if isinstance(data, list):  # several files, globs or folders
        return ", ".join(map(str, data))
    return None if data is None else str(data)


def write_training_args(run_dir: Path, args) -> None:
    """``TrainingArguments`` as JSON; the Trainer's pickled copy is removed (run folders keep
    JSON only)."""
    (Path(run_dir) / PICKLED_TRAINING_ARGS).unlink(missing_ok=True)
    write_atomically(Path(run_dir) / TRAINING_ARGS, args.to_json_string())


# --- training records


def data_report_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / DATA_REPORT


def training_log_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / TRAINING_LOG


def read_training_log(run_dir: str | Path) -> pd.DataFrame:
    """The run's training log as a DataFrame (one row per logged step)."""
    path = training_log_path(run_dir)
    if not path.is_file():
        raise SeqVAEError(
            f"no training log in {run_dir} (expected {path.name}): give the output_dir of a `seqvae train` run"
        )
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise SeqVAEError(f"{path}, line {number}: not JSON ({line[:60]!r}); the log is damaged") from None
    log = pd.DataFrame(rows)
    if log.empty or "step" not in log.columns or not ({"recon_per_token", "eval_recon_per_token"} & set(log.columns)):
        raise SeqVAEError(f"{path} holds no logged training steps yet (is the run still starting?)")
    return log


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``checkpoint-N`` folders, oldest first."""
    found = (p for p in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.name.removeprefix(CHECKPOINT_PREFIX).isdigit())
    return sorted(found, key=checkpoint_step)


def checkpoint_step(checkpoint: Path) -> int:
    """The optimiser step a ``checkpoint-N`` folder was written at (N)."""
    return int(Path(checkpoint).name.removeprefix(CHECKPOINT_PREFIX))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that can be resumed from, or ``None``; newer, incomplete or
    damaged ones are skipped with a warning saying why."""
    for checkpoint in reversed(checkpoints(run_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        logger.warning("skipping %s: %s", checkpoint, problem)
    return None


# --- what the evaluation wrote


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    return write_atomically(Path(run_dir) / METRICS, json.dumps(metrics, indent=2))


def read_metrics(run_dir: str | Path) -> dict:
    """The run's metrics (empty when training has not written them)."""
    path = Path(run_dir) / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def write_samples(run_dir: Path, frame: pd.DataFrame) -> Path:
    return write_atomically(Path(run_dir) / SAMPLES, frame.to_csv(index=False))


def read_samples(run_dir: str | Path) -> pd.DataFrame | None:
    """The run's prior samples, or ``None`` when it has none."""
    path = Path(run_dir) / SAMPLES
    return pd.read_csv(path, keep_default_na=False) if path.is_file() else None


def report_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / REPORT
