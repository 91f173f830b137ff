"""The notebook facade: ``vae = seqvae.load("runs/x")`` and plain-Python methods on strings.

    vae.sample(100)                        # list[str] of SMILES (or sentences)
    vae.sample_frame(100)                  # DataFrame: smiles, valid
    vae.encode(["CCO", "c1ccccc1"])        # [B, latent_dim] posterior means
    vae.decode(z)                          # list[str]
    vae.reconstruct(["CCO"])               # greedy decode of the posterior means
    vae.interpolate("CCO", "c1ccccc1O", steps=8, method="slerp")

Conditional models (trained with ``properties``):

    vae.sample(500, condition={"logP": 2.5, "qed": 0.8})     # any subset of the properties
    vae.sample_frame(500, condition={"logP": 2.5})          # + target, measured value, error
    vae.sample(500, condition={"logP": 2.5}, rerank=4)      # best 500 of 2,000 by the head
    vae.predict_properties(["CCO"])                         # the property head on z
    vae.optimize(["CCO"], "logP", steps=100)                # gradient ascent in latent space
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer

from . import runs
from .chem import (
    compute_properties,
    inchikey,
    property_name,
    tanimoto_similarity,
    to_mol,
    without_rdkit_log,
)
from .conditions import check_condition, property_table
from .data.normalization import InputNormalization, standardizes
from .errors import SeqVAEError
from .frames import molecule_frame
from .generation import is_finite_number
from .inference import SeqVAEInference, _generator, samples_frame
from .modeling import SeqVAE

__all__ = ["SeqVAEPipeline", "load", "shipped_models", "train", "with_mol_column"]

logger = logging.getLogger(__name__)


class SeqVAEPipeline(SeqVAEInference):
    """What ``seqvae.load`` returns: :class:`~seqvae.inference.SeqVAEInference` (strings in,
    strings out) plus tables with pictures, neighbours, latent optimisation, the run's metrics,
    and saving and sharing."""

    @property
    def metrics(self) -> dict:
        """What training measured (the run folder's ``metrics.json``; empty when there is none)."""
        return runs.read_metrics(self.source) if self.source else {}

    @property
    def trained_on(self) -> str | None:
        """The ``data`` the model was trained on, as its run folder's ``recipe.yaml`` names it."""
        return runs.trained_on(self.source) if self.source else None

    def __repr__(self) -> str:
        c = self.config
        parameters = sum(p.numel() for p in self.model.parameters())
        return (
            f"SeqVAEPipeline({c.representation}, {c.describe('encoder')}->{c.describe('decoder')}, "
            f"latent_dim={c.latent_dim}, vocab={c.vocab_size}, parameters={parameters:,}, "
            f"{self._conditions_text()}from={self.source!r})"
        )

    def _conditions_text(self) -> str:
        """``"conditions=money[no|yes], length, "`` (nothing for an unconditional model)."""
        if not self.config.num_properties:
            return ""
        names = [
            f"{name}[{'|'.join(labels)}]" if labels else name
            for name, labels in zip(self.config.property_names, self.config.property_labels)
        ]
        return f"conditions={', '.join(names)}, "

    def _repr_html_(self) -> str:
        """The summary Jupyter shows: what the model reads, its size, its properties and their
        training ranges, and where it was trained from."""
        from html import escape

        c = self.config
        parameters = sum(p.numel() for p in self.model.parameters())
        rows = [
            ("representation", f"{c.representation} (vocabulary {c.vocab_size:,}, up to {c.max_sequence_length} tokens)"),
            ("model", f"{c.describe('encoder')} encoder -> {c.describe('decoder')} decoder" if c.latent_dim else f"{c.describe('decoder')} language model (no latent)"),
            ("latent size", str(c.latent_dim)),
            ("parameters", f"{parameters:,}"),
            ("device", str(self.device)),
        ]
        for name, unit, low, high, labels, rule in zip(
            c.property_names, c.property_units, c.property_min, c.property_max, c.property_labels, c.property_rules
        ):
            trained = f"labels {', '.join(labels)}" if labels else f"trained on {low:.3g} to {high:.3g}{' ' + unit if unit else ''}"
            rows.append((f"property {name}", trained + (f" (computed: {rule})" if rule else "")))
        if c.num_properties and self.model.property_head is not None:
            rows.append(("property head", "yes: rerank=, optimize()"))
        rows.append(("run folder", self.source or "(not saved)"))
        trained_on = self.trained_on  # reads recipe.yaml: once
        if trained_on:
            rows.append(("trained on", trained_on))
        body = "".join(
            f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}</td></tr>" for k, v in rows
        )
        return f"<b>seqvae model</b><table>{body}</table>"

    # --- sharing

    def save(self, folder: str | Path, dtype: str = "float32") -> Path:
        """Write the model as a folder :func:`load` reads: config, safetensors weights (in
        ``dtype``: ``float16`` halves the size; loading returns to float32), tokenizer, and the
        run's model card, metrics and recipe when it has them."""
        import copy
        import shutil

        if dtype not in ("float32", "float16", "bfloat16"):
            raise SeqVAEError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        model = self.model if dtype == "float32" else copy.deepcopy(self.model).to(getattr(torch, dtype))
        model.save_pretrained(folder)  # safetensors + config.json
        self.tokenizer.save_pretrained(folder)
        source = Path(self.source) if self.source and Path(self.source).is_dir() else None
        for name in runs.SHARED_FILES if source else ():  # the run's card, metrics and settings
            if (source / name).is_file() and (source / name).resolve() != (folder / name).resolve():
                shutil.copy(source / name, folder / name)
        return folder

    def push_to_hub(self, repo_id: str, private: bool = False, token: str | None = None, commit_message: str = "Upload seqvae model") -> str:
        """Upload the model folder (see :meth:`save`) to the Hugging Face Hub as ``repo_id``;
        ``seqvae.load(repo_id)`` then reads it anywhere. Returns the repository URL."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as staging:
            self.save(staging)
            try:
                url = api.create_repo(repo_id, private=private, exist_ok=True)
                api.upload_folder(repo_id=repo_id, folder_path=staging, commit_message=commit_message)
            except Exception as error:  # noqa: BLE001 - HTTP, network (httpx) and auth errors alike: one line
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                raise SeqVAEError(f"could not upload to the Hugging Face Hub as {repo_id!r}: {first_line}") from None
        return str(url)

    def optimize(self, start, objective, steps: int = 100, **options) -> pd.DataFrame:
        """Move molecules through latent space toward a better predicted property.

        See :func:`seqvae.optimization.optimize_latents` for ``objective`` and the options.
        Returns one row per start molecule and decoded step, with RDKit-computed properties
        and the Tanimoto similarity to the start molecule.
        """
        from .optimization import optimize_latents

        return optimize_latents(self, self._as_list(start), objective, steps=steps, **options)

    def homotopy(self, start: str, end: str, steps: int = 8, method: str = "linear", **options) -> pd.DataFrame:
        """:meth:`interpolate` as a table: ``step``, ``weight`` (0 at ``start``, 1 at ``end``),
        ``output`` and ``changed`` (differs from the previous step)."""
        outputs = self.interpolate(start, end, steps, method, **options)
        return pd.DataFrame(
            {
                "step": range(len(outputs)),
                "weight": [round(i / (len(outputs) - 1), 4) for i in range(len(outputs))],
                "output": outputs,
                "changed": [True] + [a != b for a, b in zip(outputs, outputs[1:])],
            }
        )

    def sample_frame(
        self,
        num_samples: int = 1,
        seed: int | None = None,
        condition: dict | None = None,
        rerank: int = 1,
        progress: bool | None = None,
        mols: bool = True,
        properties: list[str] | tuple[str, ...] = (),
        filters: list[str] | tuple[str, ...] = (),
        **options,
    ) -> pd.DataFrame:
        """Prior samples as a DataFrame: ``smiles``, ``valid``, for conditional models each
        property measured by RDKit with its ``_target`` and ``_error`` (measured - target),
        the built-in ``properties`` asked for (any model, e.g. ``["logP", "qed"]``), and with
        ``mols`` a ``mol`` column of RDKit molecules (``None`` when invalid) that Jupyter draws
        as pictures. Text models: a ``text`` column, and for conditional ones each attribute's
        ``_target``, the value measured on the sentence where the attribute has a rule
        (``length``: its words; ``money``: ``yes`` / ``no``) and, for numbers, the ``_error``.

        ``filters`` (molecules; see :mod:`seqvae.filters`), e.g. ``["lipinski", "veber", "pains",
        "mcf", "sa<4.5"]``, add ``passes`` (every filter passed) and ``failed_filters`` (which
        failed and why), and log the pass rates."""
        checked = check_condition(self.config, condition)
        if filters:
            self._check_filters(filters)  # a misspelt filter fails now, not after the sampling
        smiles = self._sample(num_samples, seed, progress, checked, rerank, options)
        frame = pd.DataFrame({"text": smiles}) if self.representation == "text" else samples_frame(smiles)
        if self.config.num_properties:
            frame = pd.concat([frame, property_table(smiles, self.config, checked)], axis=1)
        if self.representation == "text":
            return frame
        missing = [name for name in properties if property_name(name) not in frame.columns]  # conditional ones are there
        if missing:
            with without_rdkit_log():
                frame = frame.assign(**compute_properties(smiles, missing))
        if filters:
            frame = _with_filter_columns(frame, filters)
        return with_mol_column(frame) if mols else frame

    def _check_filters(self, filters) -> None:
        from .filters import check_filters

        if self.representation == "text":
            raise SeqVAEError(f"filters ({', '.join(map(str, filters))}) apply to molecules; this is a text model")
        check_filters(filters)

    def neighbours(self, items, num_samples: int = 12, scale: float = 1.0, seed: int | None = None, mols: bool = True) -> pd.DataFrame:
        """Decodes of ``z = mu + scale * sigma * eps`` around a molecule's (or sentence's)
        posterior, most similar first: ``smiles``, ``valid``, ``similarity`` (Tanimoto, Morgan
        radius 2, to the input) and ``mol``; text models: ``text``. For a list of inputs, one
        block per input with an ``input`` column.

        ``scale`` < 1 stays closer to the input, > 1 wanders further.
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1 or not is_finite_number(scale) or scale < 0:
            raise SeqVAEError(
                f"num_samples must be a whole number >= 1 and scale >= 0 (finite), got {num_samples!r} and {scale!r}"
            )
        if not isinstance(items, str):
            self.normalize(items)  # every input checked before the first is decoded: an error names its place
            blocks = [self.neighbours(item, num_samples, scale, seed, mols=False).assign(input=item) for item in items]
            frame = pd.concat(blocks, ignore_index=True)
            return with_mol_column(frame) if mols and self.representation != "text" else frame
        batch = self.tokenize([items])
        with torch.no_grad():
            mu, logvar = self.model.encode(batch["input_ids"], batch["attention_mask"])
        noise = torch.randn(num_samples, mu.size(1), generator=_generator(seed)).to(mu.device)
        outputs = self.decode(SeqVAE.reparameterize(mu, logvar, scale * noise))
        if self.representation == "text":
            return pd.DataFrame({"text": outputs})
        frame = samples_frame(outputs)
        frame["similarity"] = [tanimoto_similarity(s, items) for s in outputs]
        frame = frame.sort_values("similarity", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
        return with_mol_column(frame) if mols else frame

    def decorate(
        self, scaffold: str, n: int = 100, condition: dict | None = None, seed: int | None = None, mols: bool = True, **options
    ) -> pd.DataFrame:
        """Up to ``n`` distinct molecules that contain ``scaffold`` (SMILES with ``*`` at the
        attachment points, e.g. ``"c1ccc(*)cc1C(=O)N*"``) with every ``*`` filled: ``smiles``,
        ``parent``, ``scale``, the measured properties against ``condition`` (conditional models)
        and ``mol``. ``attrs["decoration"]`` says how many latents were drawn. See
        :func:`seqvae.decoration.decorate` for the method and the ``options``."""
        from .decoration import decorate

        frame = decorate(self, scaffold, n, condition=condition, seed=seed, **options)
        return with_mol_column(frame) if mols else frame


    # --- your own library

    def index(self, library, batch_size: int = 512, progress: bool | None = None):
        """Index a library of SMILES for :meth:`search`: posterior means and Morgan
        fingerprints of each valid row. Rows keep their numbers (0, 1, ...); invalid ones stay
        in ``index.table`` with ``valid=False``, counted in a warning, and are not searched.
        Returns the :class:`~seqvae.search.LibraryIndex` (the model keeps it too)."""
        from .search import LibraryIndex

        self._library_index = LibraryIndex.build(self, library, batch_size=batch_size, progress=progress)
        return self._library_index

    def search(self, query, k: int = 10, by: str = "latent") -> pd.DataFrame:
        """The ``k`` molecules of the indexed library (:meth:`index`) nearest to ``query`` (one
        SMILES or a list): ``query``, ``rank``, ``library_row``, ``smiles`` and ``distance``
        (``by="latent"``: Euclidean, posterior means) or ``similarity`` (``by="tanimoto"``:
        Morgan radius 2). A query that is in the library comes first."""
        index = getattr(self, "_library_index", None)
        if index is None:
            raise SeqVAEError("no library is indexed yet: call vae.index(smiles) first, then vae.search(query)")
        return molecule_frame(index.search(query, k=k, by=by))  # drawn from its smiles column

    def score(
        self, smiles, training=None, num_samples: int = 8, seed: int = 0, batch_size: int = 128, progress: bool | None = None
    ) -> pd.DataFrame:
        """Per molecule, in input order: ``valid`` (invalid rows are kept and flagged),
        ``reconstruction_nll``, ``kl`` and ``neg_elbo`` (nats; lower: more like the training
        data), the greedy ``reconstruction`` and whether it is the input (``reconstructed``),
        and ``nearest_training`` with its Tanimoto ``nearest_training_similarity``.

        ``training``: the molecules to compare with; by default the run's training molecules
        (re-read from its recipe, once per model). Without a run folder those two columns are
        left out, with a warning and a note in ``frame.attrs["note"]``. See
        :func:`seqvae.search.score_molecules` for ``num_samples`` and ``seed``.
        """
        from .search import score_molecules

        reference, note = self._training_fingerprints(training, progress)
        frame = score_molecules(
            self, smiles, reference, num_samples=num_samples, seed=seed, batch_size=batch_size, progress=progress
        )
        if note:
            logger.warning(note)
            frame.attrs["note"] = note
        return molecule_frame(frame)

    def _training_fingerprints(self, training, progress: bool | None):
        """The molecules :meth:`score` compares with, and a note when there are none."""
        from .search import FingerprintSet

        if self.representation == "text":
            return None, None
        if training is not None:
            molecules = [s for s in self.normalize_each(training) if s is not None]
            return FingerprintSet(molecules, progress=progress), None
        if getattr(self, "_training_set", None) is None:  # read once per model: a large run takes a while
            self._training_set = self._run_training_fingerprints(progress)
        return self._training_set

    def _run_training_fingerprints(self, progress: bool | None):
        import datasets

        from .data import run_split
        from .search import FingerprintSet

        if not self.source or not runs.recipe_path(self.source).is_file():
            return None, (
                f"no nearest training molecule: the model ({self.source or 'not saved'}) has no run folder with a "
                "recipe.yaml to read its training molecules from; pass training=[...] to compare with your own"
            )
        was_shown = not datasets.utils.are_progress_bars_disabled()
        if progress is False:  # reading the corpus shows datasets' bars
            datasets.utils.disable_progress_bars()
        try:
            train_rows, _ = run_split(self.source)
        except (SeqVAEError, OSError) as error:
            return None, f"no nearest training molecule: the run's training molecules could not be read ({error})"
        finally:
            if was_shown:
                datasets.utils.enable_progress_bars()
        molecules = train_rows["smiles"]
        return FingerprintSet(molecules, progress=progress), None


def _with_filter_columns(frame: pd.DataFrame, filters) -> pd.DataFrame:
    """``passes`` and ``failed_filters`` from :func:`seqvae.filters.apply_filters`; the pass rates
    are logged and kept in ``frame.attrs["pass_rates"]``."""
    from .filters import apply_filters, format_pass_rates, pass_rates

    passes, reasons = apply_filters(frame["smiles"].tolist(), filters)
    frame = frame.assign(passes=passes, failed_filters=reasons)
    frame.attrs["pass_rates"] = pass_rates(reasons, filters)
    logger.info("%s", format_pass_rates(frame.attrs["pass_rates"]))
    return frame


def with_mol_column(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``mol`` (RDKit molecules from ``smiles``) and ``inchikey`` columns, as a
    :class:`~seqvae.frames.MoleculeFrame`: Jupyter draws the molecules in it and in every frame
    derived from it (head, masks, sorting, copies, concatenation)."""
    with without_rdkit_log():
        frame["mol"] = [to_mol(s) for s in frame["smiles"]]
    frame["inchikey"] = [inchikey(mol) for mol in frame["mol"]]
    return molecule_frame(frame)


PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # models that ship with the package


def shipped_models() -> list[str]:
    """Names of the pretrained models in the package (``seqvae.load(name)`` reads them offline)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(folder.name for folder in PRETRAINED_DIR.iterdir() if runs.is_model_folder(folder))


def load(run_dir: str | Path, device: str | None = None) -> SeqVAEPipeline:
    """Load a model: a run folder, a shipped model's name, or a Hugging Face Hub id.

    Args:
        run_dir: the folder ``seqvae train`` wrote (``config.json``, ``model.safetensors``,
            tokenizer files); or a name from :func:`shipped_models` (``"zinc250k"``), read from
            the package with no network; or a Hub id ``"user/repo"``, fetched through
            transformers' own download path (and its cache).
        device: ``"cpu"``, ``"cuda"``...; the GPU when one is available by default.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    folder = _model_folder(run_dir)
    if folder is None:
        return _load_from_hub(str(run_dir), device)
    missing = runs.missing_model_files(folder)
    if missing:
        raise SeqVAEError(
            f"{folder} is not a complete seqvae model folder: missing {', '.join(missing)}. "
            "Point to the output_dir of a finished run, or to one of its checkpoint-* folders"
        )
    damage = runs.model_folder_problem(folder)  # before transformers reads it: one line, not a traceback
    if damage:
        raise SeqVAEError(
            f"cannot load the model in {folder}: {damage}. A diverged run or a damaged copy: load one of the run's "
            "checkpoint-* folders, copy the file again, or train again"
        )
    try:
        model, tokenizer = _read_model(folder, device)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise SeqVAEError(f"cannot load the model in {folder}: {error}") from None
    return SeqVAEPipeline(model, tokenizer, str(folder), _input_normalization(model, folder))


def _input_normalization(model: SeqVAE, folder: Path) -> InputNormalization:
    """Inputs are read as the run read its training rows (its saved data settings)."""
    data = runs.read_data_settings(folder)
    return InputNormalization(
        model.config.representation, data.canonicalize, data.keep_largest_fragment, data.lowercase, standardizes(data)
    )


def _read_model(source: str | Path, device: str):
    """Model and tokenizer from a folder or Hub id, through transformers; float32 on load (a
    shipped model may store float16 weights to stay small)."""
    with _quiet_loading():
        model = SeqVAE.from_pretrained(source, use_safetensors=True, dtype=torch.float32).to(device)
    return model, AutoTokenizer.from_pretrained(source)


@contextlib.contextmanager
def _quiet_loading():
    """No "Loading weights" bar from transformers for a model this small: loading prints only warnings."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _model_folder(name: str | Path) -> Path | None:
    """The local folder ``name`` stands for; ``None`` for a Hub id; an error listing the
    choices when it is neither."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if str(name) in shipped_models():
        return PRETRAINED_DIR / str(name)
    if _looks_like_hub_id(str(name)):
        return None
    shipped = ", ".join(shipped_models()) or "none in this install"
    parent = path.parent if len(path.parts) > 1 and path.parent.is_dir() else None
    hint = f" ({parent} exists, but holds no folder {path.name!r})" if parent else ""
    raise SeqVAEError(
        f"model folder not found: {name}{hint}; give the output_dir of a training run, the name of a shipped "
        f"model ({shipped}), or a Hugging Face Hub id such as user/repo"
    )


def _looks_like_hub_id(name: str) -> bool:
    """``user/repo``: two non-empty parts of Hub-legal characters, and no local path of that name."""
    parts = name.split("/")
    legal = all(part and all(c.isalnum() or c in "-_." for c in part) and not part.startswith(".") for part in parts)
    # "runs/x" with a local runs/ folder is a mistyped run folder, not a Hub id
    return len(parts) == 2 and legal and not Path(name).exists() and not Path(parts[0]).is_dir()


def _load_from_hub(repo_id: str, device: str) -> SeqVAEPipeline:
    try:
        model, tokenizer = _read_model(repo_id, device)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SeqVAEError(
            f"cannot load {repo_id!r} from the Hugging Face Hub (no local folder or shipped model has that name): "
            f"{reason}. Check the id and your connection, or download it and pass its folder"
        ) from None
    if not all(torch.isfinite(parameter).all() for parameter in model.parameters()):
        raise SeqVAEError(f"cannot load {repo_id!r}: its weights hold non-finite values (NaN or inf)")
    return SeqVAEPipeline(model, tokenizer, source=repo_id)


def train(recipe: str | Path | None = None, output_dir: str | Path | None = None, **overrides) -> SeqVAEPipeline:
    """Train from a recipe (and/or recipe keys as keyword arguments), evaluate, and return the
    loaded model, as ``seqvae train`` does from the command line.

        vae = seqvae.train("recipes/quickstart.yaml", data="my_molecules.csv", max_steps=500)
        vae.metrics                  # what the run measured (also in its metrics.json)
    """
    from .workflow import (
        run_and_evaluate,  # training's stack loads on first use, not on `import seqvae`
    )

    run_dir, _ = run_and_evaluate(recipe, overrides, output_dir)
    return load(run_dir)
