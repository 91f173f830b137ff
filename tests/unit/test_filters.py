"""Filters on samples (seqvae.filters): each filter on known positives and negatives, the
threshold syntax, the errors, and the agreement of the PAINS + MCF families with MOSES's screen."""

from __future__ import annotations

import csv

import pytest

from seqvae.errors import SeqVAEError
from seqvae.filters import apply_filters, check_filters, format_pass_rates, pass_rates

PARACETAMOL = "CC(=O)Nc1ccc(O)cc1"  # a clean, small drug: passes everything
RHODANINE = "O=C1NC(=S)SC1=Cc1ccccc1"  # ene-rhodanine: the textbook PAINS
ALKYL_CHLORIDE = "ClCCc1ccccc1"  # CH2-Cl: MOSES MCF4, no PAINS
# MW 548 > 500, logP 5.1 > 5, 7 H-bond donors > 5: three Ro5 violations
LIPINSKI_VIOLATOR = "CCCCCCCCCCCCCCCCCCCCCCCCC(O)C(O)C(O)C(O)C(O)C(O)CN"
# 14 rotatable bonds (> 10), TPSA 29; one Ro5 violation only (logP 6.0): fails Veber, passes Lipinski
VEBER_VIOLATOR = "CCCCCCCCCCCCCC(=O)NCc1ccccc1"
# TPSA 199 > 140 with few rotatable bonds: Veber's other limit
POLAR = "NC(=O)c1c(O)c(O)c(C(N)=O)c(O)c1C(=O)NC(N)=O"


def verdict(smiles: str, name: str) -> tuple[bool, str]:
    passes, reasons = apply_filters([smiles], [name])
    return passes[0], reasons[0]


@pytest.mark.parametrize(
    "name, smiles, expected",
    [
        ("lipinski", PARACETAMOL, True),
        ("lipinski", VEBER_VIOLATOR, True),  # one violation is allowed
        ("lipinski", LIPINSKI_VIOLATOR, False),
        ("veber", PARACETAMOL, True),
        ("veber", VEBER_VIOLATOR, False),
        ("veber", POLAR, False),
        ("pains", PARACETAMOL, True),
        ("pains", RHODANINE, False),
        ("pains", ALKYL_CHLORIDE, True),
        ("mcf", PARACETAMOL, True),
        ("mcf", ALKYL_CHLORIDE, False),
        ("mcf", RHODANINE, True),
        ("moses", PARACETAMOL, True),
        ("moses", RHODANINE, False),
        ("moses", "CC[N+](C)(C)C", False),  # charged: no alert, but MOSES's other rules
        ("sa<4.5", PARACETAMOL, True),
        ("qed>0.5", PARACETAMOL, True),
        ("qed>0.5", LIPINSKI_VIOLATOR, False),
        ("logP<5", PARACETAMOL, True),
        ("logP<5", VEBER_VIOLATOR, False),
        ("MW>=200", PARACETAMOL, False),  # 151 Da
        ("mw <= 200", PARACETAMOL, True),  # aliases and spaces
    ],
)
def test_each_filter_on_known_positives_and_negatives(name, smiles, expected):
    passes, reason = verdict(smiles, name)
    assert passes is expected
    assert (reason == "") is expected


def test_reasons_name_the_filter_and_what_failed():
    _, reason = verdict(LIPINSKI_VIOLATOR, "lipinski")
    assert reason.startswith("lipinski: ")
    assert "MW 547.9 > 500" in reason and "HBD 7 > 5" in reason
    assert verdict(RHODANINE, "pains")[1] == "pains: ene_rhod_A(235)"
    assert verdict(ALKYL_CHLORIDE, "mcf")[1] == "mcf: MCF4"
    assert verdict(VEBER_VIOLATOR, "logP<5")[1] == "logP<5: logP 6.004"


def test_several_filters_combine_and_invalid_molecules_fail_all():
    filters = ["lipinski", "veber", "pains", "mcf", "sa<4.5"]
    passes, reasons = apply_filters([PARACETAMOL, RHODANINE, VEBER_VIOLATOR, "C1CC", ""], filters)
    assert passes == [True, False, False, False, False]
    assert reasons[0] == "" and reasons[3] == reasons[4] == "invalid molecule"
    assert [entry.split(":")[0] for entry in reasons[2].split("; ")] == ["veber"]
    rates = pass_rates(reasons, filters)
    assert rates == {"lipinski": 0.6, "veber": 0.4, "pains": 0.4, "mcf": 0.6, "sa<4.5": 0.6, "all": 0.2}
    assert format_pass_rates(rates).startswith("pass rates: lipinski 60.0%, veber 40.0%")


