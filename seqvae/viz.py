"""Pictures for notebooks and run reports.

Every function returns a :class:`Picture`: Jupyter shows it inline, ``picture.save("x.png")``
or ``picture.save("x.svg")`` writes it, and ``picture.figure`` is the matplotlib figure for
restyling (``None`` for RDKit molecule grids).

* :func:`molecule_grid`: molecules with legends (property values, target vs measured);
* :func:`interpolation_strip`: two input molecules, drawn at both ends, and the molecules
  decoded between them in latent space, each with its Tanimoto similarity to the two inputs;
* :func:`latent_map`: posterior means in 2-D (PCA, or UMAP when installed) coloured by a property;
* :func:`training_curves`: reconstruction, KL, KL weight and active units from a run folder;
* :func:`property_histograms`: property distributions of generated vs training molecules;
* :func:`target_plot`: measured against target property values of conditional samples;
* :func:`run_report`: training curves and sampled molecules in one picture (``report.png``).

Invalid SMILES never raise here: a grid shows them as an empty cell with a label.
"""

from __future__ import annotations

import io
import logging
import math
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .chem import canonical_smiles, compute_properties, tanimoto_similarity, to_mol, without_rdkit_log
from . import runs
from .errors import SeqVAEError

__all__ = [
    "Picture",
    "molecule_grid",
    "interpolation_strip",
    "latent_map",
    "training_curves",
    "property_histograms",
    "target_plot",
    "run_report",
    "write_run_report",
]

logger = logging.getLogger(__name__)

DPI = 100
INVALID_COLOUR = "#bbbbbb"


