"""Training: a ``transformers.Trainer`` that optimises the VAE objective, and ``train_model(recipe)``,
which trains and saves the model (``workflow.py`` evaluates it afterwards).

The trainer changes *what* is computed (:meth:`SeqVAETrainer.compute_loss`): at optimiser step
``t`` the loss is

    recon + kl_weight_at(t) * free_bits_kl(kl_per_dim) + mmd_weight * mmd_to_prior(z)

where ``recon`` is the reconstruction NLL **per sequence** (summed over tokens, averaged over
molecules) or **per token** (``loss_reduction="token"``, MOSES-style), and the KL is always per
sequence (summed over latent dimensions). Word dropout corrupts only the decoder's inputs.
Logs name their unit: ``recon_per_sequence``, ``recon_per_token``, ``kl_per_sequence``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    set_seed,
)
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import has_length, rotate_checkpoints

from . import runs
from .arguments import (
    EvaluationArguments,
    ObjectiveArguments,
    SeqVAETrainingArguments,
    training_arguments,
)
from .backbones import backbone_tokenizer_name, check_loadable, check_shared_vocabulary
from .configuration import SeqVAEConfig
from .data import PaddingCollator, PreparedCorpus, SmilesRandomizer, prepare_corpus
from .data.attributes import check_attribute_settings
from .data.normalization import standardizes
from .errors import SeqVAEError
from .modeling import SeqVAE, eval_mode
from .objectives import (
    ACTIVE_UNIT_THRESHOLD,
    hide_conditions,
    kl_weight_at,
    vae_loss,
    word_dropout,
)
from .recipe import load_recipe
from .threads import adapt_threads, chosen_thread_count
from .tokenization import TEXT_TOKENIZERS

__all__ = ["SeqVAETrainer", "train_model", "TrainingRun", "validation_metrics", "reset_decoder"]

logger = logging.getLogger(__name__)


class SeqVAETrainer(Trainer):
    """Trainer computing the annealed, free-bits VAE loss, with VAE-specific logs and eval."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # forward() takes **kwargs, which would make Trainer skip gradient-accumulation scaling.
        self.model_accepts_loss_kwargs = False
        self._running = {}
        self._chunk_share = None  # (share of the batch's rows, of its target tokens) while chunking
        self._staging = None  # set while a checkpoint is being written

    def training_step(self, model, inputs, num_items_in_batch=None):
        """Forward and backward of one batch, in row chunks when it exceeds ``max_tokens_per_chunk``.

        Each chunk's loss terms are weighted by its share of the batch (rows for per-sequence
        terms, target tokens for a per-token reconstruction), so the chunks' gradients add up to
        the whole batch's while only one chunk's activations are held at a time.
        """
        budget, ids = self.args.max_tokens_per_chunk, inputs["input_ids"]
        if not budget or ids.numel() <= budget:
            return super().training_step(model, inputs, num_items_in_batch)
        num_chunks = min(ids.size(0), -(-ids.numel() // budget))
        rows_per_chunk = -(-ids.size(0) // num_chunks)  # even chunks: no small remainder
        target_tokens = inputs["attention_mask"][:, 1:].sum().clamp(min=1)
        starts = range(0, ids.size(0), rows_per_chunk)
        total = 0.0
        try:
            for start in starts:
                chunk = {key: value[start : start + rows_per_chunk] for key, value in inputs.items()}
                chunk_tokens = chunk["attention_mask"][:, 1:].sum()
                self._chunk_share = (chunk["input_ids"].size(0) / ids.size(0), (chunk_tokens / target_tokens).item())
                # Under DDP only the last chunk's backward all-reduces: ranks cut their batches into
                # different numbers of chunks, and one reduction per batch keeps them in step.
                last = start == starts[-1]
                with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                    total = total + super().training_step(model, chunk, num_items_in_batch)
        finally:
            self._chunk_share = None
        return total

    def _save_checkpoint(self, model, trial):
        """Write ``checkpoint-N`` under ``.staging/`` and rename it into place when complete, so a
        run killed mid-write leaves the previous checkpoints intact and no partial newest one. A
        model with non-finite weights is never saved: the checkpoints stay usable."""
        if not weights_are_finite(self.model):
            logger.warning("step %d: weights are not finite; checkpoint not written", self.state.global_step)
            return
        run_dir = Path(self.args.output_dir)
        self._staging = run_dir / runs.STAGING
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = None
        name = f"{runs.CHECKPOINT_PREFIX}{self.state.global_step}"
        self.accelerator.wait_for_everyone()  # every rank's RNG state is in the staged folder
        if self.args.should_save:
            shutil.rmtree(run_dir / name, ignore_errors=True)  # a checkpoint of this step from an earlier try
            os.replace(run_dir / runs.STAGING / name, run_dir / name)
            shutil.rmtree(run_dir / runs.STAGING, ignore_errors=True)
            rotate_checkpoints(str(run_dir), self.args.save_total_limit, self.state.best_model_checkpoint)

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        if has_length(self.train_dataset) or self.args.world_size == 1:
            return loader
        return EveryPassYields(loader, self.args.process_index)

    def _get_output_dir(self, trial) -> str:
        return str(self._staging) if self._staging is not None else super()._get_output_dir(trial)

    def _get_train_sampler(self, train_dataset=None):
        """``group_by_length`` with the lengths read once as a list.

        ``datasets`` hands the Trainer a lazy column that is slow to index item by item, which
        made the length-grouped sampler spend minutes per epoch on a 250k-molecule corpus.
        """
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        column = self.args.length_column_name
        grouped = self.args.train_sampling_strategy == "group_by_length" and has_length(dataset)
        if grouped and column in getattr(dataset, "column_names", ()):
            return EpochSeededLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=list(dataset[column]),
                seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
                epoch=lambda: int(self.state.epoch + 1e-6),
            )
        return super()._get_train_sampler(train_dataset)

    def kl_weight(self) -> float:
        scale = schedule_scale(self.args)
        pretraining, step = pretraining_steps(self.args), self.state.global_step
        if step < pretraining:
            return 0.0  # autoencoder pre-training: no KL yet
        total = (self.state.max_steps or self.args.max_steps or 1) - pretraining
        # the schedule's step counts are written for one process: read them in its steps
        return kl_weight_at((step - pretraining) * scale, self.args, max(total, 1) * scale)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        config = self.model.config  # `model` may be wrapped (DataParallel / DDP), self.model is not
        beta = self.kl_weight() if model.training else 1.0
        decoder_input_ids = inputs["input_ids"][:, :-1]
        if model.training and self.args.word_dropout > 0:
            decoder_input_ids = word_dropout(
                decoder_input_ids,
                self.args.word_dropout,
                config.unk_token_id,
                keep_token_ids=(config.pad_token_id, config.bos_token_id),
            )
        properties = inputs.get("properties")
        condition_mask = None
        if properties is not None and model.training:
            condition_mask = hide_conditions(
                properties.shape, self.args.condition_drop_probability, self.args.unconditional_probability
            ).to(properties.device)
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            decoder_input_ids=decoder_input_ids,
            properties=properties,
            condition_mask=condition_mask,
        )
        rows_share, tokens_share = self._chunk_share or (1.0, 1.0)
        loss, mmd = vae_loss(outputs, self.args, beta, rows_share, tokens_share)
        if model.training:
            self._accumulate(
                recon_per_sequence=outputs.recon_loss.item(),
                recon_per_token=outputs.recon_loss_per_token.item(),
                kl_per_sequence=outputs.kl.item(),
                kl_weight=beta,
                **({"mmd": mmd.item()} if mmd is not None else {}),
                **({"property_mse": outputs.property_loss.item()} if outputs.property_loss is not None else {}),
            )
        return (loss, outputs) if return_outputs else loss

    def _accumulate(self, **values: float) -> None:
        for key, value in values.items():
            total, count = self._running.get(key, (0.0, 0))
            self._running[key] = (total + value, count + 1)

    def log(self, logs: dict, *args, **kwargs) -> None:
        """Add the running means of the VAE terms to the Trainer's training logs."""
        if "loss" in logs and self._running:
            logs.update(self._running_means())
            self._running = {}
        super().log(logs, *args, **kwargs)

    def _running_means(self) -> dict:
        """The VAE terms averaged since the last log, over every process (the Trainer's own
        ``loss`` is reduced the same way); every process logs, so every process takes part."""
        keys = sorted(self._running)
        sums = torch.tensor([[self._running[key][0], self._running[key][1]] for key in keys], dtype=torch.float64)
        sums = sum_over_processes(sums)
        return {key: round(float(total / count), 4) for key, (total, count) in zip(keys, sums.tolist())}

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Validation ELBO terms, token accuracy and active units (teacher-forced, from ``mu``),
        over the whole validation set whatever the number of processes."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        collator = self.data_collator.for_evaluation()  # molecules as stored, not randomly spelled
        batches = DataLoader(dataset, batch_size=self.args.per_device_eval_batch_size, collate_fn=collator)
        metrics = validation_metrics(
            self.model, batches, self.args, process_index=self.args.process_index, num_processes=self.args.world_size
        )
        metrics = {f"{metric_key_prefix}_{key}": value for key, value in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


@torch.no_grad()
def validation_metrics(model: SeqVAE, batches, objective: ObjectiveArguments, process_index: int = 0, num_processes: int = 1) -> dict:
    """ELBO pieces over a data loader, token accuracy of teacher-forced decoding from ``mu``, and
    ``loss``: the training objective (:func:`~seqvae.objectives.vae_loss`) at KL weight 1 over
    the whole set, for best-model selection (batch ``i``'s MMD draws are seeded with ``i``).

    With several processes, process ``p`` reads batches ``p, p + N, ...`` of the same batching
    and the sums are added over processes: the figures are those of one process, whatever N.
    """
    fields = ("recon", "kl", "sequences", "tokens", "correct", "property_mse")
    sums = dict.fromkeys(fields, 0.0)
    terms, mu_sum, mu_squares = [], 0.0, 0.0
    with eval_mode(model):
        for index, batch in enumerate(batches):
            if index % num_processes != process_index:
                continue
            batch = {key: value.to(model.device) for key, value in batch.items()}
            out = model(**batch, use_posterior_mean=True)
            size = batch["input_ids"].size(0)
            real = batch["attention_mask"][:, 1:].bool()
            sums["recon"] += out.recon_loss.item() * size
            sums["kl"] += out.kl.item() * size
            sums["sequences"] += size
            sums["tokens"] += int(real.sum())
            sums["correct"] += int(((out.logits.argmax(-1) == batch["input_ids"][:, 1:]) & real).sum())
            if model.property_head is not None:  # the head reads z encoded without conditions: encoder only
                free_mu, _ = model.encode(batch["input_ids"], batch["attention_mask"], model.condition_vector(None, size))
                sums["property_mse"] += model.property_head_loss(free_mu, batch["properties"])[0].item() * size
            out["logits"] = None  # the objective needs the terms, not the logits [B, T, V] (the item: ModelOutput keeps it otherwise)
            terms.append((index, size, int(real.sum()), out))
            mu = out.mu.detach().to(torch.float64).cpu()
            mu_sum, mu_squares = mu_sum + mu.sum(0), mu_squares + (mu * mu).sum(0)
    reduce = sum_over_processes if num_processes > 1 else (lambda tensor: tensor)
    totals = reduce(torch.tensor([sums[field] for field in fields], dtype=torch.float64))
    sums = dict(zip(fields, totals.tolist()))
    loss = sum(
        vae_loss(out, objective, 1.0, size / sums["sequences"], tokens / max(sums["tokens"], 1),
                 torch.Generator().manual_seed(index))[0].item()
        for index, size, tokens, out in terms
    )
    loss = reduce(torch.tensor([loss], dtype=torch.float64)).item()
    recon, kl = sums["recon"] / sums["sequences"], sums["kl"] / sums["sequences"]
    extra = {}
    if model.property_head is not None:
        extra["property_mse"] = round(sums["property_mse"] / sums["sequences"], 4)
    return {
        "loss": round(loss, 4),
        "recon_per_sequence": round(recon, 4),
        "recon_per_token": round(sums["recon"] / sums["tokens"], 4),
        "kl_per_sequence": round(kl, 4),
        "elbo_per_sequence": round(-(recon + kl), 4),
        "token_accuracy": round(sums["correct"] / sums["tokens"], 4),
        "active_units": _active_units(mu_sum, mu_squares, int(sums["sequences"]), model.config.latent_dim, reduce),
        **extra,
    }


def _active_units(mu_sum, mu_squares, count: int, latent_dim: int, reduce) -> int:
    """:func:`~seqvae.objectives.active_units` from the sums of ``mu`` and ``mu**2`` over every
    process (``reduce`` adds them up; the unbiased variance, as ``torch.var``)."""
    zeros = torch.zeros(latent_dim, dtype=torch.float64)
    sums = reduce(torch.stack([zeros + mu_sum, zeros + mu_squares]))
    if count < 2:
        return 0
    variance = (sums[1] - sums[0] ** 2 / count) / (count - 1)
    return int((variance >= ACTIVE_UNIT_THRESHOLD).sum())


def decided_by_main_process(decision: bool) -> bool:
    """Rank 0's ``decision``, on every training process."""
    if not _several_processes():
        return decision
    flag = torch.tensor([int(decision)], device=_collective_device())
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the training processes (itself when there is one)."""
    if not _several_processes():
        return tensor
    summed = tensor.to(_collective_device(), copy=True)
    torch.distributed.all_reduce(summed)
    return summed.to(tensor.device)


def _several_processes() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def _collective_device() -> torch.device:
    """Where the process group's tensors must live: NCCL reduces GPU tensors only."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def schedule_scale(args: SeqVAETrainingArguments) -> int:
    """How many one-process steps one optimiser step is worth (see ``rescale_schedules``)."""
    return args.world_size if args.rescale_schedules else 1


def scaled_steps(steps: int, args: SeqVAETrainingArguments) -> int:
    """A schedule's step count, written for one process, in this launch's optimiser steps."""
    return -(-steps // schedule_scale(args))


def pretraining_steps(args: SeqVAETrainingArguments) -> int:
    return scaled_steps(args.autoencoder_pretraining_steps, args)


class EveryPassYields:
    """A data loader over this process's share of a stream that fails, naming the process, when a
    pass over it yields no batch. The Trainer would stop that process alone, and the others would
    wait for it forever in their next gradient reduction; an error ends the whole launch."""

    def __init__(self, loader, process_index: int):
        self.loader, self.process_index = loader, process_index

    def __iter__(self):
        empty = True
        for batch in self.loader:
            empty = False
            yield batch
        if empty:
            raise SeqVAEError(
                f"process {self.process_index} has no training rows in its share of the stream (its shards are "
                "empty, unreadable or all held out for validation); give every process several shards with usable rows"
            )

    def __getattr__(self, name):  # set_epoch, batch_sampler... are the loader's
        return getattr(self.loader, name)


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """The length-grouped order of epoch ``e`` drawn from ``seed + e``: every process draws the
    same order (the Trainer hands each its share of the batches), and a resumed run redraws the
    epoch it stopped in."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int, epoch):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch())
        return super().__iter__()


class JsonlLogCallback(TrainerCallback):
    """Append every log line to ``training_log.jsonl`` in the run folder (for plots and reports)."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with open(self.path, "a") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")


class TimeLimitCallback(TrainerCallback):
    """Stop training after ``seconds`` of wall time (recipes sized for a time budget), and record
    the step reached (``stopped_at``) so that the run's metrics and report can say so."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = None
        self.stopped_at = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if not self.seconds:
            return
        # every process stops at the step where rank 0's clock ran out, not each at its own
        out_of_time = decided_by_main_process(time.monotonic() - self.start > self.seconds)
        if out_of_time and state.global_step < state.max_steps:
            logger.warning(
                "max_train_seconds (%.0f s) reached at step %d of %d: training stops early",
                self.seconds, state.global_step, state.max_steps,
            )
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_save = True  # so that --resume continues from here


class ThreadCallback(TrainerCallback):
    """Keep torch's thread count at the cores other processes leave free (:mod:`seqvae.threads`)."""

    def on_step_begin(self, args, state, control, **kwargs):
        adapt_threads()


class NonFiniteGuard(TrainerCallback):
    """Skip every optimiser step whose gradients are not finite (NaN / inf loss or overflow), and
    stop the run after ``max_steps_in_a_row`` such steps in a row, or at once if the weights
    themselves become non-finite. ``diverged`` then says why; the weights are those of the last
    finite step (a skipped step changes nothing: gradients set to ``None`` are not applied)."""

    def __init__(self, max_steps_in_a_row: int):
        self.max_steps_in_a_row = max_steps_in_a_row
        self.in_a_row = 0
        self.skipped = 0
        self.diverged = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        parameters = [p for p in model.parameters() if p.grad is not None]
        if _all_finite(p.grad for p in parameters):
            self.in_a_row = 0
            return
        for parameter in parameters:
            parameter.grad = None  # the optimiser skips parameters without a gradient
        self.in_a_row += 1
        self.skipped += 1
        logger.warning("step %d: non-finite loss or gradients; step skipped (%d in a row)", state.global_step + 1, self.in_a_row)
        if self.in_a_row >= self.max_steps_in_a_row:
            self._stop(control, f"{self.in_a_row} steps in a row had a non-finite loss or gradients")

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        if not weights_are_finite(model):
            self._stop(control, "the weights became non-finite")

    def _stop(self, control, reason: str) -> None:
        self.diverged = reason
        control.should_training_stop = True


def weights_are_finite(model) -> bool:
    return _all_finite(model.parameters())


def _all_finite(tensors) -> bool:
    """One reduction and one device sync for all ``tensors``, not one per tensor."""
    checks = [torch.isfinite(tensor).all() for tensor in tensors]
    return bool(torch.stack(checks).all()) if checks else True


# ------------------------------------------------------------------------- train_model()

@dataclass
class TrainingRun:
    """What :func:`train` produced: the run folder and the objects it saved there."""

    output_dir: Path
    model: SeqVAE
    tokenizer: object
    training_texts: list
    validation: object
    report: object
    validation_metrics: dict
    train_seconds: float
    evaluation_args: EvaluationArguments
    data_args: object = None
    stopped_early: dict | None = None  # set when max_train_seconds ended training before max_steps
    is_main_process: bool = True  # rank 0 of a multi-process launch evaluates and writes
    processes: int = 1
    schedule_steps_divided_by: int = 1  # see rescale_schedules


class DecoderResetCallback(TrainerCallback):
    """At the end of autoencoder pre-training, re-initialise the decoder (Li et al. 2019).

    The encoder keeps what it learned as an autoencoder; a fresh decoder has not yet learned to
    model sentences without ``z``, so the VAE phase starts with a latent worth reading. The token
    embedding is shared with the encoder and is kept. The optimiser's moments of the decoder's
    parameters are dropped with them.
    """

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        if state.global_step == self.step and model is not None:
            reset_decoder(model, optimizer, seed=args.seed + self.step)
            logger.info("step %d: autoencoder pre-training done, decoder re-initialised", self.step)


def reset_decoder(model: SeqVAE, optimizer=None, seed: int = 0) -> None:
    """Fresh initial values for every decoder parameter (and no optimiser state for them), drawn
    from ``seed`` so that every training process draws the same ones."""
    devices = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):  # manual_seed seeds the GPUs' generators too
        torch.manual_seed(seed)
        for module in model.decoder.modules():
            reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
            if reset is not None:
                reset()
    if optimizer is not None:
        state = getattr(optimizer, "optimizer", optimizer).state  # accelerate wraps the optimiser
        for parameter in model.decoder.parameters():
            state.pop(parameter, None)


def train_model(
    recipe: str | Path | None = None,
    overrides: dict | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: list | None = None,
) -> TrainingRun:
    """Train a SeqVAE from a recipe and save the run folder.

    Args:
        recipe: path of a YAML recipe (``None``: defaults plus ``overrides``).
        overrides: ``{key: value}`` that win over the recipe.
        output_dir: run folder; also settable as the recipe key ``output_dir``.
        resume: continue from the newest checkpoint in ``output_dir``.
        callbacks: extra ``transformers.TrainerCallback`` objects (e.g. timers in benchmarks).

    Returns:
        The :class:`TrainingRun`; the run folder holds ``config.json``, ``model.safetensors``,
        tokenizer files, ``recipe.yaml``, ``training_args.json``, ``data_report.json``,
        ``training_log.jsonl`` and TensorBoard logs.
    """
    data_args, model_kwargs, training_kwargs, evaluation_args = load_recipe(recipe, overrides)
    output_dir = Path(output_dir or training_kwargs.pop("output_dir", None) or "runs/seqvae")
    training_kwargs.pop("output_dir", None)
    args = training_arguments(output_dir, training_kwargs)
    _check_model_settings(model_kwargs)  # fail before the data is read, not after
    check_attribute_settings(data_args)
    runs.check_writable(output_dir, "output_dir")
    with runs.run_lock(output_dir):
        return _train(args, data_args, model_kwargs, training_kwargs, evaluation_args, resume, callbacks)


def _train(args, data_args, model_kwargs, training_kwargs, evaluation_args, resume, callbacks) -> TrainingRun:
    output_dir = Path(args.output_dir)
    chosen_thread_count()  # a bad SEQVAE_NUM_THREADS is named before the data is read
    if data_args.streaming:
        _read_own_shards(args)
    # decided once (own files: on, named corpora: off) and written into recipe.yaml as decided
    data_args = dataclasses.replace(data_args, standardize=standardizes(data_args))
    data_args = _with_backbone_tokenizer(data_args, model_kwargs)
    set_seed(args.seed)
    checkpoint = _checkpoint_to_resume(output_dir) if resume else None
    # a resumed run reads its tokenizer from the checkpoint, which was written whole
    # Rank 0 prepares the corpus first, filling the caches of checked and tokenised tables (files
    # of 10,000 rows or more), which the others then read; a stream has no cache, so every process
    # reads its vocabulary sample at once. Every process holds the whole corpus (or stream); the
    # Trainer's data loader gives each its share (a stream's shards too: _read_own_shards).
    first = contextlib.nullcontext() if data_args.streaming else args.main_process_first(desc="corpus preparation")
    with first:
        corpus = prepare_corpus(data_args, args.seed, AutoTokenizer.from_pretrained(checkpoint) if checkpoint else None)
    config = SeqVAEConfig.from_pretrained(checkpoint) if checkpoint else _new_config(corpus, data_args, model_kwargs)
    _warn_about_the_property_head(config)
    if args.mmd_with_conditions and not config.num_properties:
        logger.warning("mmd_with_conditions is set but the model has no conditions: the MMD compares z alone")
    if config.decoder_type == "pretrained" and args.autoencoder_pretraining_steps:
        raise SeqVAEError(
            "autoencoder_pretraining_steps re-initialises the decoder afterwards, which would throw a "
            "pretrained decoder away; use kl_schedule: cyclical (each cycle starts at KL weight 0) instead"
        )
    if config.latent_dim == 0 and args.autoencoder_pretraining_steps:
        raise SeqVAEError("autoencoder_pretraining_steps needs a latent: this is a language model (latent_dim 0)")
    _log_schedule_scale(args)
    if args.should_save:  # one process writes the run folder
        if checkpoint is None:
            corpus.tokenizer.save_pretrained(output_dir)
        corpus.report.write(runs.data_report_path(output_dir))
        logger.info("data: %s (report: %s)", corpus.report.summary(), runs.data_report_path(output_dir))
        runs.write_recipe(output_dir, data_args, model_kwargs, training_kwargs, evaluation_args)

    # A run killed after its last step (while evaluating or saving) resumes with nothing left to
    # train: the Trainer would run one step past max_steps, so its weights are read instead.
    finished = checkpoint is not None and 0 < args.max_steps <= runs.checkpoint_step(checkpoint)
    guard, time_limit = NonFiniteGuard(args.max_nonfinite_steps), TimeLimitCallback(args.max_train_seconds)
    trainer = SeqVAETrainer(
        model=SeqVAE.from_pretrained(checkpoint, use_safetensors=True) if finished else SeqVAE(config),
        args=args,
        train_dataset=corpus.train_set,
        eval_dataset=corpus.validation_set,
        data_collator=_collator(corpus, config, data_args, args),
        processing_class=corpus.tokenizer,
        callbacks=_callbacks(args, output_dir, fresh=checkpoint is None, extra=[guard, time_limit, *(callbacks or [])]),
    )
    started = time.monotonic()
    if finished:
        logger.info("%s is at max_steps (%d): nothing left to train", checkpoint, args.max_steps)
        trainer.state.global_step = runs.checkpoint_step(checkpoint)
    else:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.monotonic() - started
    if args.should_save:  # a stream counts its skipped rows while training reads it
        corpus.report.write(runs.data_report_path(output_dir))
    if guard.diverged:
        _end_diverged(trainer, guard, output_dir)
    _save_final_model(trainer, output_dir)
    return TrainingRun(
        output_dir=output_dir,
        model=trainer.model,
        tokenizer=corpus.tokenizer,
        training_texts=corpus.training_texts(),
        validation=corpus.validation_set,  # the rows the model read (text: long sentences left out)
        report=corpus.report,
        validation_metrics=trainer.evaluate(),
        train_seconds=train_seconds,
        evaluation_args=evaluation_args,
        data_args=data_args,
        stopped_early=_stopped_early(time_limit, trainer),
        is_main_process=trainer.is_world_process_zero(),
        processes=args.world_size,
        schedule_steps_divided_by=schedule_scale(args),
    )


def _save_final_model(trainer: SeqVAETrainer, output_dir: Path) -> None:
    """The model and tokenizer, written whole into ``.staging/`` and then renamed into the run
    folder: a run killed while saving leaves the previous files, never a half-written one."""
    if not trainer.args.should_save:
        return
    staging = output_dir / runs.STAGING
    shutil.rmtree(staging, ignore_errors=True)
    trainer.save_model(str(staging))
    runs.publish_folder(staging, output_dir)
    runs.write_training_args(output_dir, trainer.args)


def _end_diverged(trainer: SeqVAETrainer, guard: NonFiniteGuard, output_dir: Path) -> None:
    """Save the last finite weights (if the model still holds them) and stop with one message."""
    step = trainer.state.global_step
    if weights_are_finite(trainer.model):
        _save_final_model(trainer, output_dir)
        kept = f"{output_dir} holds the last finite weights ({guard.skipped} step(s) skipped)"
    else:
        checkpoint = runs.latest_checkpoint(output_dir)
        kept = f"the last finite checkpoint is {checkpoint}" if checkpoint else "no finite checkpoint was written"
    raise SeqVAEError(
        f"training diverged at step {step}: {guard.diverged}; {kept}. Lower learning_rate "
        "(or max_grad_norm) and train again"
    )


def _stopped_early(time_limit: TimeLimitCallback, trainer: SeqVAETrainer) -> dict | None:
    """What metrics.json records when training ended before max_steps: the step and why."""
    if time_limit.stopped_at is None:
        return None
    return {
        "stopped_at_step": time_limit.stopped_at,
        "max_steps": trainer.state.max_steps,
        "stopped_by": f"max_train_seconds ({time_limit.seconds:g} s)",
    }


def _checkpoint_to_resume(output_dir: Path) -> Path:
    checkpoint = runs.latest_checkpoint(output_dir)  # the newest complete one; others are named and skipped
    if checkpoint is None:
        found = len(runs.checkpoints(output_dir))
        what = f"none of its {found} checkpoint-* folders is complete" if found else "no checkpoint-* folder"
        raise SeqVAEError(f"--resume: {what} in {output_dir}; start without --resume")
    logger.info("resuming from %s", checkpoint)
    return checkpoint


def _collator(corpus: PreparedCorpus, config: SeqVAEConfig, data_args, args) -> PaddingCollator:
    """Batches of the corpus; with ``randomized_smiles``, molecules spelled from random atom
    orders (each process its own stream of spellings)."""
    randomizer = None
    if data_args.randomized_smiles:
        randomizer = SmilesRandomizer(
            corpus.tokenizer, data_args.representation, data_args.max_length, seed=args.seed + args.process_index
        )
    return PaddingCollator(corpus.tokenizer.pad_token_id, config.property_names, randomizer)


def _new_config(corpus: PreparedCorpus, data_args, model_kwargs: dict) -> SeqVAEConfig:
    """The config of a fresh model: the recipe's model keys, the corpus's vocabulary and
    properties."""
    tokenizer = corpus.tokenizer
    return SeqVAEConfig(
        vocab_size=len(tokenizer),
        representation=data_args.representation,
        max_sequence_length=data_args.max_length,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        unk_token_id=tokenizer.unk_token_id,
        **corpus.properties,
        **model_kwargs,
    )


def _read_own_shards(args: SeqVAETrainingArguments) -> None:
    """A streamed corpus has no length, so training needs ``max_steps``; with several processes,
    each reads its own shards of the stream (accelerate's default would have rank 0 read every
    batch and send the others theirs)."""
    if args.max_steps <= 0:
        raise SeqVAEError("streaming: true needs max_steps (a stream has no length, so num_train_epochs cannot end it)")
    args.accelerator_config.dispatch_batches = False


def _log_schedule_scale(args: SeqVAETrainingArguments) -> None:
    if args.world_size == 1:
        return
    if schedule_scale(args) == 1:
        logger.info("%d processes: schedule step counts used as written (rescale_schedules: false)", args.world_size)
        return
    logger.info(
        "%d processes, each step reads %d batches: schedule step counts are divided by %d "
        "(kl_start_step %d -> %d, kl_warmup_steps %d -> %d, autoencoder_pretraining_steps %d -> %d; "
        "rescale_schedules: false keeps them as written)",
        args.world_size, args.world_size, args.world_size,
        args.kl_start_step, scaled_steps(args.kl_start_step, args),
        args.kl_warmup_steps, scaled_steps(args.kl_warmup_steps, args),
        args.autoencoder_pretraining_steps, pretraining_steps(args),
    )


def _callbacks(args: SeqVAETrainingArguments, output_dir: Path, fresh: bool, extra: list | None) -> list[TrainerCallback]:
    log_path = runs.training_log_path(output_dir)
    if fresh and args.should_save:
        log_path.unlink(missing_ok=True)  # a fresh run in an old folder starts a fresh log
    callbacks = [JsonlLogCallback(log_path), ThreadCallback(), *(extra or [])]
    if args.autoencoder_pretraining_steps:
        callbacks.append(DecoderResetCallback(pretraining_steps(args)))
    return callbacks


def _warn_about_the_property_head(config: SeqVAEConfig) -> None:
    if config.property_head_hidden_size and not config.num_properties:
        logger.warning("property_head_hidden_size is set but properties are not: the model gets no property head")
    elif config.num_properties and not config.property_head_hidden_size:
        logger.info("no property head (property_head_hidden_size: 0): re-ranking and latent optimisation unavailable")


def _check_model_settings(model_kwargs: dict) -> None:
    try:
        SeqVAEConfig(**model_kwargs)
    except ValueError as error:
        raise SeqVAEError(f"invalid model setting: {error}") from None
    for side in ("encoder", "decoder"):
        if model_kwargs.get(f"{side}_name_or_path") and model_kwargs.get(f"{side}_backbone"):
            raise SeqVAEError(
                f"give {side}_name_or_path (pretrained weights) or {side}_backbone (an architecture "
                "trained from scratch), not both"
            )
        if model_kwargs.get(f"{side}_type") == "pretrained" and model_kwargs.get(f"{side}_name_or_path"):
            check_loadable(side, model_kwargs[f"{side}_name_or_path"])
    encoder, decoder = model_kwargs.get("encoder_name_or_path"), model_kwargs.get("decoder_name_or_path")
    if encoder and decoder and model_kwargs.get("encoder_type") == "pretrained" == model_kwargs.get("decoder_type"):
        check_shared_vocabulary(encoder, decoder)


def _with_backbone_tokenizer(data_args, model_kwargs: dict):
    """A pretrained backbone's tokenizer is the run's (the decoder's when both sides have one):
    the model reads the token ids the backbone was trained on."""
    name = backbone_tokenizer_name(model_kwargs)
    if name is None:
        return data_args
    if data_args.text_tokenizer not in (*TEXT_TOKENIZERS, name):
        raise SeqVAEError(
            f"text_tokenizer {data_args.text_tokenizer!r} differs from the pretrained backbone's "
            f"tokenizer ({name!r}), which the run must use; leave text_tokenizer out"
        )
    logger.info("tokenizer: the pretrained backbone's (%s)", name)
    return dataclasses.replace(data_args, text_tokenizer=name)
