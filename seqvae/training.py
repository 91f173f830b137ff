"""Training: a ``transformers.Trainer`` that optimises the VAE objective, and ``train(recipe)``.

The trainer changes *what* is computed (:meth:`SeqVAETrainer.compute_loss`): at optimiser step
``t`` the loss is

    recon + kl_weight_at(t) * free_bits_kl(kl_per_dim) + mmd_weight * mmd_to_prior(z)

where ``recon`` is the reconstruction NLL **per sequence** (summed over tokens, averaged over
molecules) or **per token** (``loss_reduction="token"``, MOSES-style), and the KL is always per
sequence (summed over latent dimensions). Word dropout corrupts only the decoder's inputs.
Logs name their unit: ``recon_per_sequence``, ``recon_per_token``, ``kl_per_sequence``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from .arguments import EvaluationArguments, ObjectiveArguments, SeqVAETrainingArguments, training_arguments
from .configuration import SeqVAEConfig
from .data import (
    PaddingCollator,
    arrow_table,
    encode_labels,
    load_molecules,
    load_texts,
    rows_with_unknown,
    split_train_validation,
    tokenize_molecules,
    tokenize_texts,
)
from .chem import PROPERTIES
from .conditions import rule_labels, text_attribute
from .errors import SeqVAEError
from .modeling import SeqVAE, eval_mode
from .objectives import active_units, hide_conditions, kl_weight_at, vae_loss, word_dropout
from .recipe import load_recipe
from .tokenization import build_text_tokenizer, build_tokenizer, extend_vocabulary, molecule_encoder

__all__ = ["SeqVAETrainer", "train", "evaluate_validation"]

logger = logging.getLogger(__name__)


class SeqVAETrainer(Trainer):
    """Trainer computing the annealed, free-bits VAE loss, with VAE-specific logs and eval."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # forward() takes **kwargs, which would make Trainer skip gradient-accumulation scaling.
        self.model_accepts_loss_kwargs = False
        self._running = {}
        self._chunk_share = None  # (share of the batch's rows, of its target tokens) while chunking

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
        total = 0.0
        try:
            for start in range(0, ids.size(0), rows_per_chunk):
                chunk = {key: value[start : start + rows_per_chunk] for key, value in inputs.items()}
                chunk_tokens = chunk["attention_mask"][:, 1:].sum()
                self._chunk_share = (chunk["input_ids"].size(0) / ids.size(0), (chunk_tokens / target_tokens).item())
                total = total + super().training_step(model, chunk, num_items_in_batch)
        finally:
            self._chunk_share = None
        return total

    def _get_train_sampler(self, train_dataset=None):
        """``group_by_length`` with the lengths read once as a list.

        ``datasets`` hands the Trainer a lazy column whose items cost ~0.5 ms each, which made
        the length-grouped sampler spend minutes per epoch on a 250k-molecule corpus.
        """
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        column = self.args.length_column_name
        if self.args.train_sampling_strategy == "group_by_length" and column in getattr(dataset, "column_names", ()):
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=list(dataset[column]),
            )
        return super()._get_train_sampler(train_dataset)

    def kl_weight(self) -> float:
        pretraining, step = self.args.autoencoder_pretraining_steps, self.state.global_step
        if step < pretraining:
            return 0.0  # autoencoder pre-training: no KL yet
        total = (self.state.max_steps or self.args.max_steps or 1) - pretraining
        return kl_weight_at(step - pretraining, self.args, max(total, 1))

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
            logs.update({key: round(total / count, 4) for key, (total, count) in self._running.items()})
            self._running = {}
        super().log(logs, *args, **kwargs)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Validation ELBO terms, token accuracy and active units (teacher-forced, from ``mu``)."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        metrics = evaluate_validation(self.model, self.get_eval_dataloader(dataset), self.args)
        metrics = {f"{metric_key_prefix}_{key}": value for key, value in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


@torch.no_grad()
def evaluate_validation(model: SeqVAE, dataloader, objective: ObjectiveArguments) -> dict:
    """ELBO pieces over a data loader, token accuracy of teacher-forced decoding from ``mu``, and
    ``loss``: the training objective (:func:`~seqvae.objectives.vae_loss`) at KL weight 1 over
    the whole set, for best-model selection (its MMD draws come from a seeded generator)."""
    sums = {"recon": 0.0, "kl": 0.0, "sequences": 0, "tokens": 0, "correct": 0, "property_mse": 0.0}
    terms, means = [], []
    with eval_mode(model):
        for batch in dataloader:
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
            out.logits = None  # the objective needs the terms, not the logits [B, T, V]
            terms.append((size, int(real.sum()), out))
            means.append(out.mu.float().cpu())
    generator = torch.Generator().manual_seed(0)
    loss = sum(
        vae_loss(out, objective, 1.0, size / sums["sequences"], tokens / max(sums["tokens"], 1), generator)[0].item()
        for size, tokens, out in terms
    )
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
        "active_units": active_units(torch.cat(means)),
        **extra,
    }


