"""Medicinal-chemistry filters on generated molecules.

    passes, reasons = apply_filters(smiles, ["lipinski", "veber", "pains", "mcf", "sa<4.5"])

Named filters:

* ``lipinski``: the rule of five (Lipinski et al. 1997): molecular weight <= 500, Crippen logP
  <= 5, H-bond donors <= 5, H-bond acceptors <= 10 (RDKit's Lipinski counts). A molecule passes
  with at most one violation, as in the paper ("poor absorption is more likely when two or more
  are violated").
* ``veber``: rotatable bonds <= 10 and TPSA <= 140 Å² (Veber et al. 2002).
* ``pains``: none of the 480 PAINS alerts (Baell & Holloway 2010) and ``mcf``: none of the 22
  MOSES medicinal-chemistry alerts; the same SMARTS files and the same screening as the MOSES
  ``Filters`` metric (``seqvae/metrics/alerts``, matched on the molecule with explicit hydrogens).
* ``moses``: the whole MOSES ``Filters`` test (:func:`seqvae.metrics.moses.passes_filters`: the
  alerts plus no charge, no ring of 8 or more, only C N S O F Cl Br H).

Threshold filters compare a built-in property (:data:`seqvae.chem.PROPERTIES`, aliases allowed)
with a number: ``"sa<4.5"``, ``"qed>0.5"``, ``"logP<=5"``, ``"MW>=200"``.

An invalid molecule fails every filter. ``reasons`` holds, per molecule, the failed filters and
why, separated by ``"; "`` (``"lipinski: MW 612.7 > 500, HBD 7 > 5; pains: ene_rhod_A(235)"``),
and is empty for a molecule that passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rdkit import Chem

from .chem import (
    PROPERTIES,
    molecule_properties,
    property_name,
    to_mol,
    without_rdkit_log,
)
from .errors import SeqVAEError
from .metrics.moses import matched_alerts, passes_filters

__all__ = ["NAMED_FILTERS", "apply_filters", "check_filters", "format_pass_rates", "known_filters", "pass_rates"]

INVALID = "invalid molecule"
LIPINSKI_LIMITS = (("MW", 500.0), ("logP", 5.0), ("HBD", 5), ("HBA", 10))
LIPINSKI_ALLOWED_VIOLATIONS = 1
VEBER_LIMITS = (("rotatable_bonds", 10), ("TPSA", 140.0))
THRESHOLD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")
COMPARISONS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}

# A check takes a molecule and returns None when it passes, else what failed (for the reason).
Check = Callable[[Chem.Mol], "str | None"]


def _exceeded(mol: Chem.Mol, limits) -> list[str]:
    names = [name for name, _ in limits]
    values = molecule_properties(mol, names)
    return [f"{name} {value:.4g} > {limit:g}" for (name, limit), value in zip(limits, values) if not value <= limit]


def _lipinski(mol: Chem.Mol) -> str | None:
    violations = _exceeded(mol, LIPINSKI_LIMITS)
    return ", ".join(violations) if len(violations) > LIPINSKI_ALLOWED_VIOLATIONS else None


def _veber(mol: Chem.Mol) -> str | None:
    return ", ".join(_exceeded(mol, VEBER_LIMITS)) or None


def _alert_check(family: str) -> Check:
    def failed_alerts(mol: Chem.Mol) -> str | None:
        return ", ".join(matched_alerts(mol, families=(family,))) or None

    return failed_alerts


def _moses(mol: Chem.Mol) -> str | None:
    return None if passes_filters(mol) else "fails the MOSES filters (alert, charge, ring of 8+ or atom type)"


NAMED_FILTERS: dict[str, Check] = {
    "lipinski": _lipinski,
    "veber": _veber,
    "pains": _alert_check("pains"),
    "mcf": _alert_check("mcf"),
    "moses": _moses,
}


def known_filters() -> str:
    """The filters one can name, for messages."""
    return f"{', '.join(NAMED_FILTERS)}, or a threshold on a property such as sa<4.5, qed>0.5, logP<=5 " \
        f"(properties: {', '.join(PROPERTIES)})"


@dataclass(frozen=True)
class _Threshold:
    """``"sa<4.5"``: the built-in property ``SAS`` compared with 4.5."""

    property: str
    comparison: str
    limit: float

    def __call__(self, mol: Chem.Mol) -> str | None:
        (value,) = molecule_properties(mol, [self.property])
        if not math.isnan(value) and COMPARISONS[self.comparison](value, self.limit):
            return None
        return f"{self.property} {value:.4g}"


def _parse_filter(spec) -> tuple[str, Check]:
    """A filter as the user names it -> ``(label, check)``; an unknown one is an error listing the known ones."""
    if not isinstance(spec, str) or not spec.strip():
        raise SeqVAEError(f"a filter is a name or a threshold such as 'sa<4.5', got {spec!r}; known: {known_filters()}")
    name = spec.strip().lower()
    if name in NAMED_FILTERS:
        return name, NAMED_FILTERS[name]
    match = THRESHOLD.match(spec)
    if not match:
        raise SeqVAEError(f"unknown filter {spec!r}; known filters: {known_filters()}")
    prop, comparison, text = match.groups()
    canonical = property_name(prop)
    if canonical is None:
        raise SeqVAEError(f"filter {spec!r}: unknown property {prop!r}; built-in properties are {', '.join(PROPERTIES)}")
    try:
        limit = float(text)
    except ValueError:
        raise SeqVAEError(f"filter {spec!r}: {text!r} is not a number; write e.g. {prop}{comparison}4.5") from None
    if not math.isfinite(limit):
        raise SeqVAEError(f"filter {spec!r}: the limit must be a finite number, got {text!r}")
    return spec.strip().replace(" ", ""), _Threshold(canonical, comparison, limit)


def _parse_filters(filters) -> list[tuple[str, Check]]:
    filters = [filters] if isinstance(filters, str) else list(filters or [])
    parsed = [_parse_filter(spec) for spec in filters]  # every name checked before any molecule is
    labels = [label for label, _ in parsed]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise SeqVAEError(f"filter {repeated[0]!r} is given twice; name each filter once")
    return parsed


def check_filters(filters) -> list[str]:
    """The filters' labels (``["lipinski", "sa<4.5"]``), or the error :func:`apply_filters` would
    raise: for checking before the molecules are made."""
    return [label for label, _ in _parse_filters(filters)]


def apply_filters(smiles_list: Sequence[str], filters) -> tuple[list[bool], list[str]]:
    """Whether each molecule passes every filter, and the failed filters with why.

    Args:
        smiles_list: molecules; invalid ones fail (reason ``"invalid molecule"``).
        filters: names (``lipinski``, ``veber``, ``pains``, ``mcf``, ``moses``) and thresholds
            (``"sa<4.5"``); a single string is one filter.

    Raises:
        SeqVAEError: an unknown filter name or a threshold that does not parse (before any work).
    """
    checks = _parse_filters(filters)
    passes, reasons = [], []
    with without_rdkit_log():
        for smiles in smiles_list:
            failed = _failures(to_mol(smiles), checks)
            passes.append(not failed)
            reasons.append("; ".join(failed))
    return passes, reasons


def _failures(mol: Chem.Mol | None, checks: list[tuple[str, Check]]) -> list[str]:
    if mol is None:
        return [INVALID]
    failed = []
    for label, check in checks:
        why = check(mol)
        if why is not None:
            failed.append(f"{label}: {why}")
    return failed


def pass_rates(reasons: Sequence[str], filters) -> dict[str, float]:
    """The share of molecules passing each filter and ``"all"`` of them, from the ``reasons``
    :func:`apply_filters` returned (an invalid molecule fails each filter)."""
    labels = check_filters(filters)
    failed = [{entry.split(":")[0] for entry in reason.split("; ")} if reason else set() for reason in reasons]
    total = max(len(failed), 1)
    rates = {label: sum(label not in entry and INVALID not in entry for entry in failed) / total for label in labels}
    rates["all"] = sum(not entry for entry in failed) / total
    return rates


def format_pass_rates(rates: dict[str, float]) -> str:
    """``"pass rates: lipinski 92.0%, sa<4.5 88.5%, all 81.0%"``."""
    return "pass rates: " + ", ".join(f"{label} {rate:.1%}" for label, rate in rates.items())
