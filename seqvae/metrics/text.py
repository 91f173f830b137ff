"""Text metrics of a trained sentence model, defined precisely because published numbers differ in
what they count.

* **IW-NLL** (importance-weighted negative log-likelihood, Burda et al. 2016), nats per sentence:
  ``-log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)`` with ``z_k ~ q(z|x)``, ``K`` samples per
  sentence (default 500, as He et al. 2019). It is an upper bound on ``-log p(x)`` that tightens as
  ``K`` grows; the ELBO is the ``K = 1`` case in expectation. A model without a latent
  (``latent_dim: 0``, the language-model baseline) has an exact NLL, reported under the same name.
* **PPL** (perplexity): ``exp(sum of IW-NLL / number of predicted tokens)``, where the predicted
  tokens of a sentence are its tokens plus ``<eos>`` (``<bos>`` is given, never predicted). For
  PTB's word tokenizer a sentence of ``n`` words counts ``n + 1``.
* **KL**, **MI** (mutual information, aggregate-posterior estimator) and **AU** (active units,
  variance of posterior means >= 0.01): from :func:`seqvae.metrics.latent.latent_diagnostics`
  (:func:`seqvae.evaluation.text_metrics` reports them all together).
* **BLEU** of reconstructions: corpus BLEU (sacrebleu, default settings: 4-grams, ``13a``
  tokenisation) of greedy decodes from the posterior means against the input sentences.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..errors import SeqVAEError
from ..modeling import SeqVAE, eval_mode, target_token_nll

__all__ = ["IW_NLL_ESTIMATOR", "importance_weighted_nll", "reconstruction_bleu", "checked_sentences", "word_edit_distance", "interpolation_smoothness"]

IW_NLL_ESTIMATOR = (
    "importance-weighted bound (Burda et al. 2016): -log mean_k p(x|z_k) p(z_k) / q(z_k|x), "
    "z_k ~ q(z|x), K samples per sentence; PPL = exp(total IW-NLL / predicted tokens), "
    "predicted tokens = tokens + <eos> per sentence (<bos> not counted)"
)
_LOG_2PI = math.log(2 * math.pi)
_LOGIT_BUDGET = 64 * 2**20  # floats of logits per decoding pass (256 MB), bounds memory for large vocabularies


@torch.no_grad()
def importance_weighted_nll(
    vae,
    sentences: list[str],
    *,
    num_importance_samples: int = 500,
    batch_size: int = 32,
    samples_per_pass: int = 50,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """IW-NLL per sentence and perplexity of ``sentences`` (see the module docstring).

    Args:
        vae: a text :class:`~seqvae.pipeline.SeqVAEPipeline`.
        sentences: the evaluation sentences (e.g. the PTB test set).
        num_importance_samples: ``K``; ignored (1) for a model without a latent.
        batch_size: sentences per pass; ``samples_per_pass`` latents each (memory: their product).
        seed: seed of the posterior draws.
        progress: show a progress bar.

    Returns:
        ``iw_nll`` (nats per sentence), ``perplexity``, ``num_sentences``,
        ``num_predicted_tokens``, ``num_importance_samples``, ``estimator``.
    """
    return _importance_weighted_nll(
        vae, checked_sentences(vae, sentences), num_importance_samples, batch_size, samples_per_pass, seed, progress
    )


@torch.no_grad()
def _importance_weighted_nll(vae, sentences, num_importance_samples, batch_size, samples_per_pass, seed, progress) -> dict:
    """:func:`importance_weighted_nll` of sentences already checked by :func:`checked_sentences`."""
    if num_importance_samples < 1 or samples_per_pass < 1 or batch_size < 1:
        raise SeqVAEError("num_importance_samples, samples_per_pass and batch_size must be at least 1")
    model = vae.model
    samples = num_importance_samples if model.config.latent_dim > 0 else 1
    generator = torch.Generator().manual_seed(seed)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].split()))  # less padding per batch
    total_nll, total_tokens = 0.0, 0
    with eval_mode(model):
        with tqdm(total=len(sentences), desc="IW-NLL", unit="sentence", disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                batch = vae.tokenize([sentences[i] for i in order[start : start + batch_size]])
                per_pass = _samples_per_pass(batch["input_ids"].shape, model.config.vocab_size, samples_per_pass)
                log_weights = _log_weights(model, batch, samples, per_pass, generator)
                total_nll -= float((torch.logsumexp(log_weights, dim=1) - math.log(samples)).sum())
                total_tokens += int(batch["attention_mask"][:, 1:].sum())
                bar.update(batch["input_ids"].size(0))
    return {
        "iw_nll": total_nll / len(sentences),
        "perplexity": math.exp(total_nll / total_tokens),
        "num_sentences": len(sentences),
        "num_predicted_tokens": total_tokens,
        "num_importance_samples": samples,
        "estimator": IW_NLL_ESTIMATOR,
    }


def checked_sentences(vae, sentences: list[str]) -> list[str]:
    """The sentences as the model's run read its own (``vae.normalize``: whitespace collapsed,
    lower-cased when the run was); an empty one, or one longer than the model can read (the
    model would see it cut, without ``<eos>``), is an error naming it."""
    sentences = vae.normalize([str(s) for s in sentences])
    if not sentences:
        raise SeqVAEError("no sentences to evaluate: the list is empty")
    if not all(sentences):
        raise SeqVAEError("empty sentence in the evaluation set: remove blank lines (load_texts skips them)")
    limit = vae.config.max_sequence_length
    lengths = [len(ids) for ids in vae.tokenizer(sentences)["input_ids"]]
    too_long = [i for i, length in enumerate(lengths) if length > limit]
    if too_long:
        first = too_long[0]
        raise SeqVAEError(
            f"{len(too_long)} sentence(s) are longer than the model's max_sequence_length ({limit} tokens with "
            f"<bos>/<eos>); the first, number {first + 1}, has {lengths[first]}: {sentences[first][:60]!r}. "
            "Leave them out (they cannot be scored whole), or train with a larger max_length"
        )
    return sentences


def _samples_per_pass(shape: torch.Size, vocab_size: int, requested: int) -> int:
    """Latents per sentence decoded at once, so that one pass's logits stay near 64M floats."""
    sentences, length = shape
    return max(1, min(requested, _LOGIT_BUDGET // (sentences * length * vocab_size)))


def _log_weights(model, batch: dict, samples: int, per_pass: int, generator: torch.Generator) -> torch.Tensor:
    """``[B, samples]`` of ``log p(x|z) + log p(z) - log q(z|x)`` with ``z ~ q(z|x)``."""
    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    size = input_ids.size(0)
    mu, logvar = model.encode(input_ids, mask)
    parts = []
    for done in range(0, samples, per_pass):
        k = min(per_pass, samples - done)
        epsilon = torch.randn((size, k, mu.size(1)), generator=generator).to(mu.device)
        z = SeqVAE.reparameterize(mu.unsqueeze(1), logvar.unsqueeze(1), epsilon).reshape(size * k, -1)
        repeated_ids, repeated_mask = input_ids.repeat_interleave(k, dim=0), mask.repeat_interleave(k, dim=0)
        logits, _ = model.decode_logits(repeated_ids[:, :-1], z)
        log_likelihood = -target_token_nll(logits, repeated_ids, repeated_mask).sum(dim=1).view(size, k)
        log_prior = -0.5 * (z.pow(2) + _LOG_2PI).sum(dim=1).view(size, k)
        log_posterior = -0.5 * (epsilon.pow(2) + logvar.unsqueeze(1) + _LOG_2PI).sum(dim=2)
        parts.append(log_likelihood + log_prior - log_posterior)
    return torch.cat(parts, dim=1)


def reconstruction_bleu(references: list[str], hypotheses: list[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses`` against one reference each (sacrebleu defaults)."""
    import sacrebleu

    if len(references) != len(hypotheses):
        raise SeqVAEError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise SeqVAEError("no sentences to score")
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def word_edit_distance(first: str, second: str) -> int:
    """Levenshtein distance between two sentences counted in words (insert, delete, replace)."""
    a, b = first.split(), second.split()
    previous = list(range(len(b) + 1))
    for i, word in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


def interpolation_smoothness(paths: list[list[str]], starts: list[str]) -> dict:
    """How evenly decoded interpolation paths move from their start input towards their end.

    ``paths``: per path, the decoded sentences from the start to the end latent; ``starts``: the
    input sentence each path starts from. For each path, the word edit distance of every step to
    that input. A path whose steps all decode to one sentence has not moved (``unchanged_share``);
    among the others, ``monotone_share`` counts those whose distance never falls, and
    ``largest_jump_share`` is the mean largest one-step rise as a share of the final distance (1:
    the whole change in one step; 1/(steps-1): even steps). ``mean_step_change`` is the mean edit
    distance between consecutive steps (a path that rewrites words back and forth shows it here),
    ``mean_distance_by_step`` the average curve.
    """
    if not paths or len(paths) != len(starts):
        raise SeqVAEError(f"interpolation smoothness needs one start per path, got {len(paths)} paths and {len(starts)} starts")
    curves = [[word_edit_distance(start, sentence) for sentence in path] for path, start in zip(paths, starts)]
    moved = [(path, curve) for path, curve in zip(paths, curves) if len(set(path)) > 1]
    monotone = [all(b >= a for a, b in zip(curve, curve[1:])) for _, curve in moved]
    jumps = [max(b - a for a, b in zip(curve, curve[1:])) / curve[-1] for _, curve in moved if curve[-1] > 0]
    changes = [word_edit_distance(a, b) for path in paths for a, b in zip(path, path[1:])]
    steps = len(curves[0])
    return {
        "unchanged_share": 1 - len(moved) / len(paths),
        "monotone_share": sum(monotone) / len(moved) if moved else None,
        "largest_jump_share": sum(jumps) / len(jumps) if jumps else None,
        "mean_step_change": round(sum(changes) / len(changes), 2) if changes else None,
        "mean_distance_by_step": [round(sum(curve[k] for curve in curves) / len(curves), 2) for k in range(steps)],
    }