class JsonlLogCallback(TrainerCallback):
    """Append every log line to ``training_log.jsonl`` in the run folder (for plots and reports)."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with open(self.path, "a") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")


class TimeLimitCallback(TrainerCallback):
    """Stop training after ``seconds`` of wall time (recipes sized for a time budget)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds and time.monotonic() - self.start > self.seconds:
            logger.info("time limit of %.0f s reached at step %d", self.seconds, state.global_step)
            control.should_training_stop = True
            control.should_save = True  # so that --resume continues from here


# ------------------------------------------------------------------------------- train()

@dataclass
class TrainingRun:
    """What :func:`train` produced: the run folder and the objects it saved there."""

    output_dir: Path
    model: SeqVAE
    tokenizer: object
    train_smiles: list
    validation: object
    report: object
    validation_metrics: dict
    train_seconds: float
    evaluation_args: EvaluationArguments
    data_args: object = None


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
            reset_decoder(model, optimizer)
            logger.info("step %d: autoencoder pre-training done, decoder re-initialised", self.step)


def reset_decoder(model: SeqVAE, optimizer=None) -> None:
    """Fresh initial values for every decoder parameter (and no optimiser state for them)."""
    for module in model.decoder.modules():
        reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
        if reset is not None:
            reset()
    if optimizer is not None:
        state = getattr(optimizer, "optimizer", optimizer).state  # accelerate wraps the optimiser
        for parameter in model.decoder.parameters():
            state.pop(parameter, None)


