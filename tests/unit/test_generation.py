"""Unit tests of seqvae.generation: logit filters, step-by-step decoding, prior sampling,
interpolation. Models are tiny and untrained; where an outcome must be forced, the output bias
of the decoder is set so that one token always wins."""

from __future__ import annotations

import math

import pytest
import torch

from seqvae import SeqVAE, generation
from seqvae.errors import SeqVAEError
from seqvae.generation import (
    decode_latents,
    filter_logits,
    ids_to_strings,
    interpolate_latents,
    sample_prior,
)
from seqvae.tokenization import build_tokenizer

KINDS = ("gru", "lstm", "transformer")


def finite_positions(logits: torch.Tensor) -> list[list[int]]:
    return [torch.isfinite(row).nonzero().flatten().tolist() for row in logits]


# --------------------------------------------------------------------------- filter_logits


def test_top_k_keeps_exactly_the_k_best_tokens():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0, 0.0], [5.0, 1.0, 2.0, 0.0, 4.0]])
    filtered = filter_logits(logits, top_k=2)
    assert finite_positions(filtered) == [[1, 3], [0, 4]]
    kept = torch.isfinite(filtered)
    assert torch.equal(filtered[kept], logits[kept])  # kept logits are not changed


def test_top_k_zero_or_at_least_vocab_keeps_everything():
    logits = torch.randn(3, 6)
    assert torch.equal(filter_logits(logits, top_k=0), logits)
    assert torch.equal(filter_logits(logits, top_k=6), logits)
    assert torch.equal(filter_logits(logits, top_k=10), logits)


# probabilities at shuffled positions: 0.5 at index 1, 0.3 at 3, 0.15 at 0, 0.05 at 2
NUCLEUS_PROBS = torch.tensor([[0.15, 0.5, 0.05, 0.3]])


@pytest.mark.parametrize(
    "top_p, expected",
    [(0.4, [1]), (0.75, [1, 3]), (0.85, [0, 1, 3]), (0.97, [0, 1, 2, 3]), (1.0, [0, 1, 2, 3])],
)
def test_top_p_keeps_the_smallest_set_reaching_the_mass(top_p, expected):
    filtered = filter_logits(NUCLEUS_PROBS.log(), top_p=top_p)
    assert finite_positions(filtered) == [expected]


def test_top_p_always_keeps_the_best_token():
    logits = torch.tensor([[0.0, 0.1, 9.0, 0.2], [3.0, 3.0 - 1e-3, -1.0, 0.0]])
    filtered = filter_logits(logits, top_p=1e-9)
    assert finite_positions(filtered) == [[2], [0]]


def test_top_p_filters_each_row_independently():
    probs = torch.cat([NUCLEUS_PROBS, NUCLEUS_PROBS.flip(1)])
    filtered = filter_logits(probs.log(), top_p=0.75)
    assert finite_positions(filtered) == [[1, 3], [0, 2]]


def test_top_k_and_top_p_combine():
    filtered = filter_logits(NUCLEUS_PROBS.log(), top_k=3, top_p=0.97)
    assert finite_positions(filtered) == [[0, 1, 3]]


# --------------------------------------------------------------------------- decode_latents


@pytest.fixture
def tiny_model(tiny_config):
    def make(decoder_type: str = "gru", **overrides) -> SeqVAE:
        torch.manual_seed(0)
        return SeqVAE(tiny_config(decoder_type=decoder_type, max_sequence_length=20, **overrides)).eval()

    return make


def force_token(model: SeqVAE, token_id: int) -> None:
    """Make ``token_id`` the argmax (and nearly certain sample) of every decoding step."""
    with torch.no_grad():
        model.decoder.output.bias[token_id] = 1e4


@pytest.mark.parametrize("decoder_type", KINDS)
def test_greedy_decoding_is_deterministic(tiny_model, decoder_type):
    model = tiny_model(decoder_type)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    first = decode_latents(model, z, strategy="greedy")
    assert first == decode_latents(model, z, strategy="greedy")
    assert len(first) == 4
    assert all(isinstance(token, int) for row in first for token in row)


