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
import os
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer

from .chem import canonical_smiles, compute_properties, is_valid, property_name, tanimoto_similarity, to_mol, without_rdkit_log
from .conditions import check_condition, condition_values, property_table, rerank_order
from .data import PaddingCollator, cut_to_length
from .errors import SeqVAEError
from .generation import decode_latents, ids_to_strings, interpolate_latents, sample_prior
from .metrics.molecules import reconstruction_accuracy, sample_quality
from .modeling import SeqVAE
from .tokenization import count_unknown, to_model_text

__all__ = ["SeqVAEPipeline", "load", "shipped_models", "train", "evaluate_run", "train_and_evaluate"]

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class SeqVAEPipeline:
    """A trained model with its tokenizer, taking and returning plain strings."""

    def __init__(self, model: SeqVAE, tokenizer, source: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: str | torch.device) -> "SeqVAEPipeline":
        """Move the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); returns ``self``."""
        self.model.to(device)
        return self

    @property
    def metrics(self) -> dict:
        """What training measured (the run folder's ``metrics.json``; empty when there is none)."""
        return read_run_metrics(self.source) if self.source else {}

    @property
    def trained_on(self) -> str | None:
        """The ``data`` the model was trained on, as its run folder's ``recipe.yaml`` names it."""
        recipe = Path(self.source) / "recipe.yaml" if self.source else None
        if recipe is None or not recipe.is_file():
            return None
        import yaml

        try:
            data = (yaml.safe_load(recipe.read_text()) or {}).get("data")
        except yaml.YAMLError:
            return None
        return None if data is None else str(data)

    @property
    def config(self):
        return self.model.config

    @property
    def representation(self) -> str:
        return self.model.config.representation

    @property
    def property_names(self) -> list[str]:
        """Properties the model can be conditioned on (empty for an unconditional model)."""
        return list(self.config.property_names)

    def __repr__(self) -> str:
        c = self.config
        parameters = sum(p.numel() for p in self.model.parameters())
        return (
            f"SeqVAEPipeline({c.representation}, {c.encoder_type}->{c.decoder_type}, "
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
            ("model", f"{c.encoder_type or 'no'} encoder -> {c.decoder_type} decoder" if c.latent_dim else f"{c.decoder_type} language model (no latent)"),
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

    SHARED_RUN_FILES = ("README.md", "metrics.json", "recipe.yaml", "data_report.json")  # copied when present

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
        for name in self.SHARED_RUN_FILES if source else ():
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

    # --- latents

    def _as_list(self, items) -> list[str]:
        return [items] if isinstance(items, str) else list(items)

    def tokenize(self, items) -> dict[str, torch.Tensor]:
        """Strings -> padded ``input_ids`` / ``attention_mask`` on the model's device."""
        items = self._as_list(items)
        if self.representation != "text":
            # Training canonicalises SMILES, so equivalent inputs should read the same.
            items = self._canonical_inputs(items)
        return self._tokenize_checked(items)

    def _tokenize_checked(self, items: list[str]) -> dict[str, torch.Tensor]:
        """:meth:`tokenize` for inputs already canonicalised (molecules) or plain sentences."""
        texts = []
        for item in items:
            text = item if self.representation == "text" else to_model_text(item, self.representation)
            if text is None:
                raise SeqVAEError(f"cannot convert {item!r} to {self.representation}")
            texts.append(text)
        # verbose=False: the warning about over-long inputs is ours, with the count and the first one
        ids = self._cut_to_model_length(self.tokenizer(texts, verbose=False)["input_ids"], items)
        empty = [item for item, row in zip(items, ids) if len(row) <= 2]  # <bos> <eos> only
        if empty:
            what = "sentence" if self.representation == "text" else "molecule"
            raise SeqVAEError(f"input {empty[0]!r} tokenizes to nothing: give a non-empty {what}")
        written = [text.split().count(self.tokenizer.unk_token) for text in texts] if self.representation == "text" else None
        unknown = count_unknown(ids, self.tokenizer.unk_token_id, written)
        if unknown.tokens:
            logger.warning(
                "%d symbol(s) in %d of %d input(s) are not in the model's vocabulary and were read as <unk>",
                unknown.tokens, unknown.sequences, len(ids),
            )
        batch = PaddingCollator(self.tokenizer.pad_token_id)([{"input_ids": x} for x in ids])
        return {key: value.to(self.model.device) for key, value in batch.items()}

    def _canonical_inputs(self, items: list[str]) -> list[str]:
        """Canonical SMILES of each input; an invalid one is an error naming it and its place."""
        canonical = [canonical_smiles(item) if isinstance(item, str) else None for item in items]
        if None in canonical:
            position = canonical.index(None)
            bad = sum(value is None for value in canonical)
            where = f" (input {position + 1} of {len(items)}; {bad} invalid in all)" if len(items) > 1 else ""
            raise SeqVAEError(f"{items[position]!r}{where} is not a valid SMILES (RDKit cannot parse it); fix or drop it")
        return canonical

    def _cut_to_model_length(self, ids: list[list[int]], items: list[str]) -> list[list[int]]:
        """Inputs longer than the model reads are cut to their first tokens and ``<eos>``, with
        a warning that counts them: the latent then describes only their beginning."""
        limit = self.config.max_sequence_length
        too_long = [index for index, row in enumerate(ids) if len(row) > limit]
        if too_long:
            first = too_long[0]
            logger.warning(
                "%d of %d input(s) are longer than the model's max_sequence_length (%d tokens with <bos>/<eos>) "
                "and were cut to it; the first, number %d, has %d tokens: %r",
                len(too_long), len(ids), limit, first + 1, len(ids[first]), str(items[first])[:60],
            )
        return [cut_to_length(row, limit, self.tokenizer.eos_token_id) for row in ids]

    @torch.no_grad()
    def encode(self, items, batch_size: int = 512) -> torch.Tensor:
        """Posterior means ``[B, latent_dim]`` of one string or a list of strings.

        Conditional models encode without conditions, so ``z`` carries the properties too.
        """
        if self.config.latent_dim == 0:
            raise SeqVAEError(
                "this model has no latent (latent_dim 0, a language model): there is nothing to encode, "
                "interpolate or reconstruct; it can sample and score sentences"
            )
        items = self._as_list(items)
        if self.representation != "text":
            items = self._canonical_inputs(items)  # all at once: an error names the input's place in the whole list
        means = []
        for start in range(0, len(items), batch_size):
            batch = self._tokenize_checked(items[start : start + batch_size])
            mu, _ = self.model.encode(batch["input_ids"], batch["attention_mask"])
            means.append(mu)
        return torch.cat(means)

    def decode(
        self, z: torch.Tensor, strategy: str = "greedy", seed: int | None = None, condition: dict | None = None, **options
    ):
        """Latents ``[B, latent_dim]`` (or one ``[latent_dim]``) -> list of strings.

        ``condition``: ``{property: target}`` for conditional models (default: none).
        """
        return self._decode(z, self._condition_vector(check_condition(self.config, condition)), strategy, seed, **options)

    def _decode(self, z, condition: torch.Tensor | None, strategy: str = "greedy", seed: int | None = None, **options):
        """:meth:`decode` with the condition as the model's input: one row, or one per latent."""
        z = torch.as_tensor(z, dtype=torch.float32, device=self.model.device)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        ids = decode_latents(self.model, z, strategy=strategy, generator=_generator(seed), condition=condition, **options)
        return ids_to_strings(self.tokenizer, ids, self.representation)

    def _condition_vector(self, checked: dict[str, float]) -> torch.Tensor | None:
        """A checked ``{property: target}`` -> the model's ``[condition_size]`` input."""
        if not self.config.num_properties:
            return None
        values = condition_values(self.config, checked).unsqueeze(0)
        return self.model.condition_vector(values, 1)[0]

    @torch.no_grad()
    def predict_properties(self, items, batch_size: int = 512) -> pd.DataFrame:
        """The property head's estimate for each string (no RDKit involved), one column per property."""
        if self.model.property_head is None:
            raise SeqVAEError(
                "this model has no property head; train with property_head_hidden_size > 0 and properties set"
            )
        predicted = self.model.predict_properties(self.encode(items, batch_size)).cpu().numpy()
        numeric = self.model.numeric_properties().cpu().numpy()  # the head is trained on numbers only
        return pd.DataFrame(predicted[:, numeric], columns=[n for n, keep in zip(self.property_names, numeric) if keep])

    def optimize(self, start, objective, steps: int = 100, **options) -> pd.DataFrame:
        """Move molecules through latent space toward a better predicted property.

        See :func:`seqvae.optimization.optimize_latents` for ``objective`` and the options.
        Returns one row per start molecule and decoded step, with RDKit-computed properties
        and the Tanimoto similarity to the start molecule.
        """
        from .optimization import optimize_latents

        return optimize_latents(self, self._as_list(start), objective, steps=steps, **options)

    def reconstruct(self, items, **options) -> list[str]:
        """Encode to the posterior mean and decode greedily."""
        return self.decode(self.encode(items), strategy="greedy", **options)

    def interpolate(self, start: str, end: str, steps: int = 8, method: str = "linear", condition=None, **options):
        """Decoded points on the path between the posterior means of ``start`` and ``end``
        (both included): ``method`` is ``linear`` or ``slerp``; ``options`` choose the decoding
        (greedy by default; ``strategy="beam"``, or ``"sample"`` with ``top_k`` / ``top_p``).

        Conditional models: ``condition`` is held fixed along the path (a dict such as
        ``{"money": "yes"}``), or interpolated too when it is a pair ``(at_start, at_end)``
        naming the same properties: numbers move from one target to the other, and labels
        blend their one-hot codes.
        """
        z = self.encode([start, end])
        path = interpolate_latents(z[0], z[1], steps, method)
        if isinstance(condition, (tuple, list)):
            return self._decode(path, self._condition_path(condition, steps), **options)
        return self.decode(path, condition=condition, **options)

    def _condition_path(self, pair, steps: int) -> torch.Tensor | None:
        """``[steps, condition_size]`` from the start condition to the end condition (``None``
        when both are empty)."""
        if len(pair) != 2:
            raise SeqVAEError(f"an interpolated condition is a pair (at_start, at_end), got {len(pair)} items")
        first, last = (check_condition(self.config, condition) for condition in pair)
        if set(first) != set(last):
            raise SeqVAEError(
                f"the start and end conditions must name the same properties, got {sorted(first)} and {sorted(last)}"
            )
        if not first:
            return None
        start, end = (self._condition_vector(checked) for checked in (first, last))
        return interpolate_latents(start, end, steps, "linear")

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

    def analogy(self, a: str, b: str, c: str, **options) -> str:
        """"``a`` is to ``b`` as ``c`` is to ?": decodes ``z_c + z_b - z_a`` (posterior means)."""
        z = self.encode([a, b, c])
        return self.decode(z[2] + z[1] - z[0], **options)[0]

    # --- sampling

    def sample(
        self,
        num_samples: int = 1,
        seed: int | None = None,
        progress: bool = False,
        condition: dict | None = None,
        rerank: int = 1,
        **options,
    ) -> list[str]:
        """Strings decoded from prior samples ``z ~ N(0, I)``.

        Args:
            condition: ``{property: target}`` (conditional models); e.g. ``{"logP": 2.5}``.
            rerank: draw ``rerank`` times as many candidates and keep the ``num_samples`` whose
                head-predicted properties are closest to the targets (needs a property head).
            options: ``strategy`` (``sample``/``greedy``), ``temperature``, ``top_k``, ``top_p``,
                ``batch_size``, ``guidance_scale`` (classifier-free guidance toward the condition),
                ``precision`` (``bf16`` decodes with a bfloat16 copy of the model, about twice as
                fast on CPUs with bfloat16 units and on GPUs); see :func:`seqvae.generation.decode_latents`.
        """
        return self._sample(num_samples, seed, progress, check_condition(self.config, condition), rerank, options)

    def _sample(self, num_samples, seed, progress, checked: dict, rerank: int, options: dict) -> list[str]:
        if not isinstance(rerank, int) or rerank < 1:
            raise SeqVAEError(f"rerank must be an integer >= 1 (1: no re-ranking), got {rerank!r}")
        if rerank > 1 and not checked:
            raise SeqVAEError("rerank needs a condition to rank against, e.g. condition={'logP': 2.5}")
        if rerank > 1 and self.model.property_head is None:
            raise SeqVAEError("rerank needs a model with a property head (property_head_hidden_size > 0)")
        ids = sample_prior(
            self.model,
            num_samples * rerank,
            generator=_generator(seed),
            progress=progress,
            condition=self._condition_vector(checked),
            **options,
        )
        strings = ids_to_strings(self.tokenizer, ids, self.representation)
        if rerank > 1:
            strings = self._rerank(strings, checked, num_samples)
        return strings

    def _rerank(self, candidates: list[str], checked: dict[str, float], keep: int) -> list[str]:
        """The ``keep`` valid candidates whose predicted properties are closest to the targets;
        invalid ones only fill up the list when too few are valid."""
        flags = [is_valid(s) for s in candidates]
        valid = [s for s, ok in zip(candidates, flags) if ok]
        invalid = [s for s, ok in zip(candidates, flags) if not ok]
        if valid:
            predicted = torch.tensor(self.predict_properties(valid).to_numpy())
            valid = [valid[i] for i in rerank_order(predicted, self.config, checked)]
        return (valid + invalid)[:keep]

    def sample_frame(
        self,
        num_samples: int = 1,
        seed: int | None = None,
        condition: dict | None = None,
        rerank: int = 1,
        progress: bool = False,
        mols: bool = True,
        properties: list[str] | tuple[str, ...] = (),
        **options,
    ) -> pd.DataFrame:
        """Prior samples as a DataFrame: ``smiles``, ``valid``, for conditional models each
        property measured by RDKit with its ``_target`` and ``_error`` (measured - target),
        the built-in ``properties`` asked for (any model, e.g. ``["logP", "qed"]``), and with
        ``mols`` a ``mol`` column of RDKit molecules (``None`` when invalid) that Jupyter draws
        as pictures. Text models: a ``text`` column, and for conditional ones each attribute's
        ``_target``, the value measured on the sentence where the attribute has a rule
        (``length``: its words; ``money``: ``yes`` / ``no``) and, for numbers, the ``_error``."""
        checked = check_condition(self.config, condition)
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
        return with_mol_column(frame) if mols else frame

    def neighbours(self, items, num_samples: int = 12, scale: float = 1.0, seed: int | None = None, mols: bool = True) -> pd.DataFrame:
        """Decodes of ``z = mu + scale * sigma * eps`` around a molecule's (or sentence's)
        posterior, most similar first: ``smiles``, ``valid``, ``similarity`` (Tanimoto, Morgan
        radius 2, to the input) and ``mol``; text models: ``text``. For a list of inputs, one
        block per input with an ``input`` column.

        ``scale`` < 1 stays closer to the input, > 1 wanders further.
        """
        if num_samples < 1 or scale < 0:
            raise SeqVAEError(f"num_samples must be >= 1 and scale >= 0, got {num_samples} and {scale}")
        if not isinstance(items, str):
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


def samples_frame(smiles: list[str]) -> pd.DataFrame:
    """Generated SMILES with a ``valid`` column."""
    return pd.DataFrame({"smiles": smiles, "valid": [is_valid(s) for s in smiles]})


def read_run_metrics(run_dir: str | Path) -> dict:
    """A run folder's ``metrics.json`` (empty when training has not written it)."""
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def with_mol_column(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a ``mol`` column (RDKit molecules from ``smiles``) that Jupyter renders as images."""
    from rdkit.Chem import PandasTools

    with without_rdkit_log():
        frame["mol"] = [to_mol(s) for s in frame["smiles"]]
    PandasTools.ChangeMoleculeRendering(frame, renderer="image")  # this frame only, not all of pandas
    return frame


def _generator(seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator().manual_seed(seed)


PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # models that ship with the package


def shipped_models() -> list[str]:
    """Names of the pretrained models in the package (``seqvae.load(name)`` reads them offline)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(folder.name for folder in PRETRAINED_DIR.iterdir() if (folder / "config.json").is_file())


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
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise SeqVAEError(
            f"{folder} is not a complete seqvae model folder: missing {', '.join(missing)}. "
            "Point to the output_dir of a finished run, or to one of its checkpoint-* folders"
        )
    try:
        model, tokenizer = _read_model(folder, device)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise SeqVAEError(f"cannot load the model in {folder}: {error}") from None
    return SeqVAEPipeline(model, tokenizer, source=str(folder))


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
    return SeqVAEPipeline(model, tokenizer, source=repo_id)


def evaluate_run(
    vae: SeqVAEPipeline,
    train_smiles: list[str],
    validation_smiles: list[str],
    *,
    num_prior_samples: int = 1000,
    temperature: float = 1.0,
    num_reconstruction_molecules: int = 1000,
    seed: int = 0,
) -> dict:
    """The end-of-training evaluation written to ``metrics.json``; returns ``(metrics, samples)``.

    Reconstruction accuracy: greedy decoding from the posterior mean of validation molecules,
    exact canonical match. Prior samples: ``num_prior_samples`` at ``temperature``; validity,
    uniqueness among valid, novelty against ``train_smiles``.
    """
    started = time.monotonic()
    held_out = list(validation_smiles[:num_reconstruction_molecules])
    reconstructed = vae.reconstruct(held_out) if held_out else []
    samples = vae.sample(num_prior_samples, seed=seed, temperature=temperature, progress=True)
    quality = sample_quality(samples, train_smiles)
    return {
        "reconstruction_accuracy": round(reconstruction_accuracy(held_out, reconstructed), 4),
        "num_reconstructed": len(held_out),
        "prior_samples": num_prior_samples,
        "temperature": temperature,
        **{name: round(value, 4) for name, value in quality.items()},
        "sampling_seconds": round(time.monotonic() - started, 2),
    }, samples


def train_and_evaluate(
    recipe: str | Path | None = None,
    overrides: dict | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
) -> dict:
    """Train from a recipe, evaluate, and write ``metrics.json``, ``samples.csv`` and
    ``report.png`` in the run.

    This is what ``seqvae train`` runs. Returns the metrics: validation ELBO terms, token
    accuracy and active units, reconstruction accuracy, and validity / uniqueness / novelty of
    prior samples, with wall times.
    """
    return _train_and_evaluate(recipe, overrides, output_dir, resume)[1]


def _train_and_evaluate(recipe, overrides, output_dir, resume: bool) -> tuple[Path, dict]:
    from .training import train

    started = time.monotonic()
    run = train(recipe, overrides, output_dir, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:  # multi-process launch: rank 0 evaluates and writes
        return run.output_dir, run.validation_metrics
    eval_args = run.evaluation_args
    vae = SeqVAEPipeline(run.model, run.tokenizer, source=str(run.output_dir))
    if vae.representation == "text":
        generation_metrics, samples = evaluate_text_run(vae, run.train_smiles, run.validation["text"], eval_args)
    else:
        # Canonicalised training SMILES can be compared as they are (no minute-long re-parse).
        train_smiles = set(run.train_smiles) if run.data_args.canonicalize else run.train_smiles
        generation_metrics, samples = evaluate_run(
            vae,
            train_smiles,
            run.validation["smiles"],
            num_prior_samples=eval_args.num_prior_samples,
            temperature=eval_args.sample_temperature,
            num_reconstruction_molecules=eval_args.num_reconstruction_molecules,
            seed=0,
        )
    metrics = {
        **{key.removeprefix("eval_"): value for key, value in run.validation_metrics.items() if key != "epoch"},
        **generation_metrics,
        "train_seconds": round(run.train_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "data": run.report.summary(),
    }
    (run.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    frame = pd.DataFrame({"text": samples}) if vae.representation == "text" else samples_frame(samples)
    frame.to_csv(run.output_dir / "samples.csv", index=False)  # the same columns as sample_frame
    _write_report(run.output_dir)
    return run.output_dir, metrics


def _write_report(run_dir: Path) -> None:
    """``report.png`` in the run folder; a failed picture must not fail a finished training run."""
    from .viz import write_report

    try:
        path = write_report(run_dir)
        logger.info("wrote %s (training curves and samples; `seqvae report %s` redraws it)", path, run_dir)
    except Exception as error:  # noqa: BLE001 - the run's model and metrics are already saved
        logger.warning("could not draw %s/report.png: %s", run_dir, error)


def train(recipe: str | Path | None = None, output_dir: str | Path | None = None, **overrides) -> SeqVAEPipeline:
    """Train from a recipe (and/or recipe keys as keyword arguments), evaluate, and return the
    loaded model, as ``seqvae train`` does from the command line.

        vae = seqvae.train("recipes/quickstart.yaml", data="my_molecules.csv", max_steps=500)
        vae.metrics                  # what the run measured (also in its metrics.json)
    """
    run_dir, _ = _train_and_evaluate(recipe, overrides, output_dir, resume=False)
    return load(run_dir)


def evaluate_text_run(vae: SeqVAEPipeline, train_texts: list[str], validation_texts: list[str], eval_args) -> tuple[dict, list[str]]:
    """The end-of-training evaluation of a text model: :func:`seqvae.metrics.text.text_metrics`
    on held-out sentences, and prior samples with the share that are new and distinct."""
    from .metrics.text import text_metrics

    started = time.monotonic()
    held_out = list(validation_texts[: eval_args.num_reconstruction_molecules])
    metrics = {}
    if held_out:
        metrics = text_metrics(vae, held_out, num_importance_samples=eval_args.num_importance_samples, progress=True)
        metrics.pop("likelihood")
    samples = vae.sample(eval_args.num_prior_samples, seed=0, temperature=eval_args.sample_temperature, progress=True)
    training = set(train_texts)
    metrics.update(
        num_evaluated_sentences=len(held_out),
        num_importance_samples=eval_args.num_importance_samples if vae.config.latent_dim else 1,
        prior_samples=len(samples),
        temperature=eval_args.sample_temperature,
        empty_samples=sum(not text.strip() for text in samples) / len(samples),
        unique_samples=len(set(samples)) / len(samples),
        novel_samples=sum(text not in training for text in samples) / len(samples),
        evaluation_seconds=round(time.monotonic() - started, 2),
    )
    return metrics, samples
