"""Molecule frames (seqvae.frames): pictures that survive pandas, SDF / CSV export, InChIKeys and
the grid's static fallback."""

from __future__ import annotations

import importlib.util
import math
import sys

import pandas as pd
import pytest
from rdkit import Chem

from seqvae.chem import inchikey, to_mol
from seqvae.errors import SeqVAEError
from seqvae.frames import MoleculeFrame, add_inchikey, interactive_grid, molecule_frame, to_csv, to_sdf
from seqvae.viz import Picture

ETHANOL_INCHIKEY = "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"


def samples(with_mols: bool = True) -> pd.DataFrame:
    """A frame like ``sample_frame``'s: two valid molecules, one invalid, one empty."""
    frame = pd.DataFrame(
        {
            "smiles": ["CCO", "C1CC", "c1ccccc1O", None],
            "valid": [True, False, True, False],
            "qed": [0.41, math.nan, 0.47, math.nan],
            "name": ["ethanol", "broken ring", "phenol", "nothing"],
        }
    )
    if with_mols:
        frame["mol"] = [to_mol(s) for s in frame["smiles"]]
    return frame


def pictures_in(frame: pd.DataFrame) -> int:
    html = frame._repr_html_() or ""
    return html.count("<img") + html.count("<svg")


# ------------------------------------------------------------------------------ pictures


@pytest.mark.parametrize(
    "derive, drawn",
    [
        (lambda f: f.head(), 2),
        (lambda f: f.head(1), 1),
        (lambda f: f[f.valid], 2),
        (lambda f: f.sort_values("qed", ascending=False), 2),
        (lambda f: f.copy(), 2),
        (lambda f: pd.concat([f, f]), 4),
        (lambda f: f.reset_index(drop=True).iloc[2:], 1),
        (lambda f: f.assign(score=1.0), 2),
    ],
    ids=["head", "head_1", "mask", "sort", "copy", "concat", "iloc", "assign"],
)
def test_pictures_survive_what_a_chemist_does_next(derive, drawn):
    derived = derive(molecule_frame(samples()))
    assert isinstance(derived, MoleculeFrame)
    assert pictures_in(derived) == drawn  # one per valid molecule shown, none for the invalid rows


def test_a_smiles_column_is_drawn_when_there_is_no_molecule_column():
    frame = molecule_frame(samples(with_mols=False))
    assert pictures_in(frame.head()) == 2
    assert "structure" not in frame.columns  # drawn in the view only
    assert ">CCO<" in frame._repr_html_()  # the SMILES text stays next to its picture


def test_other_cells_are_still_escaped():
    frame = molecule_frame(pd.DataFrame({"smiles": ["CCO"], "note": ["<b>bold</b>"]}))
    html = frame._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html


def test_a_long_frame_draws_only_the_rows_pandas_shows():
    frame = molecule_frame(pd.DataFrame({"smiles": ["CCO", "CCN"] * 500}))
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10):
        assert pictures_in(frame) == 10


def test_plain_frames_and_frames_without_molecules_keep_pandas_view():
    assert pictures_in(samples()) == 0  # a plain DataFrame is not changed by importing seqvae.frames
    numbers = molecule_frame(pd.DataFrame({"x": [1, 2]}))
    assert numbers._repr_html_() == pd.DataFrame({"x": [1, 2]})._repr_html_()


def test_molecule_frame_keeps_the_columns_and_wraps_once():
    frame = molecule_frame(samples())
    assert list(frame.columns) == list(samples().columns)
    assert molecule_frame(frame) is frame


# ------------------------------------------------------------------------------ SDF and CSV


def test_sdf_round_trip_through_rdkit(tmp_path):
    export = to_sdf(molecule_frame(samples()), tmp_path / "out" / "samples.sdf", name_column="name")
    assert (export.rows_written, export.rows_skipped) == (2, 2)
    read = [mol for mol in Chem.SDMolSupplier(str(export.path))]
    assert [Chem.MolToSmiles(mol) for mol in read] == ["CCO", "Oc1ccccc1"]
    first = read[0].GetPropsAsDict()
    assert first["smiles"] == "CCO" and first["name"] == "ethanol" and first["valid"] == "True"
    assert first["qed"] == pytest.approx(0.41)
    assert read[1].GetProp("_Name") == "phenol"
    assert "mol" not in first  # the molecule column is the structure, not a property


def test_sdf_molecules_are_parsed_from_smiles_without_a_mol_column(tmp_path):
    export = to_sdf(samples(with_mols=False), tmp_path / "samples.sdf")
    assert (export.rows_written, export.rows_skipped) == (2, 2)
    assert len([m for m in Chem.SDMolSupplier(str(export.path)) if m is not None]) == 2


