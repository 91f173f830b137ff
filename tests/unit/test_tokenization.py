"""Unit tests of seqvae.tokenization: the SMILES / SELFIES regexes, round trips, specials, saving."""

from __future__ import annotations

import re

import pytest
from transformers import AutoTokenizer

from seqvae import SeqVAEConfig
from seqvae.chem import canonical_smiles
from seqvae.errors import SeqVAEError
from seqvae.tokenization import (
    BOS,
    EOS,
    PAD,
    SMILES_REGEX,
    UNK,
    build_tokenizer,
    count_unknown,
    from_model_text,
    to_model_text,
)

TRICKY_SMILES = [
    "C[C@@H](N)C(=O)O",
    "C[C@H]1CC[C@@H](C)CC1",
    "c1cc[nH]c1",
    "ClC(Br)F",
    "Brc1ccc(Cl)cc1",
    "C1CC%10CC1%10",
    "F/C=C/F",
    "F/C=C\\F",
    "[Na+].[Cl-]",
    "CC(=O)[O-]",
    "[2H]C([2H])([2H])O",
    "C#N",
    "O=S(=O)(O)O",
    "B(O)O",
    "c1ccc2c(c1)[se]c1ccccc12",
    "[NH4+]",
    "OC(=O)C1=CC=CC=C1O",
    "C1CCC2(CC1)OCCO2",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "I",
    "P(=O)(O)(O)O",
]


@pytest.fixture(scope="module")
def tricky_tokenizer():
    return build_tokenizer(TRICKY_SMILES, "smiles", model_max_length=64)


def inner_tokens(tokenizer, text: str) -> list[str]:
    """Tokens of ``text`` without the ``<bos>`` / ``<eos>`` the post-processor adds."""
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    assert tokens[0] == BOS and tokens[-1] == EOS
    return tokens[1:-1]


@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
        ("C[C@@H](N)O", ["C", "[C@@H]", "(", "N", ")", "O"]),
        ("ClC(Br)F", ["Cl", "C", "(", "Br", ")", "F"]),
        ("Brc1ccc(Cl)cc1", ["Br", "c", "1", "c", "c", "c", "(", "Cl", ")", "c", "c", "1"]),
        ("C1CC%10CC1%10", ["C", "1", "C", "C", "%10", "C", "C", "1", "%10"]),
        ("F/C=C\\F", ["F", "/", "C", "=", "C", "\\", "F"]),
        ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
        ("CC(=O)[O-]", ["C", "C", "(", "=", "O", ")", "[O-]"]),
        ("C#N", ["C", "#", "N"]),
    ],
)
def test_smiles_tokenizer_splits_atoms_bonds_and_ring_closures_into_single_tokens(smiles, expected):
    tokenizer = build_tokenizer([smiles], "smiles")
    assert inner_tokens(tokenizer, smiles) == expected


def test_smiles_regex_keeps_at_sign_and_stereo_bonds_as_single_tokens():
    # outside brackets (e.g. reaction / pattern strings) '@' is still one token per character
    assert re.findall(SMILES_REGEX, "C@@C/C\\C") == ["C", "@", "@", "C", "/", "C", "\\", "C"]


@pytest.mark.parametrize("smiles", TRICKY_SMILES)
def test_smiles_regex_never_drops_a_character(smiles):
    assert "".join(re.findall(SMILES_REGEX, smiles)) == smiles


@pytest.mark.parametrize("smiles", TRICKY_SMILES)
def test_decode_of_encode_returns_the_same_smiles(tricky_tokenizer, smiles):
    ids = tricky_tokenizer(smiles)["input_ids"]
    assert tricky_tokenizer.decode(ids, skip_special_tokens=True) == smiles
    # without skipping specials the decoder fuses tokens with no spaces either
    assert tricky_tokenizer.decode(ids) == f"{BOS}{smiles}{EOS}"


def test_encoded_sequence_starts_with_bos_and_ends_with_eos(tricky_tokenizer):
    batch = tricky_tokenizer(TRICKY_SMILES)["input_ids"]
    for ids in batch:
        assert ids[0] == tricky_tokenizer.bos_token_id
        assert ids[-1] == tricky_tokenizer.eos_token_id
        assert tricky_tokenizer.bos_token_id not in ids[1:]
        assert tricky_tokenizer.eos_token_id not in ids[:-1]


def test_special_token_ids_match_the_model_config_defaults(tricky_tokenizer):
    config = SeqVAEConfig()
    assert tricky_tokenizer.convert_tokens_to_ids([PAD, BOS, EOS, UNK]) == [0, 1, 2, 3]
    assert tricky_tokenizer.pad_token_id == config.pad_token_id
    assert tricky_tokenizer.bos_token_id == config.bos_token_id
    assert tricky_tokenizer.eos_token_id == config.eos_token_id
    assert tricky_tokenizer.unk_token_id == config.unk_token_id


