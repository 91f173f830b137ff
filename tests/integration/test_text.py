"""Text support: tokenizers, corpora, the language-model baseline, likelihood metrics, training."""

from __future__ import annotations

import gzip
import json
import logging
import math

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from seqvae.configuration import SeqVAEConfig
from seqvae.data import CorpusReport, load_texts, tokenize_texts
from seqvae.errors import SeqVAEError
from tests.support import TOY_SENTENCES
from seqvae.metrics.text import (
    _log_weights,
    importance_weighted_nll,
    reconstruction_bleu,
)
from seqvae.modeling import SeqVAE
from seqvae.pipeline import SeqVAEPipeline
from seqvae.tokenization import build_text_tokenizer

SENTENCES = TOY_SENTENCES * 5


def test_word_tokenizer_caps_the_vocabulary_and_reads_rare_words_as_unk():
    tokenizer = build_text_tokenizer(SENTENCES, "word", vocab_size=8)
    assert len(tokenizer) == 8  # 4 special tokens + the 4 most frequent words
    assert "the" in tokenizer.get_vocab() and "monday" not in tokenizer.get_vocab()  # most / least frequent
    ids = tokenizer("the monday")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert ids[-2] == tokenizer.unk_token_id
    assert tokenizer.decode(ids[1:-1]) == "the <unk>"


def test_word_tokenizer_min_frequency_leaves_out_rare_words():
    tokenizer = build_text_tokenizer(["apple banana", "apple cherry"], "word", min_frequency=2)
    vocabulary = tokenizer.get_vocab()
    assert "apple" in vocabulary and "banana" not in vocabulary and "cherry" not in vocabulary


def test_word_tokenizer_decodes_known_sentences_exactly():
    tokenizer = build_text_tokenizer(SENTENCES, "word")
    for sentence in set(SENTENCES):
        assert tokenizer.decode(tokenizer(sentence)["input_ids"][1:-1]) == sentence


def test_bpe_tokenizer_round_trips_unseen_words_through_subwords():
    tokenizer = build_text_tokenizer(SENTENCES * 3, "bpe", vocab_size=60)
    ids = tokenizer("the cats sat")["input_ids"]
    assert tokenizer.decode(ids[1:-1]) == "the cats sat"
    assert tokenizer.unk_token_id not in ids


def test_pretrained_tokenizer_from_a_local_folder_gets_bos_eos_and_pad(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tmp_path)

    tokenizer = build_text_tokenizer([], str(tmp_path), model_max_length=32)
    ids = tokenizer("the cat sat")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and len(ids) == 5
    assert tokenizer.pad_token_id not in (tokenizer.bos_token_id, tokenizer.eos_token_id, None)
    assert tokenizer.unk_token == "[UNK]"  # its own special tokens are kept


def test_unknown_tokenizer_name_gives_a_clear_error(tmp_path):
    with pytest.raises(SeqVAEError, match="unknown tokenizer"):
        build_text_tokenizer(SENTENCES, str(tmp_path / "no-such-tokenizer"))


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_texts_skips_and_counts_empty_lines_with_their_line_numbers(tmp_path):
    path = _write_lines(tmp_path / "corpus.txt", [" the cat sat ", "", "   ", "a dog"])
    rows, report = load_texts(str(path))
    assert rows["text"] == ["the cat sat", "a dog"] and rows["line"] == [1, 4]
    assert report.rows_read == 4 and report.rows_kept == 2 and report.skipped_counts == {"empty line": 2}
    assert [row.line for row in report.skipped] == [2, 3]


def test_load_texts_reads_gzip_and_lowercases(tmp_path):
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("The Cat\nA Dog\n")
    rows, _ = load_texts(str(path), lowercase=True)
    assert rows["text"] == ["the cat", "a dog"]