@pytest.mark.parametrize("decoder_type", KINDS)
def test_sampling_with_a_seeded_generator_is_reproducible(tiny_model, decoder_type):
    model = tiny_model(decoder_type)
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    first = decode_latents(model, z, strategy="sample", generator=torch.Generator().manual_seed(5))
    again = decode_latents(model, z, strategy="sample", generator=torch.Generator().manual_seed(5))
    other = decode_latents(model, z, strategy="sample", generator=torch.Generator().manual_seed(6))
    assert first == again
    assert first != other


@pytest.mark.parametrize("decoder_type", KINDS)
@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_decoding_stops_at_eos_and_strips_it(tiny_model, decoder_type, strategy):
    model = tiny_model(decoder_type)
    force_token(model, model.config.eos_token_id)
    out = decode_latents(model, torch.randn(3, 8), strategy=strategy, generator=torch.Generator().manual_seed(0))
    assert out == [[], [], []]


def test_finished_sequences_are_cut_at_eos_and_leave_the_batch(tiny_model, monkeypatch):
    model = tiny_model("gru")
    eos, vocab = model.config.eos_token_id, model.config.vocab_size
    calls = []

    def scripted_decode_logits(tokens, z, state, condition=None):
        """Token 7 everywhere; row 0 ends at its 2nd token, row 1 at its 4th. The state
        ``[1, B, 1]`` carries each row's original index, so we see which rows are decoded."""
        step = len(calls)
        rows = state[0, :, 0].long().tolist()
        calls.append((rows, tokens[:, -1].tolist()))
        logits = torch.zeros(z.size(0), 1, vocab)
        logits[:, :, 7] = 1.0
        for position, row in enumerate(rows):
            if (row, step) in ((0, 1), (1, 3)):
                logits[position, :, eos] = 10.0
        return logits, state

    monkeypatch.setattr(model, "initial_decoder_state", lambda z, condition=None: torch.tensor([[[0.0], [1.0]]]))
    monkeypatch.setattr(model, "decode_logits", scripted_decode_logits)
    out = decode_latents(model, torch.zeros(2, 8), strategy="greedy", max_length=10)
    assert out == [[7], [7, 7, 7]]
    # a row that produced <eos> is no longer decoded; the loop stops when none is left
    assert calls == [([0, 1], [1, 1]), ([0, 1], [7, 7]), ([1], [7]), ([1], [7])]


@pytest.mark.parametrize("decoder_type", KINDS)
@pytest.mark.parametrize("max_length", [2, 7, 20])
def test_max_length_bounds_the_generated_tokens(tiny_model, decoder_type, max_length):
    model = tiny_model(decoder_type)
    force_token(model, 9)  # never <eos>: generation only stops at the limit
    out = decode_latents(model, torch.randn(3, 8), strategy="greedy", max_length=max_length)
    # <bos> + generated tokens fit in max_length
    assert [len(row) for row in out] == [max_length - 1] * 3


def test_default_max_length_is_the_model_limit(tiny_model):
    model = tiny_model("transformer")
    force_token(model, 9)
    out = decode_latents(model, torch.randn(2, 8), strategy="greedy")
    assert [len(row) for row in out] == [model.config.max_sequence_length - 1] * 2


def test_max_length_beyond_the_model_limit_is_clipped_or_rejected_cleanly(tiny_model):
    model = tiny_model("transformer")
    force_token(model, 9)
    try:
        out = decode_latents(model, torch.randn(2, 8), strategy="greedy", max_length=40)
    except SeqVAEError:
        return
    assert all(len(row) <= 39 for row in out)


def test_bos_and_pad_are_never_generated(tiny_model):
    model = tiny_model("gru")
    with torch.no_grad():
        model.decoder.output.bias[model.config.bos_token_id] = 1e4
        model.decoder.output.bias[model.config.pad_token_id] = 1e4
        model.decoder.output.bias[6] = 50.0  # the best allowed token
    out = decode_latents(model, torch.randn(2, 8), strategy="greedy", max_length=5)
    assert out == [[6] * 4, [6] * 4]


