"""A trained model with its tokenizer, strings in and strings out: the operations every
evaluation and the notebook facade build on.

:class:`SeqVAEInference` reads its inputs as the model's run read its training rows
(:class:`~seqvae.data.normalization.InputNormalization`), tokenises and checks them, and decodes
latents back to strings. Metrics, latent optimisation and the end-of-training evaluation take
one; :class:`seqvae.pipeline.SeqVAEPipeline` (what ``seqvae.load`` returns) extends it with
tables, pictures and sharing.
"""

from __future__ import annotations

import functools
import logging

import pandas as pd
import torch
from tqdm.auto import tqdm

from .chem import is_valid
from .conditions import check_condition, condition_values, rerank_order
from .data import PaddingCollator, cut_to_length
from .data.normalization import InputNormalization
from .errors import SeqVAEError
from .generation import (
    check_count,
    decode_latents,
    ids_to_strings,
    interpolate_latents,
    sample_prior,
)
from .modeling import SeqVAE
from .tokenization import count_unknown, to_model_text

__all__ = ["SeqVAEInference", "samples_frame", "wants_progress"]

logger = logging.getLogger(__name__)

# Row counts from which a call takes more than a few seconds on a CPU (the shipped ZINC model on
# 2 cores): from there a call shows a progress bar unless it is given progress=False.
SLOW_SAMPLING = 500  # sampling decodes ~75 molecules a second
SLOW_ENCODING = 5_000  # encoding reads a few thousand a second
# Prior sampling's default: bf16 / int8 matched fp32's validity within a point and its logP MAD
# on trained models (docs/benchmarks.md, "Reduced precision"); decoding of given latents
# (reconstruct, interpolate, beams) stays fp32, where a flipped token changes the answer.
SAMPLING_PRECISION = "auto"


def wants_progress(progress: bool | None, rows: int, slow_from: int) -> bool:
    """Whether to show a progress bar: ``progress`` when given (``False`` silences it), else
    only for a call of at least ``slow_from`` rows, one that will take more than a few seconds."""
    return rows >= slow_from if progress is None else bool(progress)


