"""The notebook facade: ``vae = seqvae.load("runs/x")`` and plain-Python methods on strings.

    vae.sample(100)                        # list[str] of SMILES (or sentences)
    vae.sample_frame(100)                  # DataFrame: smiles, valid
    vae.encode(["CCO", "c1ccccc1"])        # [B, latent_dim] posterior means
    vae.decode(z)                          # list[str]
    vae.reconstruct(["CCO"])               # greedy decode of the posterior means
    vae.interpolate("CCO", "c1ccccc1O", steps=8, method="slerp")
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer

from .chem import canonical_smiles, is_valid
from .data import PaddingCollator
from .errors import SeqVAEError
from .generation import decode_latents, ids_to_strings, interpolate_latents, sample_prior
from .metrics.molecules import reconstruction_accuracy, sample_quality
from .modeling import SeqVAE
from .tokenization import count_unknown, to_model_text

__all__ = ["SeqVAEPipeline", "load", "evaluate_run", "train_and_evaluate"]

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class SeqVAEPipeline:
    """A trained model with its tokenizer, taking and returning plain strings."""

    def __init__(self, model: SeqVAE, tokenizer, source: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source

    @property
    def config(self):
        return self.model.config

    @property
    def representation(self) -> str:
        return self.model.config.representation

    def __repr__(self) -> str:
        c = self.config
        parameters = sum(p.numel() for p in self.model.parameters())
        return (
            f"SeqVAEPipeline({c.representation}, {c.encoder_type}->{c.decoder_type}, "
            f"latent_dim={c.latent_dim}, vocab={c.vocab_size}, parameters={parameters:,}, "
            f"from={self.source!r})"
        )

    # --- latents

    def _as_list(self, items) -> list[str]:
        return [items] if isinstance(items, str) else list(items)

    def tokenize(self, items) -> dict[str, torch.Tensor]:
        """Strings -> padded ``input_ids`` / ``attention_mask`` on the model's device."""
        texts = []
        for item in self._as_list(items):
            if self.representation != "text":
                # Training canonicalises SMILES, so equivalent inputs should read the same.
                item = canonical_smiles(item) or item
            text = item if self.representation == "text" else to_model_text(item, self.representation)
            if text is None:
                raise SeqVAEError(f"cannot convert {item!r} to {self.representation}")
            texts.append(text)
        ids = self.tokenizer(texts, truncation=True, max_length=self.config.max_sequence_length)["input_ids"]
        unknown = count_unknown(ids, self.tokenizer.unk_token_id)
        if unknown.tokens:
            logger.warning(
                "%d symbol(s) in %d of %d input(s) are not in the model's vocabulary and were read as <unk>",
                unknown.tokens, unknown.sequences, len(ids),
            )
        batch = PaddingCollator(self.tokenizer.pad_token_id)([{"input_ids": x} for x in ids])
        return {key: value.to(self.model.device) for key, value in batch.items()}

    @torch.no_grad()
    def encode(self, items, batch_size: int = 512) -> torch.Tensor:
        """Posterior means ``[B, latent_dim]`` of one string or a list of strings."""
        items = self._as_list(items)
        means = []
        for start in range(0, len(items), batch_size):
            batch = self.tokenize(items[start : start + batch_size])
            mu, _ = self.model.encode(batch["input_ids"], batch["attention_mask"])
            means.append(mu)
        return torch.cat(means)

    def decode(self, z: torch.Tensor, strategy: str = "greedy", seed: int | None = None, **options):
        """Latents ``[B, latent_dim]`` (or one ``[latent_dim]``) -> list of strings."""
        z = torch.as_tensor(z, dtype=torch.float32, device=self.model.device)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        ids = decode_latents(self.model, z, strategy=strategy, generator=_generator(seed), **options)
        return ids_to_strings(self.tokenizer, ids, self.representation)

    def reconstruct(self, items, **options) -> list[str]:
        """Encode to the posterior mean and decode greedily."""
        return self.decode(self.encode(items), strategy="greedy", **options)

    def interpolate(self, start: str, end: str, steps: int = 8, method: str = "linear", **options):
        """Decoded points on the path between the posterior means of ``start`` and ``end``."""
        z = self.encode([start, end])
        path = interpolate_latents(z[0], z[1], steps, method)
        return self.decode(path, **options)

    # --- sampling

    def sample(self, num_samples: int = 1, seed: int | None = None, progress: bool = False, **options):
        """Strings decoded from prior samples ``z ~ N(0, I)``.

        Options: ``strategy`` (``sample``/``greedy``), ``temperature``, ``top_k``, ``top_p``,
        ``batch_size``.
        """
        ids = sample_prior(self.model, num_samples, generator=_generator(seed), progress=progress, **options)
        return ids_to_strings(self.tokenizer, ids, self.representation)

    def sample_frame(self, num_samples: int = 1, seed: int | None = None, **options) -> pd.DataFrame:
        """Prior samples as a DataFrame with ``smiles`` and ``valid`` columns."""
        return samples_frame(self.sample(num_samples, seed=seed, **options))