@pytest.mark.parametrize("strategy, options", [("nucleus", {}), ("sample", {"temperature": 0.0}), ("beam", {"num_beams": 0})])
def test_bad_decoding_options_raise_seqvae_error(tiny_model, strategy, options):
    with pytest.raises(SeqVAEError):
        decode_latents(tiny_model("gru"), torch.randn(1, 8), strategy=strategy, **options)


def test_decoding_restores_training_mode(tiny_model):
    model = tiny_model("gru").train()
    decode_latents(model, torch.randn(1, 8), strategy="greedy", max_length=3)
    assert model.training


@pytest.mark.parametrize("decoder_type", KINDS)
@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_bf16_decoding_runs_a_bfloat16_copy_and_leaves_the_model_fp32(tiny_model, decoder_type, strategy, monkeypatch):
    model = tiny_model(decoder_type)
    seen = []
    original = SeqVAE.decode_logits

    def recording(self, tokens, z, state=None, condition=None):
        seen.append((self is model, z.dtype, next(self.decoder.parameters()).dtype))
        return original(self, tokens, z, state, condition)

    monkeypatch.setattr(SeqVAE, "decode_logits", recording)
    out = decode_latents(model, torch.randn(3, 8), strategy=strategy, precision="bf16", generator=torch.Generator().manual_seed(0))
    assert len(out) == 3 and all(isinstance(token, int) for row in out for token in row)
    assert seen and set(seen) == {(False, torch.bfloat16, torch.bfloat16)}
    assert model.dtype == torch.float32


def test_bf16_and_fp32_agree_when_one_token_dominates(tiny_model):
    model = tiny_model("gru")
    model.decoder.output.bias.data[6] = 50.0
    z = torch.randn(4, 8)
    assert decode_latents(model, z, strategy="greedy", max_length=6, precision="bf16") == decode_latents(
        model, z, strategy="greedy", max_length=6
    ) == [[6] * 5] * 4


def test_sample_prior_converts_the_model_once_for_all_batches(tiny_model, monkeypatch):
    copies = []
    real_deepcopy = generation.copy.deepcopy
    monkeypatch.setattr(generation.copy, "deepcopy", lambda obj: copies.append(obj) or real_deepcopy(obj))
    out = sample_prior(tiny_model("gru"), 10, batch_size=3, precision="bf16", max_length=6, generator=torch.Generator().manual_seed(0))
    assert len(out) == 10 and len(copies) == 1


@pytest.mark.parametrize("decoder_type", KINDS)
def test_decoding_in_a_smaller_batch_gives_each_latent_the_same_greedy_sequence(tiny_model, decoder_type):
    model = tiny_model(decoder_type)
    with torch.no_grad():
        model.decoder.output.bias[model.config.eos_token_id] += 0.4  # rows end at different steps
    torch.manual_seed(1)
    z = 3 * torch.randn(11, model.config.latent_dim)
    whole = decode_latents(model, z, strategy="greedy", max_length=12)
    assert len({len(row) for row in whole}) > 1
    assert decode_latents(model, z, strategy="greedy", max_length=12, batch_size=3) == whole


@pytest.mark.parametrize("decoder_type", ["gru", "lstm"])
def test_finished_rows_hand_their_place_to_waiting_latents(tiny_model, decoder_type, monkeypatch):
    model = tiny_model(decoder_type)
    with torch.no_grad():
        model.decoder.output.bias[model.config.eos_token_id] = 2.0
    events = []  # ("step", batch rows) and ("start", new rows), in order
    decode, initial = SeqVAE.decode_logits, SeqVAE.initial_decoder_state
    monkeypatch.setattr(SeqVAE, "decode_logits", lambda self, tokens, z, *a: events.append(("step", tokens.size(0))) or decode(self, tokens, z, *a))
    monkeypatch.setattr(SeqVAE, "initial_decoder_state", lambda self, z, c=None: events.append(("start", z.size(0))) or initial(self, z, c))
    limit = 11
    out = decode_latents(model, torch.randn(23, 8), batch_size=4, max_length=limit + 1, generator=torch.Generator().manual_seed(0))
    sizes = [n for kind, n in events if kind == "step"]
    assert len(out) == 23 and sum(n for kind, n in events if kind == "start") == 23
    assert max(sizes) == 4
    # every row costs exactly its own steps (its tokens and <eos>, or the limit): no step is spent on a finished row
    assert sum(sizes) == sum(min(len(row) + 1, limit) for row in out)
    # the batch stays full while latents wait, then only shrinks
    last_start = max(i for i, (kind, _) in enumerate(events) if kind == "start")
    before = [n for kind, n in events[:last_start] if kind == "step"]
    after = [n for kind, n in events[last_start:] if kind == "step"]
    assert len(before) > 1 and set(before) == {4}
    assert all(a >= b for a, b in zip(after, after[1:]))


