"""Standardisation (``standardize: true``): largest fragment, uncharge, canonical tautomer, the same
for training rows and inference inputs, and every change counted in the corpus report."""

from __future__ import annotations

import json

import pytest

from seqvae.arguments import DataArguments
from seqvae.chem import STANDARDIZATION_STEPS, standardize_mol, to_mol
from seqvae.data import load_molecules, storage
from seqvae.data.normalization import (
    InputNormalization,
    normalize_smiles,
    normalize_smiles_with_changes,
    standardizes,
)
from seqvae.data.report import CorpusReport
from seqvae.recipe import load_recipe


def standardized(smiles: str) -> str | None:
    return normalize_smiles(smiles, standardize=True)


# ------------------------------------------------------------------------------ one molecule


@pytest.mark.parametrize(
    "raw, expected, changes",
    [
        ("CC(=O)[O-].[Na+]", "CC(=O)O", {"salts_stripped", "charges_neutralised"}),  # sodium acetate
        ("CCN.Cl", "CCN", {"salts_stripped"}),  # a hydrochloride written as two neutral parts
        ("C[NH3+]", "CN", {"charges_neutralised"}),
        ("CC(=O)[O-]", "CC(=O)O", {"charges_neutralised"}),
        ("[NH3+]CC(=O)[O-]", "NCC(=O)O", {"charges_neutralised"}),  # zwitterionic glycine
        ("Oc1ccccn1", "O=c1cccc[nH]1", {"tautomers_changed"}),  # 2-hydroxypyridine -> 2-pyridone
        ("C=C(C)O", "CC(C)=O", {"tautomers_changed"}),  # enol -> ketone
        ("CCO", "CCO", set()),
    ],
    ids=["salt", "hydrochloride", "ammonium", "carboxylate", "zwitterion", "hydroxypyridine", "enol", "unchanged"],
)
def test_each_step_changes_what_it_should_and_says_so(raw, expected, changes):
    smiles, found = normalize_smiles_with_changes(raw, standardize=True)
    assert smiles == expected
    assert found == changes
    assert set(found) <= set(STANDARDIZATION_STEPS)


def test_both_tautomers_of_a_pair_become_one_molecule():
    assert standardized("Oc1ccccn1") == standardized("O=c1cccc[nH]1") == "O=c1cccc[nH]1"
    assert standardized("CC(O)=C") == standardized("CC(C)=O") == "CC(C)=O"  # keto / enol of acetone


def test_a_charge_that_no_hydrogen_can_remove_stays():
    assert standardized("C[N+](C)(C)C.[Cl-]") == "C[N+](C)(C)C"  # quaternary ammonium: counter-ion only
    assert standardized("O=[N+]([O-])c1ccccc1") == "O=[N+]([O-])c1ccccc1"  # nitro


def test_stereochemistry_next_to_a_tautomeric_site_is_kept():
    # RDKit's default tautomer settings drop the alpha carbon's stereo of every amino acid
    assert standardized("N[C@@H](Cc1ccccc1)C(=O)O") == "N[C@@H](Cc1ccccc1)C(=O)O"
    assert standardized("C/C=C/C(C)=O") == "C/C=C/C(C)=O"


def test_an_invalid_molecule_is_none_and_nothing_changed():
    assert normalize_smiles_with_changes("C1CC", standardize=True) == (None, frozenset())


def test_standardize_mol_leaves_the_given_molecule_alone():
    mol = to_mol("CC(=O)[O-].[Na+]")
    standardize_mol(mol)
    assert mol.GetNumAtoms() == 5


# ------------------------------------------------------------------------------ settings


def test_by_default_own_files_are_standardised_and_named_corpora_kept_as_published():
    assert DataArguments().standardize is None  # decided by the corpus
    assert standardizes(DataArguments(data="my_assay.csv")) is True
    assert standardizes(DataArguments(data="my_assay.csv", standardize=False)) is False
    assert standardizes(DataArguments()) is False  # bundled
    assert standardizes(DataArguments(data="moses")) is False
    assert standardizes(DataArguments(data="zinc250k:test")) is False
    assert standardizes(DataArguments(data="moses", standardize=True)) is True
    assert standardizes(DataArguments(data="my.txt", representation="text")) is False
    assert InputNormalization.of(DataArguments(data="my_assay.csv"))("C[NH3+]") == "CN"
    assert InputNormalization.of(DataArguments())("C[NH3+]") == "C[NH3+]"
    assert InputNormalization().standardize is False
    assert normalize_smiles("CC(=O)[O-].[Na+]") == "CC(=O)[O-].[Na+]"


