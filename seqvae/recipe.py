"""Recipes: flat YAML files whose keys are the fields of the training argument dataclasses.

A recipe sets three groups of keys, each checked against its owner:

* data keys: the fields of :class:`~seqvae.arguments.DataArguments`;
* model keys: the arguments of :class:`~seqvae.configuration.SeqVAEConfig`;
* training keys: the fields of :class:`~seqvae.arguments.SeqVAETrainingArguments` (which extends
  ``transformers.TrainingArguments`` with the objective's fields);
* evaluation keys: the fields of :class:`~seqvae.arguments.EvaluationArguments`.

Unknown keys and values of the wrong type are rejected with the file, key and a suggestion.
Command-line ``key=value`` overrides win over the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import types
import typing
from pathlib import Path

import yaml

from .arguments import DataArguments, EvaluationArguments, SeqVAETrainingArguments
from .configuration import SeqVAEConfig
from .errors import SeqVAEError

__all__ = ["load_recipe", "parse_override", "model_keys"]


class _RecipeLoader(yaml.SafeLoader):
    """YAML loader that reads ``1e-3`` as a float, as YAML 1.2 does (PyYAML's 1.1 wants ``1.0e-3``)."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml_load(text: str):
    return yaml.load(text, Loader=_RecipeLoader)


def model_keys() -> dict[str, object]:
    """The recipe keys that configure the model, with their types."""
    hints = typing.get_type_hints(SeqVAEConfig.__init__)
    return {
        name: hints.get(name, object)
        for name in inspect.signature(SeqVAEConfig.__init__).parameters
        if name not in ("self", "kwargs", "vocab_size", "max_sequence_length")
        and not name.endswith("token_id")
        and (not name.startswith("property_") or name == "property_head_hidden_size")  # from the data
    }


def parse_override(text: str) -> tuple[str, object]:
    """``"key=value"`` -> ``(key, value)`` with the value read as YAML (numbers, booleans...)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SeqVAEError(f"override {text!r} is not of the form key=value")
    try:
        parsed = _yaml_load(value) if value else None
    except yaml.YAMLError:
        parsed = value  # not YAML (e.g. "@file", "[a"): keep the text; the type check decides
    return key.strip().lstrip("-").replace("-", "_"), parsed


def load_recipe(path: str | Path | None, overrides: dict | None = None):
    """Read and check a recipe.

    Returns:
        ``(data_args, model_kwargs, training_kwargs, eval_args)``: two dataclasses and two dicts
        (the training kwargs still need ``output_dir`` before they build
        ``SeqVAETrainingArguments``).
    """
    overrides = dict(overrides or {})
    values = _read_yaml(Path(path)) if path else {}
    values.update(overrides)

    owners = {
        "data": {**{f.name: _field_type(DataArguments, f) for f in dataclasses.fields(DataArguments)}, **CORPUS_SOURCES},
        "eval": {
            f.name: _field_type(EvaluationArguments, f)
            for f in dataclasses.fields(EvaluationArguments)
        },
        "model": model_keys(),
        "training": {
            f.name: _field_type(SeqVAETrainingArguments, f)
            for f in dataclasses.fields(SeqVAETrainingArguments)
            if f.init
        },
    }
    grouped = {owner: {} for owner in owners}
    for key, value in values.items():
        # errors name where the key came from: the recipe file, or an override (a key=value on
        # the command line, a keyword of seqvae.train)
        source = "override" if key in overrides or not path else str(path)
        owner = next((o for o, keys in owners.items() if key in keys), None)
        if owner is None:
            known = [k for keys in owners.values() for k in keys]
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise SeqVAEError(
                f"{source}: unknown key {key!r}{hint} (recipe keys are documented in recipes/README.md)"
            )
        grouped[owner][key] = _check_type(source, key, value, owners[owner][key])
        if key in CORPUS_SOURCES and isinstance(value, list):
            _check_corpus_list(source, key, value)
    return (
        DataArguments(**grouped["data"]),
        grouped["model"],
        grouped["training"],
        EvaluationArguments(**grouped["eval"]),
    )


# The corpus keys take one source (a file, folder, glob or named corpus) or a list of them.
CORPUS_SOURCES = {"data": str | list[str], "validation_data": str | list[str] | None}


def _check_corpus_list(source: str, key: str, value: list) -> None:
    if not value or not all(isinstance(entry, str) and entry for entry in value):
        raise SeqVAEError(
            f"{source}: key {key!r} expects a file, folder or glob, or a non-empty list of them, got {value!r}"
        )


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise SeqVAEError(f"recipe not found: {path}; see recipes/ for examples")
    try:
        values = _yaml_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SeqVAEError(f"{path}: not UTF-8 text; re-save the recipe as UTF-8") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SeqVAEError(f"{path}{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise SeqVAEError(f"{path}: a recipe is a mapping of key: value lines, got {type(values).__name__}")
    return values


def _field_type(cls, field: dataclasses.Field):
    return typing.get_type_hints(cls).get(field.name, object)


def _check_type(source: str, key: str, value, annotation):
    """Accept ``value`` if it fits ``annotation`` (ints pass as floats); otherwise a clear error."""
    allowed = _simple_types(annotation)
    if allowed is None or value is None and type(None) in allowed:
        return value
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and (int in allowed or float in allowed):
        return float(value) if int not in allowed else value
    elif isinstance(value, float) and float in allowed:
        return value
    elif isinstance(value, str) and str in allowed:
        return value
    elif isinstance(value, (list, dict)) and (list in allowed or dict in allowed):
        return value
    names = " or ".join(sorted(t.__name__ for t in allowed if t is not type(None)))
    raise SeqVAEError(f"{source}: key {key!r} expects {names}, got {value!r} ({type(value).__name__})")


def _simple_types(annotation) -> set | None:
    """The plain Python types an annotation admits, or ``None`` when it is too rich to check."""
    if annotation in (int, float, bool, str, list, dict):
        return {annotation}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        found = set()
        for member in typing.get_args(annotation):
            if member is type(None):
                found.add(member)
                continue
            inner = _simple_types(member)
            if inner is None:
                return None if not isinstance(member, type) else found | {str}
            found |= inner
        return found
    if origin in (list, dict):
        return {origin}
    if origin is typing.Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    if isinstance(annotation, type) and issubclass(annotation, str):  # str enums
        return {str}
    return None
