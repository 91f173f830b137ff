"""Molecule tables that keep their pictures, and their export.

:class:`MoleculeFrame` is a ``pandas.DataFrame`` whose notebook view draws its RDKit molecules
(a ``mol`` column, or the ``smiles`` column when there is none) as inline PNG pictures. The
pictures survive what a chemist does next (``head()``, masks, ``sort_values``, ``copy()``,
``pd.concat``), because every frame pandas derives from one is a ``MoleculeFrame`` again; other
DataFrames are left as pandas draws them.

:func:`to_sdf` and :func:`to_csv` write a frame for other tools, :func:`add_inchikey` gives it
an ``inchikey`` column, and :func:`interactive_grid` shows it as a searchable grid (``mols2grid``
when installed, a static picture otherwise).

    frame = molecule_frame(vae.sample_frame(100))
    frame[frame.valid].sort_values("qed").head()     # still drawn
    to_sdf(frame, "samples.sdf")                     # Export(rows_written=93, rows_skipped=7)
"""

from __future__ import annotations

import base64
import inspect
import logging
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rdkit import Chem

from .chem import inchikey, to_mol, without_rdkit_log
from .errors import SeqVAEError

__all__ = ["MoleculeFrame", "molecule_frame", "add_inchikey", "to_sdf", "to_csv", "Export", "interactive_grid"]

logger = logging.getLogger(__name__)

PICTURE_SIZE = (200, 150)  # (width, height) in pixels of one structure in a table cell


class MoleculeFrame(pd.DataFrame):
    """A DataFrame that draws its molecules in notebooks; pandas operations return one again."""

    @property
    def _constructor(self):
        # pandas builds every derived frame (head, masks, sort, copy, concat) with this
        return MoleculeFrame

    def _repr_html_(self) -> str | None:
        if not pd.get_option("display.notebook_repr_html"):
            return None  # as pandas: the notebook then shows the text view
        shown, molecule_columns = _frame_to_draw(self)
        if not molecule_columns:
            return super()._repr_html_()
        return _html_with_pictures(shown, molecule_columns)


def molecule_frame(frame: pd.DataFrame) -> MoleculeFrame:
    """``frame`` as a :class:`MoleculeFrame` (the same columns; its molecules drawn in notebooks)."""
    if isinstance(frame, MoleculeFrame):
        return frame
    wrapped = MoleculeFrame(frame)
    wrapped.attrs.update(frame.attrs)  # pass rates, decoration counts: a new frame would drop them
    return wrapped


# ------------------------------------------------------------------------------ pictures


