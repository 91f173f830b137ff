"""Unit tests of seqvae.recipe: routing keys to their owners, clear errors, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqvae import SeqVAEConfig
from seqvae.arguments import DataArguments, EvaluationArguments
from seqvae.errors import SeqVAEError
from seqvae.recipe import load_recipe, model_keys, parse_override

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def write_recipe(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_keys_of_each_group_are_routed_to_their_owner(tmp_path):
    path = write_recipe(
        tmp_path,
        "data: mols.csv\n"
        "smiles_column: smi\n"
        "max_length: 60\n"
        "latent_dim: 8\n"
        "decoder_type: lstm\n"
        "dropout: 0.1\n"
        "learning_rate: 0.002\n"
        "max_steps: 5\n"
        "kl_schedule: cyclical\n"
        "word_dropout: 0.25\n"
        "num_prior_samples: 50\n"
        "sample_temperature: 0.8\n",
    )
    data_args, model_kwargs, training_kwargs, eval_args = load_recipe(path)
    assert isinstance(data_args, DataArguments) and isinstance(eval_args, EvaluationArguments)
    assert (data_args.data, data_args.smiles_column, data_args.max_length) == ("mols.csv", "smi", 60)
    assert data_args.canonicalize is True  # untouched defaults stay
    assert model_kwargs == {"latent_dim": 8, "decoder_type": "lstm", "dropout": 0.1}
    assert training_kwargs == {
        "learning_rate": 0.002,
        "max_steps": 5,
        "kl_schedule": "cyclical",
        "word_dropout": 0.25,
    }
    assert (eval_args.num_prior_samples, eval_args.sample_temperature) == (50, 0.8)
    assert eval_args.num_reconstruction_molecules == EvaluationArguments().num_reconstruction_molecules


def test_no_recipe_gives_the_defaults():
    data_args, model_kwargs, training_kwargs, eval_args = load_recipe(None)
    assert data_args == DataArguments()
    assert eval_args == EvaluationArguments()
    assert model_kwargs == {} and training_kwargs == {}


def test_empty_recipe_file_gives_the_defaults(tmp_path):
    data_args, model_kwargs, training_kwargs, _ = load_recipe(write_recipe(tmp_path, "# nothing yet\n"))
    assert data_args == DataArguments() and model_kwargs == {} and training_kwargs == {}


def test_unknown_key_names_the_key_and_suggests_a_close_match(tmp_path):
    path = write_recipe(tmp_path, "learning_rat: 0.001\n")
    with pytest.raises(SeqVAEError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    assert "'learning_rat'" in message
    assert "did you mean learning_rate" in message


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path):
    with pytest.raises(SeqVAEError, match="unknown key 'zzzzqqq'") as info:
        load_recipe(write_recipe(tmp_path, "zzzzqqq: 1\n"))
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "line, key, expected",
    [
        ("max_steps: abc", "max_steps", "int"),
        ("learning_rate: fast", "learning_rate", "float"),
        ("latent_dim: 8.5", "latent_dim", "int"),
        ("max_steps: true", "max_steps", "int"),
        ("canonicalize: maybe", "canonicalize", "bool"),
        ("num_prior_samples: [1, 2]", "num_prior_samples", "int"),
    ],
)
def test_wrong_type_names_the_key_and_the_expected_type(tmp_path, line, key, expected):
    path = write_recipe(tmp_path, line + "\n")
    with pytest.raises(SeqVAEError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    assert f"key '{key}' expects {expected}" in message


def test_int_is_accepted_where_a_float_is_expected(tmp_path):
    _, model_kwargs, training_kwargs, eval_args = load_recipe(
        write_recipe(tmp_path, "learning_rate: 1\nkl_max_weight: 2\nsample_temperature: 1\n")
    )
    assert training_kwargs["learning_rate"] == 1.0 and isinstance(training_kwargs["learning_rate"], float)
    assert isinstance(training_kwargs["kl_max_weight"], float)
    assert isinstance(eval_args.sample_temperature, float)


def test_optional_keys_accept_null(tmp_path):
    data_args, _, _, _ = load_recipe(write_recipe(tmp_path, "smiles_column: null\ndata_dir: null\n"))
    assert data_args.smiles_column is None and data_args.data_dir is None


def test_invalid_yaml_reports_the_line(tmp_path):
    path = write_recipe(tmp_path, "data: mols.csv\nmax_steps: [1,\nlatent_dim: 8\n")
    with pytest.raises(SeqVAEError, match="not valid YAML") as info:
        load_recipe(path)
    assert str(path) in str(info.value)
    assert "line 4" in str(info.value)  # where the parser gave up: the end of the file


def test_invalid_yaml_in_the_middle_reports_its_line(tmp_path):
    path = write_recipe(tmp_path, "data: mols.csv\nlatent_dim: 8\n  max_steps: 3\nseed: 1\n")
    with pytest.raises(SeqVAEError) as info:
        load_recipe(path)
    assert "line 3" in str(info.value)


def test_recipe_that_is_not_a_mapping_is_rejected(tmp_path):
    with pytest.raises(SeqVAEError, match="mapping"):
        load_recipe(write_recipe(tmp_path, "- data: mols.csv\n- latent_dim: 8\n"))


def test_missing_recipe_file_is_rejected(tmp_path):
    with pytest.raises(SeqVAEError, match="recipe not found"):
        load_recipe(tmp_path / "absent.yaml")


def test_overrides_win_over_the_file(tmp_path):
    path = write_recipe(tmp_path, "max_steps: 5\nlatent_dim: 8\ndata: a.csv\n")
    data_args, model_kwargs, training_kwargs, _ = load_recipe(
        path, {"max_steps": 7, "data": "b.csv", "num_prior_samples": 3}
    )
    assert training_kwargs["max_steps"] == 7
    assert data_args.data == "b.csv"
    assert model_kwargs == {"latent_dim": 8}


def test_overrides_are_checked_like_the_file():
    with pytest.raises(SeqVAEError, match="override: key .max_steps. expects int"):
        load_recipe(None, {"max_steps": "abc"})
    with pytest.raises(SeqVAEError, match="unknown key 'latent_dims'; did you mean latent_dim"):
        load_recipe(None, {"latent_dims": 8})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("max_steps=10", ("max_steps", 10)),
        ("learning_rate=0.001", ("learning_rate", 0.001)),
        ("learning_rate=1.0e-3", ("learning_rate", 0.001)),
        ("canonicalize=false", ("canonicalize", False)),
        ("encoder_bidirectional=true", ("encoder_bidirectional", True)),
        ("data=mols/train.csv", ("data", "mols/train.csv")),
        ("smiles_column=", ("smiles_column", None)),
        ("--max-steps=3", ("max_steps", 3)),
        ("data=a=b.csv", ("data", "a=b.csv")),
    ],
)
def test_parse_override_reads_values_as_yaml(text, expected):
    key, value = parse_override(text)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["max_steps", "=3", ""])
def test_parse_override_rejects_text_without_key_and_equals(text):
    with pytest.raises(SeqVAEError, match="key=value"):
        parse_override(text)


def test_parse_override_reads_exponent_notation_as_a_number():
    key, value = parse_override("learning_rate=1e-3")
    assert (key, value) == ("learning_rate", 0.001)
    _, _, training_kwargs, _ = load_recipe(None, dict([parse_override("learning_rate=3e-4")]))
    assert training_kwargs["learning_rate"] == pytest.approx(3e-4)


def test_recipe_accepts_exponent_notation_for_floats(tmp_path):
    _, _, training_kwargs, _ = load_recipe(write_recipe(tmp_path, "learning_rate: 3e-4\n"))
    assert training_kwargs["learning_rate"] == pytest.approx(3e-4)


def test_model_keys_are_the_config_arguments_a_recipe_may_set():
    keys = model_keys()
    assert {"encoder_type", "decoder_type", "latent_dim", "embedding_dim", "dropout", "representation"} <= set(keys)
    # computed from the data, never set by a recipe
    for computed in ("vocab_size", "max_sequence_length", "pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id"):
        assert computed not in keys


@pytest.mark.parametrize(
    "recipe",
    RECIPES or [pytest.param(None, marks=pytest.mark.skip(reason="no recipes/*.yaml written yet"))],
    ids=[p.name for p in RECIPES] or ["no-recipes"],
)
def test_every_shipped_recipe_loads_and_builds_its_arguments(recipe, tmp_path):
    from seqvae.arguments import training_arguments as _training_arguments

    data_args, model_kwargs, training_kwargs, eval_args = load_recipe(recipe)
    assert data_args.data
    # the model and training settings must also be accepted by their owners
    SeqVAEConfig(vocab_size=40, max_sequence_length=data_args.max_length, **model_kwargs)
    training_kwargs.pop("output_dir", None)
    args = _training_arguments(tmp_path / "run", training_kwargs)
    assert args.kl_schedule in ("constant", "linear", "sigmoid", "cyclical")
    assert eval_args.num_prior_samples >= 1


@pytest.mark.parametrize("text", ["data=@molecules", "smiles_column=[a"])
def test_parse_override_keeps_text_that_is_not_yaml(text):
    key, value = parse_override(text)
    assert value == text.split("=", 1)[1]