def samples_frame(smiles: list[str]) -> pd.DataFrame:
    """Generated SMILES with a ``valid`` column."""
    return pd.DataFrame({"smiles": smiles, "valid": [is_valid(s) for s in smiles]})


def _generator(seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator().manual_seed(seed)


def load(run_dir: str | Path, device: str | None = None) -> SeqVAEPipeline:
    """Load a run folder (``config.json``, ``model.safetensors``, tokenizer files).

    Args:
        run_dir: the folder ``seqvae train`` wrote.
        device: ``"cpu"``, ``"cuda"``...; the GPU when one is available by default.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SeqVAEError(f"model folder not found: {run_dir}; give the output_dir of a training run")
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise SeqVAEError(
            f"{run_dir} is not a complete seqvae model folder: missing {', '.join(missing)}. "
            "Point to the output_dir of a finished run, or to one of its checkpoint-* folders"
        )
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = SeqVAE.from_pretrained(run_dir, use_safetensors=True).to(device)
        tokenizer = AutoTokenizer.from_pretrained(run_dir)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise SeqVAEError(f"cannot load the model in {run_dir}: {error}") from None
    return SeqVAEPipeline(model, tokenizer, source=str(run_dir))


def evaluate_run(
    vae: SeqVAEPipeline,
    train_smiles: list[str],
    validation_smiles: list[str],
    *,
    num_prior_samples: int = 1000,
    temperature: float = 1.0,
    num_reconstruction_molecules: int = 1000,
    seed: int = 0,
) -> dict:
    """The end-of-training evaluation written to ``metrics.json``; returns ``(metrics, samples)``.

    Reconstruction accuracy: greedy decoding from the posterior mean of validation molecules,
    exact canonical match. Prior samples: ``num_prior_samples`` at ``temperature``; validity,
    uniqueness among valid, novelty against ``train_smiles``.
    """
    started = time.monotonic()
    held_out = list(validation_smiles[:num_reconstruction_molecules])
    reconstructed = vae.reconstruct(held_out) if held_out else []
    samples = vae.sample(num_prior_samples, seed=seed, temperature=temperature, progress=True)
    quality = sample_quality(samples, train_smiles)
    return {
        "reconstruction_accuracy": round(reconstruction_accuracy(held_out, reconstructed), 4),
        "num_reconstructed": len(held_out),
        "prior_samples": num_prior_samples,
        "temperature": temperature,
        **{name: round(value, 4) for name, value in quality.items()},
        "sampling_seconds": round(time.monotonic() - started, 2),
    }, samples


def train_and_evaluate(
    recipe: str | Path | None = None,
    overrides: dict | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
) -> dict:
    """Train from a recipe, evaluate, and write ``metrics.json`` and ``samples.csv`` in the run.

    This is what ``seqvae train`` runs. Returns the metrics: validation ELBO terms, token
    accuracy and active units, reconstruction accuracy, and validity / uniqueness / novelty of
    prior samples, with wall times.
    """
    from .training import train

    started = time.monotonic()
    run = train(recipe, overrides, output_dir, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:  # multi-process launch: rank 0 evaluates and writes
        return run.validation_metrics
    eval_args = run.evaluation_args
    vae = SeqVAEPipeline(run.model, run.tokenizer, source=str(run.output_dir))
    generation_metrics, samples = evaluate_run(
        vae,
        run.train_smiles,
        run.validation["smiles"],
        num_prior_samples=eval_args.num_prior_samples,
        temperature=eval_args.sample_temperature,
        num_reconstruction_molecules=eval_args.num_reconstruction_molecules,
        seed=0,
    )
    metrics = {
        **{key.removeprefix("eval_"): value for key, value in run.validation_metrics.items() if key != "epoch"},
        **generation_metrics,
        "train_seconds": round(run.train_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "data": run.report.summary(),
    }
    (run.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    samples_frame(samples).to_csv(run.output_dir / "samples.csv", index=False)
    return metrics