def train(
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
    _check_attribute_settings(data_args)
    set_seed(args.seed)
    output_dir.mkdir(parents=True, exist_ok=True)

    train_rows, validation_rows, report = load_training_corpus(data_args, args.seed)
    labels = attribute_labels(train_rows, data_args)  # categorical attributes are read as label indices
    train_rows, validation_rows = encode_labels(train_rows, labels), encode_labels(validation_rows, labels, report)
    checkpoint = _latest_checkpoint(output_dir) if resume else None
    if resume and checkpoint is None:
        raise SeqVAEError(f"--resume: no checkpoint-* folder in {output_dir}; start without --resume")
    tokenizer = None
    if checkpoint is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(output_dir)
    train_set, validation_set, tokenizer = tokenize_training_corpus(
        train_rows, validation_rows, data_args, report, tokenizer, seed=args.seed
    )
    if checkpoint is not None:
        config = SeqVAEConfig.from_pretrained(checkpoint)
    else:
        tokenizer.save_pretrained(output_dir)
        config = SeqVAEConfig(
            vocab_size=len(tokenizer),
            representation=data_args.representation,
            max_sequence_length=data_args.max_length,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            unk_token_id=tokenizer.unk_token_id,
            **property_statistics(
                train_rows,
                _property_columns(train_rows, data_args),
                data_args.property_units,
                labels=labels,
                rules=data_args.attribute_rules,
            ),
            **model_kwargs,
        )
    _warn_about_the_property_head(config)
    if config.latent_dim == 0 and args.autoencoder_pretraining_steps:
        raise SeqVAEError("autoencoder_pretraining_steps needs a latent: this is a language model (latent_dim 0)")
    report.write(output_dir / "data_report.json")
    logger.info("data: %s (report: %s)", report.summary(), output_dir / "data_report.json")
    _write_recipe(output_dir, data_args, model_kwargs, training_kwargs, evaluation_args)

    model = SeqVAE(config)
    log_path = output_dir / "training_log.jsonl"
    if checkpoint is None:
        log_path.unlink(missing_ok=True)  # a fresh run in an old folder starts a fresh log
    callbacks = [JsonlLogCallback(log_path), *(callbacks or [])]
    if args.max_train_seconds:
        callbacks.append(TimeLimitCallback(args.max_train_seconds))
    if args.autoencoder_pretraining_steps:
        callbacks.append(DecoderResetCallback(args.autoencoder_pretraining_steps))
    trainer = SeqVAETrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        data_collator=PaddingCollator(tokenizer.pad_token_id, config.property_names),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.monotonic() - started
    trainer.save_model(str(output_dir))
    _replace_pickled_args(output_dir, args)
    validation_metrics = trainer.evaluate()
    return TrainingRun(
        output_dir=output_dir,
        model=trainer.model,
        tokenizer=tokenizer,
        train_smiles=arrow_table(train_rows)["smiles" if "smiles" in train_rows.column_names else "text"].to_pylist(),
        validation=validation_set,  # the rows the model read (text: long sentences left out)
        report=report,
        validation_metrics=validation_metrics,
        train_seconds=train_seconds,
        evaluation_args=evaluation_args,
        data_args=data_args,
    )


def _warn_about_the_property_head(config: SeqVAEConfig) -> None:
    if config.property_head_hidden_size and not config.num_properties:
        logger.warning("property_head_hidden_size is set but properties are not: the model gets no property head")
    elif config.num_properties and not config.property_head_hidden_size:
        logger.info("no property head (property_head_hidden_size: 0): re-ranking and latent optimisation unavailable")


def load_corpus(data_args, progress: bool = False, source: str | None = None):
    """``load_molecules`` (or ``load_texts``) with a recipe's data settings."""
    source = source or data_args.data
    if data_args.representation == "text":
        return load_texts(
            source,
            text_column=data_args.text_column,
            data_dir=data_args.data_dir,
            hub_split=data_args.hub_split,
            lowercase=data_args.lowercase,
            attributes=data_args.properties,
            attribute_rules=data_args.attribute_rules,
            categorical_attributes=data_args.categorical_attributes,
        )
    return load_molecules(
        source,
        smiles_column=data_args.smiles_column,
        canonicalize=data_args.canonicalize,
        keep_largest_fragment=data_args.keep_largest_fragment,
        representation=data_args.representation,
        max_length=data_args.max_length,
        deduplicate=data_args.deduplicate,
        data_dir=data_args.data_dir,
        progress=progress,
        num_proc=data_args.num_proc,
        properties=data_args.properties,
    )


def load_training_corpus(data_args, seed: int):
    """``(train rows, validation rows, report)``: a held-out ``validation_data`` corpus when the
    recipe names one, else a seeded random split of ``data``."""
    corpus, report = load_corpus(data_args, progress=True)
    if not data_args.validation_data:
        return *split_train_validation(corpus, data_args.validation_fraction, seed), report
    validation, validation_report = load_corpus(data_args, progress=True, source=data_args.validation_data)
    report.merge(validation_report)
    return corpus, validation, report


def attribute_labels(train_rows, data_args) -> dict[str, list[str]]:
    """``{attribute: labels}`` of the categorical text attributes: a rule's fixed labels, or
    the sorted labels of the training rows."""
    if data_args.representation != "text":
        return {}
    labels = {}
    for name in data_args.properties:
        rule = data_args.attribute_rules.get(name)
        if rule:
            found = rule_labels(rule)
        elif train_rows.features[name].dtype in ("string", "large_string"):
            found = sorted(set(train_rows[name]))
        else:
            continue
        if found:
            labels[name] = found
    return labels


def build_corpus_tokenizer(data_args, texts, seed: int = 0):
    """The tokenizer a recipe asks for, trained on the training rows' ``texts`` (a molecule
    vocabulary on a sample of a large corpus: see :func:`tokenize_training_rows`)."""
    if data_args.representation == "text":
        return build_text_tokenizer(
            texts,
            data_args.text_tokenizer,
            vocab_size=data_args.tokenizer_vocab_size,
            min_frequency=data_args.tokenizer_min_frequency,
            model_max_length=data_args.max_length,
        )
    return build_tokenizer(texts, data_args.representation, data_args.max_length, seed=seed)


def tokenize_training_corpus(train_rows, validation_rows, data_args, report, tokenizer=None, seed: int = 0):
    """``(train set, validation set, tokenizer)``, encoded; the tokenizer is built on the training
    rows unless one is given (a resumed run keeps its own)."""
    if tokenizer is None:
        tokenizer = build_corpus_tokenizer(data_args, arrow_table(train_rows)["text"].to_pylist(), seed=seed)
        train_set, tokenizer = tokenize_training_rows(train_rows, tokenizer, data_args, report)
    else:
        train_set = tokenize_corpus(train_rows, tokenizer, data_args, report)
    return train_set, tokenize_corpus(validation_rows, tokenizer, data_args, report), tokenizer


def tokenize_training_rows(train_rows, tokenizer, data_args, report):
    """``(encoded rows, tokenizer)``. A molecule vocabulary learned from a sample of a large
    corpus gets the tokens the sample missed, and the rows are encoded again with them, so no
    training token becomes ``<unk>``."""
    if data_args.representation == "text":
        return tokenize_corpus(train_rows, tokenizer, data_args, report), tokenizer
    encoded = tokenize_corpus(train_rows, tokenizer, data_args)
    unknown_rows = rows_with_unknown(encoded, tokenizer.unk_token_id)
    missing = molecule_encoder(tokenizer).unknown_tokens(encoded.select(unknown_rows)["text"]) if unknown_rows else set()
    if missing:
        logger.info("adding %d token(s) the vocabulary sample missed: %s", len(missing), " ".join(sorted(missing)))
        tokenizer = extend_vocabulary(tokenizer, sorted(missing))
        encoded = tokenize_corpus(train_rows, tokenizer, data_args)
    report.count_unknown_in(encoded, tokenizer.unk_token_id)
    return encoded, tokenizer


def tokenize_corpus(rows, tokenizer, data_args, report=None):
    """Token ids for molecules (already length-checked) or sentences (checked here)."""
    if data_args.representation == "text":
        return tokenize_texts(rows, tokenizer, data_args.max_length, data_args.long_sentences, report)
    return tokenize_molecules(rows, tokenizer, report)


def run_split(run_dir: str | Path):
    """The ``(train, validation)`` rows of a finished run, re-created from its ``recipe.yaml``.

    Reading the corpus with the run's settings and splitting with its seed gives the same rows
    (large corpora come from the on-disk cache of checked tables). Used for novelty against
    the training set and for held-out molecules in benchmarks.
    """
    recipe = Path(run_dir) / "recipe.yaml"
    data_args, _, training_kwargs, _ = load_recipe(recipe)
    train_rows, validation_rows, _ = load_training_corpus(data_args, training_kwargs.get("seed", 42))
    return train_rows, validation_rows


def _property_columns(rows, data_args) -> list[str]:
    """Molecule tables hold ``smiles``, ``text``, then one column per property; text tables
    ``text``, ``file``, ``line``, then one column per attribute."""
    return rows.column_names[3:] if data_args.representation == "text" else rows.column_names[2:]


def property_statistics(
    rows, names: list[str], units: dict[str, str], labels: dict[str, list[str]] | None = None, rules: dict[str, str] | None = None
) -> dict:
    """Config entries describing the properties: names, units, mean / std and range; the labels
    of categorical ones (whose values are label indices, used as they are) and the rules of
    computed text attributes."""
    if not names:
        return {}
    labels, rules = labels or {}, rules or {}
    unknown_units = sorted(set(units) - set(names))
    if unknown_units:
        raise SeqVAEError(f"property_units names {unknown_units}, which are not among properties {names}")
    table = rows.select_columns(names).to_pandas()
    stds = table.std(ddof=0)
    constant = [name for name in names if not stds[name] > 0]
    if constant:
        raise SeqVAEError(
            f"property {', '.join(constant)} has the same value in every training row; "
            "a constant cannot be a condition, leave it out of properties"
        )
    numeric = {name: name not in labels for name in names}
    return {
        "property_names": names,
        "property_units": [PROPERTIES[name].unit if name in PROPERTIES else units.get(name, "") for name in names],
        "property_means": [float(table[name].mean()) if numeric[name] else 0.0 for name in names],
        "property_stds": [float(stds[name]) if numeric[name] else 1.0 for name in names],
        "property_min": [float(table[name].min()) for name in names],
        "property_max": [float(table[name].max()) for name in names],
        "property_labels": [labels.get(name, []) for name in names],
        "property_rules": [rules.get(name, "") for name in names],
    }


def _latest_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = sorted(
        (p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return checkpoints[-1] if checkpoints else None


def _check_attribute_settings(data_args) -> None:
    names = set(data_args.properties)
    given = set(data_args.attribute_rules) | set(data_args.categorical_attributes)
    if given and data_args.representation != "text":
        raise SeqVAEError("attribute_rules and categorical_attributes are for text (representation: text)")
    if given - names:
        raise SeqVAEError(
            f"attribute_rules / categorical_attributes name {', '.join(sorted(given - names))}, which "
            f"{'is' if len(given - names) == 1 else 'are'} not in properties ({', '.join(data_args.properties) or 'empty'}); add them there"
        )
    reserved = names & {"text", "file", "line", "smiles", "input_ids", "num_tokens"}
    if reserved:
        raise SeqVAEError(f"{', '.join(sorted(reserved))}: reserved column name(s); give the property another name")
    for name, rule in data_args.attribute_rules.items():
        text_attribute(rule, [])  # an unknown rule fails here, before the corpus is read


def _check_model_settings(model_kwargs: dict) -> None:
    try:
        SeqVAEConfig(**model_kwargs)
    except ValueError as error:
        raise SeqVAEError(f"invalid model setting: {error}") from None


def _write_recipe(output_dir: Path, data_args, model_kwargs, training_kwargs, evaluation_args) -> None:
    """The exact settings of this run, as a recipe that ``seqvae train --config`` accepts."""
    from dataclasses import asdict

    resolved = {**asdict(data_args), **model_kwargs, **training_kwargs, **asdict(evaluation_args)}
    (output_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))


def _replace_pickled_args(output_dir: Path, args: TrainingArguments) -> None:
    """Trainer saves ``training_args.bin`` with pickle; run folders keep JSON only."""
    (output_dir / "training_args.bin").unlink(missing_ok=True)
    (output_dir / "training_args.json").write_text(args.to_json_string())
