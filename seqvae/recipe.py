"""Recipes: flat YAML files whose keys are the fields of the training argument dataclasses.

A recipe sets three groups of keys, each checked against its owner:

* data keys: the fields of :class:`DataArguments`;
* model keys: the arguments of :class:`~seqvae.configuration.SeqVAEConfig`;
* training keys: the fields of :class:`~seqvae.training.SeqVAETrainingArguments` (which extends
  ``transformers.TrainingArguments``).

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
from dataclasses import dataclass
from pathlib import Path

import yaml

from .configuration import SeqVAEConfig
from .errors import SeqVAEError

__all__ = ["DataArguments", "EvaluationArguments", "load_recipe", "parse_override", "model_keys"]


@dataclass
class DataArguments:
    """Where the molecules (or sentences) come from and how they are cleaned.

    Attributes:
        data: a file path, ``bundled`` (RDKit's ~15k molecules), ``moses`` / ``zinc250k``, or
            for text ``ptb`` or ``hub:NAME`` (a Hugging Face Hub dataset).
        validation_data: held-out corpus for validation (e.g. ``ptb:valid``); when empty,
            ``validation_fraction`` of ``data`` is held out.
        data_dir: folder holding a named corpus locally (otherwise it is downloaded).
        smiles_column: CSV column with SMILES; detected when empty.
        representation: ``smiles``, ``selfies`` or ``text``.
        canonicalize: rewrite SMILES in RDKit canonical form.
        keep_largest_fragment: drop counter-ions and solvents.
        deduplicate: skip repeated molecules.
        max_length: longest sequence in tokens (``<bos>``/``<eos>`` included); longer rows are
            skipped and reported.
        validation_fraction: share of molecules held out for validation.
        num_proc: processes for checking molecules.
        properties: condition the model on these properties (a conditional VAE): built-in
            RDKit properties (``logP``, ``qed``, ``SAS``, ``MW``, ``TPSA``, ``HBD``, ``HBA``,
            ``rotatable_bonds``, ``rings``) or numeric CSV columns; for text, attributes: CSV /
            Hub columns (labels or numbers) or attributes computed by ``attribute_rules``.
        property_units: ``{column: unit}`` for CSV-column properties (built-ins know theirs).
        attribute_rules: text attributes computed from each sentence, ``{name: rule}``:
            ``words`` (word count) or ``contains:TOKEN`` (``yes`` / ``no``).
        categorical_attributes: text attribute columns to read as labels although their values
            look like numbers (class ids); a column without any number is read as labels anyway.
        text_tokenizer: for text, ``word``, ``bpe`` (trained on the corpus) or a pretrained
            Hugging Face tokenizer's Hub name or local folder.
        tokenizer_vocab_size: vocabulary cap of a trained text tokenizer (specials included).
        tokenizer_min_frequency: words (or BPE merges) seen fewer times are left out.
        text_column: CSV / Hub column holding the sentences; detected when empty.
        hub_split: split of a Hub dataset to read.
        lowercase: lower-case sentences.
        long_sentences: ``skip`` or ``truncate`` sentences longer than ``max_length`` tokens
            (counted in the data report either way).
    """

    data: str = "bundled"
    validation_data: str | None = None
    data_dir: str | None = None
    smiles_column: str | None = None
    representation: str = "smiles"
    canonicalize: bool = True
    keep_largest_fragment: bool = False
    deduplicate: bool = True
    max_length: int = 100
    validation_fraction: float = 0.05
    num_proc: int = 1
    properties: list[str] = dataclasses.field(default_factory=list)
    property_units: dict[str, str] = dataclasses.field(default_factory=dict)
    attribute_rules: dict[str, str] = dataclasses.field(default_factory=dict)
    categorical_attributes: list[str] = dataclasses.field(default_factory=list)
    text_tokenizer: str = "word"
    tokenizer_vocab_size: int = 10000
    tokenizer_min_frequency: int = 1
    text_column: str | None = None
    hub_split: str = "train"
    lowercase: bool = False
    long_sentences: str = "skip"


@dataclass
class EvaluationArguments:
    """The evaluation at the end of training.

    Attributes:
        num_prior_samples: molecules sampled from the prior for validity / uniqueness / novelty.
        sample_temperature: softmax temperature of those samples.
        num_reconstruction_molecules: validation molecules (or sentences) for reconstruction
            accuracy (and, for text, the likelihood and latent diagnostics).
        num_importance_samples: text models: samples per sentence of the IW-NLL estimate.
    """

    num_prior_samples: int = 1000
    sample_temperature: float = 1.0
    num_reconstruction_molecules: int = 1000
    num_importance_samples: int = 100

    def __post_init__(self):
        if self.num_importance_samples < 1:
            raise SeqVAEError(f"num_importance_samples must be >= 1, got {self.num_importance_samples}")
        if self.num_prior_samples < 1 or self.num_reconstruction_molecules < 0:
            raise SeqVAEError("num_prior_samples must be >= 1 and num_reconstruction_molecules >= 0")
        if self.sample_temperature <= 0:
            raise SeqVAEError(f"sample_temperature must be > 0, got {self.sample_temperature}")


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
    from .training import SeqVAETrainingArguments  # training imports this module

    source = str(path) if path else "command line"
    values = _read_yaml(Path(path)) if path else {}
    values.update(overrides or {})

    owners = {
        "data": {f.name: _field_type(DataArguments, f) for f in dataclasses.fields(DataArguments)},
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
        owner = next((o for o, keys in owners.items() if key in keys), None)
        if owner is None:
            known = [k for keys in owners.values() for k in keys]
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise SeqVAEError(
                f"{source}: unknown key {key!r}{hint} (recipe keys are documented in recipes/README.md)"
            )
        grouped[owner][key] = _check_type(source, key, value, owners[owner][key])
    return (
        DataArguments(**grouped["data"]),
        grouped["model"],
        grouped["training"],
        EvaluationArguments(**grouped["eval"]),
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
