"""Generation: decoding latents into sequences, prior sampling, interpolation.

Decoding is batched and step by step; the decoder state (the recurrent state, or the
Transformer's prefix) is carried between steps, a sequence leaves the batch once it has
produced ``<eos>``, and with a recurrent decoder the next waiting latent takes its place, so
prior sampling keeps its matrix products at full batch size until the last latents.
Strategies: ``greedy`` (argmax), ``sample`` with ``temperature``, ``top_k`` and ``top_p``
(nucleus) filtering, or ``beam`` (``num_beams`` hypotheses per latent,
the most probable finished one returned). ``precision`` picks the arithmetic: ``fp32`` (the
model as it is), ``bf16`` (a bfloat16 copy: fast on CPUs with bfloat16 units, AVX512-BF16 or
AMX, and on GPUs; many times slower than fp32 on CPUs without them, so it warns there),
``int8`` (a copy whose decoder multiplies with int8 weights, torch's dynamic quantization; CPU)
or ``auto``, the fastest of these that the device runs well (:func:`resolve_precision`).
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import numbers
import warnings
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .errors import SeqVAEError
from .modeling import SeqVAE, eval_mode
from .threads import adapt_threads
from .tokenization import from_model_text

if TYPE_CHECKING:  # the grammar (and numba) load only when a SMILES model decodes
    from .syntax import SmilesSyntax

__all__ = [
    "decode_latents",
    "sample_prior",
    "interpolate_latents",
    "filter_logits",
    "draw_tokens",
    "ids_to_strings",
    "in_precision",
    "resolve_precision",
    "bf16_is_fast",
    "int8_is_fast",
]

PRECISIONS = ("fp32", "bf16", "int8", "auto")
STRATEGIES = ("greedy", "sample", "beam")
SAMPLING_BATCHES_PER_CHUNK = 64  # sample_prior: batches per decode_latents call (its tail runs part-empty)
logger = logging.getLogger(__name__)


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` when it is a whole number of at least ``minimum`` (sample counts, batch sizes,
    steps, beams); otherwise a :class:`SeqVAEError` naming it and the range, so that the command
    line and the Python API refuse it alike, before any work."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SeqVAEError(f"{name} must be a whole number (at least {minimum}), got {value!r}")
    if value < minimum:
        raise SeqVAEError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def is_finite_number(value) -> bool:
    """A real number that is neither NaN nor infinite (``True`` and ``False`` are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def check_decoding_options(
    strategy="sample", temperature=1.0, top_k=0, top_p=1.0, guidance_scale=0.0, num_beams=4, **others
) -> None:
    """Raise :class:`SeqVAEError` naming the first decoding option out of its range.

    Every option is checked whatever the strategy: a NaN temperature is a mistake even where
    greedy decoding would not read it. An option not given is not checked (the defaults are
    valid values); ``others`` (``precision``, ``max_length``...) are left to their users.
    """
    if strategy not in STRATEGIES:
        raise SeqVAEError(f"strategy must be 'greedy', 'sample' or 'beam', got {strategy!r}")
    if not is_finite_number(temperature) or temperature <= 0:
        raise SeqVAEError(f"temperature must be > 0 and finite, got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
        raise SeqVAEError(f"top_k must be >= 0 (0 keeps all tokens), a whole number, got {top_k!r}")
    if not is_finite_number(top_p) or not 0.0 < top_p <= 1.0:
        raise SeqVAEError(f"top_p must be in (0, 1], got {top_p!r}")
    if not is_finite_number(guidance_scale) or guidance_scale < 0:
        raise SeqVAEError(f"guidance_scale must be >= 0 and finite, got {guidance_scale!r}")
    check_count("num_beams", num_beams)
    if strategy == "beam" and guidance_scale > 0:
        raise SeqVAEError("guidance_scale works with greedy or sampled decoding, not with beam search")


def cpu_features() -> dict:
    """The CPU's instruction set extensions as torch detected them (``{}`` if this torch cannot say)."""
    try:
        return dict(torch._C._cpu._get_cpu_capability())
    except (AttributeError, RuntimeError):
        return {}


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether ``device`` has bfloat16 arithmetic units (CPU: AVX512-BF16 or AMX; CUDA: Ampere+).

    oneDNN alone says yes on any AVX512 CPU (Skylake, Cascade Lake), where bf16 is emulated and
    slow: the CPU's own flags decide, where torch can read them.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        features = cpu_features()
        units = features.get("avx512_bf16", True) or features.get("amx_bf16", False)
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and bool(units)
    return True  # other accelerators (mps, xpu...) decide for themselves


def int8_is_fast() -> bool:
    """Whether this CPU multiplies int8 in hardware the way torch's quantized kernels use
    (fbgemm / x86 engines: 8-bit dot products on AVX2 and up, VNNI where present)."""
    engines = torch.backends.quantized.supported_engines
    capability = torch.backends.cpu.get_cpu_capability()
    return dynamic_quantization_available() and ("x86" in engines or "fbgemm" in engines) and capability in ("AVX2", "AVX512")


def dynamic_quantization_available() -> bool:
    """torch's eager dynamic quantization (deprecated for torchao, which has no GRU / LSTM
    counterpart) is still in this torch."""
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_precision(precision: str, device: torch.device | str, recurrent: bool = True) -> str:
    """``auto`` -> the fastest precision ``device`` runs well. Other values are checked and
    returned as they are.

    On a CPU with int8 dot products (AVX2, VNNI) a GRU / LSTM decoder (``recurrent``, what int8
    covers) runs ``int8``: on an AVX512-BF16 EPYC it sampled faster than bf16 (1.88x fp32 against
    1.69x on the shipped model; docs/benchmarks.md, "Reduced precision"). bf16 goes first where
    the CPU has AMX tiles (their bf16 products outrun int8 dot products; not measured here), for
    other decoders where it has bfloat16 units, and on GPUs. Otherwise ``fp32``.
    """
    if precision not in PRECISIONS:
        raise SeqVAEError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return _auto_precision(torch.device(device).type, recurrent)


@functools.cache
def _auto_precision(device_type: str, recurrent: bool) -> str:
    """The choice of ``auto``, probed and logged once per process (the hardware does not change
    between batches)."""
    amx = device_type == "cpu" and bool(cpu_features().get("amx_bf16"))
    int8 = device_type == "cpu" and recurrent and int8_is_fast()
    if bf16_is_fast(device_type) and (device_type != "cpu" or amx or not int8):
        chosen, why = "bf16", "bfloat16 units" + (", AMX" if amx else "")
    elif int8:
        chosen, why = "int8", "int8 dot products, a GRU / LSTM decoder"
    else:
        chosen, why = "fp32", "no bfloat16 units; int8 needs int8 dot products and a GRU / LSTM decoder"
    logger.info("precision='auto' on this %s (%s): decoding in %s", device_type.upper(), why, chosen)
    return chosen


def in_precision(model: SeqVAE, precision: str) -> SeqVAE:
    """``model`` itself for ``fp32`` (or when it already is in that precision), else a copy:
    bfloat16 weights (``bf16``), or a decoder whose recurrent and output layers multiply in int8
    with fp32 activations (``int8``, torch's dynamic quantization; CPU only). ``auto``: see
    :func:`resolve_precision`.

    A copy, so that the caller's model keeps its fp32 weights for training and scoring.
    """
    precision = resolve_precision(precision, model.device, recurrent=model.decoder.rows_can_join)
    if precision == "fp32" or getattr(model, "decoding_precision", None) == precision:
        return model
    if precision == "int8":
        return _int8_copy(model)
    if model.dtype == torch.bfloat16:
        return model
    if not bf16_is_fast(model.device):
        logger.warning(
            "precision='bf16' on a %s without bfloat16 units: decoding will be much slower than fp32 "
            "(emulated bf16 arithmetic); use precision='fp32' here", model.device.type.upper(),
        )
    copied = copy.deepcopy(model).to(torch.bfloat16)
    copied.decoding_precision = "bf16"
    return copied


def _int8_copy(model: SeqVAE) -> SeqVAE:
    """A copy of ``model`` whose decoder's recurrent and output layers hold int8 weights."""
    if not dynamic_quantization_available():
        raise SeqVAEError(f"precision='int8' needs torch's dynamic quantization, which torch {torch.__version__} no longer has; use fp32 or bf16")
    from torch.ao.quantization import quantize_dynamic

    if model.device.type != "cpu":
        raise SeqVAEError(f"precision='int8' decodes on the CPU; this model is on {model.device.type} (use bf16 there)")
    if model.dtype != torch.float32:
        raise SeqVAEError(f"precision='int8' needs an fp32 model, this one is {model.dtype}")
    if not model.decoder.rows_can_join:
        raise SeqVAEError(
            f"precision='int8' covers GRU and LSTM decoders; this model's decoder is {model.config.decoder_type} "
            "(use bf16 or fp32)"
        )
    copied = copy.deepcopy(model)
    with warnings.catch_warnings():
        # torch points eager-mode quantization users to torchao; the API still works in torch 2.x
        warnings.filterwarnings("ignore", message=".*torchao.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        try:
            # the recurrent layers and the output layer: every step's products (latent_to_state runs
            # once per molecule, and is empty in a language model)
            copied.decoder = quantize_dynamic(copied.decoder, {"rnn", "output"}, dtype=torch.qint8)
        except RuntimeError as error:  # a torch build without a quantized engine (fbgemm / x86 / qnnpack)
            raise SeqVAEError(f"precision='int8' is not available in this torch build ({error}); use fp32 or bf16") from error
    copied.decoding_precision = "int8"
    return copied


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Mask logits outside the ``top_k`` best and outside the ``top_p`` probability mass.

    Args:
        logits: ``[B, V]``.
        top_k: keep the k most likely tokens (0: all).
        top_p: keep the smallest set of tokens whose probability reaches ``top_p`` (1.0: all).
    """
    if top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the mass before it already reaches top_p (the best one always stays).
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def decode_latents(
    model: SeqVAE,
    z: torch.Tensor,
    *,
    strategy: str = "sample",
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_length: int | None = None,
    generator: torch.Generator | None = None,
    condition: torch.Tensor | None = None,
    guidance_scale: float = 0.0,
    num_beams: int = 4,
    precision: str = "fp32",
    batch_size: int | None = None,
    on_finished=None,
    syntax: SmilesSyntax | None = None,
) -> list[list[int]]:
    """Decode ``[B, latent_dim]`` latents into token id lists (without ``<bos>``/``<eos>``).

    Args:
        model: a trained :class:`SeqVAE`.
        z: latents on the model's device.
        strategy: ``"greedy"``, ``"sample"`` or ``"beam"``.
        temperature: softmax temperature for sampling (finite, > 0; checked with every strategy).
        top_k, top_p: sampling filters, see :func:`filter_logits`.
        max_length: generation limit in tokens; at most (and by default) the model's
            ``max_sequence_length``, which Transformer decoders cannot exceed.
        generator: random generator for reproducible sampling.
        condition: ``[B, condition_size]`` (or one ``[condition_size]`` row for all) from
            :meth:`SeqVAE.condition_vector`; ``None`` conditions on nothing.
        guidance_scale: classifier-free guidance (Ho & Salimans 2022) for conditional models:
            next-token log-probabilities become ``log p(x|c) + w * (log p(x|c) - log p(x))``,
            with ``log p(x)`` from the same decoder given no condition (training hides the
            conditions at random, so it knows both). 0 is plain conditional sampling; larger
            values follow the target more closely at some cost in diversity. Twice the work.
        num_beams: hypotheses kept per latent with ``strategy="beam"``.
        precision: ``fp32``, ``bf16``, ``int8`` or ``auto`` (see the module docstring; token
            choices are always made from fp32 logits).
        batch_size: at most this many sequences are decoded at once (``None``: all of ``z``).
            With a recurrent decoder (greedy or sampled), a sequence that ends hands its place
            to the next waiting latent, so the batch stays full and its matrix products large
            until the latents run out; a Transformer decoder works through ``z`` in slices.
        on_finished: called with the number of sequences that ended, as they end (progress bars).
        syntax: a :class:`~seqvae.syntax.SmilesSyntax` for the model's vocabulary: every step
            chooses only among the tokens that keep the SMILES valid (``None``: any token).
    """
    check_decoding_options(strategy, temperature, top_k, top_p, guidance_scale, num_beams)
    if batch_size is not None:
        check_count("batch_size", batch_size)
    config = model.config
    model = in_precision(model, precision)
    z = z.to(model.dtype)
    if max_length is not None and max_length < 2:
        raise SeqVAEError(f"max_length must be at least 2 (<bos> and one token), got {max_length}")
    limit = min(max_length or config.max_sequence_length, config.max_sequence_length) - 1  # <bos> given
    batch = z.size(0)
    if condition is not None:
        condition = condition.to(z.device, model.dtype).expand(batch, -1)
    width = min(batch_size or batch, batch)

    def choose(logits: torch.Tensor) -> torch.Tensor:
        """``[B, V]`` fp32 logits -> ``[B]`` next tokens."""
        logits[:, config.pad_token_id] = float("-inf")
        logits[:, config.bos_token_id] = float("-inf")
        if strategy == "greedy":
            return logits.argmax(dim=-1)
        probabilities = F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
        return draw_tokens(probabilities, generator)

    def decode(z_part: torch.Tensor, condition_part) -> list[list[int]]:
        if strategy == "beam":
            ids = _beam_search(model, z_part, condition_part, num_beams, limit, syntax)
            if on_finished is not None:
                on_finished(len(ids))
            return ids
        return _decode_rows(model, z_part, condition_part, guidance_scale, choose, limit, width, on_finished, syntax).tolist()

    with eval_mode(model):
        if strategy == "beam" or not model.decoder.rows_can_join:
            # beams, and decoders whose rows share one prefix length: slices, no refilling
            slices = [(z[start : start + width], None if condition is None else condition[start : start + width])
                      for start in range(0, batch, width)]
            ids = [sequence for z_part, condition_part in slices for sequence in decode(z_part, condition_part)]
        else:
            ids = decode(z, condition)
    return [_strip(sequence, config) for sequence in ids]


def draw_tokens(probabilities: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of ``[B, V]`` probabilities, drawn by inverting the cumulative sum with
    one uniform number per row: the same distribution as ``torch.multinomial``, which draws
    ``B x V`` exponential numbers one after the other (11% of sampling time at V = 66).

    With a (CPU) ``generator`` the uniform numbers are drawn on the CPU, so that a seed means
    the same on any device.
    """
    cumulative = probabilities.float().cumsum(dim=-1)
    if not torch.isfinite(cumulative[:, -1]).all():
        raise SeqVAEError(
            "decoding produced NaN or infinite probabilities: the model's weights are not finite, or this "
            "precision overflowed; check the model, or decode with precision='fp32'"
        )
    uniform = torch.rand(probabilities.size(0), 1, generator=generator, device="cpu" if generator is not None else probabilities.device)
    # scaled by each row's total, so that rounding in the sum cannot leave u beyond the last token;
    # right=True skips tokens of zero probability (their cumulative sum equals their predecessor's)
    targets = uniform.to(cumulative.device) * cumulative[:, -1:]
    chosen = torch.searchsorted(cumulative, targets, right=True).squeeze(1)
    # defensive: u < 1 keeps u * total below the total in fp32, but should a draw reach it, the
    # answer is the last token with mass (where the cumulative sum first reaches its maximum)
    past_the_end = chosen >= probabilities.size(-1)
    return torch.where(past_the_end, cumulative.argmax(dim=-1), chosen)


def _decode_rows(
    model: SeqVAE, z: torch.Tensor, condition, guidance_scale: float, choose, limit: int, width: int, on_finished=None,
    syntax: SmilesSyntax | None = None,
) -> torch.Tensor:
    """Decode every row of ``z`` with at most ``width`` at once; ``[len(z), limit]`` token ids.

    Rows that have produced ``<eos>`` (or reached ``limit``) leave the working batch, so each step
    costs only the unfinished ones, and waiting rows take their places.
    """
    config = model.config
    guided = guidance_scale > 0 and condition is not None
    total = z.size(0)
    width = min(width, total)
    generated = torch.full((total, limit), config.pad_token_id, dtype=torch.long, device=z.device)
    no_condition = None if condition is None else condition.new_zeros(1, condition.size(1))  # guidance's unconditioned pass

    def begin(rows: torch.Tensor):
        """Working-batch entries for new rows: latents, conditions, states, ``<bos>`` tokens, grammar."""
        z_rows, c_rows = z[rows], None if condition is None else condition[rows]
        states = [model.initial_decoder_state(z_rows, c_rows)]
        if guided:
            states.append(model.initial_decoder_state(z_rows, no_condition.expand(rows.numel(), -1)))
        bos = torch.full((rows.numel(),), config.bos_token_id, dtype=torch.long, device=z.device)
        grammar = None if syntax is None else syntax.start(rows.numel(), z.device, limit)
        return z_rows, c_rows, states, bos, grammar

    rows = torch.arange(width, device=z.device)  # the original row of each working row
    waiting = width
    z_work, c_work, states, next_tokens, grammar = begin(rows)
    position = torch.zeros(width, dtype=torch.long, device=z.device)
    while rows.numel():
        adapt_threads()
        tokens = next_tokens.unsqueeze(1)
        logits, states[0] = model.decode_logits(tokens, z_work, states[0], c_work)
        logits = logits[:, -1].float()
        if guided:
            free_logits, states[1] = model.decode_logits(tokens, z_work, states[1], no_condition.expand(rows.numel(), -1))
            conditional = F.log_softmax(logits, dim=-1)
            logits = conditional + guidance_scale * (conditional - F.log_softmax(free_logits[:, -1].float(), dim=-1))
        if grammar is not None:
            logits = grammar.restrict(logits)
        next_tokens = choose(logits)
        if grammar is not None:
            grammar.advance(next_tokens)
        generated[rows, position] = next_tokens
        position += 1
        unfinished = (next_tokens != config.eos_token_id) & (position < limit)
        if unfinished.all():
            continue
        keep = unfinished.nonzero().squeeze(1)
        if on_finished is not None:
            on_finished(rows.numel() - keep.numel())
        rows, position, next_tokens, z_work = rows[keep], position[keep], next_tokens[keep], z_work[keep]
        c_work = None if c_work is None else c_work[keep]
        states = [model.decoder.select_rows(state, keep) for state in states]
        grammar = None if grammar is None else grammar.select(keep)
        joining = min(width - rows.numel(), total - waiting)
        if joining:
            new_rows = torch.arange(waiting, waiting + joining, device=z.device)
            waiting += joining
            z_new, c_new, new_states, bos, new_grammar = begin(new_rows)
            rows, next_tokens, z_work = torch.cat([rows, new_rows]), torch.cat([next_tokens, bos]), torch.cat([z_work, z_new])
            position = torch.cat([position, torch.zeros(joining, dtype=torch.long, device=z.device)])
            c_work = None if c_work is None else torch.cat([c_work, c_new])
            states = [model.decoder.join_rows(old, new) for old, new in zip(states, new_states)]
            grammar = None if grammar is None else grammar.join(new_grammar)
    return generated


def _beam_search(
    model: SeqVAE, z: torch.Tensor, condition, num_beams: int, limit: int, syntax: SmilesSyntax | None = None
) -> list[list[int]]:
    """The most probable sequence per latent among ``num_beams`` hypotheses (sum of token
    log-probabilities; finished hypotheses keep their score and emit padding)."""
    config = model.config
    batch, beams = z.size(0), num_beams
    z = z.repeat_interleave(beams, dim=0)
    if condition is not None:
        condition = condition.repeat_interleave(beams, dim=0)
    state = model.initial_decoder_state(z, condition)
    scores = torch.full((batch, beams), float("-inf"), device=z.device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    tokens = torch.full((batch * beams, 1), config.bos_token_id, dtype=torch.long, device=z.device)
    history = torch.zeros(batch * beams, 0, dtype=torch.long, device=z.device)
    finished = torch.zeros(batch * beams, dtype=torch.bool, device=z.device)
    grammar = None if syntax is None else syntax.start(batch * beams, z.device, limit)
    for _ in range(limit):
        adapt_threads()
        logits, state = model.decode_logits(tokens, z, state, condition)
        log_probs = F.log_softmax(logits[:, -1].float(), dim=-1)
        if grammar is not None:
            log_probs = grammar.restrict(log_probs)
        log_probs[:, [config.pad_token_id, config.bos_token_id]] = float("-inf")
        log_probs[finished] = float("-inf")
        log_probs[finished, config.pad_token_id] = 0.0
        vocab = log_probs.size(-1)
        total = (scores.view(-1, 1) + log_probs).view(batch, beams * vocab)
        scores, best = total.topk(beams, dim=-1)
        origin = (best // vocab + torch.arange(batch, device=z.device).unsqueeze(1) * beams).view(-1)
        next_tokens = (best % vocab).view(-1)
        state = model.decoder.select_rows(state, origin)
        if grammar is not None:
            grammar = grammar.select(origin)
            grammar.advance(next_tokens)
        history = torch.cat([history[origin], next_tokens.unsqueeze(1)], dim=1)
        finished = finished[origin] | (next_tokens == config.eos_token_id)
        if finished.all():
            break
        tokens = next_tokens.unsqueeze(1)
    winners = scores.argmax(dim=-1) + torch.arange(batch, device=z.device) * beams
    return history[winners].tolist()


def _strip(sequence: list[int], config) -> list[int]:
    """Tokens up to (not including) the first ``<eos>``, padding removed."""
    eos, pad = config.eos_token_id, config.pad_token_id  # read once: config attributes are slow
    if eos in sequence:
        sequence = sequence[: sequence.index(eos)]
    return [token_id for token_id in sequence if token_id != pad]


def ids_to_strings(tokenizer, id_lists: list[list[int]], representation: str) -> list[str]:
    """Token ids -> SMILES (SELFIES decoded back to SMILES) or text.

    Text keeps ``<unk>`` (corpora such as PTB write it as a word) and drops every other special
    token (a pretrained tokenizer's ``[CLS]``, ``[SEP]``...).
    """
    if representation == "text":
        hidden = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        kept = [[token for token in ids if token not in hidden] for ids in id_lists]
        return tokenizer.batch_decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if getattr(tokenizer, "clean_up_tokenization_spaces", False):
        texts = tokenizer.batch_decode(id_lists, skip_special_tokens=True)
    else:  # the same text without transformers checking every id of every list (4x faster)
        texts = tokenizer.backend_tokenizer.decode_batch(id_lists, skip_special_tokens=True)
    return [from_model_text(text, representation) for text in texts]


@torch.no_grad()
def sample_prior(
    model: SeqVAE,
    num_samples: int,
    *,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
    progress: bool = False,
    condition: torch.Tensor | None = None,
    **decode_options,
) -> list[list[int]]:
    """Draw ``z ~ N(0, I)`` and decode, in batches. Returns token id lists.

    ``condition``: one ``[condition_size]`` row for every sample, or ``[num_samples, condition_size]``.
    """
    check_count("num_samples", num_samples)
    check_count("batch_size", batch_size)
    check_decoding_options(**decode_options)  # before the progress bar opens
    model = in_precision(model, decode_options.get("precision", "fp32"))  # converted once, not per batch
    device = model.device
    # Each call decodes several batches' worth, ``batch_size`` at a time with finished rows
    # replaced (see decode_latents): the batch shrinks only at the end of a chunk.
    chunk = batch_size * SAMPLING_BATCHES_PER_CHUNK
    results = []
    with tqdm(total=num_samples, desc="sampling", unit="seq", disable=not progress) as bar:
        while len(results) < num_samples:
            size = min(chunk, num_samples - len(results))
            z = torch.randn(size, model.config.latent_dim, generator=generator).to(device)
            rows = condition
            if condition is not None and condition.dim() == 2:
                rows = condition[len(results) : len(results) + size]
            results.extend(decode_latents(
                model, z, generator=generator, condition=rows, batch_size=batch_size, on_finished=bar.update, **decode_options
            ))
    return results


def interpolate_latents(start: torch.Tensor, end: torch.Tensor, steps: int, method: str = "linear"):
    """``steps`` latents from ``start`` to ``end`` (both included), ``[steps, latent_dim]``.

    ``slerp`` moves along the great circle (Shoemake 1985; White 2016 for generative models),
    which keeps intermediate points at a norm typical of Gaussian samples.
    """
    check_count("steps", steps, minimum=2)
    if method not in ("linear", "slerp"):
        raise SeqVAEError(f"method must be 'linear' or 'slerp', got {method!r}")
    weights = torch.linspace(0.0, 1.0, steps, device=start.device).unsqueeze(1)
    if method == "linear":
        return (1 - weights) * start + weights * end
    cosine = F.cosine_similarity(start, end, dim=0).clamp(-1.0, 1.0)
    angle = torch.acos(cosine)
    if angle.abs() < 1e-4 or math.isclose(angle.item(), math.pi, abs_tol=1e-4):
        return (1 - weights) * start + weights * end
    return (torch.sin((1 - weights) * angle) * start + torch.sin(weights * angle) * end) / torch.sin(angle)