class Picture:
    """A rendered picture: Jupyter displays it, :meth:`save` writes ``.png`` or ``.svg``."""

    def __init__(self, png: Callable[[], bytes], svg: Callable[[], str], figure: Figure | None = None):
        self._png, self._svg, self.figure = png, svg, figure

    @classmethod
    def from_figure(cls, figure: Figure) -> "Picture":
        def render(kind: str) -> bytes:
            buffer = io.BytesIO()
            figure.savefig(buffer, format=kind, dpi=DPI)
            return buffer.getvalue()

        return cls(lambda: render("png"), lambda: render("svg").decode("utf-8"), figure)

    def to_png(self) -> bytes:
        return self._png()

    def to_svg(self) -> str:
        return self._svg()

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the PNG in pixels."""
        from PIL import Image

        return Image.open(io.BytesIO(self.to_png())).size

    def save(self, path: str | Path) -> Path:
        """Write the picture; the suffix (``.png`` or ``.svg``) chooses the format."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".svg"):
            raise SeqVAEError(f"cannot save a picture as {path.name!r}: use a .png or .svg file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png":
            path.write_bytes(self.to_png())
        else:
            path.write_text(self.to_svg(), encoding="utf-8")
        return path

    def _repr_png_(self) -> bytes:
        return self.to_png()


# --- molecules


def molecule_grid(
    molecules,
    legends: list[str] | None = None,
    properties: list[str] | tuple[str, ...] = (),
    per_row: int = 4,
    cell_size: tuple[int, int] = (250, 200),
    max_molecules: int = 48,
) -> Picture:
    """Molecules drawn in a grid with a legend under each.

    Args:
        molecules: SMILES (one string or a list), or a DataFrame with a ``smiles`` column such
            as :meth:`~seqvae.pipeline.SeqVAEPipeline.sample_frame` returns; its measured
            ``<property>`` and ``<property>_target`` columns become the legends
            (``logP 2.41 (target 2.5)``).
        legends: one label per molecule (overrides the built ones).
        properties: built-in properties to compute with RDKit and show, e.g. ``["logP", "qed"]``.
        per_row: molecules per row.
        cell_size: ``(width, height)`` of one cell in pixels.
        max_molecules: draw at most this many (the first ones).
    """
    if isinstance(molecules, str):
        molecules = [molecules]
    if len(molecules) == 0:
        raise SeqVAEError("molecule_grid got no molecules to draw")
    if per_row < 1:
        raise SeqVAEError(f"per_row must be at least 1, got {per_row}")
    if legends is not None and len(legends) != len(molecules):
        raise SeqVAEError(f"got {len(legends)} legends for {len(molecules)} molecules: give one per molecule")
    first = molecules.head(max_molecules) if isinstance(molecules, pd.DataFrame) else list(molecules)[:max_molecules]
    smiles, built = _smiles_and_legends(first, list(properties))
    legends = [str(text) for text in (legends[:max_molecules] if legends is not None else built)]
    with without_rdkit_log():
        mols = [to_mol(s) for s in smiles]
    legends = [text if mol is not None else _invalid_label(s) for s, mol, text in zip(smiles, mols, legends)]
    return _grid_picture(mols, legends, min(per_row, len(mols)), cell_size)


def _smiles_and_legends(molecules, properties: list[str]) -> tuple[list[str], list[str]]:
    """SMILES and default legends from a list or a ``sample_frame`` DataFrame."""
    if isinstance(molecules, pd.DataFrame):
        if "smiles" not in molecules.columns:
            raise SeqVAEError(f"the DataFrame has no 'smiles' column (columns: {', '.join(map(str, molecules.columns))})")
        frame = molecules.reset_index(drop=True)
        smiles = [str(s) if isinstance(s, str) else "" for s in frame["smiles"]]
        targets = [c.removesuffix("_target") for c in frame.columns if c.endswith("_target")]
        shown = [p for p in properties if p not in targets]
        legends = []
        for i in range(len(frame)):
            parts = [f"{name} {_number(frame.at[i, name])} (target {_number(frame.at[i, name + '_target'])})" for name in targets if name in frame.columns]
            legends.append(", ".join(parts))
    else:
        smiles = [str(s) for s in molecules]
        legends, shown = ["" for _ in smiles], properties
    if shown:
        values = compute_properties(smiles, shown)
        for i in range(len(smiles)):
            extra = ", ".join(f"{name} {_number(column[i])}" for name, column in values.items())
            legends[i] = f"{legends[i]}, {extra}" if legends[i] else extra
    return smiles, legends


def _number(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _invalid_label(smiles: str) -> str:
    return f"invalid: {smiles}" if smiles else "invalid (empty)"


def _grid_picture(mols: list, legends: list[str], per_row: int, cell_size: tuple[int, int]) -> Picture:
    """A grid drawn with RDKit's MolDraw2D (not ``Draw.MolsToGridImage``, whose return type
    changes inside Jupyter). RDKit draws no legend under an empty cell, so the labels of
    invalid molecules are written in afterwards."""
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    width, height = cell_size
    rows = math.ceil(len(mols) / per_row)
    size = (per_row * width, rows * height)
    drawable = [mol if mol is not None else Chem.Mol() for mol in mols]
    font_size = max(10, round(height * 0.075))
    fits = max(8, int(width / (font_size * 0.6)))  # characters of a label that fit in a cell
    # (x, y, text) of each invalid cell's label: centred, where RDKit puts legends
    labels = [
        ((i % per_row + 0.5) * width, (i // per_row + 0.9) * height, legend if len(legend) <= fits else legend[: fits - 3] + "...")
        for i, (mol, legend) in enumerate(zip(mols, legends))
        if mol is None
    ]

    def draw(canvas) -> str | bytes:
        canvas.DrawMolecules(drawable, legends=legends)
        canvas.FinishDrawing()
        return canvas.GetDrawingText()

    def png() -> bytes:
        from PIL import Image, ImageDraw, ImageFont

        image = Image.open(io.BytesIO(draw(rdMolDraw2D.MolDraw2DCairo(*size, width, height)))).convert("RGB")
        pen, font = ImageDraw.Draw(image), ImageFont.load_default(size=font_size)
        for x, y, text in labels:
            pen.text((x, y), text, fill=(120, 120, 120), font=font, anchor="mm")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def svg() -> str:
        from html import escape

        drawing = draw(rdMolDraw2D.MolDraw2DSVG(*size, width, height))
        texts = "".join(
            f"<text x='{x:.0f}' y='{y:.0f}' text-anchor='middle' dominant-baseline='middle' "
            f"font-family='sans-serif' font-size='{font_size}px' fill='#787878'>{escape(text)}</text>"
            for x, y, text in labels
        )
        end = drawing.rstrip().rfind("</svg>")
        return drawing[:end] + texts + drawing[end:]

    return Picture(png, svg)


def interpolation_strip(vae, start: str, end: str, steps: int = 8, method: str = "slerp", cell_size=(220, 200), **options) -> Picture:
    """The molecules you gave at both ends (drawn from ``start`` and ``end`` themselves, not
    their decodes) with, between them, the molecules decoded on the latent path from ``start``
    to ``end``, numbered from 0 (its two decoded ends included). Each decoded molecule is
    labelled with its Tanimoto similarity (Morgan radius 2) to the two inputs, never to the
    decoded ends, or ``= start`` / ``= end`` when it is that input molecule: a path whose
    decoded ends differ from the inputs shows it.

    ``options`` go to :meth:`~seqvae.pipeline.SeqVAEPipeline.interpolate` (decoding strategy).
    """
    if vae.representation == "text":
        raise SeqVAEError("interpolation_strip draws molecules; for sentences use vae.homotopy(start, end), a table")
    from rdkit import Chem

    path = vae.interpolate(start, end, steps=steps, method=method, **options)
    with without_rdkit_log():
        mols = [to_mol(s) for s in [start, *path, end]]
        start_key, end_key = canonical_smiles(start), canonical_smiles(end)
        legends = ["input start"]
        for i, (smiles, mol) in enumerate(zip(path, mols[1:-1])):
            key = None if mol is None else Chem.MolToSmiles(mol)  # canonical, from the parse above
            if mol is None:
                legends.append(_invalid_label(smiles))
            elif key in (start_key, end_key):
                legends.append(f"{i}: = {'start' if key == start_key else 'end'}")
            else:
                to_start, to_end = tanimoto_similarity(smiles, start), tanimoto_similarity(smiles, end)
                legends.append(f"{i}: sim start {to_start:.2f} / end {to_end:.2f}")
        legends.append("input end")
    return _grid_picture(mols, legends, len(mols), cell_size)


# --- latent space


def latent_map(
    vae,
    molecules,
    color_by: str | None = "logP",
    values=None,
    method: str = "pca",
    size: tuple[float, float] = (6.5, 5.0),
) -> Picture:
    """Posterior means of ``molecules`` projected to 2-D and coloured by a property.

    Args:
        molecules: SMILES or sentences (at least 3).
        color_by: a built-in property computed with RDKit (``logP``, ``qed``, ``SAS``...), or
            ``None``; with ``values``, only the colour bar's label.
        values: one number per molecule to colour by instead (an assay value, a score).
        method: ``pca`` (numpy, always available) or ``umap`` (needs ``umap-learn``).
    """
    items = [molecules] if isinstance(molecules, str) else list(molecules)
    if vae.representation != "text":  # invalid SMILES have no latent: left out, and counted
        with without_rdkit_log():
            keep = [to_mol(item) is not None for item in items]
        if not all(keep):
            logger.warning("latent_map: %d of %d molecules are not valid SMILES and are left out", keep.count(False), len(items))
            if values is not None and len(values) == len(items):
                values = [value for value, kept in zip(values, keep) if kept]
            items = [item for item, kept in zip(items, keep) if kept]
    if len(items) < 3:
        raise SeqVAEError(f"a latent map needs at least 3 molecules, got {len(items)}")
    if method not in ("pca", "umap"):
        raise SeqVAEError(f"unknown method {method!r}: use 'pca' or 'umap'")
    colours = _colour_values(vae, items, color_by, values)
    latents = vae.encode(items).cpu().numpy().astype(np.float64)
    points, axis_labels = _project(latents, method)

    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    if colours is None:
        axes.scatter(points[:, 0], points[:, 1], s=14, color="tab:blue", alpha=0.8)
    else:
        known = ~np.isnan(colours)
        if (~known).any():
            axes.scatter(points[~known, 0], points[~known, 1], s=10, color=INVALID_COLOUR, label="no value")
            axes.legend(loc="best", fontsize=8)
        drawn = axes.scatter(points[known, 0], points[known, 1], c=colours[known], s=14, cmap="viridis", alpha=0.85)
        figure.colorbar(drawn, ax=axes, label=color_by or "value")
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    axes.set_title(f"latent map of {len(items)} {'sentences' if vae.representation == 'text' else 'molecules'} ({method.upper()})")
    return Picture.from_figure(figure)


def _colour_values(vae, items: list[str], color_by: str | None, values) -> np.ndarray | None:
    if values is not None:
        colours = np.asarray(values, dtype=np.float64)
        if colours.shape != (len(items),):
            raise SeqVAEError(f"got {colours.size} values for {len(items)} molecules: give one per molecule")
        return colours
    if color_by is None:
        return None
    if vae.representation == "text":
        raise SeqVAEError("sentences have no chemical properties: pass values=[...] or color_by=None")
    with without_rdkit_log():
        (column,) = compute_properties(items, [color_by]).values()
    return np.asarray(column, dtype=np.float64)


def _project(latents: np.ndarray, method: str) -> tuple[np.ndarray, tuple[str, str]]:
    """``[N, D]`` -> ``[N, 2]`` and axis labels."""
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise SeqVAEError("method='umap' needs the umap-learn package (pip install umap-learn); method='pca' needs nothing") from None
        points = umap.UMAP(n_components=2, n_neighbors=min(15, len(latents) - 1), random_state=0).fit_transform(latents)
        return points, ("UMAP 1", "UMAP 2")
    centred = latents - latents.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    if points.shape[1] < 2:  # a 1-dimensional latent
        points = np.column_stack([points, np.zeros(len(points))])
    explained = singular**2 / max(float((singular**2).sum()), 1e-12)
    labels = tuple(f"PC{i + 1} ({explained[i]:.0%} of variance)" if i < len(explained) else f"PC{i + 1}" for i in range(2))
    return points, labels


# --- training runs


def training_curves(run_dir: str | Path, size: tuple[float, float] = (10.0, 7.0)) -> Picture:
    """Reconstruction, KL, KL weight and active units over the steps of a training run, from
    the ``training_log.jsonl`` that ``seqvae train`` writes in its run folder."""
    log = runs.read_training_log(run_dir)
    figure = Figure(figsize=size, layout="constrained")
    _draw_curves(figure.subplots(2, 2).ravel(), log)
    figure.suptitle(f"training curves: {Path(run_dir).name}")
    return Picture.from_figure(figure)


def _draw_curves(axes, log: pd.DataFrame) -> None:
    """Four panels: reconstruction per token, KL per sequence, KL weight, active units."""
    panels = [
        ("reconstruction (nats / token)", "recon_per_token"),
        ("KL (nats / sequence)", "kl_per_sequence"),
        ("KL weight (beta)", "kl_weight"),
        ("active units", "active_units"),
    ]
    last_step = float(log["step"].max())
    for axes_, (title, key) in zip(axes, panels):
        drawn = None
        for prefix, style in (("", "-"), ("eval_", "o-")):
            column = prefix + key
            if column in log.columns:
                series = log[["step", column]].dropna()
                if not series.empty:
                    label = "validation" if prefix else "training"
                    if len(series) < 15:
                        style = "o-"  # a line alone would hide one or two points
                    axes_.plot(series["step"], series[column], style, markersize=4, label=label)
                    drawn = series
        if drawn is not None and key in ("recon_per_token", "kl_per_sequence"):
            axes_.legend(fontsize=8)
        if drawn is not None and key == "active_units":  # often one validation point: say it in words
            step, value = drawn.iloc[-1]
            axes_.set_ylim(0, max(float(drawn.iloc[:, 1].max()) * 1.3, 1.0))
            axes_.annotate(f"{value:g} at step {step:g}", (step, value), textcoords="offset points", xytext=(-8, 8), ha="right", fontsize=9)
        if drawn is None:
            axes_.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=axes_.transAxes, color="grey")
        axes_.set_xlim(0, last_step * 1.03 or 1.0)
        axes_.set_title(title, fontsize=10)
        axes_.set_xlabel("step")


def property_histograms(
    generated: list[str],
    reference: list[str],
    properties=("logP", "qed", "SAS"),
    labels: tuple[str, str] = ("generated", "training"),
    bins: int = 30,
) -> Picture:
    """Histograms (densities) of RDKit-computed properties, generated against reference
    molecules; invalid molecules are left out and counted in the legend."""
    properties = [properties] if isinstance(properties, str) else list(properties)
    if not properties:
        raise SeqVAEError("property_histograms needs at least one property, e.g. ['logP']")
    with without_rdkit_log():
        sets = [compute_properties(list(group), properties) for group in (generated, reference)]
    names = list(sets[0])  # canonical names ("LogP" -> "logP")
    figure = Figure(figsize=(4.0 * len(properties), 3.4), layout="constrained")
    for axes, name in zip(np.atleast_1d(figure.subplots(1, len(names))), names):
        finite = [np.asarray(values[name], dtype=np.float64) for values in sets]
        finite = [column[~np.isnan(column)] for column in finite]
        pooled = np.concatenate(finite)
        edges = np.histogram_bin_edges(pooled, bins=bins) if pooled.size else bins
        for values, label, colour in zip(finite, labels, ("tab:orange", "tab:blue")):
            if values.size:
                axes.hist(values, bins=edges, density=True, alpha=0.55, color=colour, label=f"{label} ({values.size:,})")
        axes.set_title(name, fontsize=10)
        axes.set_ylabel("density")
        if pooled.size:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, "no valid molecules", ha="center", va="center", transform=axes.transAxes, color="grey")
    return Picture.from_figure(figure)


def target_plot(frames, property_name: str | None = None, size: tuple[float, float] = (5.5, 5.0)) -> Picture:
    """Measured against target values of a conditional model's samples (molecules, or
    sentences with a computed attribute such as ``length``).

    Args:
        frames: one or more :meth:`~seqvae.pipeline.SeqVAEPipeline.sample_frame` results (say
            one per target), with ``<property>`` and ``<property>_target`` columns.
        property_name: which property (default: the only one with a target).
    """
    frame = pd.concat(frames, ignore_index=True) if isinstance(frames, (list, tuple)) else frames
    targets = [c.removesuffix("_target") for c in frame.columns if c.endswith("_target")]
    if property_name is None:
        if len(targets) != 1:
            raise SeqVAEError(f"say which property to plot: the samples have targets for {targets or 'none'}")
        property_name = targets[0]
    if property_name not in targets or property_name not in frame.columns:
        raise SeqVAEError(f"the samples have no target for {property_name!r} (targets: {', '.join(targets) or 'none'})")
    data = frame[[property_name + "_target", property_name]].astype(float).dropna()
    if data.empty:
        raise SeqVAEError("no valid samples to plot: every sample failed to parse")
    target, measured = data.iloc[:, 0].to_numpy(), data.iloc[:, 1].to_numpy()
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(target)) * (np.ptp(target) or 1.0)
    what = "sentences" if "text" in frame.columns else "molecules"
    axes.scatter(target + jitter, measured, s=6, alpha=0.25, color="tab:blue", label=what)
    levels = np.unique(target)
    means = np.array([measured[target == t].mean() for t in levels])
    spreads = np.array([measured[target == t].std() for t in levels])
    axes.errorbar(levels, means, yerr=spreads, fmt="o-", color="tab:red", capsize=4, label="mean +- SD")
    low, high = min(target.min(), measured.min()), max(target.max(), measured.max())
    axes.plot([low, high], [low, high], "--", color="grey", label="measured = target")
    mad = np.abs(measured - target).mean()
    axes.set_title(f"{property_name}: mean absolute deviation {mad:.2f} ({len(measured):,} {'' if what == 'sentences' else 'valid '}{what})", fontsize=10)
    axes.set_xlabel(f"target {property_name}")
    axes.set_ylabel(f"measured {property_name}" + ("" if what == "sentences" else " (RDKit)"))
    axes.legend(fontsize=8)
    return Picture.from_figure(figure)


# --- run report


def run_report(run_dir: str | Path, num_samples: int = 12) -> Picture:
    """Training curves and the first valid samples of a run folder in one picture, from its
    ``training_log.jsonl``, ``samples.csv`` and ``metrics.json``."""
    run_dir = Path(run_dir)
    log = runs.read_training_log(run_dir)
    figure = Figure(figsize=(15.0, 7.0), layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[1.1, 1.0])
    _draw_curves(left.subplots(2, 2).ravel(), log)
    left.suptitle(f"{run_dir.name}: training", fontsize=11)
    axes = right.add_subplot()
    axes.axis("off")
    _draw_samples(axes, run_dir, num_samples)
    right.suptitle(_metrics_line(run_dir), fontsize=10)
    return Picture.from_figure(figure)


def write_run_report(run_dir: str | Path) -> Path:
    """Render :func:`run_report` into the run folder (``report.png``)."""
    return run_report(run_dir).save(runs.report_path(run_dir))


def _draw_samples(axes, run_dir: Path, count: int) -> None:
    samples = runs.read_samples(run_dir)
    if samples is None:
        axes.text(0.5, 0.5, "no samples.csv in this run", ha="center", va="center", color="grey")
        return
    if "text" in samples.columns:
        lines = [textwrap.shorten(str(t), 90) or "(empty)" for t in samples["text"].head(count * 2)]
        axes.text(0, 1, "prior samples:\n\n" + "\n".join(f"- {line}" for line in lines), va="top", family="monospace", fontsize=8, transform=axes.transAxes, parse_math=False)  # PTB writes "$"
        return
    valid = samples[samples["valid"].astype(str).str.lower() == "true"]["smiles"].head(count).tolist()
    if not valid:
        axes.text(0.5, 0.5, "no valid molecule among the samples", ha="center", va="center", color="grey")
        return
    from PIL import Image

    grid = molecule_grid(valid, per_row=4, cell_size=(220, 180))
    axes.imshow(np.asarray(Image.open(io.BytesIO(grid.to_png())).convert("RGB")))
    axes.set_title(f"{len(valid)} valid prior samples", fontsize=10)


def _metrics_line(run_dir: Path) -> str:
    metrics = runs.read_metrics(run_dir)
    shown = [("validity", "valid {:.0%}"), ("uniqueness", "unique {:.0%}"), ("novelty", "novel {:.0%}"),
             ("reconstruction_accuracy", "reconstructed {:.0%}"), ("kl_per_sequence", "KL {:.1f} nats"),
             ("active_units", "{} active units"), ("iw_nll", "IW-NLL {:.1f}"), ("perplexity", "PPL {:.1f}")]
    parts = [template.format(metrics[key]) for key, template in shown if isinstance(metrics.get(key), (int, float))]
    if metrics.get("stopped_early"):
        parts.insert(0, f"STOPPED EARLY at step {metrics.get('stopped_at_step')} of {metrics.get('max_steps')} ({metrics.get('stopped_by')})")
    return ", ".join(parts) or "samples"
