"""Evaluations that combine the metrics: ``seqvae evaluate`` and the end of training.

``seqvae evaluate`` reads the files (a path, or a MOSES split by name: ``moses:test``, ``moses:test_scaffolds``,
``moses:train``, from ``data_dir`` or downloaded), runs :func:`seqvae.metrics.moses_metrics`,
adds the latent diagnostics when a model is given, and lays the result out as MOSES's
``get_all_metrics`` keys in JSON and as a table for the terminal.

At the end of training, :func:`final_molecule_metrics` and :func:`final_text_metrics` measure
reconstruction and prior samples of the trained model (what ``metrics.json`` holds).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from .data import read_smiles_column, resolve_corpus
from .errors import SeqVAEError
from .inference import SeqVAEInference, wants_progress
from .metrics.latent import latent_diagnostics
from .metrics.molecules import reconstruction_accuracy, sample_quality
from .metrics.moses import DEFAULT_CACHE_DIR, moses_metrics
from .metrics.text import checked_sentences, importance_weighted_nll

__all__ = [
    "read_molecules",
    "evaluate",
    "format_metrics_table",
    "write_metrics_json",
    "METRIC_DIRECTIONS",
    "text_metrics",
    "final_molecule_metrics",
    "final_text_metrics",
]

# Molecules from which an evaluation takes more than a few seconds (MOSES metrics, FCD).
SLOW_EVALUATION = 1_000

# Which way is better, for the table: MOSES prints the same arrows.
METRIC_DIRECTIONS = {
    "valid": "↑", "unique": "↑", "FCD": "↓", "SNN": "↑", "Frag": "↑", "Scaf": "↑", "IntDiv": "↑",
    "IntDiv2": "↑", "Filters": "↑", "Novelty": "↑", "logP": "↓", "SA": "↓", "QED": "↓", "weight": "↓",
}


def read_molecules(source: str, what: str, data_dir: str | None = None, smiles_column: str | None = None) -> list[str]:
    """SMILES strings of a file or named split (``moses:test``), every row kept, in order.

    Args:
        source: a .csv/.csv.gz/.smi/.txt path, or ``moses:SPLIT``.
        what: the file's role in messages (``samples``, ``reference``...).
        data_dir: folder holding named splits (downloaded when omitted).
        smiles_column: the CSV column (detected when omitted).
    """
    try:
        [path] = resolve_corpus(source, data_dir)
    except SeqVAEError as error:
        raise SeqVAEError(f"{what}: {error}") from None
    values, _ = read_smiles_column(path, smiles_column)
    molecules = ["" if value is None else str(value).strip() for value in values]
    if not molecules:
        raise SeqVAEError(f"{what} file {path} has a header but no molecules; give a file with one SMILES per row")
    return molecules


def evaluate(
    samples: list[str] | None = None,
    *,
    model=None,
    num_samples: int = 30000,
    reference: list[str] | None = None,
    scaffold_reference: list[str] | None = None,
    train: list[str] | None = None,
    k: tuple[int, ...] = (1000, 10000),
    n_jobs: int = 1,
    device: str = "cpu",
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    progress: bool | None = None,
    num_diagnostic_molecules: int = 1000,
    seed: int | None = 0,
    **sampling_options,
) -> dict:
    """MOSES metrics of ``samples`` (or of ``num_samples`` drawn from ``model``), with details.

    Given a ``model`` (a :class:`~seqvae.pipeline.SeqVAEPipeline`) and no ``samples``, draws
    ``num_samples`` with ``sampling_options`` (``temperature``, ``batch_size``...) first. Given
    both, the samples are evaluated and the model only feeds the latent diagnostics.

    ``progress``: progress bars; by default from ``SLOW_EVALUATION`` molecules on, ``False``
    never.

    Returns:
        A report: the MOSES keys at the top level (``valid``, ``unique@1000``, ``FCD/Test``...;
        ``None`` where not defined), ``details`` (counts, seconds, warnings) and, for a
        model, ``latent`` (see :func:`seqvae.metrics.latent.latent_diagnostics`, computed on
        the first ``num_diagnostic_molecules`` reference molecules).
    """
    if samples is None and model is None:
        raise SeqVAEError("nothing to evaluate: give samples, or a model to sample from")
    started = time.monotonic()
    details: dict = {}
    progress = wants_progress(progress, num_samples if samples is None else len(samples), SLOW_EVALUATION)
    if samples is None:
        samples = model.sample(num_samples, seed=seed, progress=progress, **sampling_options)
        details["sampling_seconds"] = round(time.monotonic() - started, 1)
    if not samples:
        raise SeqVAEError("no samples to evaluate: the sample file or list is empty")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = moses_metrics(
            samples, reference, scaffold_reference, train,
            k=k, n_jobs=n_jobs, device=device, progress=progress, cache_dir=cache_dir,
        )
    report: dict = dict(metrics)
    if model is not None and reference is not None and num_diagnostic_molecules > 0:
        report["latent"] = latent_diagnostics(model, reference[:num_diagnostic_molecules], seed=seed or 0, progress=progress)
    details.update(
        num_samples=len(samples),
        num_reference=len(reference) if reference is not None else None,
        num_scaffold_reference=len(scaffold_reference) if scaffold_reference is not None else None,
        num_train=len(train) if train is not None else None,
        seconds=round(time.monotonic() - started, 1),
        warnings=sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)}),
    )
    report["details"] = details
    return report


def _direction(key: str) -> str:
    return METRIC_DIRECTIONS.get(key.split("/")[0].split("@")[0], "")


def format_metrics_table(report: dict) -> str:
    """The report as an aligned two-column table; ``not defined`` for missing values."""
    rows = [(key, value) for key, value in report.items() if key not in ("details", "latent")]
    if "latent" in report:
        for key, value in report["latent"].items():
            if isinstance(value, (int, float)) or value is None:
                rows.append((f"latent {key}", value))
    width = max(len(key) for key, _ in rows) + 4  # room for the arrow
    lines = [f"{'metric':<{width}}value"]
    for key, value in rows:
        shown = "not defined" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key + ' ' + _direction(key):<{width}}{shown}")
    return "\n".join(lines)


def write_metrics_json(report: dict, path: str | Path) -> Path:
    """Write ``report`` as JSON (``null`` for metrics that are not defined)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


