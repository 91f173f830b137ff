"""Pictures (seqvae.viz), the run report, and the notebook side of the facade.

Each picture is rendered to PNG and checked for its size in pixels and for ink (not a blank
canvas); the bad-input cases check their messages.
"""

from __future__ import annotations

import io
import json
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import seqvae
from seqvae import SeqVAEError, viz
from seqvae.cli import main

MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1", "CCN(CC)CC", "O=C(O)c1ccccc1"]


def pixels(picture) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(picture.to_png())).convert("L"))


def ink(image: np.ndarray) -> float:
    """Share of pixels that are not (near-)white."""
    return float((image < 200).mean())


@pytest.fixture(scope="module")
def vae(trained_run):
    return seqvae.load(trained_run.output_dir, device="cpu")


def test_molecule_grid_has_one_cell_per_molecule_and_draws_them():
    picture = viz.molecule_grid(MOLECULES, per_row=3, cell_size=(200, 150))
    assert picture.size == (600, 300)
    assert picture.to_png().startswith(b"\x89PNG") and picture._repr_png_() == picture.to_png()
    image = pixels(picture)
    assert ink(image[:150, :200]) > 0.005  # the first cell holds a drawing


def test_molecule_grid_shows_invalid_smiles_as_an_empty_labelled_cell():
    picture = viz.molecule_grid(["c1ccccc1O", "C1CC(", "not a molecule"], per_row=3, cell_size=(200, 150))
    image = pixels(picture)
    drawing_rows, legend_rows = slice(0, 120), slice(120, 150)
    assert ink(image[drawing_rows, :200]) > 5 * max(ink(image[drawing_rows, 200:400]), 1e-4)
    assert ink(image[legend_rows, 200:400]) > 0.002  # the "invalid: ..." label RDKit leaves out
    svg = picture.to_svg()
    assert "invalid: C1CC(" in svg and "invalid: not a molecule" in svg
    ElementTree.fromstring(svg)  # still well-formed
    long = viz.molecule_grid(["C1CC(" + "C" * 60], cell_size=(200, 150)).to_svg()
    label = re.search(r">(invalid: C1CC\(C+\.\.\.)</text>", long)
    assert label and len(label.group(1)) <= 30  # cut to what fits in a 200-pixel cell


def test_molecule_grid_legends_from_a_conditional_sample_frame_show_target_and_measured():
    frame = pd.DataFrame({"smiles": ["CCO", "xx"], "valid": [True, False], "logP": [-0.0014, np.nan], "logP_target": [2.5, 2.5]})
    smiles, legends = viz._smiles_and_legends(frame, ["qed"])
    assert smiles == ["CCO", "xx"]
    assert legends[0].startswith("logP -0.00 (target 2.50), qed 0.41")
    assert legends[1].startswith("logP n/a (target 2.50)")


def test_molecule_grid_rejects_nothing_to_draw_and_mismatched_legends():
    with pytest.raises(SeqVAEError, match="no molecules"):
        viz.molecule_grid([])
    with pytest.raises(SeqVAEError, match="2 legends for 5 molecules"):
        viz.molecule_grid(MOLECULES, legends=["a", "b"])


def test_picture_saves_png_and_svg_and_refuses_other_formats(tmp_path):
    picture = viz.molecule_grid(MOLECULES[:2])
    assert Image.open(picture.save(tmp_path / "grid.png")).size == picture.size
    assert (tmp_path / "grid.svg").exists() is False
    assert "<svg" in picture.save(tmp_path / "grid.svg").read_text()
    figure_picture = viz.property_histograms(MOLECULES, MOLECULES, properties=["logP"])
    assert "<svg" in figure_picture.save(tmp_path / "hist.svg").read_text()
    with pytest.raises(SeqVAEError, match=r"\.png or \.svg"):
        picture.save(tmp_path / "grid.jpg")


def test_interpolation_strip_draws_each_step_between_the_two_inputs(vae):
    picture = viz.interpolation_strip(vae, "CCO", "c1ccccc1O", steps=4, cell_size=(180, 160))
    assert picture.size == ((4 + 2) * 180, 160)  # the inputs at both ends, then the 4 decoded steps between
    assert ink(pixels(picture)) > 0.002


def test_latent_map_is_a_coloured_scatter_of_the_right_size(vae, nci_smiles):
    picture = viz.latent_map(vae, nci_smiles[:40], color_by="logP", size=(6.0, 4.5))
    assert picture.size == (600, 450)
    image = np.asarray(Image.open(io.BytesIO(picture.to_png())).convert("RGB")).astype(int)
    colourful = (np.abs(image[..., 0] - image[..., 1]) + np.abs(image[..., 1] - image[..., 2])) > 60
    assert colourful.mean() > 0.002  # viridis points and colour bar, not a grey plot
    by_values = viz.latent_map(vae, nci_smiles[:10], values=list(range(10)), color_by="rank")
    assert by_values.figure.axes[-1].get_ylabel() == "rank"


