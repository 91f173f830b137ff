"""Latent optimisation (Gomez-Bombarelli et al. 2018): gradient ascent on the property head.

Each start molecule is encoded (without conditions) to its posterior mean ``z0``. Adam then
maximises

    score(head(z)) - prior_weight * ||z||^2 / 2

where the second term is the log density of the N(0, I) prior: it keeps ``z`` in the region
the decoder was trained on, instead of wherever the head extrapolates. Every ``decode_every``
steps the current latents are decoded greedily and the molecules measured with RDKit, so the
result shows the whole path, not just its end.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from .chem import PROPERTIES, compute_properties, is_valid, tanimoto_similarity
from .conditions import resolve_property_name
from .errors import SeqVAEError
from .generation import check_count, is_finite_number
from .modeling import eval_mode

__all__ = ["optimize_latents", "best_improvement"]


def _objective_function(objective, config) -> Callable[[torch.Tensor], torch.Tensor]:
    """``objective`` -> function of the head's raw predictions ``[B, P]`` returning ``[B]`` scores.

    Accepted: a property name (maximise it), ``{name: weight}`` (weights per standard
    deviation, negative to minimise), or a callable on ``{name: [B] tensor}`` in property units.
    """
    names = list(config.property_names)
    if callable(objective):
        return lambda predicted: objective({name: predicted[:, i] for i, name in enumerate(names)})
    weights = {objective: 1.0} if isinstance(objective, str) else objective
    if not isinstance(weights, dict) or not weights:
        raise SeqVAEError(
            f"objective must be a property name, a {{name: weight}} dict or a callable, got {objective!r}"
        )
    indexed = []
    for name, weight in weights.items():
        canonical = resolve_property_name(name, names)
        if canonical is None:
            raise SeqVAEError(f"unknown property {name!r} in the objective; the model predicts {', '.join(names)}")
        index = names.index(canonical)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise SeqVAEError(f"the objective weight of {canonical} must be a number, got {weight!r}")
        indexed.append((index, float(weight) / config.property_stds[index]))
    return lambda predicted: sum(weight * predicted[:, index] for index, weight in indexed)


def optimize_latents(
    vae,
    start_smiles: list[str],
    objective,
    *,
    steps: int = 100,
    step_size: float = 0.05,
    prior_weight: float = 0.1,
    decode_every: int = 5,
    progress: bool = False,
) -> pd.DataFrame:
    """Optimise the latents of ``start_smiles`` for ``objective`` (see module docstring).

    Args:
        vae: a :class:`~seqvae.pipeline.SeqVAEPipeline` whose model has a property head.
        start_smiles: molecules to start from (optimised together, as one batch).
        objective: property name, ``{name: weight}``, or callable (see :func:`_objective_function`).
        steps: Adam steps.
        step_size: Adam learning rate, in latent units.
        prior_weight: weight of the prior penalty ``||z||^2 / 2``.
        decode_every: decode the latents every this many steps (step 0 is always decoded).

    Returns:
        One row per start molecule and decoded step: ``start``, ``step``, ``smiles``,
        ``valid``, ``predicted_score``, ``similarity`` (Morgan r=2 Tanimoto to the start), the
        RDKit-computed built-in properties of the model, and ``NAME_start`` for each of them.
    """
    model = vae.model
    if model.property_head is None:
        raise SeqVAEError("latent optimisation needs a model with a property head (property_head_hidden_size > 0)")
    if not start_smiles:
        raise SeqVAEError("give at least one start molecule")
    # read as the model's run read its rows, so an over-long row is refused too, before any work
    invalid = [s for s, normalized in zip(start_smiles, vae.normalize_each(start_smiles)) if normalized is None]
    if invalid:
        raise SeqVAEError(f"{len(invalid)} start molecule(s) are not valid SMILES, e.g. {invalid[0]!r}")
    _check_settings(steps, step_size, prior_weight, decode_every)
    score = _objective_function(objective, model.config)

    z = vae.encode(start_smiles).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=step_size)
    snapshots = [(0, z.detach().clone(), score(model.predict_properties(z)).detach())]
    with eval_mode(model):
        for step in tqdm(range(1, steps + 1), desc="optimising", disable=not progress):
            predicted_score = score(model.predict_properties(z))
            loss = -(predicted_score - prior_weight * 0.5 * z.pow(2).sum(dim=1)).sum()
            (z.grad,) = torch.autograd.grad(loss, [z])  # gradients for z only, none left on the model
            optimizer.step()
            if step % decode_every == 0 or step == steps:
                with torch.no_grad():
                    snapshots.append((step, z.detach().clone(), score(model.predict_properties(z))))
    return _measure_path(vae, start_smiles, snapshots)


def _check_settings(steps, step_size, prior_weight, decode_every) -> None:
    """Raise :class:`SeqVAEError` naming the first optimisation setting out of its range."""
    check_count("steps", steps, minimum=0)
    check_count("decode_every", decode_every)
    if not is_finite_number(step_size) or step_size <= 0:
        raise SeqVAEError(f"step_size must be > 0 and finite, got {step_size!r}")
    if not is_finite_number(prior_weight) or prior_weight < 0:
        raise SeqVAEError(f"prior_weight must be >= 0 and finite, got {prior_weight!r}")


def _measure_path(vae, start_smiles: list[str], snapshots) -> pd.DataFrame:
    built_in = [name for name in vae.property_names if name in PROPERTIES]
    start_values = compute_properties(start_smiles, built_in)
    rows = []
    for step, z, predicted in snapshots:
        decoded = vae.decode(z, strategy="greedy")
        measured = compute_properties(decoded, built_in)
        for i, (start, smiles) in enumerate(zip(start_smiles, decoded)):
            row = {
                "start": start,
                "step": step,
                "smiles": smiles,
                "valid": is_valid(smiles),
                "predicted_score": float(predicted[i]),
                "similarity": tanimoto_similarity(start, smiles),
            }
            for name in built_in:
                row[name] = measured[name][i]
                row[f"{name}_start"] = start_values[name][i]
            rows.append(row)
    return pd.DataFrame(rows)


def best_improvement(path: pd.DataFrame, prop: str, min_similarity: float = 0.4) -> pd.DataFrame:
    """Per start molecule, the valid molecule on its path with the largest gain in ``prop``
    among those at least ``min_similarity`` similar to the start (the start itself counts, gain 0).

    Returns ``start``, ``smiles``, ``improvement`` and ``similarity``, one row per start.
    """
    candidates = path[path["valid"] & (path["similarity"] >= min_similarity)].copy()
    candidates["improvement"] = candidates[prop] - candidates[f"{prop}_start"]
    best = candidates.sort_values("improvement", ascending=False).drop_duplicates("start")
    starts = pd.DataFrame({"start": path["start"].drop_duplicates()})
    merged = starts.merge(best[["start", "smiles", "improvement", "similarity"]], on="start", how="left")
    merged["improvement"] = merged["improvement"].fillna(0.0)
    return merged