def _frame_to_draw(frame: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """The frame as shown, and its columns drawn as pictures: its molecule columns, or else a
    ``structure`` column drawn from its SMILES column, added next to it."""
    molecules = mol_columns(frame)
    if molecules:
        return frame, molecules
    position = _smiles_position(frame)
    if position is None:
        return frame, []
    shown = pd.DataFrame(frame).copy(deep=False)  # a plain frame: the user's keeps its columns
    name = "structure" if "structure" not in shown.columns else "structure of smiles"
    shown.insert(position + 1, name, frame.iloc[:, position], allow_duplicates=True)
    return shown, [name]


def _html_with_pictures(frame: pd.DataFrame, picture_columns: list) -> str:
    """pandas' own HTML for ``frame``, with pictures in ``picture_columns``' cells.

    Each shown cell is first written as a short placeholder (pandas cuts cells longer than
    ``display.max_colwidth`` and escapes HTML), then replaced by its ``<img>``; only the rows
    pandas shows are drawn.
    """
    nonce = secrets.token_hex(4)
    pictures: list[str] = []

    def placeholder(value) -> str:
        pictures.append(_picture_tag(value))
        return f"seqvae-picture-{nonce}-{len(pictures) - 1}-"

    max_rows = pd.get_option("display.max_rows")
    if max_rows and len(frame) > max_rows:  # pandas shows min_rows of a long frame
        max_rows = pd.get_option("display.min_rows") or max_rows
    width = pd.get_option("display.max_colwidth")
    with pd.option_context("display.max_colwidth", None if width is None else max(width, 40)):  # placeholders whole
        html = frame.to_html(
            formatters={column: placeholder for column in picture_columns},
            max_rows=max_rows,
            max_cols=pd.get_option("display.max_columns"),
            show_dimensions=pd.get_option("display.show_dimensions"),
            notebook=True,
        )
    return re.sub(f"seqvae-picture-{nonce}-(\\d+)-", lambda match: pictures[int(match[1])], html)


def _picture_tag(value) -> str:
    """An inline PNG ``<img>`` of a molecule or SMILES; empty for a missing or invalid one."""
    mol = value if isinstance(value, Chem.Mol) else to_mol(value) if isinstance(value, str) else None
    if mol is None or mol.GetNumAtoms() == 0:
        return ""
    from rdkit.Chem.Draw import rdMolDraw2D

    canvas = rdMolDraw2D.MolDraw2DCairo(*PICTURE_SIZE)
    with without_rdkit_log():
        rdMolDraw2D.PrepareAndDrawMolecule(canvas, mol)
    canvas.FinishDrawing()
    encoded = base64.b64encode(canvas.GetDrawingText()).decode("ascii")
    width, height = PICTURE_SIZE
    return f'<img src="data:image/png;base64,{encoded}" width="{width}" height="{height}" alt="structure"/>'


def mol_columns(frame: pd.DataFrame) -> list:
    """The columns holding RDKit molecules (judged by their first value that is not missing)."""
    found = []
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if column.dtype == object:
            present = column.dropna()
            if len(present) and isinstance(present.iloc[0], Chem.Mol):
                found.append(name)
    return found


def smiles_column(frame: pd.DataFrame):
    """The frame's SMILES column: ``smiles`` in any case, or ``None``."""
    position = _smiles_position(frame)
    return None if position is None else frame.columns[position]


def _smiles_position(frame: pd.DataFrame) -> int | None:
    return next((i for i, name in enumerate(frame.columns) if str(name).lower() == "smiles"), None)


# ------------------------------------------------------------------------------ export


@dataclass(frozen=True)
class Export:
    """What :func:`to_sdf` wrote: the file, the molecules in it, and the invalid rows left out."""

    path: Path
    rows_written: int
    rows_skipped: int


def to_sdf(frame: pd.DataFrame, path: str | os.PathLike, name_column: str | None = None) -> Export:
    """Write the frame's valid molecules to an SD file, every other column as an SD property.

    The molecules come from the ``mol`` column (or another column of RDKit molecules), or are
    parsed from the ``smiles`` column. Rows without a valid molecule are left out and counted;
    missing values (``None``, NaN) are left out of a molecule's properties.

    Args:
        frame: e.g. ``sample_frame``'s result.
        path: the ``.sdf`` file to write (its folder is made).
        name_column: a column whose value becomes each molecule's title line.

    Raises:
        SeqVAEError: the frame has no molecule or SMILES column, no valid molecule, or no
            ``name_column``.
    """
    molecules, source = _molecules_of(frame)
    if name_column is not None and name_column not in frame.columns:
        raise SeqVAEError(f"name_column {name_column!r} is not a column of the frame (columns: {_names(frame)})")
    valid = [mol is not None for mol in molecules]
    if not any(valid):
        raise SeqVAEError(
            f"no valid molecule in the frame's {len(frame)} rows (column {source!r}): nothing to write to {path}. "
            "Filter for valid rows first (frame[frame.valid]) or check the SMILES"
        )
    skipped_columns = set(mol_columns(frame))
    properties = [name for name in frame.columns if name not in skipped_columns]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = frame[properties].to_dict("records")
    with Chem.SDWriter(str(path)) as writer:
        for mol, row in zip(molecules, rows):
            if mol is not None:
                writer.write(_with_properties(mol, row, name_column))
    export = Export(path, sum(valid), len(valid) - sum(valid))
    if export.rows_skipped:
        logger.info("%s: wrote %d molecules, skipped %d invalid rows", path, export.rows_written, export.rows_skipped)
    return export


def _with_properties(mol: Chem.Mol, row: dict, name_column) -> Chem.Mol:
    """A copy of ``mol`` carrying ``row``'s values as SD properties (the frame's molecule is untouched)."""
    mol = Chem.Mol(mol)
    for name, value in row.items():
        if not _is_missing(value):
            mol.SetProp(str(name), _sd_text(value))
    if name_column is not None and not _is_missing(row[name_column]):
        mol.SetProp("_Name", _sd_text(row[name_column]))
    return mol


def _sd_text(value) -> str:
    """One line: in an SD file a blank line ends a property's value."""
    return " ".join(str(value).splitlines())


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def to_csv(frame: pd.DataFrame, path: str | os.PathLike, **options) -> Path:
    """Write the frame as CSV without its RDKit molecule columns (a ``smiles`` column is written
    from them when the frame has none); every row, invalid ones included. ``options`` go to
    ``DataFrame.to_csv``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(_without_mols(frame)).to_csv(path, **{"index": False, **options})
    return path


def _without_mols(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without molecule columns; SMILES written from the first when it has none."""
    molecules = mol_columns(frame)
    table = frame.drop(columns=molecules)
    if molecules and smiles_column(frame) is None:
        first = frame[molecules[0]]
        table.insert(0, "smiles", [Chem.MolToSmiles(m) if isinstance(m, Chem.Mol) else None for m in first])
    return table


def add_inchikey(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an ``inchikey`` column (standard InChIKey of each row's molecule, ``None``
    where it is invalid), from its molecule column or its SMILES; a ``MoleculeFrame`` stays one."""
    molecules, _ = _molecules_of(frame)
    return frame.assign(inchikey=[inchikey(mol) if mol is not None else None for mol in molecules])


def _molecules_of(frame: pd.DataFrame) -> tuple[list, str]:
    """Each row's RDKit molecule (``None`` when missing or invalid) and the column they came from."""
    molecules = mol_columns(frame)
    if molecules:
        source = "mol" if "mol" in molecules else molecules[0]
        values = [m if isinstance(m, Chem.Mol) and m.GetNumAtoms() else None for m in frame[source]]
        return values, source
    source = smiles_column(frame)
    if source is None:
        raise SeqVAEError(
            f"the frame has no molecules: it needs a 'mol' column of RDKit molecules or a 'smiles' column "
            f"(columns: {_names(frame)})"
        )
    return [to_mol(s) if isinstance(s, str) else None for s in frame[source]], source


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns)) or "none"