def test_a_run_saved_before_the_setting_existed_reads_its_inputs_unstandardised(tmp_path):
    from seqvae import runs

    (tmp_path / "recipe.yaml").write_text("data: my_assay.csv\n")  # no standardize key: an older run
    assert runs.read_data_settings(tmp_path).standardize is False
    (tmp_path / "recipe.yaml").write_text("data: my_assay.csv\nstandardize: true\n")
    assert runs.read_data_settings(tmp_path).standardize is True
    assert runs.read_data_settings(tmp_path / "no_run_here").standardize is False


def test_a_run_on_its_own_file_records_the_standardisation_it_used(trained_run):
    import yaml

    recipe = yaml.safe_load((trained_run.output_dir / "recipe.yaml").read_text())
    assert recipe["standardize"] is True  # tiny.csv is a user's file


def test_inference_reads_inputs_with_the_recipes_standardisation():
    normalization = InputNormalization.of(DataArguments(standardize=True))
    assert normalization("CC(=O)[O-].[Na+]") == "CC(=O)O"
    assert normalization("Oc1ccccn1") == "O=c1cccc[nH]1"


def test_standardisation_wins_over_canonicalize_false():
    assert normalize_smiles("OCC", canonicalize=False, standardize=True) == "CCO"


def test_a_recipe_key_turns_it_on(tmp_path):
    recipe = tmp_path / "own.yaml"
    recipe.write_text("data: assay.csv\nstandardize: true\n")
    assert load_recipe(recipe)[0].standardize is True


# ------------------------------------------------------------------------------ corpus and report

CORPUS = "smiles\nCC(=O)[O-].[Na+]\nC[NH3+]\nOc1ccccn1\nO=c1cccc[nH]1\nC=C(C)O\nCCO\nCC(=O)O\nC1CC\n"


def test_the_corpus_is_standardised_and_every_change_counted(write_file, tmp_path):
    molecules, report = load_molecules(write_file("assay.csv", CORPUS), standardize=True)
    # the pyridone and the acid appear twice after standardisation: the second of each is a duplicate
    assert list(molecules["smiles"]) == ["CC(=O)O", "CN", "O=c1cccc[nH]1", "CC(C)=O", "CCO"]
    assert report.standardization == {"salts_stripped": 1, "charges_neutralised": 2, "tautomers_changed": 2}
    assert report.skipped_counts == {"duplicate": 2, "invalid SMILES": 1}
    assert "standardised: 1 salts stripped, 2 charges neutralised, 2 tautomers changed" in report.summary()
    written = json.loads(report.write(tmp_path / "data_report.json").read_text())
    assert written["standardization"] == {"salts_stripped": 1, "charges_neutralised": 2, "tautomers_changed": 2}


def test_without_standardize_the_corpus_is_read_as_written(write_file):
    molecules, report = load_molecules(write_file("assay.csv", CORPUS))
    assert list(molecules["smiles"])[:2] == ["CC(=O)[O-].[Na+]", "C[NH3+]"]
    assert report.standardization == {}
    assert "standardised" not in report.summary()


def test_merged_reports_add_their_counts():
    train = CorpusReport(standardization={"salts_stripped": 2, "charges_neutralised": 1, "tautomers_changed": 0})
    train.merge(CorpusReport(standardization={"salts_stripped": 1, "charges_neutralised": 0, "tautomers_changed": 3}))
    assert train.standardization == {"salts_stripped": 3, "charges_neutralised": 1, "tautomers_changed": 3}


def test_a_long_salt_that_fits_after_standardisation_is_not_skipped_unparsed(write_file):
    # 40 waters around 10 carbons: 50 atoms in the file, 12 tokens once the largest fragment is kept
    raw = ".".join(["O"] * 40 + ["CCCCCCCCCC"])
    molecules, _ = load_molecules(write_file("fits.smi", f"{raw}\nCCO\n"), max_length=12, standardize=True)
    assert list(molecules["smiles"]) == ["CCCCCCCCCC", "CCO"]


def test_the_checked_table_cache_is_keyed_by_the_setting(monkeypatch, tmp_path, write_file):
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 3)
    path = write_file("assay.csv", CORPUS)
    as_written, _ = load_molecules(path)
    for _ in range(2):  # checked, then read from the cache: the counts come back with it
        molecules, report = load_molecules(path, standardize=True)
        assert list(molecules["smiles"])[:2] == ["CC(=O)O", "CN"]
        assert report.standardization["tautomers_changed"] == 2
    assert list(load_molecules(path)[0]["smiles"]) == list(as_written["smiles"])
    assert len(list((tmp_path / "cache" / "checked").iterdir())) == 2