@pytest.mark.parametrize("decoder_type, strategy", [("gru", "sample"), ("lstm", "greedy"), ("transformer", "sample"), ("gru", "beam")])
def test_on_finished_counts_every_sequence_once(tiny_model, decoder_type, strategy):
    model = tiny_model(decoder_type)
    with torch.no_grad():
        model.decoder.output.bias[model.config.eos_token_id] = 1.0
    counts = []
    out = decode_latents(model, torch.randn(13, 8), strategy=strategy, batch_size=5, max_length=8, on_finished=counts.append,
                         generator=torch.Generator().manual_seed(0))
    assert len(out) == 13 and sum(counts) == 13 and len(counts) > 1


def test_decoding_batch_size_must_be_positive(tiny_model):
    with pytest.raises(SeqVAEError, match="batch_size must be at least 1, got 0"):
        decode_latents(tiny_model("gru"), torch.randn(2, 8), batch_size=0)


@pytest.mark.parametrize("fast", [True, False])
def test_bf16_warns_only_where_the_device_has_no_bfloat16_units(tiny_model, monkeypatch, caplog, fast):
    monkeypatch.setattr(generation, "bf16_is_fast", lambda device: fast)
    with caplog.at_level("WARNING", logger="seqvae.generation"):
        decode_latents(tiny_model("gru"), torch.randn(2, 8), strategy="greedy", max_length=3, precision="bf16")
    warned = [r.getMessage() for r in caplog.records if "without bfloat16 units" in r.getMessage()]
    assert len(warned) == (0 if fast else 1)
    if warned:
        assert "use precision='fp32'" in warned[0]


@pytest.mark.parametrize(
    "onednn, flags, fast",
    [
        (False, {"avx512_bf16": True}, False),
        (True, {"avx512_bf16": True, "amx_bf16": False}, True),  # Zen 4, Cooper Lake
        (True, {"avx512_bf16": False, "amx_bf16": True}, True),  # Sapphire Rapids
        (True, {"avx512_bf16": False, "amx_bf16": False}, False),  # Skylake / Cascade Lake: oneDNN emulates bf16
        (True, {}, True),  # a torch that cannot list the flags: oneDNN decides
    ],
)
def test_bf16_capability_needs_bfloat16_units_not_just_onednn(monkeypatch, onednn, flags, fast):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    monkeypatch.setattr(generation, "cpu_features", lambda: flags)
    assert generation.bf16_is_fast("cpu") is fast


def test_unknown_precision_is_a_clear_error(tiny_model):
    with pytest.raises(SeqVAEError, match="precision must be one of fp32, bf16, int8, auto, got 'fp16'"):
        decode_latents(tiny_model("gru"), torch.randn(1, 8), precision="fp16")


@pytest.mark.parametrize("decoder_type", ["gru", "lstm"])
def test_int8_decoder_gives_the_fp32_probabilities_within_tolerance(tiny_model, decoder_type):
    model = tiny_model(decoder_type, decoder_num_layers=2, decoder_hidden_size=64)
    quantized = generation.in_precision(model, "int8")
    assert quantized is not model and isinstance(model.decoder.rnn, (torch.nn.GRU, torch.nn.LSTM))  # the original stays fp32
    assert type(quantized.decoder.rnn).__module__.startswith("torch.ao.nn.quantized.dynamic")
    tokens = torch.randint(4, model.config.vocab_size, (16, 12))
    tokens[:, 0] = model.config.bos_token_id
    z = torch.randn(16, 8)
    with torch.no_grad():
        reference = model.decode_logits(tokens, z)[0].log_softmax(-1)
        int8 = quantized.decode_logits(tokens, z)[0].log_softmax(-1)
    # int8 weights with per-tensor scales: probabilities within a few thousandths, not equal
    probability_error = (int8.exp() - reference.exp()).abs().max().item()
    assert 0 < probability_error < 0.01
    kl = (reference.exp() * (reference - int8)).sum(-1).mean().item()
    assert kl < 1e-3
    # step-by-step decoding runs on the quantized copy, with the same state handling
    ids = decode_latents(model, z, strategy="greedy", max_length=10, precision="int8")
    assert len(ids) == 16