def test_latent_map_needs_three_molecules_and_a_known_method(vae):
    with pytest.raises(SeqVAEError, match="at least 3 molecules, got 2"):
        viz.latent_map(vae, ["CCO", "CCN"])
    with pytest.raises(SeqVAEError, match="unknown method 'tsne'"):
        viz.latent_map(vae, MOLECULES, method="tsne")
    with pytest.raises(SeqVAEError, match="3 values for 5 molecules"):
        viz.latent_map(vae, MOLECULES, values=[1, 2, 3])


def test_latent_map_umap_without_the_package_says_what_to_install(vae):
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(SeqVAEError, match="pip install umap-learn"):
            viz.latent_map(vae, MOLECULES, method="umap")
    else:
        assert viz.latent_map(vae, MOLECULES * 3, method="umap").size == (650, 500)


def test_training_curves_read_the_run_log(trained_run):
    picture = viz.training_curves(trained_run.output_dir, size=(8.0, 6.0))
    assert picture.size == (800, 600)
    assert ink(pixels(picture)) > 0.01
    titles = [axes.get_title() for axes in picture.figure.axes]
    assert titles == ["reconstruction (nats / token)", "KL (nats / sequence)", "KL weight (beta)", "active units"]
    assert len(picture.figure.axes[0].lines) == 2  # training and validation


def test_training_curves_of_a_folder_without_a_log_say_so(tmp_path):
    with pytest.raises(SeqVAEError, match="no training log in .*give the output_dir"):
        viz.training_curves(tmp_path)
    (tmp_path / "training_log.jsonl").write_text('{"step": 1, "loss": 2.0, "recon_per_token": 1.0}\nnot json\n')
    with pytest.raises(SeqVAEError, match="line 2: not JSON"):
        viz.training_curves(tmp_path)


def test_property_histograms_one_panel_per_property(nci_smiles):
    picture = viz.property_histograms(nci_smiles[:60] + ["not a smiles"], nci_smiles[100:200], properties=["logP", "qed", "MW"])
    assert picture.size == (1200, 340)
    assert [axes.get_title() for axes in picture.figure.axes] == ["logP", "qed", "MW"]
    legend = [text.get_text() for text in picture.figure.axes[0].get_legend().get_texts()]
    assert legend == ["generated (60)", "training (100)"]  # the invalid molecule is left out


def test_target_plot_needs_targets():
    frames = [
        pd.DataFrame({"smiles": ["CCO"] * 3, "valid": True, "logP": [0.8, 1.1, 1.3], "logP_target": 1.0}),
        pd.DataFrame({"smiles": ["CCO"] * 3, "valid": True, "logP": [2.9, 3.2, 3.0], "logP_target": 3.0}),
    ]
    picture = viz.target_plot(frames)
    assert picture.size == (550, 500)
    assert "mean absolute deviation 0.15" in picture.figure.axes[0].get_title()
    with pytest.raises(SeqVAEError, match="no target for 'qed'"):
        viz.target_plot(frames, "qed")
    with pytest.raises(SeqVAEError, match="targets for none"):
        viz.target_plot(pd.DataFrame({"smiles": ["CCO"], "valid": [True]}))


def test_training_writes_report_png_and_seqvae_report_redraws_it(trained_run, tmp_path, capsys, restore_logging):
    report = trained_run.output_dir / "report.png"
    assert Image.open(report).size == (1500, 700)
    assert main(["report", str(trained_run.output_dir), "--output", str(tmp_path / "again.png")]) == 0
    assert Image.open(tmp_path / "again.png").size == (1500, 700)
    assert "wrote" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "run folder not found" in capsys.readouterr().err


# --- the facade in a notebook


def test_repr_html_names_representation_latent_parameters_and_source(vae, trained_run):
    html = vae._repr_html_()
    assert "<table>" in html and "latent size" in html and "<td style='text-align:left'>8</td>" in html
    assert str(trained_run.output_dir) in html and "parameters" in html
    assert vae.trained_on == str(trained_run.overrides["data"])


def test_repr_html_lists_properties_with_training_ranges(conditional_run):
    html = conditional_run.vae._repr_html_()
    config = conditional_run.vae.config
    assert f"trained on {config.property_min[0]:.3g} to {config.property_max[0]:.3g}" in html
    assert "property logP" in html and "property qed" in html and "property head" in html