def test_missing_values_are_left_out_of_a_molecules_properties(tmp_path):
    frame = pd.DataFrame({"smiles": ["CCO"], "qed": [math.nan], "label": [None]})
    (mol,) = Chem.SDMolSupplier(str(to_sdf(frame, tmp_path / "one.sdf").path))
    assert set(mol.GetPropsAsDict()) == {"smiles"}


def test_sdf_without_a_valid_molecule_is_a_clear_error(tmp_path):
    frame = pd.DataFrame({"smiles": ["C1CC", None], "valid": [False, False]})
    with pytest.raises(SeqVAEError, match="no valid molecule in the frame's 2 rows"):
        to_sdf(frame, tmp_path / "none.sdf")
    assert not (tmp_path / "none.sdf").exists()


def test_sdf_without_a_molecule_column_names_the_columns(tmp_path):
    with pytest.raises(SeqVAEError, match="'mol' column .* or a 'smiles' column .*columns: text, valid"):
        to_sdf(pd.DataFrame({"text": ["a cat"], "valid": [True]}), tmp_path / "text.sdf")
    with pytest.raises(SeqVAEError, match="name_column 'id'"):
        to_sdf(samples(), tmp_path / "x.sdf", name_column="id")


def test_csv_is_written_without_the_molecules(tmp_path):
    path = to_csv(molecule_frame(samples()), tmp_path / "samples.csv")
    read = pd.read_csv(path)
    assert list(read.columns) == ["smiles", "valid", "qed", "name"]
    assert len(read) == 4 and read["smiles"].tolist()[:3] == ["CCO", "C1CC", "c1ccccc1O"]


def test_csv_of_a_frame_with_only_molecules_writes_their_smiles(tmp_path):
    frame = samples().drop(columns="smiles")
    read = pd.read_csv(to_csv(frame, tmp_path / "mols.csv"))
    assert read.columns[0] == "smiles" and read["smiles"].tolist()[0] == "CCO"


# ------------------------------------------------------------------------------ InChIKey


def test_inchikey_of_a_known_molecule_and_none_for_invalid():
    assert inchikey("CCO") == inchikey("OCC") == ETHANOL_INCHIKEY
    assert inchikey(to_mol("CCO")) == ETHANOL_INCHIKEY
    assert inchikey("C1CC") is None and inchikey(None) is None and inchikey("") is None


def test_inchikey_is_none_where_inchi_refuses_a_molecule_rdkit_sanitised(monkeypatch):
    """InChI kekulizes again and refuses some aromatic rings that RDKit sanitised (met in a
    conditional model's samples): that molecule gets no key instead of stopping the frame."""
    def refuse(mol, options=""):
        raise Chem.rdchem.KekulizeException("Can't kekulize mol.  Unkekulized atoms: 16 17 18 19 20")

    monkeypatch.setattr(Chem, "MolToInchiKey", refuse)
    assert inchikey("CCO") is None


@pytest.mark.parametrize("with_mols", [True, False], ids=["mol_column", "smiles_column"])
def test_frames_get_an_inchikey_column(with_mols):
    frame = add_inchikey(molecule_frame(samples(with_mols)))
    assert isinstance(frame, MoleculeFrame)
    assert frame["inchikey"].iloc[0] == ETHANOL_INCHIKEY
    assert frame["inchikey"].iloc[[1, 3]].isna().all()


# ------------------------------------------------------------------------------ grid


@pytest.mark.skipif(importlib.util.find_spec("mols2grid") is not None, reason="mols2grid installed: no fallback")
def test_without_mols2grid_the_grid_is_a_static_picture():
    picture = interactive_grid(molecule_frame(samples()))
    assert isinstance(picture, Picture)
    assert picture.to_png().startswith(b"\x89PNG")


def test_a_grid_needs_molecules():
    with pytest.raises(SeqVAEError, match="no 'smiles' or molecule column"):
        interactive_grid(pd.DataFrame({"text": ["a cat"]}))


def test_the_static_grid_ignores_options_only_mols2grid_knows(monkeypatch):
    monkeypatch.setitem(sys.modules, "mols2grid", None)  # as if not installed
    picture = interactive_grid(samples(), subset=["img", "qed"], per_row=2)
    assert isinstance(picture, Picture)
    assert picture.size[0] == 2 * 250  # per_row reached molecule_grid (cells of 250 pixels)


@pytest.mark.skipif(importlib.util.find_spec("mols2grid") is None, reason="mols2grid is an optional extra")
def test_with_mols2grid_the_grid_is_interactive():
    grid = interactive_grid(molecule_frame(samples()), n_items_per_page=12)
    html = getattr(grid, "data", None) or grid._repr_html_()
    assert "CCO" in html