class SeqVAEInference:
    """A trained model with its tokenizer, taking and returning plain strings.

    Args:
        model: the :class:`~seqvae.modeling.SeqVAE`.
        tokenizer: its tokenizer.
        source: where it was loaded from (a run folder, a shipped name, a Hub id), if anywhere.
        normalization: how inputs are read; the run's data settings (default: canonical SMILES,
            sentences as given with whitespace collapsed).
    """

    def __init__(self, model: SeqVAE, tokenizer, source: str | None = None, normalization: InputNormalization | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source
        self.normalization = normalization or InputNormalization(model.config.representation)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: str | torch.device) -> "SeqVAEInference":
        """Move the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); returns ``self``."""
        self.model.to(device)
        return self

    @property
    def config(self):
        return self.model.config

    @property
    def representation(self) -> str:
        return self.model.config.representation

    @functools.cached_property
    def smiles_syntax(self):
        """The SMILES grammar of this model's vocabulary, which decoding follows unless told
        ``syntax=False``; ``None`` for SELFIES and text, and for SMILES vocabularies of merged
        pieces (BPE), whose tokens the grammar cannot read."""
        if self.representation != "smiles":
            return None
        from .syntax import SmilesSyntax  # numba: loaded only when a SMILES model decodes

        return SmilesSyntax.for_tokenizer(self.tokenizer)

    def _decoding_options(self, options: dict) -> dict:
        """``options`` with the user's ``syntax`` switch (default ``True``: SMILES decoding only
        writes tokens that keep the string valid) turned into the grammar, or ``None``."""
        wanted = options.get("syntax", True)
        if not isinstance(wanted, bool):
            raise SeqVAEError(f"syntax must be True or False, got {wanted!r}")
        return {**options, "syntax": self.smiles_syntax if wanted else None}

    @property
    def property_names(self) -> list[str]:
        """Properties the model can be conditioned on (empty for an unconditional model)."""
        return list(self.config.property_names)

    # --- latents

    def _as_list(self, items) -> list[str]:
        return [items] if isinstance(items, str) else list(items)

    def tokenize(self, items) -> dict[str, torch.Tensor]:
        """Strings -> padded ``input_ids`` / ``attention_mask`` on the model's device."""
        return self._tokenize_normalized(self.normalize(self._as_list(items)))

    def _tokenize_normalized(self, items: list[str]) -> dict[str, torch.Tensor]:
        """:meth:`tokenize` for inputs already normalised."""
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

    def normalize(self, items) -> list[str]:
        """The inputs as the model's training run read its rows (:attr:`normalization`: canonical
        SMILES, largest fragment, lower-cased sentences); an invalid molecule is an error naming
        it and its place."""
        items = self._as_list(items)
        normalized = [self.normalization(item) if isinstance(item, str) else None for item in items]
        if None in normalized:
            raise self._invalid_input_error(items, normalized)
        return normalized

    def normalize_each(self, items) -> list[str | None]:
        """:meth:`normalize` with ``None`` in place of each input it refuses (invalid, too long, not
        a string), for batch jobs that skip or flag such rows instead of stopping at the first."""
        return [self._normalized_or_none(item) for item in self._as_list(items)]

    def _normalized_or_none(self, item) -> str | None:
        if not isinstance(item, str):
            return None
        try:
            return self.normalization(item)
        except SeqVAEError:  # refused before parsing (too long): a row to skip or flag like an invalid one
            return None

    def _invalid_input_error(self, items: list, normalized: list) -> SeqVAEError:
        """The error naming the first refused input, its place, and how many there are."""
        position = normalized.index(None)
        bad = sum(value is None for value in normalized)
        where = f" (input {position + 1} of {len(items)}; {bad} invalid in all)" if len(items) > 1 else ""
        item = items[position]
        if not isinstance(item, str):
            what = "sentence" if self.representation == "text" else "SMILES"
            return SeqVAEError(f"{item!r}{where} is not a string: give each {what} as text")
        return SeqVAEError(f"{item!r}{where} is not a valid SMILES (RDKit cannot parse it); fix or drop it")

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
    def encode(self, items, batch_size: int = 512, on_invalid: str = "error", progress: bool | None = None) -> torch.Tensor:
        """Posterior means ``[B, latent_dim]`` of one string or a list of strings.

        Conditional models encode without conditions, so ``z`` carries the properties too.

        ``on_invalid``: ``"error"`` (default) refuses an invalid input, naming it and its place;
        ``"nan"`` gives its row NaN latents instead, so that a batch job keeps one row per input
        (``torch.isnan(z).any(dim=1)`` finds them).

        ``progress``: a progress bar; by default only for long lists (``SLOW_ENCODING`` inputs),
        ``False`` never.
        """
        if self.config.latent_dim == 0:
            raise SeqVAEError(
                "this model has no latent (latent_dim 0, a language model): there is nothing to encode, "
                "interpolate or reconstruct; it can sample and score sentences"
            )
        check_count("batch_size", batch_size)
        if on_invalid not in ("error", "nan"):
            raise SeqVAEError(f"on_invalid must be 'error' or 'nan', got {on_invalid!r}")
        # all at once: an error names the input's place in the whole list
        items = self.normalize(items) if on_invalid == "error" else self.normalize_each(items)
        return self._encode_normalized(items, batch_size, progress)

    @torch.no_grad()
    def _encode_normalized(self, items: list[str | None], batch_size: int = 512, progress: bool | None = False) -> torch.Tensor:
        """:meth:`encode` for inputs already normalised (``None``: a NaN row)."""
        valid = [index for index, item in enumerate(items) if item is not None]
        means = torch.full((len(items), self.config.latent_dim), float("nan"), dtype=self.model.dtype, device=self.device)
        shown = wants_progress(progress, len(valid), SLOW_ENCODING)
        with tqdm(total=len(valid), desc="encoding", unit="mol", disable=not shown) as bar:
            for start in range(0, len(valid), batch_size):
                rows = valid[start : start + batch_size]
                batch = self._tokenize_normalized([items[row] for row in rows])
                mu, _ = self.model.encode(batch["input_ids"], batch["attention_mask"])
                means[rows] = mu
                bar.update(len(rows))
        return means

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
        options = self._decoding_options(options)
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
        check_count("steps", steps, minimum=2)  # before the encoding
        for name, item in (("start", start), ("end", end)):
            self._check_endpoint(name, item)
        z = self.encode([start, end])
        path = interpolate_latents(z[0], z[1], steps, method)
        if isinstance(condition, (tuple, list)):
            return self._decode(path, self._condition_path(condition, steps), **options)
        return self.decode(path, condition=condition, **options)

    def _check_endpoint(self, name: str, item) -> None:
        """An invalid interpolation endpoint is an error naming which end it is."""
        try:
            self.normalize([item])
        except SeqVAEError as error:
            raise SeqVAEError(f"interpolation {name}: {error}") from None

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

    def analogy(self, a: str, b: str, c: str, **options) -> str:
        """"``a`` is to ``b`` as ``c`` is to ?": decodes ``z_c + z_b - z_a`` (posterior means)."""
        z = self.encode([a, b, c])
        return self.decode(z[2] + z[1] - z[0], **options)[0]

    # --- sampling

    def sample(
        self,
        num_samples: int = 1,
        seed: int | None = None,
        progress: bool | None = None,
        condition: dict | None = None,
        rerank: int = 1,
        **options,
    ) -> list[str]:
        """Strings decoded from prior samples ``z ~ N(0, I)``.

        Args:
            progress: a progress bar; by default only from ``SLOW_SAMPLING`` samples on,
                ``False`` never.
            condition: ``{property: target}`` (conditional models); e.g. ``{"logP": 2.5}``.
            rerank: draw ``rerank`` times as many candidates and keep the ``num_samples`` whose
                head-predicted properties are closest to the targets (needs a property head).
            options: ``strategy`` (``sample``/``greedy``), ``temperature``, ``top_k``, ``top_p``,
                ``batch_size``, ``guidance_scale`` (classifier-free guidance toward the condition),
                ``precision`` (default ``auto``: the fastest that this machine runs well, whose
                quality was measured equal to fp32's; ``fp32`` for samples that repeat across
                machines), ``syntax`` (SMILES models, default ``True``: only tokens that keep the
                SMILES valid, see :mod:`seqvae.syntax`); see
                :func:`seqvae.generation.decode_latents`.
        """
        return self._sample(num_samples, seed, progress, check_condition(self.config, condition), rerank, options)

    def _sample(self, num_samples, seed, progress, checked: dict, rerank: int, options: dict) -> list[str]:
        check_count("num_samples", num_samples)
        if isinstance(rerank, bool) or not isinstance(rerank, int) or rerank < 1:
            raise SeqVAEError(f"rerank must be an integer >= 1 (1: no re-ranking), got {rerank!r}")
        if rerank > 1 and not checked:
            raise SeqVAEError("rerank needs a condition to rank against, e.g. condition={'logP': 2.5}")
        if rerank > 1 and self.model.property_head is None:
            raise SeqVAEError("rerank needs a model with a property head (property_head_hidden_size > 0)")
        ids = sample_prior(
            self.model,
            num_samples * rerank,
            generator=_generator(seed),
            progress=wants_progress(progress, num_samples * rerank, SLOW_SAMPLING),
            condition=self._condition_vector(checked),
            **self._decoding_options({"precision": SAMPLING_PRECISION, **options}),
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


def samples_frame(smiles: list[str]) -> pd.DataFrame:
    """Generated SMILES with a ``valid`` column."""
    return pd.DataFrame({"smiles": smiles, "valid": [is_valid(s) for s in smiles]})


def _generator(seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator().manual_seed(seed)
