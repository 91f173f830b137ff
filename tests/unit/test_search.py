"""Search in your own library (seqvae.search, vae.index / vae.search) on the tiny trained model:
the query itself comes first by either metric, invalid library rows keep their place, and
progress=False prints nothing."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

import seqvae
from seqvae import SeqVAEError
from seqvae.chem import canonical_smiles, tanimoto_similarity


@pytest.fixture(scope="module")
def vae(trained_run):
    return seqvae.load(trained_run.output_dir, device="cpu")


@pytest.fixture(scope="module")
def library(nci_smiles):
    """60 NCI molecules with an invalid SMILES, an empty row and a non-string among them."""
    rows = list(nci_smiles[:60])
    rows[5], rows[17], rows[40] = "C1CC(", "", None
    return rows


@pytest.mark.parametrize("by", ["latent", "tanimoto"])
def test_search_returns_the_query_itself_first(vae, library, by):
    index = vae.index(library, progress=False)
    queries = [library[0], library[12], library[59]]
    found = vae.search(queries, k=5, by=by)
    for query, row in zip(queries, (0, 12, 59)):
        hits = found[found["query"] == query]
        assert list(hits["rank"]) == [1, 2, 3, 4, 5]
        assert hits["library_row"].iloc[0] == row and hits["smiles"].iloc[0] == query
    scores = found["distance"] if by == "latent" else found["similarity"]
    assert list(found.columns) == ["query", "rank", "library_row", "smiles", scores.name]
    first = scores[found["rank"] == 1]
    assert np.allclose(first, 0.0 if by == "latent" else 1.0, atol=1e-5)
    assert index.num_indexed == 57


@pytest.mark.parametrize("by", ["latent", "tanimoto"])
def test_a_query_written_differently_still_finds_itself_first(vae, library, by):
    vae.index(library, progress=False)
    mol = Chem.MolFromSmiles(library[3])
    other_spelling = Chem.MolToSmiles(mol, rootedAtAtom=mol.GetNumAtoms() - 1, canonical=False)
    assert other_spelling != library[3] and canonical_smiles(other_spelling) == canonical_smiles(library[3])
    found = vae.search(other_spelling, k=3, by=by)
    assert found["library_row"].iloc[0] == 3 and found["query"].iloc[0] == other_spelling


def test_latent_neighbours_are_nearest_first_and_tanimoto_matches_chem(vae, library):
    vae.index(library, progress=False)
    by_latent = vae.search(library[8], k=10)
    assert (np.diff(by_latent["distance"]) >= -1e-6).all()
    by_fingerprint = vae.search(library[8], k=10, by="tanimoto")
    assert (np.diff(by_fingerprint["similarity"]) <= 1e-12).all()
    for smiles, similarity in zip(by_fingerprint["smiles"], by_fingerprint["similarity"]):
        assert similarity == pytest.approx(tanimoto_similarity(smiles, library[8]))


def test_invalid_library_rows_are_flagged_in_place_and_never_returned(vae, library, caplog):
    with caplog.at_level(logging.WARNING, logger="seqvae.search"):
        index = vae.index(library, progress=False)
    assert "3 of 60 library rows are not valid" in caplog.text and "row 5" in caplog.text
    table = index.table
    assert list(table["row"]) == list(range(60)) and table["smiles"].tolist()[:5] == library[:5]
    assert index.invalid_rows == [5, 17, 40]
    assert not table.loc[[5, 17, 40], "valid"].any() and table["valid"].sum() == 57
    found = vae.search(library[:4], k=60)
    assert set(found["library_row"]).isdisjoint({5, 17, 40})
    assert (found["smiles"] == [library[row] for row in found["library_row"]]).all()  # rows keep their numbers
    assert "3 invalid" in repr(index)


def test_bad_searches_say_what_to_do(vae, library, trained_run):
    fresh = seqvae.load(trained_run.output_dir, device="cpu")
    with pytest.raises(SeqVAEError, match=r"call vae.index\(smiles\) first"):
        fresh.search("CCO")
    with pytest.raises(SeqVAEError, match="none of the 2 library rows is a valid molecule"):
        fresh.index(["xx", ""])
    vae.index(library, progress=False)
    with pytest.raises(SeqVAEError, match="by must be one of latent, tanimoto, got 'cosine'"):
        vae.search("CCO", by="cosine")
    with pytest.raises(SeqVAEError, match="'C1CC\\(' is not a valid SMILES"):
        vae.search("C1CC(")
    with pytest.raises(SeqVAEError, match="frame\\['smiles'\\]"):
        vae.index(pd.DataFrame({"smiles": ["CCO"]}))


def test_progress_false_prints_nothing_and_true_shows_a_bar(vae, library, capfd):
    capfd.readouterr()
    vae.index(library, progress=False)
    vae.encode(library[:3], progress=False)
    vae.sample(3, seed=0, progress=False)
    assert capfd.readouterr().err == ""
    vae.index(library, progress=True)
    assert "encoding" in capfd.readouterr().err


@pytest.mark.parametrize(
    "progress, rows, shown",
    [(None, 10, False), (None, 100, True), (False, 10**6, False), (True, 1, True)],
)
def test_a_bar_shows_by_default_only_for_long_calls(progress, rows, shown):
    from seqvae.inference import wants_progress

    assert wants_progress(progress, rows, slow_from=100) is shown