def test_a_single_string_is_one_filter():
    assert apply_filters([RHODANINE], "pains") == ([False], ["pains: ene_rhod_A(235)"])


def test_an_unknown_filter_name_lists_the_known_ones():
    with pytest.raises(SeqVAEError, match="unknown filter 'lipinsky'") as error:
        apply_filters([PARACETAMOL], ["lipinsky"])
    for known in ("lipinski", "veber", "pains", "mcf", "sa<4.5"):
        assert known in str(error.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sa<four", "'four' is not a number"),
        ("sa<nan", "finite number"),
        ("potency>5", "unknown property 'potency'"),
        ("sa=<4", "unknown filter"),
        ("sa<", "unknown filter"),
        ("", "a filter is a name or a threshold"),
        (3, "a filter is a name or a threshold"),
    ],
)
def test_threshold_parsing_errors(spec, message):
    with pytest.raises(SeqVAEError, match=message):
        check_filters([spec])


def test_a_filter_given_twice_is_an_error():
    with pytest.raises(SeqVAEError, match="given twice"):
        check_filters(["pains", "PAINS"])


def test_pains_and_mcf_together_decide_as_the_moses_alert_screen():
    # The same SMARTS files as metrics.moses: between them the two families flag exactly the
    # molecules that MOSES's alert screen flags (WEHI's PAINS test molecules hit many).
    from rdkit import Chem

    from seqvae.data import bundled_corpus_files
    from seqvae.metrics import moses

    with open(bundled_corpus_files()[1], newline="") as handle:
        smiles = [row[0] for row, _ in zip(csv.reader(handle), range(300))]
    smiles = [s for s in smiles if Chem.MolFromSmiles(s) is not None]
    passes, _ = apply_filters(smiles, ["pains", "mcf"])
    assert passes == [not moses._has_alert(Chem.MolFromSmiles(s)) for s in smiles]
    assert 0 < sum(passes) < len(smiles)


# --- wired into sample_frame and `seqvae sample --filter`


@pytest.fixture(scope="module")
def zinc():
    import seqvae

    return seqvae.load("zinc250k", device="cpu")


def test_sample_frame_adds_passes_and_failed_filters(zinc, caplog):
    import logging

    filters = ["lipinski", "veber", "pains", "mcf", "sa<4.5"]
    with caplog.at_level(logging.INFO, logger="seqvae.pipeline"):
        frame = zinc.sample_frame(60, seed=0, filters=filters, mols=False)
    assert {"passes", "failed_filters"} <= set(frame.columns)
    assert (frame["passes"] == (frame["failed_filters"] == "")).all()
    assert (frame.loc[~frame["valid"], "failed_filters"] == "invalid molecule").all()
    expected, reasons = apply_filters(frame["smiles"].tolist(), filters)
    assert frame["passes"].tolist() == expected and frame["failed_filters"].tolist() == reasons
    assert frame.attrs["pass_rates"]["all"] == pytest.approx(frame["passes"].mean())
    assert "pass rates: lipinski" in caplog.text


def test_sample_frame_refuses_an_unknown_filter_before_sampling(zinc, monkeypatch):
    monkeypatch.setattr(type(zinc), "_sample", lambda *a, **k: pytest.fail("sampled"))
    with pytest.raises(SeqVAEError, match="unknown filter 'painz'.*lipinski, veber, pains, mcf"):
        zinc.sample_frame(10, filters=["painz"])


def test_the_command_line_filters_and_prints_the_pass_rates(tmp_path, capsys, restore_logging):
    import pandas as pd

    from seqvae.cli import main

    output = tmp_path / "samples.csv"
    code = main(["sample", "--model", "zinc250k", "--num_samples", "30", "--seed", "0",
                 "--filter", "pains", "--filter", "sa<4.5", "--output", str(output)])
    assert code == 0
    frame = pd.read_csv(output, keep_default_na=False)
    assert {"passes", "failed_filters"} <= set(frame.columns)
    printed = capsys.readouterr().out
    assert "pass rates: pains " in printed and "sa<4.5 " in printed and ", all " in printed


def test_the_command_line_refuses_an_unknown_filter_in_one_line(capsys, restore_logging):
    from seqvae.cli import main

    assert main(["sample", "--model", "zinc250k", "--num_samples", "5", "--filter", "ro5"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: unknown filter 'ro5'") and "lipinski" in error


def test_the_frame_with_pictures_keeps_the_pass_rates(zinc):
    frame = zinc.sample_frame(20, seed=0, filters=["pains"])
    assert "mol" in frame.columns and "passes" in frame.columns
    assert set(frame.attrs["pass_rates"]) == {"pains", "all"}
