"""One input normalisation (seqvae.data.normalization) for training rows and inference inputs."""

from __future__ import annotations

from seqvae.arguments import DataArguments
from seqvae.data.normalization import InputNormalization, normalize_sentence, normalize_smiles


def test_canonicalize_rewrites_a_valid_smiles_and_rejects_an_invalid_one():
    assert normalize_smiles("OCC") == "CCO"
    assert normalize_smiles("C1CC") is None  # unclosed ring


def test_without_canonicalize_a_valid_smiles_is_kept_as_written():
    assert normalize_smiles("OCC", canonicalize=False) == "OCC"
    assert normalize_smiles("C1CC", canonicalize=False) is None


def test_keep_largest_fragment_strips_salts_and_writes_the_fragment_canonically():
    assert normalize_smiles("[Na+].[O-]C(C)=O", keep_largest_fragment=True) == "CC(=O)[O-]"
    assert normalize_smiles("[Na+].[O-]C(C)=O") == "CC(=O)[O-].[Na+]"  # kept whole without it


def test_sentences_get_single_spaces_and_lower_case_only_when_the_run_lowercased():
    assert normalize_sentence("  The   cat\tsat ") == "The cat sat"
    assert normalize_sentence("  The   cat\tsat ", lowercase=True) == "the cat sat"
    assert normalize_sentence(None) == ""


def test_input_normalization_takes_the_recipe_data_settings():
    molecules = InputNormalization.of(DataArguments(canonicalize=False, keep_largest_fragment=False))
    assert molecules("OCC") == "OCC" and molecules("C1CC") is None
    salts = InputNormalization.of(DataArguments(keep_largest_fragment=True))
    assert salts("CC(=O)[O-].[Na+]") == "CC(=O)[O-]"
    text = InputNormalization.of(DataArguments(representation="text", lowercase=True))
    assert text(" The  Cat ") == "the cat"
    assert InputNormalization.of(DataArguments(representation="text"))(" The  Cat ") == "The Cat"
