"""Scaffold decoration (seqvae.decoration, SeqVAEPipeline.decorate, `seqvae decorate`):
decorated molecules contain the scaffold with every * filled, bad scaffolds are clear errors,
the draw budget is kept and reported, and a conditional model decodes with the condition."""

from __future__ import annotations

import pandas as pd
import pytest
from rdkit import Chem

from seqvae.decoration import contains_scaffold, parse_scaffold
from seqvae.errors import SeqVAEError

# Independent of the module's query: benzene with two heavy atoms para to each other.
PARA_BENZENE = Chem.MolFromSmarts("[!#1]-c1ccc(-[!#1])cc1")
# The same, and nothing else on the ring: each other ring carbon has two neighbours.
ONLY_PARA = Chem.MolFromSmarts("[!#1]-[c;D3]1[c;D2][c;D2][c;D3](-[!#1])[c;D2][c;D2]1")


@pytest.fixture(scope="module")
def zinc():
    import seqvae

    return seqvae.load("zinc250k", device="cpu")


def test_decorated_molecules_contain_the_scaffold_and_no_attachment_point(zinc):
    frame = zinc.decorate("*c1ccc(*)cc1", n=25, seed=0)
    assert len(frame) == 25
    assert frame["smiles"].is_unique
    for smiles, mol in zip(frame["smiles"], frame["mol"]):
        assert "*" not in smiles
        assert mol is not None and mol.HasSubstructMatch(PARA_BENZENE), smiles
        assert Chem.MolToSmiles(mol) == smiles  # canonical
    stats = frame.attrs["decoration"]
    assert stats["found"] == 25 and 25 <= stats["containing"] <= stats["valid"] <= stats["draws"] <= 50 * 25


def test_only_at_attachments_keeps_the_rest_of_the_core_bare(zinc):
    frame = zinc.decorate("*c1ccc(*)cc1", n=15, seed=1, only_at_attachments=True, mols=False)
    assert len(frame) == 15
    assert all(Chem.MolFromSmiles(s).HasSubstructMatch(ONLY_PARA) for s in frame["smiles"])


def test_a_scaffold_with_an_amide_attachment(zinc):
    frame = zinc.decorate("c1ccc(*)cc1C(=O)N*", n=10, seed=0, mols=False)
    meta_amide = Chem.MolFromSmarts("[!#1]-c1cccc(c1)C(=O)N-[!#1]")
    assert len(frame) == 10
    assert all(Chem.MolFromSmiles(s).HasSubstructMatch(meta_amide) for s in frame["smiles"])


def test_the_same_seed_gives_the_same_molecules(zinc):
    first = zinc.decorate("*c1ccncc1", n=10, seed=3, mols=False)
    again = zinc.decorate("*c1ccncc1", n=10, seed=3, mols=False)
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize("method", ["constrained", "latent"])
def test_the_draw_budget_is_kept_and_a_shortfall_is_reported(zinc, caplog, method):
    frame = zinc.decorate("*c1ccccc1", n=200, seed=0, max_draws=100, mols=False, method=method)
    stats = frame.attrs["decoration"]
    assert stats["draws"] == 100
    assert len(frame) <= 100
    assert "fewer than the 200 asked for" in caplog.text and "100 draws" in caplog.text


def test_the_latent_method_keeps_only_molecules_with_the_scaffold(zinc):
    frame = zinc.decorate("*c1ccc(*)cc1", n=15, seed=0, method="latent", mols=False)
    assert len(frame) == 15
    assert all(Chem.MolFromSmiles(s).HasSubstructMatch(PARA_BENZENE) for s in frame["smiles"])


def test_constrained_decoding_writes_a_large_scaffold_intact(zinc):
    # a ZINC test scaffold that free decoding (method="latent") almost never keeps whole
    scaffold = "*c1ccnc(/N=C/c2cn3c(cc2*)nc2ccccc23)c1"
    frame = zinc.decorate(scaffold, n=10, seed=0, mols=False)
    assert len(frame) == 10
    query = parse_scaffold(scaffold).query
    assert all(Chem.MolFromSmiles(s).HasSubstructMatch(query) for s in frame["smiles"])


@pytest.mark.parametrize(
    "scaffold, template",
    [
        ("*c1ccc(*)cc1", ("c1cc(", ")ccc1", "")),
        ("c1ccc(*)cc1C(=O)N*", ("O=C(N", ")c1cccc(", ")c1")),
        ("[1*]N1CCN(c2ncccn2)CC1", ("c1cnc(N2CCN(", ")CC2)nc1")),
    ],
)
def test_the_template_starts_at_a_core_atom_and_each_attachment_closes_a_branch_or_ends(scaffold, template):
    pieces = parse_scaffold(scaffold).template
    assert pieces == template
    assert all(piece.startswith(")") for piece in pieces[1:-1]) and (pieces[-1] == "" or pieces[-1].startswith(")"))


def test_constrained_decoding_refuses_what_it_cannot_write(zinc):
    with pytest.raises(SeqVAEError, match="vocabulary has no '\\[Si\\]'.*method='latent'"):
        zinc.decorate("*c1ccc([Si](C)(C)C)cc1", n=5)
    with pytest.raises(SeqVAEError, match="not guidance_scale"):
        zinc.decorate("*c1ccccc1", n=5, guidance_scale=1.0)
    with pytest.raises(SeqVAEError, match="method must be 'constrained' or 'latent'"):
        zinc.decorate("*c1ccccc1", n=5, method="beam")


