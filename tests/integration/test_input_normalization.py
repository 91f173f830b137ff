"""A loaded model reads its inputs with the data settings its run trained with (recipe.yaml), not
with fixed ones: the behaviour change of issue 23 (inference used to canonicalise always, ignore
``keep_largest_fragment`` and lower-case only in ``seqvae evaluate``)."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

import seqvae


def _copy_with_data_settings(run_dir, destination, **settings):
    """The run folder copied, with ``settings`` written into its recipe's data settings."""
    shutil.copytree(run_dir, destination, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    recipe_file = destination / "recipe.yaml"
    recipe = yaml.safe_load(recipe_file.read_text())
    recipe.update(settings)
    recipe_file.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return destination


def test_a_run_that_canonicalised_reads_inputs_canonically(trained_run, tmp_path):
    vae = seqvae.load(_copy_with_data_settings(trained_run.output_dir, tmp_path / "run", standardize=False))
    assert vae.normalization.canonicalize and not vae.normalization.keep_largest_fragment
    assert vae.normalize(["OCC", "[Na+].[O-]C(C)=O"]) == ["CCO", "CC(=O)[O-].[Na+]"]


def test_a_run_that_standardised_its_own_file_standardises_inputs(trained_run):
    vae = seqvae.load(trained_run.output_dir)  # trained on a user's CSV: standardised by default
    assert vae.normalization.standardize
    assert vae.normalize(["OCC", "[Na+].[O-]C(C)=O", "C[NH3+]"]) == ["CCO", "CC(=O)O", "CN"]


def test_a_run_without_canonicalize_reads_inputs_as_written(trained_run, tmp_path):
    vae = seqvae.load(
        _copy_with_data_settings(trained_run.output_dir, tmp_path / "run", canonicalize=False, standardize=False)
    )
    assert vae.normalize(["OCC"]) == ["OCC"]
    with pytest.raises(seqvae.SeqVAEError, match="not a valid SMILES"):
        vae.normalize(["C1CC"])


def test_a_run_that_kept_the_largest_fragment_strips_salts_before_encoding(trained_run, tmp_path):
    run_dir = _copy_with_data_settings(trained_run.output_dir, tmp_path / "run", keep_largest_fragment=True, standardize=False)
    vae = seqvae.load(run_dir)
    assert vae.normalize(["[Na+].[O-]C(C)=O"]) == ["CC(=O)[O-]"]
    assert torch.equal(vae.encode("[Na+].[O-]C(C)=O"), vae.encode("CC(=O)[O-]"))
    whole = seqvae.load(_copy_with_data_settings(trained_run.output_dir, tmp_path / "whole", standardize=False))
    assert not torch.equal(whole.encode("[Na+].[O-]C(C)=O"), whole.encode("CC(=O)[O-]"))


def test_a_folder_without_a_recipe_reads_inputs_with_the_default_settings(trained_run, tmp_path):
    folder = _copy_with_data_settings(trained_run.output_dir, tmp_path / "run", keep_largest_fragment=True)
    (folder / "recipe.yaml").unlink()
    assert seqvae.load(folder).normalize(["[Na+].[O-]C(C)=O", "OCC"]) == ["CC(=O)[O-].[Na+]", "CCO"]
