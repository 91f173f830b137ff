"""Tests of seqvae.integrations.guacamol, without GuacaMol installed: the generator contract
GuacaMol relies on (signature, exact counts, invalid samples kept, repeated calls), errors, and
the lazy import. Where GuacaMol itself must appear, a stand-in module is put in ``sys.modules``."""

from __future__ import annotations

import abc
import builtins
import importlib.util
import inspect
import json
import sys
import types
import typing

import numpy as np
import pytest

from seqvae.errors import SeqVAEError
from seqvae.integrations import guacamol as adapter
from seqvae.integrations.guacamol import (
    SeqVAEGuacaMolGenerator,
    assess_distribution_learning,
)
from seqvae.pipeline import load


@pytest.fixture(scope="module")
def vae(trained_run):
    return load(trained_run.output_dir, device="cpu")


@pytest.fixture
def recorded_sample(monkeypatch, vae):
    """Replace ``vae.sample`` by a fast stand-in returning an invalid SMILES; records each call."""
    calls = []

    def fake_sample(num_samples=1, seed=None, progress=False, condition=None, rerank=1, **options):
        calls.append({"num_samples": num_samples, "seed": seed, "condition": condition, **options})
        return ["C1CC(not a molecule"] * num_samples

    monkeypatch.setattr(vae, "sample", fake_sample)
    return calls


# ------------------------------------------------------------------------------- the contract


def test_generate_has_guacamols_signature():
    signature = inspect.signature(SeqVAEGuacaMolGenerator.generate)
    assert list(signature.parameters) == ["self", "number_samples"]
    hints = typing.get_type_hints(SeqVAEGuacaMolGenerator.generate)
    assert hints["number_samples"] is int
    assert hints["return"] in (typing.List[str], list[str])  # noqa: UP006


@pytest.mark.parametrize("number_samples", [0, 1, 7])
def test_generate_returns_exactly_the_number_asked_for(vae, number_samples):
    samples = SeqVAEGuacaMolGenerator(vae, seed=0).generate(number_samples)
    assert len(samples) == number_samples
    assert all(isinstance(smiles, str) for smiles in samples)


def test_large_requests_are_split_into_batches(vae, recorded_sample):
    samples = SeqVAEGuacaMolGenerator(vae, batch_size=1000).generate(2500)
    assert len(samples) == 2500
    assert [call["num_samples"] for call in recorded_sample] == [1000, 1000, 500]
    assert [call["batch_size"] for call in recorded_sample] == [1000, 1000, 500]  # one decoding batch each


def test_invalid_samples_are_returned_not_filtered(vae, recorded_sample):
    assert SeqVAEGuacaMolGenerator(vae).generate(5) == ["C1CC(not a molecule"] * 5


def test_temperature_and_condition_reach_the_sampler(vae, recorded_sample):
    SeqVAEGuacaMolGenerator(vae, temperature=0.7).generate(3)
    assert recorded_sample[0]["temperature"] == 0.7
    assert recorded_sample[0]["condition"] is None


def test_numpy_integers_are_accepted(vae, recorded_sample):
    assert len(SeqVAEGuacaMolGenerator(vae).generate(np.int64(4))) == 4


def test_repeated_calls_give_new_samples(vae):
    generator = SeqVAEGuacaMolGenerator(vae)
    assert generator.generate(6) != generator.generate(6)


def test_a_seed_fixes_the_stream_of_calls(vae):
    first, again = SeqVAEGuacaMolGenerator(vae, seed=3), SeqVAEGuacaMolGenerator(vae, seed=3)
    first_calls = [first.generate(3), first.generate(3)]
    assert first_calls[0] != first_calls[1]  # the stream advances between calls
    assert [again.generate(3), again.generate(3)] == first_calls


def test_each_batch_gets_its_own_seed(vae, recorded_sample):
    SeqVAEGuacaMolGenerator(vae, batch_size=2, seed=1).generate(6)
    seeds = [call["seed"] for call in recorded_sample]
    assert len(set(seeds)) == 3 and all(isinstance(seed, int) for seed in seeds)


def test_a_run_folder_is_loaded(trained_run):
    generator = SeqVAEGuacaMolGenerator(str(trained_run.output_dir), seed=0)
    assert len(generator.generate(2)) == 2
    assert str(trained_run.output_dir) in repr(generator)


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("number_samples", [-1, 2.5, "10", True, None])
def test_bad_number_samples_is_an_error(vae, number_samples):
    with pytest.raises(SeqVAEError, match="number_samples must be an integer >= 0"):
        SeqVAEGuacaMolGenerator(vae).generate(number_samples)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"temperature": 0.0}, "temperature"),
        ({"seed": "zero"}, "seed"),
        ({"condition": {"logP": 2.0}}, "trained without properties"),
    ],
)
def test_bad_settings_are_errors(vae, options, fragment):
    with pytest.raises(SeqVAEError, match=fragment):
        SeqVAEGuacaMolGenerator(vae, **options)


def test_bad_models_are_errors(tmp_path):
    with pytest.raises(SeqVAEError, match="run folder or a loaded SeqVAEPipeline"):
        SeqVAEGuacaMolGenerator(42)
    with pytest.raises(SeqVAEError, match="model folder not found"):
        SeqVAEGuacaMolGenerator(tmp_path / "absent")


# ---------------------------------------------------------------------------- GuacaMol itself