def test_vocabulary_holds_each_distinct_token_once_plus_specials():
    tokenizer = build_tokenizer(["CCO", "c1ccccc1Cl"], "smiles")
    expected = {PAD, BOS, EOS, UNK, "C", "O", "c", "1", "Cl"}
    assert set(tokenizer.get_vocab()) == expected
    assert len(tokenizer) == len(expected)


def test_model_max_length_is_kept():
    assert build_tokenizer(["CCO"], "smiles", model_max_length=77).model_max_length == 77


def test_unseen_symbol_maps_to_unk_and_is_counted():
    tokenizer = build_tokenizer(["CCO", "CCC"], "smiles")
    encoded = tokenizer(["CCN", "CCO", "NCSN"])["input_ids"]
    unk = tokenizer.unk_token_id
    assert encoded[0] == [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["C", "C"]), unk, tokenizer.eos_token_id]
    assert unk not in encoded[1]
    count = count_unknown(encoded, unk)
    assert (count.sequences, count.tokens) == (2, 4)  # N; N, S, N


def test_count_unknown_counts_sequences_and_tokens_separately():
    count = count_unknown([[1, 3, 3, 2], [1, 4, 2], [3]], unk_token_id=3)
    assert (count.sequences, count.tokens) == (2, 3)
    empty = count_unknown([], unk_token_id=3)
    assert (empty.sequences, empty.tokens) == (0, 0)


def test_selfies_tokens_are_whole_selfies_symbols():
    selfies_text = to_model_text("C[C@@H](N)C(=O)O", "selfies")
    tokenizer = build_tokenizer([selfies_text], "selfies")
    tokens = inner_tokens(tokenizer, selfies_text)
    assert "".join(tokens) == selfies_text
    assert all(token.startswith("[") and token.endswith("]") for token in tokens)
    assert "[C@@H1]" in tokens


def test_selfies_round_trip_gives_the_same_molecule():
    molecules = TRICKY_SMILES[:-2] + ["C(C(=O)O)N", "c1ccccc1O"]
    texts = [to_model_text(smiles, "selfies") for smiles in molecules]
    assert all(text and text.startswith("[") for text in texts)
    tokenizer = build_tokenizer(texts, "selfies")
    for smiles, text in zip(molecules, texts):
        decoded = tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)
        assert decoded == text
        back = from_model_text(decoded, "selfies")
        assert canonical_smiles(back) == canonical_smiles(smiles), (smiles, text, back)


def test_smiles_representation_passes_text_through_unchanged():
    assert to_model_text("OCC", "smiles") == "OCC"
    assert from_model_text("OCC", "smiles") == "OCC"


def test_selfies_conversion_of_an_invalid_smiles_is_none():
    assert to_model_text("C(", "selfies") is None


def test_saved_tokenizer_reloads_through_autotokenizer_with_identical_ids(tricky_tokenizer, tmp_path):
    tricky_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(TRICKY_SMILES)["input_ids"] == tricky_tokenizer(TRICKY_SMILES)["input_ids"]
    assert reloaded.get_vocab() == tricky_tokenizer.get_vocab()
    assert [reloaded.pad_token_id, reloaded.bos_token_id, reloaded.eos_token_id, reloaded.unk_token_id] == [0, 1, 2, 3]
    ids = reloaded("CCN")["input_ids"]
    assert reloaded.decode(ids, skip_special_tokens=True) == "CCN"


@pytest.mark.parametrize(
    "call",
    [
        lambda: build_tokenizer(["CCO"], "inchi"),
        lambda: to_model_text("CCO", "inchi"),
        lambda: from_model_text("CCO", "inchi"),
    ],
    ids=["build_tokenizer", "to_model_text", "from_model_text"],
)
def test_unknown_representation_raises_seqvae_error_listing_choices(call):
    with pytest.raises(SeqVAEError, match="inchi") as info:
        call()
    assert "selfies" in str(info.value) and "smiles" in str(info.value)


def test_round_trip_over_the_whole_bundled_corpus(bundled_molecules):
    molecules, _ = bundled_molecules
    smiles = list(molecules["smiles"])
    assert len(smiles) > 10000
    tokenizer = build_tokenizer(smiles, "smiles", model_max_length=10**6)
    ids = tokenizer(smiles)["input_ids"]
    assert not any(tokenizer.unk_token_id in row for row in ids)
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    mismatches = [(a, b) for a, b in zip(smiles, decoded) if a != b]
    assert mismatches == []
