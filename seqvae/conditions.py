"""Conditions for a conditional VAE: checking targets, measuring what was generated, re-ranking.

A condition is ``{property: target}`` in the property's own units (``{"logP": 2.5, "qed": 0.8}``),
or a label for a categorical text attribute (``{"label": "positive"}``); properties left out are
not conditioned on. The model's config says which properties it knows, their units, labels and
the range seen in training.
"""

from __future__ import annotations

import logging
import math

import pandas as pd
import torch

from .chem import PROPERTIES, compute_properties, property_name
from .data.attributes import reads_as_number, text_attribute
from .errors import SeqVAEError

__all__ = [
    "resolve_property_name",
    "check_condition", "condition_values", "parse_condition_text", "property_table", "rerank_order"]

logger = logging.getLogger(__name__)


def resolve_property_name(name: str, known: list[str]) -> str | None:
    """``name`` as the model spells it: exact, built-in alias (``LogP``), or case-insensitive."""
    if name in known:
        return name
    alias = property_name(name)
    if alias in known:
        return alias
    return next((k for k in known if k.lower() == str(name).lower()), None)


def check_condition(config, condition: dict | None) -> dict[str, float]:
    """Validate ``{property: target}`` against a model's config; returns it with canonical names.

    Raises :class:`SeqVAEError` for a model trained without properties, an unknown name or a
    target that is not a finite number. Targets outside the training range are allowed, with a
    warning that states the range (the model then extrapolates).
    """
    if not condition:
        return {}
    if not isinstance(condition, dict):
        raise SeqVAEError(
            f"a condition is a dict of property: target, e.g. {{'logP': 2.5}}, got {condition!r}"
        )
    known = list(config.property_names)
    if not known:
        raise SeqVAEError(
            f"this model was trained without properties, so it cannot be conditioned on "
            f"{', '.join(map(str, condition))}; train one with `properties: [...]` in the recipe "
            "(see recipes/zinc250k_cvae.yaml, or recipes/ptb_cvae.yaml for text)"
        )
    checked = {}
    for name, target in condition.items():
        canonical = resolve_property_name(name, known)
        if canonical is None:
            raise SeqVAEError(
                f"unknown property {name!r}: this model is conditioned on {', '.join(known)}"
            )
        if canonical in checked:
            raise SeqVAEError(f"{canonical} is given twice in the condition ({', '.join(map(str, condition))})")
        labels = config.labels_of(canonical)
        checked[canonical] = _checked_label(canonical, target, labels) if labels else _checked_number(config, canonical, target)
    return checked


def _checked_label(name: str, target, labels: list[str]) -> str:
    """A categorical target: one of the labels the model was trained with."""
    if str(target) in labels and not isinstance(target, (bool, float)):
        return str(target)
    if reads_as_number(target):
        raise SeqVAEError(f"{name} is categorical: give one of its labels ({', '.join(labels)}), not the number {target!r}")
    raise SeqVAEError(f"unknown label {target!r} for {name}: this model knows {', '.join(labels)}")


def _checked_number(config, name: str, target) -> float:
    """A numeric target: a finite number (text that reads as one is accepted), range-checked."""
    message = f"the target for {name} must be a number, got {target!r} ({name} is numeric, not a label)"
    if isinstance(target, bool):
        raise SeqVAEError(message)
    try:
        target = float(target)
    except (TypeError, ValueError):
        raise SeqVAEError(message) from None
    if not math.isfinite(target):
        raise SeqVAEError(f"the target for {name} must be a finite number, got {target}")
    _warn_if_outside_training(config, name, target)
    return target


def _warn_if_outside_training(config, name: str, target: float) -> None:
    index = config.property_names.index(name)
    low, high = config.property_min[index], config.property_max[index]
    mean, std = config.property_means[index], config.property_stds[index]
    unit = f" {config.property_units[index]}" if config.property_units[index] else ""
    if not low <= target <= high:
        logger.warning(
            "target %s=%g%s is outside the training range [%.4g, %.4g]%s; the model extrapolates and "
            "may miss it", name, target, unit, low, high, unit,
        )
    elif abs(target - mean) > 3 * std:
        logger.warning(
            "target %s=%g%s is in the tail of the training data (mean %.4g, std %.4g, range [%.4g, %.4g]); "
            "expect fewer valid molecules and a larger error", name, target, unit, mean, std, low, high,
        )


def condition_values(config, condition: dict[str, float]) -> torch.Tensor:
    """Checked ``{property: target}`` -> ``[num_properties]`` values with NaN where not given."""
    values = torch.full((len(config.property_names),), float("nan"))
    for name, target in condition.items():
        labels = config.labels_of(name)
        values[config.property_names.index(name)] = labels.index(target) if labels else target
    return values


def parse_condition_text(texts: list[str]) -> dict[str, str]:
    """``["logP=2.5", "qed=0.8"]`` (command line) -> ``{"logP": "2.5", "qed": "0.8"}``."""
    parsed = {}
    for text in texts or []:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SeqVAEError(f"--condition {text!r} is not of the form NAME=VALUE (e.g. logP=2.5)")
        parsed[name.strip()] = value.strip()
    return parsed


def property_table(items: list[str], config, condition: dict) -> pd.DataFrame:
    """Properties of generated molecules (measured by RDKit) or sentences (by the attribute's
    rule), against the targets.

    Columns, for each property that can be measured: ``NAME`` (the measured value, NaN for an
    invalid molecule); for each conditioned one also ``NAME_target`` and, for a number,
    ``NAME_error`` (measured minus target). Properties that cannot be measured (CSV columns
    such as an assay or a label) get only their target.
    """
    if config.representation == "text":
        measured = {name: text_attribute(rule, items) for name, rule in zip(config.property_names, config.property_rules) if rule}
    else:
        built_in = [name for name in config.property_names if name in PROPERTIES]
        measured = compute_properties(items, built_in) if built_in else {}
    table = {}
    for name in config.property_names:
        if name in measured:
            table[name] = measured[name]
        if name in condition:
            table[f"{name}_target"] = [condition[name]] * len(items)
            if name in measured and not config.is_categorical(name):
                table[f"{name}_error"] = [value - condition[name] for value in measured[name]]
    return pd.DataFrame(table, index=range(len(items)))


def rerank_order(predicted: torch.Tensor, config, condition: dict[str, float]) -> list[int]:
    """Candidate indices, best first, by the head's predicted distance to the targets.

    The distance sums ``|predicted - target| / std`` over the conditioned properties, so that
    properties on different scales count alike.
    """
    distance = torch.zeros(predicted.size(0))
    for name, target in condition.items():
        if config.is_categorical(name):
            continue  # the head predicts numbers only
        index = config.property_names.index(name)
        distance += (predicted[:, index].cpu() - target).abs() / config.property_stds[index]
    return torch.argsort(distance, stable=True).tolist()