def test_int8_refuses_a_decoder_it_does_not_cover(tiny_model):
    with pytest.raises(SeqVAEError, match="precision='int8' covers GRU and LSTM decoders; this model's decoder is transformer"):
        decode_latents(tiny_model("transformer"), torch.randn(1, 8), precision="int8")


@pytest.mark.parametrize(
    "bf16, amx, int8, decoder_type, expected",
    [
        (True, False, True, "gru", "int8"),  # AVX512-BF16 + VNNI: int8 measured faster for GRU / LSTM
        (True, True, True, "gru", "bf16"),  # AMX tiles: bf16 first
        (False, False, True, "gru", "int8"),  # AVX2 without bf16
        (False, False, True, "lstm", "int8"),
        (False, False, True, "transformer", "fp32"),  # int8 covers recurrent decoders only
        (True, False, True, "transformer", "bf16"),
        (False, False, False, "gru", "fp32"),
        (True, False, False, "gru", "bf16"),
    ],
)
def test_auto_precision_picks_the_fast_path_of_the_cpu(tiny_model, monkeypatch, caplog, request, bf16, amx, int8, decoder_type, expected):
    monkeypatch.setattr(generation, "bf16_is_fast", lambda device: bf16)
    monkeypatch.setattr(generation, "cpu_features", lambda: {"amx_bf16": amx})
    monkeypatch.setattr(generation, "int8_is_fast", lambda: int8)
    generation._auto_precision.cache_clear()  # probed once per process: probe again with the patched CPU
    request.addfinalizer(generation._auto_precision.cache_clear)  # and forget the patched answer after
    model = tiny_model(decoder_type)
    with caplog.at_level("INFO", logger="seqvae.generation"):
        chosen = generation.in_precision(model, "auto")
        generation.in_precision(model, "auto")
    assert getattr(chosen, "decoding_precision", "fp32") == expected
    assert (chosen is model) == (expected == "fp32")
    logged = [r.getMessage() for r in caplog.records if "precision='auto'" in r.getMessage()]
    assert len(logged) == 1 and logged[0].endswith(f"decoding in {expected}")  # the choice is logged, once


# ---------------------------------------------------------------------------- sample_prior


@pytest.mark.parametrize("num_samples, batch_size", [(1, 500), (7, 3), (12, 4)])
def test_sample_prior_returns_num_samples_sequences(tiny_model, num_samples, batch_size):
    out = sample_prior(tiny_model("gru"), num_samples, batch_size=batch_size, generator=torch.Generator().manual_seed(0), max_length=6)
    assert len(out) == num_samples
    assert all(len(row) <= 5 for row in out)


def test_sample_prior_is_reproducible_with_a_seeded_generator(tiny_model):
    model = tiny_model("lstm")
    first = sample_prior(model, 6, batch_size=4, generator=torch.Generator().manual_seed(1))
    again = sample_prior(model, 6, batch_size=4, generator=torch.Generator().manual_seed(1))
    assert first == again


def test_sample_prior_rejects_zero_samples(tiny_model):
    with pytest.raises(SeqVAEError, match="num_samples"):
        sample_prior(tiny_model("gru"), 0)


def test_ids_to_strings_decodes_smiles_and_selfies():
    tokenizer = build_tokenizer(["CCO", "c1ccccc1"], "smiles")
    ids = [tokenizer("CCO", add_special_tokens=False)["input_ids"], []]
    assert ids_to_strings(tokenizer, ids, "smiles") == ["CCO", ""]
    selfies_tokenizer = build_tokenizer(["[C][C][O]"], "selfies")
    ids = [selfies_tokenizer("[C][C][O]", add_special_tokens=False)["input_ids"]]
    assert ids_to_strings(selfies_tokenizer, ids, "selfies") == ["CCO"]


