"""SMILES syntax during decoding (seqvae.syntax): it never refuses a token of a real SMILES,
refuses the strings that RDKit cannot parse, and keeps decoded strings parsable."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from rdkit import Chem, RDLogger

from seqvae import SeqVAE
from seqvae.errors import SeqVAEError
from seqvae.generation import decode_latents, ids_to_strings
from seqvae.syntax import LOOSE, NEVER, NOT_AROMATIC, STRICT, UNLIMITED, SmilesSyntax, aromatic_class, atom_capacity
from seqvae.tokenization import SMILES_REGEX, build_tokenizer

RDLogger.DisableLog("rdApp.*")

# aromatic rings that can be kekulized (fused, charged, with exocyclic double bonds, written
# with ':'), and then ones that cannot, with the position of the first token that dooms them
AROMATIC = ["c1cc2cccc2c1", "c1cccc1=O", "O=c1cccc[nH]1", "c12ccccc1cccc2", "c1ccc:c:c1", "Cc1ccccc1(C)", "C[n+]1ccccc1",
            "c1cc[o+]cc1", "c1nn[n-]n1", "c1ccsc1", "Cn1cccc1", "c1ccc(cc1)-c1ccccc1", "COc1ccc2c(c1)=CCC(=O)[NH+]=2",
            "c12.c1cccc2", "c1cc*cc1", "*1ccccc1", "C[s+]1cccc1", "c1cc[s+]cc1"]
UNKEKULIZABLE = [
    ("c1cccc1", 7),  # five carbons: one is left without a double bond, so the end is refused
    ("c1ccnc1", 7),  # pyrrole's nitrogen written without its hydrogen
    ("c1cccc1C", 7),  # no substituent either: the ring's last carbon would be sealed without one
    ("cC", 1),  # an aromatic carbon in no ring
    ("Cn1ccsc1", 8),  # a thiazolium-like ring with one carbon too many needing a double bond
    ("c1ccc2cc1ccc2", 13),  # fused through a bond the rings cannot share
    ("C(c1ccc)(cc1)", 7),  # the chain c-c-c hangs outside the ring: its ')' seals it
    ("c1cccc1-c1cccc1", 8),  # the bond between the rings is single: no double bond crosses it
    ("Cc1cn(C)c(C)o1", 12),  # a 'c' could close this ring with its last carbon paired; an 'o' cannot
    ("C(c1cccc1c1OCO1)C", 14),  # the closing O is full: the c-c bond can no longer join a ring
]
EXTRA = ["C11", "C()C", "C(.C)C", "(C)C", "1CC1", "C=)", "C1CC", "C(C", "CC)", "C=", "C.", "C1CC11CC1", "C(CC1)1", "C1C1", "C(C1)C1", "C1.C1"]


@pytest.fixture(scope="module")
def corpus(nci_smiles) -> list[str]:
    canonical = [Chem.MolToSmiles(mol) for mol in map(Chem.MolFromSmiles, nci_smiles) if mol is not None]
    return nci_smiles + canonical


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return build_tokenizer(corpus + EXTRA + ["C%10CC%10", "[nH]1cccc1", "C-1CC-1", "C=1CC=1", "c1ccccc1.[Na+]"]
                           + AROMATIC + [smiles for smiles, _ in UNKEKULIZABLE])


@pytest.fixture(scope="module")
def syntax(tokenizer) -> SmilesSyntax:
    grammar = SmilesSyntax.for_tokenizer(tokenizer)
    assert grammar is not None
    return grammar


def first_refused(syntax: SmilesSyntax, tokenizer, smiles: str) -> int | None:
    """The position of the first token (``<eos>`` last) that the grammar refuses, or ``None``."""
    vocabulary = tokenizer.get_vocab()
    ids = [vocabulary[token] for token in re.findall(SMILES_REGEX, smiles)] + [tokenizer.eos_token_id]
    state = syntax.start(1, "cpu")
    for position, token in enumerate(ids):
        if not state.allowed()[0, token]:
            return position
        state.advance(torch.tensor([token]))
    return None


def parses(smiles: str) -> bool:
    return Chem.MolFromSmiles(smiles, sanitize=False) is not None


def test_every_token_of_every_real_smiles_is_allowed(syntax, tokenizer, corpus):
    refused = {smiles: first_refused(syntax, tokenizer, smiles) for smiles in corpus if parses(smiles)}
    assert len(refused) > 500
    assert {smiles: at for smiles, at in refused.items() if at is not None} == {}


@pytest.mark.parametrize(
    "smiles", ["C%10CC%10", "[nH]1cccc1", "C-1CC-1", "C=1CC=1", "c1ccccc1.[Na+]", "C1CC11CC1", "C(CC1)1", "C(C)1CC1", "C(C1)C1", "C1.C1", "CN1(CC1)", "C1CC(F)(F)(C(C)CC1)",
     "C" + "(C" * 17 + ")1CC1" + ")" * 16]  # a ring on an atom past the tracked branch depth
)
def test_ring_labels_bonds_dots_and_closures_after_branches_are_allowed(syntax, tokenizer, smiles):
    assert parses(smiles)
    assert first_refused(syntax, tokenizer, smiles) is None


@pytest.mark.parametrize(
    "smiles, position",
    [
        ("C11", 2),  # a ring label closing on the atom that opened it
        ("C1C1", 3),  # a ring bond doubling the chain's bond
        ("C1=C1", 4),
        ("C1(C)C1", 6),  # the same after a branch
        ("C1C(C)1", 6),  # the same, closing on the atom the chain returns to
        ("C(C1)1", 5),  # a ring label closing on the atom its opener hangs from
        ("C12CC12", 6),  # two ring bonds between the same atoms
        ("C12CCC1-2", 8),  # the same with a bond symbol between the two closures
        ("CN1(C)", 5),  # back to a full atom with a ring open: the branch must close the ring itself
        ("C1CC(F)(F)(CC)", 13),  # the same two branches later
        ("C12(CCN=1", 8),  # the closure's double bond fills the opener, the branch's parent, with ring 2 open
        ("C()C", 2),  # an empty branch
        ("C(.C)C", 2),  # a dot opening a branch
        ("(C)C", 0),  # a branch before any atom
        ("1CC1", 0),  # a ring label before any atom
        ("C=)", 2),  # a bond with no atom after it
        ("C1CC(=1)", 6),  # a ring label opening a branch
        ("C1CC", 4),  # the end with a ring open
        ("C(C", 3),  # the end inside a branch
        ("CC)", 2),  # a branch closed that was never opened
        ("C=", 2),  # the end after a bond
        ("C.", 2),  # the end after a dot
    ],
)
def test_strings_rdkit_cannot_parse_are_refused_where_they_break(syntax, tokenizer, smiles, position):
    assert not parses(smiles)
    assert first_refused(syntax, tokenizer, smiles) == position


@pytest.mark.parametrize("smiles", AROMATIC)
def test_aromatic_rings_that_can_be_kekulized_are_allowed(syntax, tokenizer, smiles):
    assert Chem.MolFromSmiles(smiles) is not None
    assert first_refused(syntax, tokenizer, smiles) is None


@pytest.mark.parametrize("smiles, position", UNKEKULIZABLE)
def test_aromatic_rings_that_cannot_be_kekulized_are_refused_where_they_are_doomed(syntax, tokenizer, smiles, position):
    assert parses(smiles) and Chem.MolFromSmiles(smiles) is None
    assert first_refused(syntax, tokenizer, smiles) == position


def test_atoms_far_into_a_long_chain_are_followed(syntax, tokenizer):
    smiles = "C" * 70 + "c1cccc1"  # five aromatic carbons after 70 atoms
    assert parses(smiles) and Chem.MolFromSmiles(smiles) is None
    assert first_refused(syntax, tokenizer, smiles) == 77


@pytest.mark.parametrize("first", ["F", "[O-]", "Cl", "C"])
def test_atoms_that_take_different_numbers_of_bonds_are_checked_apart(first):
    """Thiophene's 's' never takes a double bond and shares its check with aliphatic atoms; the
    check's stand-in must take as many bonds as the token it stands for, whichever comes first
    in the vocabulary (a full stand-in would seal the ring's atom and refuse 's')."""
    words = build_tokenizer([".".join([first] * 3), "c1ccsc1", "c1ccccc1"])  # `first` before 's' in the vocabulary
    assert words.get_vocab()[first] < words.get_vocab()["s"]
    grammar = SmilesSyntax.for_tokenizer(words)
    for smiles in ("c1ccsc1", f"{first}c1ccsc1", "c1ccccc1"):
        assert Chem.MolFromSmiles(smiles) is not None
        assert first_refused(grammar, words, smiles) is None


def test_a_molecule_that_can_no_longer_be_kekulized_keeps_the_grammar_s_tokens():
    """'c1cc[nH]1': three carbons need a double bond and the full [nH] ends every way out; the
    kekulization check would refuse every token, so the grammar alone decides (the string parses)."""
    words = build_tokenizer(["c1cc[nH]1", "C.C"])
    grammar = SmilesSyntax.for_tokenizer(words)
    allowed = state_after(grammar, words, ["c1cc[nH]1"]).allowed()[0]
    assert set(allowed.nonzero().flatten().tolist()) == {words.eos_token_id, words.get_vocab()["."]}


def test_unlikely_tokens_are_checked_when_every_likely_one_is_refused(syntax, tokenizer):
    """Restricting logits checks kekulization near the likeliest tokens only; when all of those
    are refused, the unlikely ones are checked too instead of inheriting the probability."""
    vocabulary = tokenizer.get_vocab()
    state = state_after(syntax, tokenizer, ["c1cccc1"])
    logits = torch.full((1, len(vocabulary)), -30.0)
    logits[0, vocabulary["C"]] = 0.0  # refused: it would seal a carbon that has no double bond
    restricted = state.restrict(logits)
    assert restricted[0, vocabulary["C"]] == float("-inf")
    assert restricted[0, tokenizer.eos_token_id] == float("-inf")
    assert restricted[0, vocabulary["c"]] == float("-inf")  # unlikely, and refused all the same
    assert torch.equal(torch.isfinite(restricted[0]), state.allowed()[0])


@pytest.mark.parametrize(
    "token, kind",
    [("c", STRICT), ("n", STRICT), ("o", STRICT), ("[nH]", STRICT), ("[n+]", STRICT), ("[nH+]", STRICT), ("[o+]", STRICT),
     ("s", NEVER), ("[n-]", NEVER), ("p", LOOSE), ("[se]", LOOSE), ("[cH-]", LOOSE), ("[s+]", LOOSE), ("*", LOOSE),
     ("[*:1]", LOOSE), ("C", NOT_AROMATIC), ("[NH+]", NOT_AROMATIC)],
)
def test_aromatic_atoms_are_classed_by_whether_they_take_a_double_bond(token, kind):
    assert aromatic_class(token) == kind


def test_rows_that_leave_and_join_keep_their_own_state(syntax, tokenizer):
    vocabulary = tokenizer.get_vocab()
    state = syntax.start(2, "cpu")
    for first, second in zip(["C", "1", "("], ["C", "C", "C"]):
        state.advance(torch.tensor([vocabulary[first], vocabulary[second]]))
    joined = state.select(torch.tensor([1, 0])).join(syntax.start(1, "cpu"))
    allowed = joined.allowed()
    close, eos, carbon = vocabulary[")"], tokenizer.eos_token_id, vocabulary["C"]
    assert allowed[0, eos] and not allowed[0, close]  # "CCC": may end, no branch to close
    assert not allowed[1, eos] and not allowed[1, close]  # "C1(": an atom must come first
    assert allowed[2].nonzero().flatten().tolist() == [
        index for token, index in sorted(vocabulary.items(), key=lambda item: item[1])
        if token.startswith("[") or token in {"C", "c", "N", "n", "O", "o", "S", "s", "F", "Cl", "Br", "I", "P", "B", "*"}
    ]
    assert allowed[2, carbon]


def test_merged_vocabularies_and_selfies_get_no_grammar(tokenizer, tiny_config):
    from seqvae.inference import SeqVAEInference

    class Merged:
        def get_vocab(self):
            return {**tokenizer.get_vocab(), "CC(": 999}

        all_special_tokens = tokenizer.all_special_tokens
        eos_token_id = tokenizer.eos_token_id

    assert SmilesSyntax.for_tokenizer(Merged()) is None
    selfies = build_tokenizer(["[C][C][O]", "[C][=C][Branch1]"], representation="selfies")
    model = SeqVAE(tiny_config(vocab_size=len(selfies), representation="selfies"))
    assert SeqVAEInference(model, selfies).smiles_syntax is None


def test_stray_symbols_are_never_written(syntax, tokenizer):
    stray = build_tokenizer(["CC", "C+C"])  # '+' outside brackets: a regex catch-all token
    grammar = SmilesSyntax.for_tokenizer(stray)
    state = grammar.start(1, "cpu")
    state.advance(torch.tensor([stray.get_vocab()["C"]]))
    assert not state.allowed()[0, stray.get_vocab()["+"]]


@pytest.fixture(scope="module")
def tiny_smiles_model(tokenizer, tiny_model_kwargs) -> SeqVAE:
    from seqvae import SeqVAEConfig

    torch.manual_seed(0)
    config = SeqVAEConfig(
        vocab_size=len(tokenizer), max_sequence_length=40, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **tiny_model_kwargs,
    )
    model = SeqVAE(config).eval()
    with torch.no_grad():  # <eos> as likely as a common token, so that greedy strings end too
        model.decoder.output.bias[tokenizer.eos_token_id] += 0.5
    return model


@pytest.mark.parametrize("strategy, batch_size", [("sample", 16), ("sample", None), ("greedy", 16), ("beam", None)])
def test_decoded_strings_that_end_always_parse(tiny_smiles_model, tokenizer, syntax, strategy, batch_size):
    """An untrained model writes random tokens; with the grammar, every string that ends before
    the length limit parses (batch 16 of 200 latents: rows leave and join many times)."""
    model = tiny_smiles_model
    z = torch.randn(200 if strategy != "beam" else 20, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    options = dict(strategy=strategy, batch_size=batch_size, generator=torch.Generator().manual_seed(2))
    free = decode_latents(model, z, **options)
    options["generator"] = torch.Generator().manual_seed(2)
    guided = decode_latents(model, z, syntax=syntax, **options)
    limit = model.config.max_sequence_length - 1

    def ended(ids_list):
        return [ids for ids in ids_list if 0 < len(ids) < limit]

    strings = ids_to_strings(tokenizer, ended(guided), "smiles")
    assert strings and all(parses(smiles) for smiles in strings)
    if strategy == "sample":  # the same model unguided writes many unparsable strings
        unguided = ids_to_strings(tokenizer, ended(free), "smiles")
        assert sum(not parses(smiles) for smiles in unguided) > len(unguided) // 4


def test_strings_cut_by_the_length_limit_parse_too(tiny_smiles_model, tokenizer, syntax):
    """Near the limit only tokens after which the branches and rings can still be closed in time
    are allowed, so strings the limit cuts (an untrained model rarely ends on its own) parse."""
    z = torch.randn(200, tiny_smiles_model.config.latent_dim, generator=torch.Generator().manual_seed(3))
    options = dict(strategy="sample", max_length=14, batch_size=16, generator=torch.Generator().manual_seed(4))
    guided = decode_latents(tiny_smiles_model, z, syntax=syntax, **options)
    cut = [ids for ids in guided if len(ids) == 13]
    assert len(cut) > len(guided) // 4
    parsed = [parses(smiles) for smiles in ids_to_strings(tokenizer, cut, "smiles")]
    assert sum(parsed) >= 0.95 * len(parsed)  # the count of tokens an ending needs is rough (bond orders, valence)


def test_near_the_limit_only_what_finishes_in_time_is_allowed(syntax, tokenizer):
    vocabulary = tokenizer.get_vocab()
    allowed = state_after(syntax, tokenizer, ["CC(C", "C1CC"], limit=5).allowed()  # one token left
    assert allowed[0].nonzero().flatten().tolist() == [vocabulary[")"]]  # the branch must close now
    assert allowed[1].nonzero().flatten().tolist() == [vocabulary["1"]]  # and the ring
    assert first_refused(syntax, tokenizer, "C1C(C" + "C" * 40 + ")C1") is None  # no limit, no restriction


@pytest.mark.parametrize("limit, opens", [(6, True), (5, False)])
def test_a_ring_opens_only_with_room_left_to_close_it(syntax, tokenizer, limit, opens):
    vocabulary = tokenizer.get_vocab()
    state = state_after(syntax, tokenizer, ["CC"], limit=limit)
    assert bool(state.allowed()[0, vocabulary["1"]]) == opens  # "CC1CC1": three tokens after the label


def test_where_nothing_can_finish_in_time_the_shortest_way_on_is_kept(syntax, tokenizer):
    vocabulary = tokenizer.get_vocab()
    # two tokens left; the ring needs two atoms more and its label
    state = state_after(syntax, tokenizer, ["C1O"], limit=5)
    allowed = state.allowed()[0].nonzero().flatten().tolist()
    assert {vocabulary["C"], vocabulary["N"]} <= set(allowed)  # three tokens to write, the fewest possible
    assert vocabulary["("] not in allowed and vocabulary["-"] not in allowed  # five and four


def test_a_closer_that_would_take_the_end_s_probability_is_checked(syntax, tokenizer):
    """'C(c1ccc': a ')' would seal three aromatic carbons outside the ring. It is far below the
    likeliest token, where kekulization is not checked, but <eos> (refused: a branch is open)
    would pass it its probability."""
    vocabulary = tokenizer.get_vocab()
    state = state_after(syntax, tokenizer, ["C(c1ccc"])
    logits = torch.full((1, len(vocabulary)), -30.0)
    logits[0, vocabulary["c"]], logits[0, tokenizer.eos_token_id], logits[0, vocabulary[")"]] = 0.0, -1.0, -20.0
    restricted = state.restrict(logits)
    assert restricted[0, vocabulary[")"]] == float("-inf")
    assert torch.isfinite(restricted[0, vocabulary["c"]])


def test_the_facade_follows_the_grammar_unless_told_not_to(trained_run):
    import seqvae

    vae = seqvae.load(str(trained_run.output_dir))
    assert vae.smiles_syntax is not None
    z = torch.randn(64, vae.config.latent_dim, generator=torch.Generator().manual_seed(0))
    plain = decode_latents(vae.model, z, strategy="greedy")
    assert vae.decode(z, syntax=False) == ids_to_strings(vae.tokenizer, plain, "smiles")
    guided = vae.decode(z)
    assert guided == ids_to_strings(vae.tokenizer, decode_latents(vae.model, z, strategy="greedy", syntax=vae.smiles_syntax), "smiles")
    with pytest.raises(SeqVAEError, match="syntax must be True or False"):
        vae.sample(2, syntax="yes")


def state_after(syntax: SmilesSyntax, tokenizer, prefixes: list[str], limit: int | None = None):
    """The grammar state of each prefix (one row each; prefixes of equal token count), under a
    generation ``limit`` if given."""
    vocabulary = tokenizer.get_vocab()
    rows = [[vocabulary[token] for token in re.findall(SMILES_REGEX, prefix)] for prefix in prefixes]
    state = syntax.start(len(rows), "cpu", limit)
    for column in zip(*rows):
        state.advance(torch.tensor(column))
    return state


@pytest.mark.parametrize("prefix, closer", [("C1CC", "1"), ("C(CC", ")")])
def test_a_decoder_that_means_to_end_closes_what_it_opened(syntax, tokenizer, prefix, closer):
    vocabulary = tokenizer.get_vocab()
    logits = torch.zeros(1, len(vocabulary))
    logits[0, tokenizer.eos_token_id] = 8.0  # the decoder would stop here
    logits[0, vocabulary["C"]] = 2.0
    restricted = state_after(syntax, tokenizer, [prefix]).restrict(logits.clone())
    assert restricted[0, tokenizer.eos_token_id] == float("-inf")
    assert restricted.argmax().item() == vocabulary[closer]


def test_allowed_tokens_never_lose_probability(syntax, tokenizer, corpus):
    """For the states inside real SMILES and random logits, every allowed token is at least as
    likely after the restriction as before (only refused tokens give up probability)."""
    vocabulary = tokenizer.get_vocab()
    tokens = [re.findall(SMILES_REGEX, smiles) for smiles in corpus if parses(smiles)]
    prefixes = ["".join(t[:length]) for t in tokens for length in (3, 6) if len(t) > length]
    generator = torch.Generator().manual_seed(0)
    for length in (3, 6):
        group = [p for p in prefixes if len(re.findall(SMILES_REGEX, p)) == length][:200]
        state = state_after(syntax, tokenizer, group)
        logits = 3 * torch.randn(len(group), len(vocabulary), generator=generator)
        logits[:, tokenizer.eos_token_id] += 4  # often the likeliest: its probability must move
        before = logits.softmax(dim=-1)
        after = state.restrict(logits.clone()).softmax(dim=-1)
        allowed = state.allowed()
        assert torch.all(after[allowed] >= before[allowed] - 1e-6)
        assert torch.all(after[~allowed] == 0)
        assert torch.allclose(after.sum(dim=-1), torch.ones(len(group)))


def test_a_sequence_the_rules_cannot_complete_may_only_end():
    """'C1CN(F)(F)': the nitrogen is full, a ring is open, and this vocabulary has no '.' to go
    on with: nothing keeps the string valid, so the row ends (invalid) instead of drawing from
    an empty distribution. (The grammar itself refuses the second 'F', the nitrogen's last bond
    while the ring is open; the state is built here by hand.)"""
    words = build_tokenizer(["C1CN(F)(F)C1", "CCO"])
    grammar = SmilesSyntax.for_tokenizer(words)
    state = state_after(grammar, words, ["C1CN(F)(F)"])
    assert state.allowed()[0].nonzero().flatten().tolist() == [words.eos_token_id]
    logits = torch.zeros(1, len(words))
    assert torch.isfinite(state.restrict(logits)[0, words.eos_token_id])


@pytest.mark.parametrize(
    "smiles, refused",
    [
        ("CO(C)", "("),  # oxygen takes two bonds
        ("CF", "C"),  # fluorine takes one
        ("C=O", "="),  # no double bond on a full oxygen
        ("C[NH3+]", "C"),  # three hydrogens and a charge leave one bond
        ("CC(C)(C)(C)", "C"),  # a fifth bond on carbon
        ("C1CC(C)(C)", "F"),  # not while a ring is open at the top: F would end the chain
        ("C[O-]", "C"),  # a charged second-row atom bonds as the element with as many electrons
    ],
)
def test_atoms_never_take_more_bonds_than_their_element_allows(smiles, refused):
    words = build_tokenizer(["C1CC(C)(C)CO1", "C=O", "CF", "C[NH3+]", "CO", "CC(C)(C)C", "C[O-]"])
    grammar = SmilesSyntax.for_tokenizer(words)
    state = state_after(grammar, words, [smiles])
    assert not state.allowed()[0, words.get_vocab()[refused]]


def test_the_benchmark_sorts_failures_by_rdkit_s_reason():
    from benchmarks import syntax_decoding

    samples = ["CCO", "CCO", "C1CC", "CO(C)(C)C", "c1cccc1", "", "c1ccccc1"]
    kinds = syntax_decoding.failure_kinds(samples)
    assert kinds == {"parse": pytest.approx(2 / 7, abs=1e-4), "AtomValenceException": pytest.approx(1 / 7, abs=1e-4),
                     "KekulizeException": pytest.approx(1 / 7, abs=1e-4)}
    quality = syntax_decoding.quality(samples, training={"CCO"})
    assert quality["validity"] == pytest.approx(3 / 7, abs=1e-4)
    assert quality["uniqueness"] == pytest.approx(2 / 3, abs=1e-4)
    assert quality["novelty"] == pytest.approx(1 / 2)


@pytest.mark.parametrize(
    "token, bonds",
    [("C", 4), ("c", 4), ("N", 3), ("O", 2), ("Cl", 1), ("S", 6), ("[C@@H]", 3), ("[C@]", 4), ("[NH3+]", 1),
     ("[NH+]", 3), ("[N+]", 4), ("[nH]", 2), ("[13CH3]", 1), ("[O+]", 3), ("[O-]", 1), ("[N-]", 2), ("[CH-]", 2), ("[S-]", 6),
     ("*", UNLIMITED), ("[Xx]", UNLIMITED)],
)
def test_atom_capacity_reads_element_charge_and_hydrogens(token, bonds):
    assert atom_capacity(token) == bonds


def test_logits_narrower_than_the_vocabulary_are_read_within_their_row(syntax, tokenizer):
    """A model whose output stops short of the tokenizer's last ids: they count as never likely."""
    state = state_after(syntax, tokenizer, ["c1cccc1"] * 2)
    vocabulary = tokenizer.get_vocab()
    logits = torch.zeros(2, len(tokenizer) - 3)
    restricted = state.restrict(logits)
    assert restricted.shape == logits.shape
    assert torch.equal(torch.isfinite(restricted[0]), state.allowed()[0, : len(tokenizer) - 3])
    assert restricted[0, vocabulary["C"]] == float("-inf")


def test_logits_wider_than_the_vocabulary_never_write_the_extra_ids(tokenizer):
    """A model whose output layer is padded past the tokenizer's ids (pretrained backbones)."""
    grammar = SmilesSyntax.for_tokenizer(tokenizer)
    state = state_after(grammar, tokenizer, ["CC"])
    logits = torch.zeros(1, len(tokenizer) + 5)
    logits[0, -5:] = 10.0
    restricted = state.restrict(logits)
    assert restricted.shape == logits.shape
    assert torch.all(restricted[0, -5:] == float("-inf"))
    assert restricted[0, tokenizer.get_vocab()["C"]] == 0.0


def test_rows_filled_in_parallel_get_the_masks_each_row_gets_alone(syntax, tokenizer, corpus):
    """The masks of a batch are filled row by row on several threads (numba ``prange``): sequences
    at different points of different molecules, decoded together, are restricted exactly as each
    is alone, with the kekulization checks that read each row's own logits."""
    prefixes = []
    for index, smiles in enumerate(corpus[:48]):
        tokens = re.findall(SMILES_REGEX, smiles)
        prefixes.append("".join(tokens[: 2 + index % max(1, len(tokens) - 1)]))
    singles = [state_after(syntax, tokenizer, [prefix]) for prefix in prefixes]
    batch = singles[0]
    for single in singles[1:]:
        batch = batch.join(single)
    logits = torch.randn(len(prefixes), len(tokenizer.get_vocab()), generator=torch.Generator().manual_seed(0)) * 4
    assert torch.equal(batch.allowed(), torch.cat([single.allowed() for single in singles]))
    together = batch.restrict(logits.clone())
    alone = torch.cat([single.restrict(logits[row : row + 1].clone()) for row, single in enumerate(singles)])
    assert torch.equal(together, alone)
    assert (together == float("-inf")).any() and torch.isfinite(together).any(dim=1).all()


def test_decoding_from_several_threads_at_once_does_not_abort_without_openmp(tmp_path):
    """Without a system OpenMP numba falls back to a threading layer that aborts the process when
    two threads launch parallel work at once; the grammar takes its turn behind a lock."""
    script = tmp_path / "threads.py"
    script.write_text(
        "import threading, numba, torch\n"
        "from seqvae.syntax import SmilesSyntax\n"
        "from seqvae.tokenization import build_tokenizer\n"
        "tokenizer = build_tokenizer(['CCO', 'c1ccccc1N', 'CC(=O)Nc1ccc(O)cc1', 'C1CC1Cl'])\n"
        "syntax = SmilesSyntax.for_tokenizer(tokenizer)\n"
        "def work():\n"
        "    for _ in range(200):\n"
        "        syntax.start(64, 'cpu').restrict(torch.zeros(64, len(tokenizer.get_vocab())))\n"
        "threads = [threading.Thread(target=work) for _ in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print('layer', numba.threading_layer())\n"
    )
    environment = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "layer workqueue" in result.stdout


def test_the_grammar_leaves_the_callers_numba_thread_count_as_it_was(syntax):
    """The masks run on as many numba threads as torch has; the caller's own setting comes back."""
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        syntax.start(8, "cpu").allowed()
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)