# ------------------------------------------------------------------------------ interactive grid


def interactive_grid(frame: pd.DataFrame, **options):
    """A searchable, sortable grid of the frame's molecules with ``mols2grid``
    (``pip install mols2grid``; ``options`` go to ``mols2grid.display``, e.g. ``subset``,
    ``tooltip``, ``n_items_per_page``); without it, a static :func:`seqvae.viz.molecule_grid`
    picture of the first molecules, which takes the options it knows (``per_row``,
    ``properties``, ...) and ignores the others."""
    table = pd.DataFrame(_without_mols(frame))  # the grid serialises every column: no RDKit objects
    smiles = smiles_column(table)
    if smiles is None:
        raise SeqVAEError(f"the frame has no 'smiles' or molecule column to draw (columns: {_names(frame)})")
    try:
        import mols2grid
    except ImportError:
        return _static_grid(table.rename(columns={smiles: "smiles"}), options)
    return mols2grid.display(table, smiles_col=smiles, **options)


def _static_grid(table: pd.DataFrame, options: dict):
    from .viz import molecule_grid

    known = inspect.signature(molecule_grid).parameters
    ignored = sorted(set(options) - set(known))
    logger.info(
        "mols2grid is not installed (pip install mols2grid): drawing a static grid instead%s",
        f", without the options {', '.join(ignored)}" if ignored else "",
    )
    return molecule_grid(table, **{name: value for name, value in options.items() if name in known})
