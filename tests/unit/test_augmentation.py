"""Randomized SMILES while training: the spelling changes, the molecule does not."""

from __future__ import annotations

import pytest
import selfies

from seqvae.arguments import DataArguments
from seqvae.chem import canonical_smiles, random_smiles
from seqvae.data import PaddingCollator, SmilesRandomizer
from seqvae.errors import SeqVAEError
from seqvae.tokenization import build_tokenizer

MOLECULES = ["CC(=O)Nc1ccc(O)cc1", "CN1CCC(c2ccccc2Cl)CC1", "O=C(O)c1ccccc1OC(C)=O", "CCOC(=O)C1CCN(C)CC1"]


def decoded(tokenizer, ids: list[int], representation: str = "smiles") -> str:
    text = "".join(tokenizer.convert_ids_to_tokens(ids[1:-1]))
    return selfies.decoder(text) if representation == "selfies" else text


def spellings(seed_count: int, molecule: str) -> set[str]:
    return {random_smiles(molecule, seed) for seed in range(seed_count)}


def test_random_smiles_spells_the_same_molecule_differently_and_repeats_with_its_seed():
    for molecule in MOLECULES:
        variants = spellings(20, molecule)
        assert len(variants) > 3  # these molecules have many atom orders
        assert {canonical_smiles(v) for v in variants} == {canonical_smiles(molecule)}
        assert random_smiles(molecule, 5) == random_smiles(molecule, 5)


def test_random_smiles_of_an_invalid_molecule_is_none():
    assert random_smiles("C1CC", 0) is None
    assert random_smiles("", 0) is None


def rows_of(tokenizer, molecules, representation="smiles"):
    texts = [selfies.encoder(m) for m in molecules] if representation == "selfies" else molecules
    return [{"smiles": m, "input_ids": ids} for m, ids in zip(molecules, tokenizer(texts)["input_ids"])]


@pytest.mark.parametrize("representation", ["smiles", "selfies"])
def test_randomizer_rows_decode_to_the_same_molecules(representation):
    # the vocabulary is built from many spellings, so that random ones are rarely out of it
    texts = [random_smiles(m, s) for m in MOLECULES for s in range(50)]
    texts = [selfies.encoder(t) for t in texts] if representation == "selfies" else texts
    tokenizer = build_tokenizer(texts, representation)
    randomizer = SmilesRandomizer(tokenizer, representation, max_length=100, seed=0)
    rows = rows_of(tokenizer, MOLECULES, representation)
    first = randomizer(MOLECULES, [row["input_ids"] for row in rows])
    second = randomizer(MOLECULES, [row["input_ids"] for row in rows])
    for ids in (first, second):
        assert [canonical_smiles(decoded(tokenizer, row, representation)) for row in ids] == [
            canonical_smiles(m) for m in MOLECULES
        ]
    assert first != second  # a new spelling each time a molecule is read
    again = SmilesRandomizer(tokenizer, representation, max_length=100, seed=0)
    assert again(MOLECULES, [row["input_ids"] for row in rows]) == first  # the seed fixes the stream
    assert randomizer.kept == 0


def test_randomizer_keeps_the_stored_spelling_when_the_random_one_does_not_fit():
    tokenizer = build_tokenizer(MOLECULES, "smiles")  # canonical spellings only
    rows = rows_of(tokenizer, MOLECULES)
    own = [row["input_ids"] for row in rows]
    tight = SmilesRandomizer(tokenizer, "smiles", max_length=max(map(len, own)) - 1, seed=0)
    out = tight(MOLECULES, own)
    longest = max(range(len(own)), key=lambda i: len(own[i]))
    assert out[longest] == own[longest]  # no spelling of it fits, so its own row is kept
    assert all(len(row) <= tight.max_length or row == own[i] for i, row in enumerate(out))
    assert tight.kept >= 1 and tight.rows == len(MOLECULES)
    unk = tokenizer.unk_token_id
    loose = SmilesRandomizer(tokenizer, "smiles", max_length=200, seed=0)
    assert all(unk not in row for _ in range(5) for row in loose(MOLECULES, own))


def test_randomizer_refuses_text():
    tokenizer = build_tokenizer(MOLECULES, "smiles")
    with pytest.raises(SeqVAEError, match="smiles or selfies"):
        SmilesRandomizer(tokenizer, "text", max_length=100)


def test_data_arguments_refuse_randomized_smiles_for_text():
    assert DataArguments(randomized_smiles=True).randomized_smiles is True
    with pytest.raises(SeqVAEError, match="not text"):
        DataArguments(representation="text", randomized_smiles=True)


def test_collator_spells_training_rows_randomly_and_evaluation_rows_as_stored():
    texts = [random_smiles(m, s) for m in MOLECULES for s in range(50)]
    tokenizer = build_tokenizer(texts, "smiles")
    collate = PaddingCollator(tokenizer.pad_token_id, randomizer=SmilesRandomizer(tokenizer, "smiles", 100, seed=1))
    rows = rows_of(tokenizer, MOLECULES)
    batch = collate(rows)
    assert set(batch) == {"input_ids", "attention_mask"}
    spelled = [row[mask.bool()].tolist() for row, mask in zip(batch["input_ids"], batch["attention_mask"])]
    assert [canonical_smiles(decoded(tokenizer, ids)) for ids in spelled] == [canonical_smiles(m) for m in MOLECULES]
    assert spelled != [row["input_ids"] for row in rows]
    plain = collate.for_evaluation()(rows)
    stored = [row[mask.bool()].tolist() for row, mask in zip(plain["input_ids"], plain["attention_mask"])]
    assert stored == [row["input_ids"] for row in rows]