def test_sample_frame_has_a_mol_column_that_renders_as_images(vae):
    frame = vae.sample_frame(6, seed=0)
    assert list(frame.columns) == ["smiles", "valid", "mol", "inchikey"]
    assert [mol is not None for mol in frame["mol"]] == frame["valid"].tolist()
    assert frame["inchikey"].notna().tolist() == frame["valid"].tolist()  # missing for invalid rows
    if frame["valid"].any():
        assert "<img" in frame._repr_html_()
    assert list(vae.sample_frame(3, seed=0, mols=False).columns) == ["smiles", "valid"]
    measured = vae.sample_frame(6, seed=0, properties=["logp", "QED"])
    assert list(measured.columns) == ["smiles", "valid", "logP", "qed", "mol", "inchikey"]
    assert measured["logP"].notna().tolist() == measured["valid"].tolist()


def test_neighbours_are_sorted_by_similarity_and_closer_with_a_smaller_scale(vae):
    near = vae.neighbours("c1ccccc1O", num_samples=12, scale=0.1, seed=0)
    assert list(near.columns) == ["smiles", "valid", "similarity", "mol", "inchikey"] and len(near) == 12
    similarities = near["similarity"].dropna().tolist()
    assert similarities == sorted(similarities, reverse=True)
    both = vae.neighbours(["CCO", "CCN"], num_samples=3, seed=0)
    assert both["input"].tolist() == ["CCO"] * 3 + ["CCN"] * 3 and "mol" in both.columns
    with pytest.raises(SeqVAEError, match="scale >= 0"):
        vae.neighbours("CCO", scale=-1)


def test_device_and_to(vae):
    assert str(vae.device) == "cpu"
    assert vae.to("cpu") is vae


def test_seqvae_train_returns_the_loaded_model_with_its_metrics(tiny_csv, make_overrides, tmp_path):
    vae = seqvae.train(None, output_dir=tmp_path / "run", **make_overrides(tiny_csv, max_steps=4, num_prior_samples=5))
    assert isinstance(vae, seqvae.SeqVAEPipeline)
    assert vae.metrics == json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (tmp_path / "run" / "report.png").is_file()


class _FixedPath:
    """A stand-in model whose latent path decodes to given molecules, so that the strip's
    ends can be told apart from the decoded ends."""

    representation = "smiles"

    def __init__(self, decoded):
        self.decoded = decoded

    def interpolate(self, start, end, steps, method, **options):
        return list(self.decoded)


def _strip_cells(monkeypatch, decoded, start, end):
    """The molecules and legends interpolation_strip hands to the grid."""
    from rdkit import Chem

    drawn = {}

    def capture(mols, legends, per_row, cell_size):
        drawn.update(smiles=[None if mol is None else Chem.MolToSmiles(mol) for mol in mols], legends=legends)
        return "picture"

    monkeypatch.setattr(viz, "_grid_picture", capture)
    viz.interpolation_strip(_FixedPath(decoded), start, end, steps=len(decoded))
    return drawn["smiles"], drawn["legends"]


def test_interpolation_strip_draws_the_inputs_not_the_decoded_ends(monkeypatch):
    from seqvae.chem import canonical_smiles

    smiles, legends = _strip_cells(monkeypatch, ["CCCC", "CCN", "c1ccccc1"], "CCO", "c1ccccc1O")
    assert smiles[0] == canonical_smiles("CCO") and smiles[-1] == canonical_smiles("c1ccccc1O")
    assert smiles[1:-1] == ["CCCC", "CCN", "c1ccccc1"]  # the decoded ends sit inside, numbered 0 and 2
    assert legends[0] == "input start" and legends[-1] == "input end"


def test_interpolation_strip_measures_similarity_to_the_inputs(monkeypatch):
    from seqvae.chem import tanimoto_similarity

    decoded = ["CCCC", "CCN", "c1ccccc1"]
    _, legends = _strip_cells(monkeypatch, decoded, "CCO", "c1ccccc1O")
    for i, smiles in enumerate(decoded):
        to_start, to_end = tanimoto_similarity(smiles, "CCO"), tanimoto_similarity(smiles, "c1ccccc1O")
        assert legends[i + 1] == f"{i}: sim start {to_start:.2f} / end {to_end:.2f}"
    # measured to the decoded ends, the first step would read "sim start 1.00"
    assert not legends[1].startswith("0: sim start 1.00")


def test_interpolation_strip_names_a_step_that_is_an_input(monkeypatch):
    _, legends = _strip_cells(monkeypatch, ["OCC", "CCN", "Oc1ccccc1"], "CCO", "c1ccccc1O")
    assert legends[1:-1] == ["0: = start", legends[2], "2: = end"]  # the same molecule, written differently