# ------------------------------------------------------------------ text models


def text_metrics(
    vae,
    sentences: list[str],
    *,
    num_importance_samples: int = 500,
    num_diagnostic_sentences: int = 2000,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool | None = None,
) -> dict:
    """IW-NLL, PPL, KL, MI, AU, reconstruction BLEU and exact match on ``sentences`` (the
    measures of :mod:`seqvae.metrics.text`, with their definitions); ``progress`` as in
    :func:`evaluate`.

    IW-NLL and PPL use every sentence; the latent diagnostics (KL, MI, AU, reconstructions) use
    the first ``num_diagnostic_sentences`` (MI compares all pairs: ``N^2`` work).
    """
    sentences = checked_sentences(vae, sentences)
    progress = wants_progress(progress, len(sentences), SLOW_EVALUATION)
    likelihood = importance_weighted_nll(
        vae, sentences, num_importance_samples=num_importance_samples, batch_size=batch_size, seed=seed, progress=progress
    )
    metrics = {"iw_nll": likelihood["iw_nll"], "perplexity": likelihood["perplexity"]}
    if vae.config.latent_dim > 0:
        subset = sentences[:num_diagnostic_sentences]
        diagnostics = latent_diagnostics(vae, subset, batch_size=batch_size * 4, num_samples=0, seed=seed, progress=progress)
        metrics.update(
            kl=diagnostics["kl_total"],
            mutual_information=diagnostics["mutual_information"],
            active_units=diagnostics["active_units"],
            latent_dim=diagnostics["latent_dim"],
            reconstruction_bleu=diagnostics["reconstruction_bleu"],
            reconstruction_exact_match=diagnostics["reconstruction_accuracy"],
            mutual_information_estimator=diagnostics["mutual_information_estimator"],
        )
    metrics["likelihood"] = likelihood
    return metrics


# ------------------------------------------------------------------ at the end of training


def final_molecule_metrics(
    vae: SeqVAEInference,
    train_smiles: list[str],
    validation_smiles: list[str],
    *,
    num_prior_samples: int = 1000,
    temperature: float = 1.0,
    num_reconstruction_molecules: int = 1000,
    seed: int = 0,
) -> tuple[dict, list[str]]:
    """The end-of-training evaluation of a molecule model; returns ``(metrics, samples)``.

    Reconstruction accuracy: greedy decoding from the posterior mean of validation molecules,
    exact canonical match. Prior samples: ``num_prior_samples`` at ``temperature``; validity,
    uniqueness among valid, novelty against ``train_smiles``.
    """
    started = time.monotonic()
    # a language model (latent_dim 0) has nothing to reconstruct from
    held_out = list(validation_smiles[:num_reconstruction_molecules]) if vae.model.config.latent_dim else []
    reconstructed = vae.reconstruct(held_out) if held_out else []
    samples = vae.sample(num_prior_samples, seed=seed, temperature=temperature, progress=True)
    quality = sample_quality(samples, train_smiles)
    return {
        "reconstruction_accuracy": round(reconstruction_accuracy(held_out, reconstructed), 4) if held_out else None,
        "num_reconstructed": len(held_out),
        "prior_samples": num_prior_samples,
        "temperature": temperature,
        **{name: round(value, 4) for name, value in quality.items()},
        "sampling_seconds": round(time.monotonic() - started, 2),
    }, samples


def final_text_metrics(vae: SeqVAEInference, train_texts: list[str], validation_texts: list[str], eval_args) -> tuple[dict, list[str]]:
    """The end-of-training evaluation of a text model: :func:`seqvae.metrics.text.text_metrics`
    on held-out sentences, and prior samples with the share that are new and distinct."""
    started = time.monotonic()
    held_out = list(validation_texts[: eval_args.num_reconstruction_molecules])
    metrics = {}
    if held_out:
        metrics = text_metrics(vae, held_out, num_importance_samples=eval_args.num_importance_samples, progress=True)
        metrics.pop("likelihood")
    samples = vae.sample(eval_args.num_prior_samples, seed=0, temperature=eval_args.sample_temperature, progress=True)
    training = set(train_texts)
    metrics.update(
        num_evaluated_sentences=len(held_out),
        num_importance_samples=eval_args.num_importance_samples if vae.config.latent_dim else 1,
        prior_samples=len(samples),
        temperature=eval_args.sample_temperature,
        empty_samples=sum(not text.strip() for text in samples) / len(samples),
        unique_samples=len(set(samples)) / len(samples),
        novel_samples=sum(text not in training for text in samples) / len(samples),
        evaluation_seconds=round(time.monotonic() - started, 2),
    )
    return metrics, samples