def test_load_texts_rejects_a_file_that_is_not_text(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"fine line\n\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(SeqVAEError, match=r"line 2: not UTF-8"):
        load_texts(str(path))


def test_load_texts_reads_a_csv_text_column_and_asks_when_it_cannot_tell(tmp_path):
    named = _write_lines(tmp_path / "named.csv", ["id,sentence", "1,the cat sat", "2,a dog"])
    rows, _ = load_texts(str(named))
    assert rows["text"] == ["the cat sat", "a dog"] and rows["line"] == [2, 3]
    ambiguous = _write_lines(tmp_path / "ambiguous.csv", ["title,body", "x,the cat", "y,a dog"])
    with pytest.raises(SeqVAEError, match="text_column"):
        load_texts(str(ambiguous))
    rows, _ = load_texts(str(ambiguous), text_column="body")
    assert rows["text"] == ["the cat", "a dog"]


def test_load_texts_reads_a_hub_style_dataset_folder(tmp_path):
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    _write_lines(folder / "train.csv", ["text,label", "the cat sat,0", "a dog,1"])
    rows, report = load_texts(f"hub:{folder}")
    assert rows["text"] == ["the cat sat", "a dog"] and report.sources == [f"hub:{folder}[train]"]
    _write_lines(folder / "test.csv", ["text,label", "shares rose,0"])
    rows, report = load_texts(f"hub:{folder}:test")
    assert rows["text"] == ["shares rose"] and report.sources == [f"hub:{folder}[test]"]
    with pytest.raises(SeqVAEError, match="could not load the Hub dataset"):
        load_texts(f"hub:{tmp_path / 'missing'}")


def test_long_sentences_are_skipped_or_truncated_and_counted(tmp_path):
    path = _write_lines(tmp_path / "corpus.txt", ["the cat sat on the mat today", "a dog"])
    rows, report = load_texts(str(path))
    tokenizer = build_text_tokenizer(rows["text"], "word")
    kept = tokenize_texts(rows, tokenizer, max_length=5, long_sentences="skip", report=report)
    assert kept["text"] == ["a dog"] and report.rows_kept == 1
    assert report.skipped[0].line == 1 and "too long (9 tokens > max_length 5)" in report.skipped[0].reason

    report = CorpusReport(rows_read=2, rows_kept=2)
    cut = tokenize_texts(rows, tokenizer, max_length=5, long_sentences="truncate", report=report)
    assert [len(ids) for ids in cut["input_ids"]] == [5, 4] and cut["input_ids"][0][-1] == tokenizer.eos_token_id
    assert report.truncated == 1 and report.rows_kept == 2 and "1 truncated" in report.summary()
    with pytest.raises(SeqVAEError, match="long_sentences"):
        tokenize_texts(rows, tokenizer, max_length=5, long_sentences="drop")


@pytest.fixture
def text_pipeline(tiny_model_kwargs):
    """Factory of untrained tiny text models: ``text_pipeline(latent_dim=0)``."""

    def make(latent_dim: int) -> SeqVAEPipeline:
        tokenizer = build_text_tokenizer(SENTENCES, "word")
        config = SeqVAEConfig(
            vocab_size=len(tokenizer), representation="text", max_sequence_length=16,
            **{**tiny_model_kwargs, "latent_dim": latent_dim},
        )
        torch.manual_seed(0)
        return SeqVAEPipeline(SeqVAE(config), tokenizer)

    return make


def test_latent_dim_zero_is_a_language_model_without_encoder(text_pipeline):
    vae = text_pipeline(latent_dim=0)
    assert vae.model.encoder is None and vae.model.posterior is None
    batch = vae.tokenize(SENTENCES[:4])
    output = vae.model(**batch)
    assert output.kl.item() == 0 and output.z.shape == (4, 0)
    # Its NLL is exact: every "importance sample" gives the same value, which is the recon loss.
    result = importance_weighted_nll(vae, SENTENCES[:4], num_importance_samples=50)
    assert result["num_importance_samples"] == 1
    assert result["iw_nll"] == pytest.approx(output.recon_loss.item(), rel=1e-5)


def test_perplexity_counts_words_plus_eos_and_not_bos(text_pipeline):
    vae = text_pipeline(latent_dim=0)
    sentences = ["the cat sat", "a dog"]
    result = importance_weighted_nll(vae, sentences)
    assert result["num_predicted_tokens"] == (3 + 1) + (2 + 1)
    with torch.no_grad():
        total_nll = vae.model.eval()(**vae.tokenize(sentences)).recon_loss.item() * 2  # exact: no latent
    assert result["perplexity"] == pytest.approx(math.exp(total_nll / 7), rel=1e-5)


def test_importance_weights_match_densities_computed_with_torch_distributions(text_pipeline):
    from torch.distributions import Normal

    vae = text_pipeline(latent_dim=8)
    model = vae.model.eval()
    batch = vae.tokenize(SENTENCES[:6])
    with torch.no_grad():
        log_weights = _log_weights(model, batch, samples=4, per_pass=4, generator=torch.Generator().manual_seed(0))
        mu, logvar = model.encode(batch["input_ids"], batch["attention_mask"])
        epsilon = torch.randn((6, 4, 8), generator=torch.Generator().manual_seed(0))
        z = mu.unsqueeze(1) + epsilon * torch.exp(0.5 * logvar).unsqueeze(1)  # [6, 4, 8]
        prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
        posterior = Normal(mu.unsqueeze(1), torch.exp(0.5 * logvar).unsqueeze(1)).log_prob(z).sum(-1)
        likelihood = torch.stack([-_sentence_nll(model, batch, z[:, k]) for k in range(4)], dim=1)
    assert log_weights.shape == (6, 4)
    assert torch.allclose(log_weights, likelihood + prior - posterior, atol=1e-3)


def _sentence_nll(model, batch, z: torch.Tensor) -> torch.Tensor:
    """``[B]`` -log p(x|z) of each sentence by teacher forcing, token by token."""
    logits, _ = model.decode_logits(batch["input_ids"][:, :-1], z)
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = batch["input_ids"][:, 1:]
    picked = log_probs.gather(2, targets.unsqueeze(-1)).squeeze(-1) * batch["attention_mask"][:, 1:]
    return -picked.sum(dim=1)


def test_iw_nll_estimate_rejects_empty_sentences(text_pipeline):
    vae = text_pipeline(latent_dim=4)
    with pytest.raises(SeqVAEError, match="empty sentence"):
        importance_weighted_nll(vae, ["the cat", "  "])


def test_reconstruction_bleu_is_100_for_copies_and_lower_for_changes():
    references = ["the cat sat on the mat", "shares of the company rose sharply"]
    assert reconstruction_bleu(references, references) == pytest.approx(100.0)
    assert reconstruction_bleu(references, ["the dog sat on the mat", "shares rose"]) < 60
    with pytest.raises(SeqVAEError):
        reconstruction_bleu(references, references[:1])


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, make_overrides):
    """One tiny text model trained for 20 steps, shared by the tests below."""
    from seqvae.workflow import train_and_evaluate

    folder = tmp_path_factory.mktemp("text_run")
    corpus = _write_lines(folder / "train.txt", SENTENCES + [""])
    held_out = _write_lines(folder / "valid.txt", ["the cat sat on the log", "a dog sat"])
    overrides = make_overrides(
        corpus, representation="text", validation_data=str(held_out), max_length=12,
        num_importance_samples=5, word_dropout=0.3,
    )
    metrics = train_and_evaluate(overrides=overrides, output_dir=folder / "run")
    return folder, metrics


