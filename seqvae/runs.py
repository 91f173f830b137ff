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
    checkpoint-N/                       Trainer checkpoints, for --resume

No other module spells these names. Nothing here is unpickled.
"""

from __future__ import annotations

import json
import logging
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
    "recipe_path",
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

MODEL_FILES = (CONFIG, WEIGHTS, TOKENIZER)  # what loading a model needs
SHARED_FILES = (MODEL_CARD, METRICS, RECIPE, DATA_REPORT)  # copied with a saved or shared model


# --- the model


def missing_model_files(folder: str | Path) -> list[str]:
    """The files of :data:`MODEL_FILES` that ``folder`` lacks."""
    return [name for name in MODEL_FILES if not (Path(folder) / name).is_file()]


def is_model_folder(folder: str | Path) -> bool:
    """A folder holding a model's config (complete or not: :func:`missing_model_files` says)."""
    return (Path(folder) / CONFIG).is_file()


# --- settings


def write_recipe(run_dir: Path, data_args, model_kwargs: dict, training_kwargs: dict, evaluation_args) -> Path:
    """The exact settings of this run, as a recipe that ``seqvae train --config`` accepts."""
    resolved = {**asdict(data_args), **model_kwargs, **training_kwargs, **asdict(evaluation_args)}
    path = Path(run_dir) / RECIPE
    path.write_text(yaml.safe_dump(resolved, sort_keys=False))
    return path


def recipe_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RECIPE


def read_data_settings(run_dir: str | Path | None) -> DataArguments:
    """The data settings the run trained with (how it read its inputs); the defaults when the
    folder has no ``recipe.yaml`` (a model saved without its run, or a Hub model)."""
    path = Path(run_dir) / RECIPE if run_dir else None
    if path is None or not path.is_file():
        return DataArguments()
    try:
        return load_recipe(path)[0]
    except SeqVAEError as error:
        logger.warning("%s is not readable (%s); reading inputs with the default data settings", path, error)
        return DataArguments()


def trained_on(run_dir: str | Path) -> str | None:
    """The ``data`` a run trained on, as its recipe names it (``None`` without a recipe)."""
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        return None
    try:
        data = (yaml.safe_load(path.read_text()) or {}).get("data")
    except yaml.YAMLError:
        return None
    return None if data is None else str(data)


def write_training_args(run_dir: Path, args) -> None:
    """``TrainingArguments`` as JSON; the Trainer's pickled copy is removed (run folders keep
    JSON only)."""
    (Path(run_dir) / PICKLED_TRAINING_ARGS).unlink(missing_ok=True)
    (Path(run_dir) / TRAINING_ARGS).write_text(args.to_json_string())


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


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder, or ``None``."""
    checkpoints = sorted(
        (p for p in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.name.removeprefix(CHECKPOINT_PREFIX).isdigit()),
        key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)),
    )
    return checkpoints[-1] if checkpoints else None


# --- what the evaluation wrote


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    path = Path(run_dir) / METRICS
    path.write_text(json.dumps(metrics, indent=2))
    return path


def read_metrics(run_dir: str | Path) -> dict:
    """The run's metrics (empty when training has not written them)."""
    path = Path(run_dir) / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def write_samples(run_dir: Path, frame: pd.DataFrame) -> Path:
    path = Path(run_dir) / SAMPLES
    frame.to_csv(path, index=False)
    return path


def read_samples(run_dir: str | Path) -> pd.DataFrame | None:
    """The run's prior samples, or ``None`` when it has none."""
    path = Path(run_dir) / SAMPLES
    return pd.read_csv(path, keep_default_na=False) if path.is_file() else None


def report_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / REPORT
