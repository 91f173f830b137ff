"""``seqvae evaluate`` and :func:`seqvae.evaluation.evaluate`: files in, MOSES keys out; bad input
exits 2 with one clear line."""

from __future__ import annotations

import json

import pytest

from seqvae.cli import main
from seqvae.errors import SeqVAEError
from seqvae.evaluation import evaluate, format_metrics_table, read_molecules

MOSES_KEYS = {
    "valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test",
    "IntDiv", "IntDiv2", "Filters", "logP", "SA", "QED", "weight", "Novelty",
}


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def molecule_files(tmp_path, nci_smiles):
    def write(name, rows, header="SMILES"):
        path = tmp_path / name
        path.write_text("\n".join(([header] if header else []) + rows) + "\n")
        return path

    return {
        "samples": write("samples.csv", nci_smiles[:120] + ["not_a_smiles"]),
        "reference": write("test.csv", nci_smiles[150:250]),
        "train": write("train.csv", nci_smiles[:60]),
        "write": write,
    }


def evaluate_cli(*args) -> int:
    return main(["evaluate", "--n_jobs", "1", "--no_cache", *map(str, args)])


def test_evaluate_samples_file_writes_moses_keys(capsys, tmp_path, molecule_files):
    output = tmp_path / "out" / "metrics.json"
    code = evaluate_cli(
        "--samples", molecule_files["samples"], "--reference", molecule_files["reference"],
        "--train", molecule_files["train"], "--output", output,
    )
    assert code == 0
    report = json.loads(output.read_text())
    assert MOSES_KEYS <= set(report)
    assert report["valid"] == pytest.approx(120 / 121)
    assert report["Novelty"] == pytest.approx(0.5, abs=0.05)  # half the distinct samples are in train
    assert report["details"]["num_samples"] == 121
    printed = capsys.readouterr()
    assert "FCD/Test" in printed.out and "↓" in printed.out
    # 120 valid samples are fewer than 1000: MOSES warns, so do we.
    assert "warning: unique@1000: only 120 valid molecules" in printed.err


def test_evaluate_with_scaffold_reference_adds_testsf_keys(tmp_path, molecule_files):
    output = tmp_path / "metrics.json"
    code = evaluate_cli(
        "--samples", molecule_files["samples"], "--reference", molecule_files["reference"],
        "--scaffold_reference", molecule_files["train"], "--output", output,
    )
    assert code == 0
    report = json.loads(output.read_text())
    assert {"FCD/TestSF", "SNN/TestSF", "Frag/TestSF", "Scaf/TestSF"} <= set(report)
    assert "Novelty" not in report


def test_all_invalid_samples_report_not_defined(capsys, tmp_path, molecule_files):
    samples = molecule_files["write"]("bad.csv", ["xx", "C1CC", "[Zz]"])
    output = tmp_path / "metrics.json"
    assert evaluate_cli("--samples", samples, "--reference", molecule_files["reference"], "--output", output) == 0
    report = json.loads(output.read_text())
    assert report["valid"] == 0.0 and report["FCD/Test"] is None and report["IntDiv"] is None
    assert "not defined" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("SMILES\n", "has a header line but no rows"),
        ("name,score\nfoo,1\nbar,2\n", "no column looks like SMILES"),
    ],
)
def test_bad_sample_files_exit_2_with_a_clear_message(capsys, tmp_path, molecule_files, content, message):
    samples = tmp_path / "samples.csv"
    samples.write_text(content)
    assert evaluate_cli("--samples", samples, "--reference", molecule_files["reference"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_reference_file_exits_2(capsys, tmp_path, molecule_files):
    assert evaluate_cli("--samples", molecule_files["samples"], "--reference", tmp_path / "nope.csv") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: reference:") and "nope.csv" in err


def test_missing_named_split_in_data_dir_exits_2(capsys, tmp_path, molecule_files):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = evaluate_cli("--samples", molecule_files["samples"], "--reference", "moses:test", "--data_dir", empty)
    assert code == 2
    assert "no moses:test file in" in capsys.readouterr().err


def test_named_moses_split_is_read_from_data_dir(tmp_path, molecule_files, nci_smiles):
    import gzip

    with gzip.open(tmp_path / "test.csv.gz", "wt") as handle:
        handle.write("SMILES\n" + "\n".join(nci_smiles[150:250]) + "\n")
    assert read_molecules("moses:test", "reference", data_dir=tmp_path) == nci_smiles[150:250]


def test_evaluate_model_samples_then_evaluates_with_latent_diagnostics(tmp_path, trained_run, molecule_files):
    output = tmp_path / "metrics.json"
    saved = tmp_path / "samples.csv"
    code = evaluate_cli(
        "--model", trained_run.output_dir, "--num_samples", 40, "--seed", 0, "--reference",
        molecule_files["reference"], "--output", output, "--save_samples", saved,
    )
    assert code == 0
    report = json.loads(output.read_text())
    assert report["details"]["num_samples"] == 40
    assert 0 <= report["latent"]["reconstruction_accuracy"] <= 1
    assert len(report["latent"]["kl_per_dimension"]) == report["latent"]["latent_dim"]
    assert len(saved.read_text().splitlines()) == 41


def test_evaluate_python_api_from_a_model(trained_run, nci_smiles):
    from seqvae.pipeline import load

    report = evaluate(model=load(trained_run.output_dir), num_samples=30, reference=nci_smiles[:50],
                      k=(10,), cache_dir=None, num_diagnostic_molecules=20)
    assert report["details"]["num_samples"] == 30 and "latent" in report
    assert "unique@10" in format_metrics_table(report)


def test_evaluate_needs_samples_or_a_model():
    with pytest.raises(SeqVAEError, match="nothing to evaluate"):
        evaluate()