def hide_guacamol(monkeypatch) -> None:
    """Make every ``import guacamol...`` fail, as when it is not installed."""
    for name in ("guacamol", "guacamol.assess_distribution_learning", "guacamol.distribution_matching_generator"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_guacamol_says_how_to_install_it(monkeypatch, vae, tmp_path):
    hide_guacamol(monkeypatch)
    with pytest.raises(SeqVAEError, match="pip install --no-deps guacamol==0.5.5"):
        assess_distribution_learning(vae, tmp_path / "train.smiles", tmp_path / "out.json")


def test_the_generator_works_without_guacamol(monkeypatch, vae, recorded_sample):
    hide_guacamol(monkeypatch)
    assert adapter._register_with_guacamol() is False
    assert len(SeqVAEGuacaMolGenerator(vae).generate(3)) == 3


def test_importing_the_adapter_never_imports_guacamol(monkeypatch):
    real_import = builtins.__import__

    def guarded_import(name, *args, **kwargs):
        if name.split(".")[0] == "guacamol":
            raise AssertionError(f"{name} imported while importing the adapter")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    spec = importlib.util.spec_from_file_location("seqvae.integrations._guacamol_copy", adapter.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    assert hasattr(fresh, "SeqVAEGuacaMolGenerator")


@pytest.fixture
def stand_in_guacamol(monkeypatch):
    """A minimal GuacaMol in ``sys.modules``: its interface and a recording assessment module."""
    interface = types.ModuleType("guacamol.distribution_matching_generator")

    class DistributionMatchingGenerator(metaclass=abc.ABCMeta):
        @abc.abstractmethod
        def generate(self, number_samples: int) -> list[str]: ...

    interface.DistributionMatchingGenerator = DistributionMatchingGenerator
    assessment = types.ModuleType("guacamol.assess_distribution_learning")
    assessment.calls = []

    def run(model, chembl_training_file, json_output_file, benchmark_version, number_samples):
        assessment.calls.append({"number_samples": number_samples, "training": chembl_training_file})
        report = {"samples": model.generate(3), "benchmark_suite_version": benchmark_version}
        with open(json_output_file, "w") as handle:
            json.dump(report, handle)

    def run_published(model, chembl_training_file, json_output_file, benchmark_version):
        run(model, chembl_training_file, json_output_file, benchmark_version, 10_000)  # as GuacaMol does

    assessment.assess_distribution_learning = run_published
    assessment._assess_distribution_learning = run
    package = types.ModuleType("guacamol")
    monkeypatch.setitem(sys.modules, "guacamol", package)
    monkeypatch.setitem(sys.modules, "guacamol.distribution_matching_generator", interface)
    monkeypatch.setitem(sys.modules, "guacamol.assess_distribution_learning", assessment)
    return types.SimpleNamespace(interface=DistributionMatchingGenerator, assessment=assessment)


def test_the_generator_registers_as_guacamols_interface(stand_in_guacamol, vae):
    generator = SeqVAEGuacaMolGenerator(vae)
    assert isinstance(generator, stand_in_guacamol.interface)


@pytest.mark.parametrize("number_samples", [10_000, 50])
def test_assess_distribution_learning_runs_guacamol_and_returns_its_report(
    stand_in_guacamol, vae, recorded_sample, tmp_path, number_samples
):
    training = tmp_path / "train.smiles"
    training.write_text("CCO\n")
    report = assess_distribution_learning(vae, training, tmp_path / "out.json", number_samples=number_samples)
    assert stand_in_guacamol.assessment.calls == [{"number_samples": number_samples, "training": str(training)}]
    assert report == {"samples": ["C1CC(not a molecule"] * 3, "benchmark_suite_version": "v1"}


def test_assess_distribution_learning_checks_its_inputs(stand_in_guacamol, vae, tmp_path):
    with pytest.raises(SeqVAEError, match="training file not found"):
        assess_distribution_learning(vae, tmp_path / "absent.smiles", tmp_path / "out.json")
    training = tmp_path / "train.smiles"
    training.write_text("CCO\n")
    with pytest.raises(SeqVAEError, match="at least 1"):
        assess_distribution_learning(vae, training, tmp_path / "out.json", number_samples=0)


# ------------------------------------------------------------------ the real GuacaMol package


@pytest.mark.slow
def test_the_real_guacamol_suite_runs_end_to_end(tmp_path, bundled_molecules):
    """GuacaMol 0.5.5 itself (installed as recipes/README.md says), with seqvae's compatibility
    step for current SciPy and FCD: every distribution-learning benchmark scores the shipped model."""
    pytest.importorskip("guacamol", reason="GuacaMol is not installed (pip install --no-deps guacamol==0.5.5)")
    pytest.importorskip("fcd", reason="FCD is not installed (pip install 'seqvae[guacamol]')")
    training = tmp_path / "train.smiles"
    training.write_text("\n".join(bundled_molecules[0]["smiles"][:3000]) + "\n")
    output = tmp_path / "guacamol.json"
    report = assess_distribution_learning("zinc250k", training, output, number_samples=300, seed=0)
    scores = {result["benchmark_name"]: result["score"] for result in report["results"]}
    assert set(scores) == {"Validity", "Uniqueness", "Novelty", "KL divergence", "Frechet ChemNet Distance"}
    assert all(0.0 <= score <= 1.0 for score in scores.values()), scores
    assert scores["Validity"] > 0.3 and scores["Frechet ChemNet Distance"] > 0.0