def test_text_training_writes_text_metrics_and_samples(text_run):
    from seqvae.pipeline import load

    folder, metrics = text_run
    for key in ("iw_nll", "perplexity", "kl", "mutual_information", "active_units", "reconstruction_bleu"):
        assert key in metrics and metrics[key] is not None, key
    assert metrics["num_evaluated_sentences"] == 2 and "1 empty line" in metrics["data"]
    assert json.loads((folder / "run" / "metrics.json").read_text())["perplexity"] == metrics["perplexity"]
    vae = load(folder / "run")
    assert vae.representation == "text"
    assert all(isinstance(text, str) for text in vae.sample(3, seed=0))
    assert (folder / "run" / "samples.csv").read_text().startswith("text\n")


def test_homotopy_analogy_and_empty_inputs(text_run):
    from seqvae.pipeline import load

    vae = load(text_run[0] / "run")
    table = vae.homotopy("the cat sat on the mat", "shares of the company rose", steps=5, method="slerp")
    assert list(table.columns) == ["step", "weight", "output", "changed"] and len(table) == 5
    assert table["weight"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and table["changed"].iloc[0]
    assert table["output"].tolist() == vae.interpolate("the cat sat on the mat", "shares of the company rose", 5, "slerp")
    z = vae.encode(["the cat sat", "the dog sat", "a cat"])
    assert vae.analogy("the cat sat", "the dog sat", "a cat") == vae.decode(z[2] + z[1] - z[0])[0]
    with pytest.raises(SeqVAEError, match="tokenizes to nothing"):
        vae.interpolate("the cat", "   ")


def test_cli_evaluates_a_text_model_on_test_sentences(text_run, capsys, restore_logging):
    from seqvae.cli import main

    folder, _ = text_run
    test = _write_lines(folder / "test.txt", ["the cat sat on the mat", "", "a dog and a cat"])
    output = folder / "text_metrics.json"
    status = main(["evaluate", "--model", str(folder / "run"), "--text-test", str(test),
                   "--num_importance_samples", "3", "--output", str(output)])
    out = capsys.readouterr().out
    assert status == 0 and "2/3 rows kept, 1 empty line" in out and "perplexity" in out
    written = json.loads(output.read_text())
    assert written["likelihood"]["num_sentences"] == 2 and written["likelihood"]["num_importance_samples"] == 3
    # A text model without --text_test is a clear error.
    assert main(["evaluate", "--model", str(folder / "run")]) == 2
    assert "--text_test" in capsys.readouterr().err


def test_cli_samples_sentences(text_run, capsys, restore_logging):
    from seqvae.cli import main

    status = main(["sample", "--model", str(text_run[0] / "run"), "--num_samples", "4", "--seed", "0", "--top_k", "5"])
    captured = capsys.readouterr()
    header, *lines = captured.out.splitlines()
    assert status == 0 and header == "text" and len(lines) == 4
    assert "4 sentences" in captured.err


def test_cli_interpolates_between_sentences(text_run, capsys, restore_logging):
    from seqvae.cli import main

    status = main(["interpolate", "--model", str(text_run[0] / "run"), "--start", "the cat sat",
                   "--end", "shares of the company rose", "--steps", "3", "--strategy", "beam"])
    header, *lines = capsys.readouterr().out.splitlines()
    assert status == 0 and header == "step\tweight\toutput" and len(lines) == 3
    assert all(line.split("\t")[2].strip() for line in lines)  # every step decodes to words


def _sequence_log_prob(model, z: torch.Tensor, ids: list[int], limit: int) -> float:
    """log p(ids [, <eos>] | z) under teacher forcing; ``<eos>`` counts when it was emitted."""
    config = model.config
    targets = ids + ([config.eos_token_id] if len(ids) < limit else [])
    inputs = torch.tensor([[config.bos_token_id] + targets[:-1]])
    with torch.no_grad():
        logits, _ = model.decode_logits(inputs, z.unsqueeze(0))
    log_probs = torch.log_softmax(logits[0], dim=-1)
    return float(sum(log_probs[i, token] for i, token in enumerate(targets)))


@pytest.mark.parametrize("decoder_type", ["gru", "lstm", "transformer"])
def test_beam_search_of_one_beam_is_greedy_and_wider_beams_find_likelier_sequences(tiny_model_kwargs, decoder_type):
    from seqvae.generation import decode_latents

    tokenizer = build_text_tokenizer(SENTENCES, "word")
    config = SeqVAEConfig(
        vocab_size=len(tokenizer), representation="text", max_sequence_length=8,
        **{**tiny_model_kwargs, "decoder_type": decoder_type, "decoder_num_layers": 2},
    )
    torch.manual_seed(0)
    model = SeqVAE(config).eval()
    z = torch.randn(12, config.latent_dim) * 2
    greedy = decode_latents(model, z, strategy="greedy")
    assert decode_latents(model, z, strategy="beam", num_beams=1) == greedy
    beam = decode_latents(model, z, strategy="beam", num_beams=5)
    limit = config.max_sequence_length - 1
    greedy_scores = [_sequence_log_prob(model, z[i], greedy[i], limit) for i in range(12)]
    beam_scores = [_sequence_log_prob(model, z[i], beam[i], limit) for i in range(12)]
    assert sum(beam_scores) > sum(greedy_scores)
    assert sum(b >= g - 1e-4 for b, g in zip(beam_scores, greedy_scores)) >= 10
    with pytest.raises(SeqVAEError, match="num_beams"):
        decode_latents(model, z, strategy="beam", num_beams=0)


def test_decoder_reset_reinitialises_only_the_decoder_and_drops_its_optimizer_state(text_pipeline):
    from seqvae.training import reset_decoder

    model = text_pipeline(latent_dim=4).model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = text_pipeline(latent_dim=4).tokenize(SENTENCES[:4])
    model(**batch).loss.backward()
    optimizer.step()
    before = {name: value.clone() for name, value in model.named_parameters()}
    reset_decoder(model, optimizer)
    changed = {name for name, value in model.named_parameters() if not torch.equal(value, before[name])}
    assert changed and all(name.startswith("decoder.") for name in changed)
    assert "decoder.rnn.weight_hh_l0" in changed and "embedding.weight" not in changed
    assert all(p not in optimizer.state for p in model.decoder.parameters())
    assert all(p in optimizer.state for p in model.encoder.parameters())


def test_autoencoder_pretraining_has_zero_kl_weight_then_follows_the_schedule(tmp_path, make_overrides, caplog):
    import logging

    from seqvae.training import train_model

    caplog.set_level(logging.INFO, logger="seqvae.training")

    corpus = _write_lines(tmp_path / "train.txt", SENTENCES)
    overrides = make_overrides(
        corpus, representation="text", max_length=12, max_steps=10, autoencoder_pretraining_steps=4,
        kl_schedule="constant", kl_max_weight=0.5, validation_fraction=0.2,
    )
    run = train_model(overrides=overrides, output_dir=tmp_path / "run")
    logged = [json.loads(line) for line in (run.output_dir / "training_log.jsonl").read_text().splitlines()]
    weights = {row["step"]: row["kl_weight"] for row in logged if "kl_weight" in row}
    assert [weights[step] for step in range(1, 5)] == [0.0] * 4
    assert [weights[step] for step in range(5, 11)] == [0.5] * 6
    assert "step 4: autoencoder pre-training done, decoder re-initialised" in caplog.text
    with pytest.raises(SeqVAEError, match="must be below max_steps"):
        train_model(overrides={**overrides, "autoencoder_pretraining_steps": 10}, output_dir=tmp_path / "run2")


def test_iw_nll_refuses_sentences_longer_than_the_model_reads(text_pipeline):
    vae = text_pipeline(latent_dim=4)  # max_sequence_length 16
    with pytest.raises(SeqVAEError, match=r"number 2, has 20"):
        importance_weighted_nll(vae, ["the cat", " ".join(["the"] * 18)])


def test_inputs_longer_than_the_model_reads_are_cut_with_eos_and_a_warning(text_pipeline, caplog):
    vae = text_pipeline(latent_dim=4)  # max_sequence_length 16
    long = " ".join(["the"] * 18)  # 20 tokens with <bos>/<eos>
    with caplog.at_level("WARNING", logger="seqvae"):
        batch = vae.tokenize(["the cat", long])
    assert batch["input_ids"].shape == (2, 16)
    assert batch["input_ids"][1, -1].item() == vae.tokenizer.eos_token_id  # cut, but still ends
    assert batch["attention_mask"][0].sum().item() == 4  # the short one is untouched
    assert "1 of 2 input(s) are longer than the model's max_sequence_length (16" in caplog.text
    assert "number 2, has 20 tokens" in caplog.text
    with caplog.at_level("WARNING", logger="seqvae"):
        caplog.clear()
        vae.tokenize(["the cat"])
    assert "longer than" not in caplog.text


def test_ptb_benchmark_writes_its_table_and_interpolations(text_run, tmp_path, monkeypatch):
    import sys

    from benchmarks import text_ptb

    data = tmp_path / "ptb"
    data.mkdir()
    _write_lines(data / "ptb.train.txt", SENTENCES)
    _write_lines(data / "ptb.test.txt", ["the cat sat on the mat", "a dog and a cat", "the dog saw the cat"])
    output = tmp_path / "text_ptb.json"
    monkeypatch.setattr(sys, "argv", ["text_ptb.py", "--model", f"tiny VAE={text_run[0] / 'run'}",
                                      "--data_dir", str(data), "--num_importance_samples", "2", "--output", str(output),
                                      "--subset_size", "2", "--subset_importance_samples", "4"])
    text_ptb.main()
    result = json.loads(output.read_text())
    row = result["rows"][0]
    assert row["label"] == "tiny VAE" and row["metrics"]["likelihood"]["num_sentences"] == 3
    found = row["interpolations"]
    assert len(found["paths"]) == 5 and all(len(p["path"]) == 6 for p in found["paths"])
    assert len(found["training_paths"]) == 5 and all(p["start"] in SENTENCES for p in found["training_paths"])
    assert 0.0 <= found["training_endpoints_reconstructed"] <= 1.0
    assert sum(v["sentences"] for v in found["training_reconstruction_by_length"].values()) == min(200, len(SENTENCES))
    table = output.with_suffix(".md").read_text()
    assert table.startswith("| model | IW-NLL |") and "IW-NLL, K=4, 2 sentences" in table
    assert row["subset"]["num_sentences"] == 2 and row["subset"]["num_importance_samples"] == 4
    assert row["subset"]["iw_nll"] > 0 and result["subset"]["num_sentences"] == 2


def test_ptb_verdict_compares_the_best_vae_that_keeps_its_latent():
    from benchmarks.text_ptb import compare

    def row(label, nll, kl=None, units=None, subset=None):
        metrics = {"iw_nll": nll, "latent_dim": 32 if kl is not None else None, "kl": kl, "active_units": units}
        return {"label": label, "metrics": metrics, "subset": {"iw_nll": subset}}

    rows = [row("LM", 108.0, subset=111.0), row("collapsed", 107.5, 1.3, 14, 110.7), row("kept", 108.1, 6.0, 32, 110.8)]
    verdict = compare(rows)
    assert verdict["best_vae"] == "kept" and not verdict["vae_no_worse_than_lm"]  # 108.1 > 108.0
    assert verdict["subset_vae_minus_lm"] == -0.2 and verdict["subset_vae_no_worse_than_lm"]
    only_collapsed = compare(rows[:2])  # none keeps KL >= 5: the best of all, flagged
    assert only_collapsed["best_vae"] == "collapsed" and not only_collapsed["kl_at_least_5"]
    assert compare(rows[1:]) is None  # no language model to compare with


def test_pretrained_tokenizer_with_one_token_for_bos_eos_and_unk_gets_distinct_ones(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.WordLevel(unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<|endoftext|>"]))
    PreTrainedTokenizerFast(  # GPT-2 style: one token plays every role
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    ).save_pretrained(tmp_path)
    tokenizer = build_text_tokenizer([], str(tmp_path))
    roles = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id]
    assert len(set(roles)) == 4
    ids = tokenizer("the cat")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id


def test_beam_search_with_guidance_is_refused(text_pipeline):
    from seqvae.generation import decode_latents

    model = text_pipeline(latent_dim=4).model
    with pytest.raises(SeqVAEError, match="not with beam search"):
        decode_latents(model, torch.zeros(2, 4), strategy="beam", guidance_scale=1.0, condition=torch.zeros(0))


def test_a_corpus_whose_sentences_are_all_too_long_is_a_clear_error(tmp_path):
    rows, report = load_texts(str(_write_lines(tmp_path / "c.txt", ["one two three four", "five six seven"])))
    tokenizer = build_text_tokenizer(rows["text"], "word")
    with pytest.raises(SeqVAEError, match="longer than max_length"):
        tokenize_texts(rows, tokenizer, max_length=3, report=report)


def test_a_language_model_refuses_to_encode(text_pipeline):
    vae = text_pipeline(latent_dim=0)
    with pytest.raises(SeqVAEError, match="no latent"):
        vae.interpolate("the cat", "a dog")
    assert len(vae.sample(2, seed=0)) == 2  # but it samples


def test_cli_text_test_needs_a_model(capsys, restore_logging, tmp_path):
    from seqvae.cli import main

    samples = _write_lines(tmp_path / "s.txt", ["CCO"])
    assert main(["evaluate", "--samples", str(samples), "--text_test", str(samples)]) == 2
    assert "--text_test scores a text model" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_a_corpus_that_writes_unk_as_a_word_keeps_ids_within_the_vocabulary(kind):
    # PTB marks rare words with the literal "<unk>"; every id must stay below len(tokenizer).
    corpus = ["the <unk> rose", "a <unk> fell on the <unk>", "the market rose"] * 4
    tokenizer = build_text_tokenizer(corpus, kind, vocab_size=40)
    ids = [token for row in tokenizer(corpus)["input_ids"] for token in row]
    assert max(ids) < len(tokenizer) and sorted(tokenizer.get_vocab().values()) == list(range(len(tokenizer)))
    assert tokenizer.unk_token_id in tokenizer("the <unk>")["input_ids"]  # read as the unknown-word token


def test_only_words_outside_the_vocabulary_are_reported_as_unknown(text_pipeline, caplog):
    vae = text_pipeline(latent_dim=4)
    with caplog.at_level(logging.WARNING, logger="seqvae.pipeline"):
        vae.tokenize(["the <unk> sat on the mat"])  # PTB's own <unk>: nothing to report
    assert "not in the model's vocabulary" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="seqvae.pipeline"):
        vae.tokenize(["the <unk> sat on the zeppelin"])
    assert "1 symbol(s) in 1 of 1 input(s) are not in the model's vocabulary" in caplog.text


def test_a_text_run_that_lowercased_reads_inputs_lowercased_and_the_others_as_written(text_run, tmp_path):
    import shutil

    import yaml

    from seqvae.pipeline import load

    run = tmp_path / "lowercased"
    shutil.copytree(text_run[0] / "run", run, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    (run / "recipe.yaml").write_text(yaml.safe_dump({**recipe, "lowercase": True}, sort_keys=False))
    lowercased, as_trained = load(run), load(text_run[0] / "run")
    assert lowercased.normalize(["  The  CAT sat "]) == ["the cat sat"]
    assert torch.equal(lowercased.encode("The CAT sat"), lowercased.encode("the cat sat"))
    assert as_trained.normalize(["  The  CAT sat "]) == ["The CAT sat"]  # one space, case kept
    assert not torch.equal(as_trained.encode("The CAT sat"), as_trained.encode("the cat sat"))
