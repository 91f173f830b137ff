"""What ``seqvae train`` and ``seqvae.train`` do: train, evaluate, write the run folder.

    train (seqvae.training)  ->  evaluate (seqvae.evaluation)  ->  write (seqvae.runs, seqvae.viz)

The run folder then holds the model and, beside what training wrote, ``metrics.json``,
``samples.csv`` and ``report.png``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from . import runs
from .data.normalization import InputNormalization
from .evaluation import final_molecule_metrics, final_text_metrics
from .inference import SeqVAEInference, samples_frame
from .training import TrainingRun, train_model
from .viz import write_run_report

__all__ = ["train_and_evaluate", "run_and_evaluate"]

logger = logging.getLogger(__name__)


def train_and_evaluate(
    recipe: str | Path | None = None,
    overrides: dict | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
) -> dict:
    """Train from a recipe, evaluate, and write ``metrics.json``, ``samples.csv`` and
    ``report.png`` in the run.

    This is what ``seqvae train`` runs. Returns the metrics: validation ELBO terms, token
    accuracy and active units, reconstruction accuracy, and validity / uniqueness / novelty of
    prior samples, with wall times.
    """
    return run_and_evaluate(recipe, overrides, output_dir, resume)[1]


def run_and_evaluate(recipe, overrides, output_dir, resume: bool = False) -> tuple[Path, dict]:
    """:func:`train_and_evaluate`, returning the run folder too."""
    started = time.monotonic()
    if output_dir is None:  # the folder comes from the recipe: train_model locks it while training
        return _train_and_evaluate(recipe, overrides, output_dir, resume, started)
    runs.check_writable(output_dir, "output_dir")
    with runs.run_lock(output_dir):  # one run per folder, from training to the last file written
        return _train_and_evaluate(recipe, overrides, output_dir, resume, started)


def _train_and_evaluate(recipe, overrides, output_dir, resume: bool, started: float) -> tuple[Path, dict]:
    run = train_model(recipe, overrides, output_dir, resume=resume)
    if not run.is_main_process:  # multi-process launch: rank 0 evaluates and writes
        return run.output_dir, run.validation_metrics
    generation_metrics, samples = _evaluate(run)
    metrics = {
        **{key.removeprefix("eval_"): value for key, value in run.validation_metrics.items() if key != "epoch"},
        **generation_metrics,
        "train_seconds": round(run.train_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "data": run.report.summary(),
        **_stop_record(run),
        **({"processes": run.processes, "schedule_steps_divided_by": run.schedule_steps_divided_by} if run.processes > 1 else {}),
    }
    runs.write_metrics(run.output_dir, metrics)
    text = run.data_args.representation == "text"
    runs.write_samples(run.output_dir, pd.DataFrame({"text": samples}) if text else samples_frame(samples))
    _write_report(run.output_dir)
    return run.output_dir, metrics


def _stop_record(run: TrainingRun) -> dict:
    """``stopped_early`` (and when true, at which step and why) for metrics.json, the final table
    and report.png: an undertrained model must say so where its figures are read."""
    if run.stopped_early is None:
        return {"stopped_early": False}
    stop = run.stopped_early
    logger.warning(
        "training stopped early at step %d of %d (%s): the figures describe an undertrained model",
        stop["stopped_at_step"], stop["max_steps"], stop["stopped_by"],
    )
    return {"stopped_early": True, **stop}


def _evaluate(run: TrainingRun) -> tuple[dict, list[str]]:
    """Reconstruction and prior samples of the model just trained."""
    vae = SeqVAEInference(run.model, run.tokenizer, str(run.output_dir), InputNormalization.of(run.data_args))
    eval_args = run.evaluation_args
    if vae.representation == "text":
        return final_text_metrics(vae, run.training_texts, run.validation["text"], eval_args)
    # Canonicalised training SMILES can be compared as they are (no minute-long re-parse).
    train_smiles = set(run.training_texts) if run.data_args.canonicalize else run.training_texts
    return final_molecule_metrics(
        vae,
        train_smiles,
        run.validation["smiles"],
        num_prior_samples=eval_args.num_prior_samples,
        temperature=eval_args.sample_temperature,
        num_reconstruction_molecules=eval_args.num_reconstruction_molecules,
        seed=0,
    )


def _write_report(run_dir: Path) -> None:
    """``report.png`` in the run folder; a failed picture must not fail a finished training run."""
    try:
        path = write_run_report(run_dir)
        logger.info("wrote %s (training curves and samples; `seqvae report %s` redraws it)", path, run_dir)
    except Exception as error:  # noqa: BLE001 - the run's model and metrics are already saved
        logger.warning("could not draw %s: %s", runs.report_path(run_dir), error)
