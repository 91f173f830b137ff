"""The recipe's argument groups: dataclasses whose fields are the YAML keys.

* :class:`DataArguments`: where the corpus comes from and how it is cleaned;
* :class:`ObjectiveArguments`: the VAE objective (KL schedule, free bits, MMD, word dropout,
  condition hiding), declared once and read by :mod:`seqvae.objectives`;
* :class:`SeqVAETrainingArguments`: ``transformers.TrainingArguments`` plus the objective;
* :class:`EvaluationArguments`: the evaluation at the end of training.

Model keys are the arguments of :class:`~seqvae.configuration.SeqVAEConfig`;
:mod:`seqvae.recipe` routes each YAML key to its owner.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainingArguments

from .errors import SeqVAEError

__all__ = [
    "DataArguments",
    "ObjectiveArguments",
    "SeqVAETrainingArguments",
    "EvaluationArguments",
    "KL_SCHEDULES",
    "training_arguments",
]

logger = logging.getLogger(__name__)

KL_SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")
LOSS_REDUCTIONS = ("sequence", "token")


@dataclass
class DataArguments:
    """Where the molecules (or sentences) come from and how they are cleaned.

    Attributes:
        data: a file (CSV, SMILES, text, Parquet; optionally gzipped except Parquet), a folder
            or glob of shards, a list of these, ``bundled`` (RDKit's ~15k molecules),
            ``moses`` / ``zinc250k``, ``ptb`` for text, or ``hub:NAME`` (a Hugging Face Hub
            dataset, molecules or text).
        validation_data: held-out corpus for validation (e.g. ``ptb:valid``); when empty,
            ``validation_fraction`` of ``data`` is held out.
        data_dir: folder holding a named corpus locally (otherwise it is downloaded).
        smiles_column: CSV column with SMILES; detected when empty.
        delimiter: the field separator of CSV files (one character; ``tab`` for a tab);
            detected (comma, tab or semicolon) when empty.
        representation: ``smiles``, ``selfies`` or ``text``.
        canonicalize: rewrite SMILES in RDKit canonical form.
        keep_largest_fragment: drop counter-ions and solvents.
        standardize: standardise each molecule with RDKit's ``rdMolStandardize``: largest
            fragment, uncharge (neutralise), canonical tautomer, then canonical SMILES; the
            changes are counted in ``data_report.json`` and inputs are read the same way at
            inference. Default (empty): on for your own files (assay exports hold salts and
            charge states), off for the named corpora (``bundled``, MOSES, ZINC250k...), which
            stay as published for their benchmarks; the run's recipe.yaml records the choice.
        deduplicate: skip repeated molecules.
        max_length: longest sequence in tokens (``<bos>``/``<eos>`` included); longer rows are
            skipped and reported.
        validation_fraction: share of molecules held out for validation.
        num_proc: processes for checking molecules.
        properties: condition the model on these properties (a conditional VAE): built-in
            RDKit properties (``logP``, ``qed``, ``SAS``, ``MW``, ``TPSA``, ``HBD``, ``HBA``,
            ``rotatable_bonds``, ``rings``) or numeric CSV columns; for text, attributes: CSV /
            Hub columns (labels or numbers) or attributes computed by ``attribute_rules``.
        property_units: ``{column: unit}`` for CSV-column properties (built-ins know theirs).
        attribute_rules: text attributes computed from each sentence, ``{name: rule}``:
            ``words`` (word count) or ``contains:TOKEN`` (``yes`` / ``no``).
        categorical_attributes: text attribute columns to read as labels although their values
            look like numbers (class ids); a column without any number is read as labels anyway.
        text_tokenizer: for text, ``word``, ``bpe`` (trained on the corpus) or a pretrained
            Hugging Face tokenizer's Hub name or local folder.
        tokenizer_vocab_size: vocabulary cap of a trained text tokenizer (specials included).
        tokenizer_min_frequency: words (or BPE merges) seen fewer times are left out.
        text_column: CSV / Hub column holding the sentences; detected when empty.
        hub_split: split of a Hub dataset to read.
        lowercase: lower-case sentences.
        long_sentences: ``skip`` or ``truncate`` sentences longer than ``max_length`` tokens
            (counted in the data report either way).
        streaming: read the training corpus as a stream (``datasets.IterableDataset``): rows are
            checked and tokenised on the fly, shuffled in a buffer and split across processes,
            so memory stays flat in the corpus size. Needs ``max_steps``.
        shuffle_buffer_size: rows held in the streaming shuffle buffer.
        vocabulary_sample_size: rows read to build the vocabulary of a streamed corpus.
        randomized_smiles: while training, spell each molecule from a random atom order every
            time it is read (encoder input and decoder target alike); validation reads the
            stored spelling.
    """

    data: str = "bundled"
    validation_data: str | None = None
    data_dir: str | None = None
    smiles_column: str | None = None
    delimiter: str | None = None
    representation: str = "smiles"
    canonicalize: bool = True
    keep_largest_fragment: bool = False
    # None: decided by the corpus (seqvae.data.normalization.standardizes) and written resolved into
    # the run's recipe.yaml; a run saved before this key existed reads it as off (runs.read_data_settings).
    standardize: bool | None = None
    deduplicate: bool = True
    max_length: int = 100
    validation_fraction: float = 0.05
    num_proc: int = 1
    properties: list[str] = dataclasses.field(default_factory=list)
    property_units: dict[str, str] = dataclasses.field(default_factory=dict)
    attribute_rules: dict[str, str] = dataclasses.field(default_factory=dict)
    categorical_attributes: list[str] = dataclasses.field(default_factory=list)
    text_tokenizer: str = "word"
    tokenizer_vocab_size: int = 10000
    tokenizer_min_frequency: int = 1
    text_column: str | None = None
    hub_split: str = "train"
    lowercase: bool = False
    long_sentences: str = "skip"
    streaming: bool = False
    shuffle_buffer_size: int = 10000
    vocabulary_sample_size: int = 200000
    randomized_smiles: bool = False

    def __post_init__(self):
        if self.randomized_smiles and self.representation == "text":
            raise SeqVAEError("randomized_smiles needs molecules (representation smiles or selfies), not text")


@dataclass
class ObjectiveArguments:
    """The VAE objective's settings (see :func:`seqvae.objectives.vae_loss`).

    Attributes:
        loss_reduction: ``sequence`` (reconstruction NLL summed over tokens) or ``token``
            (averaged over tokens, MOSES-style). The KL is always per sequence.
        kl_schedule: ``constant`` (always ``kl_max_weight``), ``linear`` (``kl_min_weight`` to
            ``kl_max_weight`` over ``kl_warmup_steps`` after ``kl_start_step``), ``sigmoid``
            (Bowman et al. 2016: a logistic curve centred half-way through the rise) or
            ``cyclical`` (Fu et al. 2019: ``kl_num_cycles`` cycles over training; in each, a
            linear rise over ``kl_cycle_ratio`` of the cycle, then ``kl_max_weight``).
        kl_min_weight, kl_max_weight: range of the KL weight.
        kl_start_step: steps at ``kl_min_weight`` before the rise (linear, sigmoid).
        kl_warmup_steps: length of the rise (linear, sigmoid).
        kl_num_cycles, kl_cycle_ratio: the cyclical schedule.
        free_bits: KL floor per latent dimension, in nats (Kingma et al. 2016).
        free_bits_total: KL floor for the whole latent, in nats.
        mmd_weight: weight of the MMD between the batch's latents and N(0, I) draws; with a low
            KL weight it keeps prior samples where the molecules' latents are. 0: off.
        mmd_with_conditions: conditional models: the MMD compares ``(z, condition)`` pairs with
            ``(N(0, I) draw, the same condition)``, so that ``z`` is also pulled to be
            independent of the condition and the decoder takes the properties from ``c``.
        word_dropout: probability of replacing a decoder input token by ``<unk>``.
        condition_drop_probability: conditional models: chance of hiding each property from
            the model in a training example, so that any subset of conditions works.
        unconditional_probability: chance of hiding all properties in an example, so that
            sampling without conditions works (and the property head has examples to learn from).
        property_loss_weight: weight of the property head's mean squared error (normalised
            units).
        rescale_schedules: the step counts of the schedules (``kl_start_step``,
            ``kl_warmup_steps``, ``autoencoder_pretraining_steps``) are written for one process;
            launched on N processes, each optimiser step reads N per-device batches, so the
            counts are divided by N to cover the same number of examples. False: used as written.
    """

    loss_reduction: str = "sequence"
    kl_schedule: str = "linear"
    kl_min_weight: float = 0.0
    kl_max_weight: float = 1.0
    kl_start_step: int = 0
    kl_warmup_steps: int = 1000
    kl_num_cycles: int = 4
    kl_cycle_ratio: float = 0.5
    free_bits: float = 0.0
    free_bits_total: float = 0.0
    mmd_weight: float = 0.0
    mmd_with_conditions: bool = False
    word_dropout: float = 0.0
    condition_drop_probability: float = 0.3
    unconditional_probability: float = 0.2
    property_loss_weight: float = 1.0
    rescale_schedules: bool = True

    def __post_init__(self):
        self.check_objective()

    def check_objective(self) -> None:
        """Raise :class:`SeqVAEError` naming the first setting out of its range."""
        if self.kl_schedule not in KL_SCHEDULES:
            raise SeqVAEError(f"kl_schedule={self.kl_schedule!r} is not supported; choose one of {', '.join(KL_SCHEDULES)}")
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise SeqVAEError(f"loss_reduction must be 'sequence' or 'token', got {self.loss_reduction!r}")
        if self.kl_max_weight < self.kl_min_weight:
            raise SeqVAEError(f"kl_max_weight ({self.kl_max_weight}) is below kl_min_weight ({self.kl_min_weight})")
        if not 0.0 <= self.word_dropout < 1.0:
            raise SeqVAEError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        for name in ("condition_drop_probability", "unconditional_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SeqVAEError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("free_bits", "free_bits_total", "mmd_weight", "kl_warmup_steps", "kl_start_step", "property_loss_weight"):
            if getattr(self, name) < 0:
                raise SeqVAEError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.mmd_with_conditions and self.mmd_weight <= 0:
            raise SeqVAEError("mmd_with_conditions needs an MMD term: set mmd_weight > 0 (e.g. 10)")
        if self.kl_num_cycles < 1 or not 0.0 < self.kl_cycle_ratio <= 1.0:
            raise SeqVAEError(
                f"cyclical KL needs kl_num_cycles >= 1 and 0 < kl_cycle_ratio <= 1, "
                f"got {self.kl_num_cycles} and {self.kl_cycle_ratio}"
            )


@dataclass
class SeqVAETrainingArguments(TrainingArguments, ObjectiveArguments):
    """``TrainingArguments`` plus the VAE objective (:class:`ObjectiveArguments`) and:

    Attributes:
        max_train_seconds: stop after this much wall time (0: no limit); a safety net for
            recipes sized to a time budget, the step count still drives the schedules.
        autoencoder_pretraining_steps: train this many steps as a plain autoencoder (KL weight
            0), then re-initialise the decoder and train the VAE (Li et al. 2019); the KL
            schedule starts after them. 0: off.
        max_tokens_per_chunk: a batch holding more tokens (rows x padded length) runs its
            forward and backward in row chunks of at most this many tokens, whose gradients add
            up to the batch's: peak memory follows the chunk, not the longest batch. The sum is
            exact without free bits (free bits floor each chunk's KL instead of the batch's).
            0: whole batches.
        max_nonfinite_steps: a step whose loss or gradients are not finite (NaN / inf) is
            skipped (no weight update); this many such steps in a row stop the run as diverged,
            with the weights of the last finite step.
    """

    max_train_seconds: float = 0.0
    autoencoder_pretraining_steps: int = 0
    max_tokens_per_chunk: int = 0
    max_nonfinite_steps: int = 10

    def __post_init__(self):
        TrainingArguments.__post_init__(self)
        self.check_objective()
        for name in ("max_train_seconds", "autoencoder_pretraining_steps", "max_tokens_per_chunk"):
            if getattr(self, name) < 0:
                raise SeqVAEError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_nonfinite_steps < 1:
            raise SeqVAEError(f"max_nonfinite_steps must be >= 1, got {self.max_nonfinite_steps}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise SeqVAEError(f"max_steps must be >= 1 (or -1: train num_train_epochs), got {self.max_steps}")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            raise SeqVAEError(f"num_train_epochs must be > 0 when max_steps is not set, got {self.num_train_epochs}")
        if self.max_steps > 0 and self.autoencoder_pretraining_steps >= self.max_steps:
            raise SeqVAEError(
                f"autoencoder_pretraining_steps ({self.autoencoder_pretraining_steps}) must be below max_steps "
                f"({self.max_steps}): the decoder is re-initialised when pre-training ends"
            )


@dataclass
class EvaluationArguments:
    """The evaluation at the end of training.

    Attributes:
        num_prior_samples: molecules sampled from the prior for validity / uniqueness / novelty.
        sample_temperature: softmax temperature of those samples.
        num_reconstruction_molecules: validation molecules (or sentences) for reconstruction
            accuracy (and, for text, the likelihood and latent diagnostics).
        num_importance_samples: text models: samples per sentence of the IW-NLL estimate.
    """

    num_prior_samples: int = 1000
    sample_temperature: float = 1.0
    num_reconstruction_molecules: int = 1000
    num_importance_samples: int = 100

    def __post_init__(self):
        if self.num_importance_samples < 1:
            raise SeqVAEError(f"num_importance_samples must be >= 1, got {self.num_importance_samples}")
        if self.num_prior_samples < 1 or self.num_reconstruction_molecules < 0:
            raise SeqVAEError("num_prior_samples must be >= 1 and num_reconstruction_molecules >= 0")
        if self.sample_temperature <= 0:
            raise SeqVAEError(f"sample_temperature must be > 0, got {self.sample_temperature}")


# Defaults of a recipe's TrainingArguments keys, and the settings no recipe changes.
DEFAULT_TRAINING = {
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 256,
    "learning_rate": 1.0e-3,
    "lr_scheduler_type": "constant",
    "num_train_epochs": 10,
    "logging_steps": 50,
    "eval_strategy": "no",
    "save_strategy": "steps",
    "save_steps": 1000,
    "save_total_limit": 2,
    "report_to": ["tensorboard"],
    "train_sampling_strategy": "group_by_length",
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": torch.cuda.is_available(),  # pinning without a GPU only warns
}
# Fixed regardless of the recipe: our collator needs the raw columns, lengths are computed, and a
# NaN loss is logged as NaN (the Trainer's filter would print an average, or 0 at the start).
FIXED_TRAINING = {"remove_unused_columns": False, "length_column_name": "num_tokens", "logging_nan_inf_filter": False}


def training_arguments(output_dir: Path, training_kwargs: dict) -> SeqVAETrainingArguments:
    """A recipe's training keys over seqvae's defaults, checked; errors name the setting."""
    kwargs = {**DEFAULT_TRAINING, **training_kwargs, **FIXED_TRAINING}
    if _launched_without_accelerator() and "use_cpu" not in training_kwargs:
        # torchrun / accelerate launch on a CPU-only machine: without use_cpu the Trainer would
        # run each process as an independent one-process training instead of DDP over gloo.
        logger.info("%s processes and no GPU: data-parallel training on CPU (use_cpu, gloo)", os.environ["WORLD_SIZE"])
        kwargs["use_cpu"] = True
    if kwargs.get("report_to") in (["tensorboard"], "tensorboard") and not _has_tensorboard():
        logger.warning("tensorboard is not installed; training logs go to training_log.jsonl only")
        kwargs["report_to"] = "none"
    try:
        return SeqVAETrainingArguments(output_dir=str(output_dir), **kwargs)
    except (ValueError, TypeError) as error:
        if isinstance(error, SeqVAEError):
            raise
        raise SeqVAEError(f"invalid training setting: {error}") from None


def _launched_without_accelerator() -> bool:
    """Several processes launched (``WORLD_SIZE`` > 1) on a machine with no GPU or other accelerator."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    return not (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()))


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