# ----------------------------------------------------------------------------- interpolate


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_starts_and_ends_at_the_endpoints(method):
    generator = torch.Generator().manual_seed(0)
    start, end = torch.randn(8, generator=generator), torch.randn(8, generator=generator)
    path = interpolate_latents(start, end, steps=5, method=method)
    assert path.shape == (5, 8)
    assert torch.allclose(path[0], start, atol=1e-5)
    assert torch.allclose(path[-1], end, atol=1e-5)


def test_linear_interpolation_moves_in_equal_steps():
    start, end = torch.zeros(3), torch.tensor([4.0, 8.0, -4.0])
    path = interpolate_latents(start, end, steps=5, method="linear")
    assert torch.allclose(path[2], torch.tensor([2.0, 4.0, -2.0]))
    differences = path[1:] - path[:-1]
    assert torch.allclose(differences, differences[0].expand_as(differences))


def test_slerp_keeps_the_norm_of_equal_norm_endpoints():
    generator = torch.Generator().manual_seed(1)
    start, end = torch.randn(16, generator=generator), torch.randn(16, generator=generator)
    start, end = 3.0 * start / start.norm(), 3.0 * end / end.norm()
    path = interpolate_latents(start, end, steps=9, method="slerp")
    assert torch.allclose(path.norm(dim=1), torch.full((9,), 3.0), atol=1e-4)
    # and linear interpolation between the same points does not
    assert interpolate_latents(start, end, steps=9, method="linear").norm(dim=1)[4] < 2.9


def test_slerp_moves_at_constant_angular_speed():
    start, end = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = interpolate_latents(start, end, steps=3, method="slerp")
    assert torch.allclose(path[1], torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]), atol=1e-6)


@pytest.mark.parametrize("steps", [1, 0, -3])
def test_interpolation_needs_at_least_two_steps(steps):
    with pytest.raises(SeqVAEError, match="steps must be at least 2"):
        interpolate_latents(torch.zeros(4), torch.ones(4), steps=steps)


def test_interpolation_rejects_unknown_method():
    with pytest.raises(SeqVAEError, match="linear' or 'slerp"):
        interpolate_latents(torch.zeros(4), torch.ones(4), steps=3, method="cubic")


# ---------------------------------------------------------------------------- draw_tokens


def test_draw_tokens_follows_the_probabilities():
    probabilities = torch.tensor([0.0, 0.1, 0.0, 0.6, 0.3])
    rows = probabilities.expand(200_000, -1)
    drawn = generation.draw_tokens(rows, torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=5).float() / len(drawn)
    assert counts[0] == 0 and counts[2] == 0  # zero-probability tokens (pad, bos, filtered) never
    assert torch.allclose(counts, probabilities, atol=0.005)  # 4+ standard errors


def test_draw_tokens_is_seeded_and_never_runs_past_the_last_token(monkeypatch):
    probabilities = torch.softmax(torch.randn(64, 9), dim=-1)
    probabilities[:, -2:] = 0  # the end of the vocabulary masked: a draw at u ~ 1 must not land there
    first = generation.draw_tokens(probabilities, torch.Generator().manual_seed(3))
    assert torch.equal(first, generation.draw_tokens(probabilities, torch.Generator().manual_seed(3)))
    assert first.max() <= 6
    # a draw at the very end (u = 1, which torch.rand never returns) still lands on a token with mass
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: torch.ones(1, 1))
    assert generation.draw_tokens(probabilities[:1]).item() == 6


def test_draw_tokens_refuses_nan_probabilities():
    probabilities = torch.full((2, 5), 0.2)
    probabilities[1, 3] = float("nan")  # a diverged model or an overflow: multinomial raised, so do we
    with pytest.raises(SeqVAEError, match="decoding produced NaN or infinite probabilities"):
        generation.draw_tokens(probabilities)
