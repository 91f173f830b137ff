"""Tokenizer round trips over the real corpora in ``../shared/data`` (MOSES test, ZINC 250k).

``decode(encode(s)) == s`` must hold for every SMILES of a corpus when the vocabulary is built
from that corpus. The whole-corpus checks (176k and 249k SMILES, ~30-60 s) are also marked
``slow``; a 2,000-row version runs by default when the data is present.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seqvae.chem import canonical_smiles
from seqvae.data import load_molecules
from seqvae.tokenization import build_tokenizer, from_model_text, to_model_text

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent"),
]

# name -> (path under SHARED_DATA, has a header line)
CORPORA = {
    "moses_test": ("moses/test.csv.gz", True),
    "zinc250k": ("zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", False),
}


def read_smiles(name: str, limit: int | None = None) -> list[str]:
    relative, has_header = CORPORA[name]
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    smiles = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        if has_header:
            next(handle)
        for line in handle:
            if limit is not None and len(smiles) >= limit:
                break
            if line.strip():
                smiles.append(line.split()[0])
    return smiles


def assert_round_trip(smiles: list[str]) -> None:
    tokenizer = build_tokenizer(smiles, "smiles", model_max_length=10**6)
    ids = tokenizer(smiles)["input_ids"]
    assert all(row[0] == tokenizer.bos_token_id and row[-1] == tokenizer.eos_token_id for row in ids)
    assert not any(tokenizer.unk_token_id in row for row in ids)
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    mismatches = [(original, back) for original, back in zip(smiles, decoded) if original != back]
    assert mismatches == [], f"{len(mismatches)} SMILES do not round-trip, e.g. {mismatches[:5]}"


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_smiles_round_trip_on_the_first_2000_rows(name):
    smiles = read_smiles(name, limit=2000)
    assert len(smiles) == 2000
    assert_round_trip(smiles)


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_selfies_round_trip_gives_the_same_molecules_on_the_first_2000_rows(name):
    smiles = read_smiles(name, limit=2000)
    texts = [to_model_text(s, "selfies") for s in smiles]
    assert None not in texts
    tokenizer = build_tokenizer(texts, "selfies", model_max_length=10**6)
    decoded = tokenizer.batch_decode(tokenizer(texts)["input_ids"], skip_special_tokens=True)
    assert decoded == texts
    back = [from_model_text(text, "selfies") for text in decoded]
    mismatches = [(a, b) for a, b in zip(smiles, back) if canonical_smiles(a) != canonical_smiles(b)]
    assert mismatches == [], mismatches[:5]


@pytest.mark.slow
def test_moses_test_split_loads_through_its_corpus_name():
    if not (SHARED_DATA / "moses" / "test.csv.gz").is_file():
        pytest.skip("moses/test.csv.gz is absent")
    molecules, report = load_molecules("moses:test", data_dir=SHARED_DATA / "moses", max_length=100)
    assert report.rows_read == 176074
    assert report.rows_kept > 175000
    assert report.rows_read == report.rows_kept + sum(report.skipped_counts.values())
    assert molecules[0]["smiles"] == canonical_smiles(read_smiles("moses_test", limit=1)[0])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, expected_rows", [("moses_test", 176074), ("zinc250k", 249456)]
)
def test_smiles_round_trip_on_the_whole_corpus(name, expected_rows):
    smiles = read_smiles(name)
    assert len(smiles) == expected_rows
    assert_round_trip(smiles)