@pytest.mark.parametrize(
    "scaffold, message",
    [
        ("c1ccc(*", "is not a valid SMILES"),
        ("c1ccccc1", "has no attachment point"),
        ("*", "only attachment points"),
        ("", "a scaffold is a SMILES string"),
        (None, "a scaffold is a SMILES string"),
        ("C(*)(*)(*)(*)*", "is not a valid SMILES"),  # five bonds to carbon
        ("c1ccccc1*.*C", "2 disconnected parts"),
        ("c1cc*cc1", "bonded to exactly one core atom"),  # a * inside a ring
        ("c1ccccc1**", "bonded to exactly one core atom"),
    ],
)
def test_bad_scaffolds_are_clear_errors(scaffold, message):
    with pytest.raises(SeqVAEError, match=message):
        parse_scaffold(scaffold)


def test_a_bad_scaffold_fails_before_any_decoding(zinc, monkeypatch):
    import seqvae.decoration

    monkeypatch.setattr(seqvae.decoration, "decode_latents", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(SeqVAEError, match="has no attachment point"):
        zinc.decorate("c1ccccc1", n=5)


@pytest.mark.parametrize("options", [{"n": 0}, {"max_draws": 0}, {"scale": -1.0}, {"scale": 5.0, "max_scale": 4.0}])
def test_bad_settings_are_errors(zinc, options):
    with pytest.raises(SeqVAEError):
        zinc.decorate("*c1ccccc1", **{"n": 5, **options})


@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("Cc1cccc(c1)C(=O)NC", True),
        ("Clc1cccc(c1)C(=O)N(C)C", True),
        ("c1ccccc1C(=O)NC", False),  # no substituent at the ring's attachment point
        ("Cc1cccc(c1)C(=O)N", False),  # nor at the amide's
        ("Cc1ccc(cc1)C(=O)NC", False),  # para, not meta
    ],
)
def test_contains_scaffold(smiles, expected):
    scaffold = parse_scaffold("c1ccc(*)cc1C(=O)N*")
    assert scaffold.attachment_points == 2
    assert contains_scaffold(Chem.MolFromSmiles(smiles), scaffold) is expected


def test_an_explicit_hydrogen_does_not_fill_an_attachment_point():
    scaffold = parse_scaffold("*c1ccccc1")
    assert not contains_scaffold(Chem.MolFromSmiles("[2H]c1ccccc1"), scaffold)
    assert contains_scaffold(Chem.MolFromSmiles("Fc1ccccc1"), scaffold)
    assert not contains_scaffold(None, scaffold)


def test_the_anchor_caps_each_attachment_point_with_a_methyl():
    assert parse_scaffold("[1*]c1ccc([2*])cc1").anchor == "Cc1ccc(C)cc1"
    assert parse_scaffold("*n1ccnc1").anchor == "Cn1ccnc1"


@pytest.mark.parametrize("method", ["constrained", "latent"])
def test_the_conditional_path_decodes_with_the_condition(conditional_run, monkeypatch, method):
    from seqvae.pipeline import load

    vae = load(conditional_run.output_dir, device="cpu")
    seen = []
    decode_logits = vae.model.decode_logits

    def recording_decode_logits(tokens, z, state=None, condition=None):
        seen.append(condition)
        return decode_logits(tokens, z, state, condition)

    monkeypatch.setattr(vae.model, "decode_logits", recording_decode_logits)
    frame = vae.decorate("*c1ccccc1", n=5, condition={"logP": 2.5}, seed=0, max_draws=2000, mols=False, method=method)
    assert seen and all(condition is not None and condition.dim() == 2 for condition in seen)
    assert len(frame) >= 1
    assert all(Chem.MolFromSmiles(s).HasSubstructMatch(Chem.MolFromSmarts("[!#1]-c1ccccc1")) for s in frame["smiles"])
    assert (frame["logP_target"] == 2.5).all()
    assert (frame["logP_error"] - (frame["logP"] - 2.5)).abs().max() < 1e-9
    with pytest.raises(SeqVAEError, match="unknown property"):
        vae.decorate("*c1ccccc1", n=5, condition={"potency": 1.0})


def test_an_unconditional_model_refuses_a_condition(zinc):
    with pytest.raises(SeqVAEError, match="trained without properties"):
        zinc.decorate("*c1ccccc1", n=5, condition={"logP": 2.5})


def test_the_command_line_writes_decorated_molecules(tmp_path, capsys, restore_logging):
    from seqvae.cli import main

    output = tmp_path / "decorated.csv"
    code = main(["decorate", "--model", "zinc250k", "--scaffold", "*c1ccc(*)cc1", "--num_samples", "8",
                 "--seed", "0", "--output", str(output)])
    assert code == 0
    frame = pd.read_csv(output)
    assert len(frame) == 8 and {"smiles", "parent", "scale"} <= set(frame.columns)
    assert all(Chem.MolFromSmiles(s).HasSubstructMatch(PARA_BENZENE) for s in frame["smiles"])
    assert "8 distinct molecules containing *c1ccc(*)cc1 from" in capsys.readouterr().out


def test_the_command_line_refuses_a_bad_scaffold_in_one_line(capsys, restore_logging):
    from seqvae.cli import main

    assert main(["decorate", "--model", "zinc250k", "--scaffold", "c1ccccc1", "--num_samples", "5"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: scaffold 'c1ccccc1' has no attachment point") and "Traceback" not in error


def test_the_condition_moves_the_decorations_property(conditional_run):
    # The latents stay near the scaffold's, which carry its own logP, so the condition moves the
    # decorations less than it moves prior samples (on this tiny model by ~0.4 against ~1.4 for
    # these targets, over seeds 0-2); with the condition ignored the gap would be ~0 +- 0.15.
    from seqvae.pipeline import load

    vae = load(conditional_run.output_dir, device="cpu")
    low, high = (
        vae.decorate("*c1ccccc1", n=100, condition={"logP": target}, seed=0, mols=False)["logP"].mean()
        for target in (0.5, 4.5)
    )
    assert high - low > 0.2, (low, high)
