"""The sentence-interpolation benchmark's measures, on tiny models trained here, and the pure
functions behind them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from seqvae.errors import SeqVAEError
from seqvae.metrics.text import interpolation_smoothness, word_edit_distance

SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog sat on the old mat today",
    "the market fell sharply on monday morning in new york",
    "shares of the company rose after the report on friday",
    "the dog saw the cat on the mat",
] * 6


def test_word_edit_distance_counts_word_operations():
    assert word_edit_distance("the cat sat", "the cat sat") == 0
    assert word_edit_distance("the cat sat", "the dog sat") == 1
    assert word_edit_distance("the cat sat", "the cat sat down") == 1
    assert word_edit_distance("the cat", "") == 2
    assert word_edit_distance("a b c d", "b c d a") == 2


def test_smoothness_separates_even_paths_from_jumps_and_paths_that_never_move():
    even = ["a b c d", "x b c d", "x y c d", "x y z d", "x y z w"]
    jump = ["a b c d", "a b c d", "a b c d", "a b c d", "x y z w"]
    stuck = ["a b c e"] * 5  # the decoder ignores z: every step is one sentence
    assert interpolation_smoothness([even], ["a b c d"]) == {
        "unchanged_share": 0.0, "monotone_share": 1.0, "largest_jump_share": 0.25, "mean_step_change": 1.0,
        "mean_distance_by_step": [0, 1, 2, 3, 4],
    }
    assert interpolation_smoothness([jump], ["a b c d"])["largest_jump_share"] == 1.0
    back_and_forth = ["a b c d", "x y c d", "a b c d", "x y z d", "x y z w"]
    assert interpolation_smoothness([even, back_and_forth], ["a b c d"] * 2)["monotone_share"] == 0.5
    collapsed = interpolation_smoothness([stuck, even], ["a b c d", "a b c d"])
    assert collapsed["unchanged_share"] == 0.5 and collapsed["monotone_share"] == 1.0  # the stuck path is not counted smooth
    assert collapsed["mean_distance_by_step"][0] == 0.5  # measured from the input: the stuck path never reached it
    with pytest.raises(SeqVAEError):
        interpolation_smoothness([], [])
    with pytest.raises(SeqVAEError):
        interpolation_smoothness([even], [])


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, make_overrides):
    from seqvae.workflow import train_and_evaluate

    folder = tmp_path_factory.mktemp("interpolation")
    corpus = folder / "train.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n")
    common = dict(representation="text", max_length=16, num_importance_samples=2, kl_max_weight=0.1)
    train_and_evaluate(overrides=make_overrides(corpus, **common), output_dir=folder / "vae")
    train_and_evaluate(overrides=make_overrides(corpus, latent_dim=0, kl_max_weight=0.0, **{k: v for k, v in common.items() if k != "kl_max_weight"}),
                       output_dir=folder / "lm")
    return folder


def test_benchmark_rows_measure_fidelity_smoothness_fluency_and_pick_the_best(tiny_runs, tmp_path):
    import seqvae
    from benchmarks.text_interpolation import choose_best, evaluate, plot

    args = SimpleNamespace(num_paths=3, steps=5, method="linear", num_samples=6, seed=0)
    vae, lm = seqvae.load(tiny_runs / "vae"), seqvae.load(tiny_runs / "lm")
    held_out = sorted(set(SENTENCES))
    row = {"label": "tiny", "model": "vae", **evaluate(vae, lm, held_out, held_out[:4], args)}
    assert row["training_endpoints_exact"].endswith("/4") and 0 <= row["held_out_exact"] <= 1
    assert row["short_sentences"] == len(held_out) and 0 <= row["endpoint_bleu_short"] <= 100
    assert len(row["smoothness"]["mean_distance_by_step"]) == 5 and 0 <= row["smoothness"]["unchanged_share"] <= 1
    assert row["fluency"]["test_ppl"] > 1 and row["kl"] >= 0
    fluent = {**row, "label": "fluent", "endpoint_bleu_short": 10.0, "fluency": {**row["fluency"], "sample_ppl_ratio": 1.2}}
    sharp = {**row, "label": "sharp but not fluent", "endpoint_bleu_short": 90.0, "fluency": {**row["fluency"], "sample_ppl_ratio": 3.0}}
    assert choose_best([fluent, sharp])["label"] == "fluent"
    assert choose_best([sharp])["label"] == "sharp but not fluent"
    plot([fluent, sharp], tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 1000


def test_nll_table_groups_seeds_and_settles_vae_against_lm():
    from benchmarks.text_ptb import seed_groups, seeds_table, settled_verdict

    def row(label, nll, kl, latent_dim):
        return {"label": label, "metrics": {"iw_nll": nll, "perplexity": 100.0, "kl": kl, "latent_dim": latent_dim}}

    rows = [row(f"LM, seed {s}", nll, 0.0, 0) for s, nll in enumerate([100.0, 101.0, 102.0])]
    rows += [row(f"VAE seed {s}", nll, 8.0, 32) for s, nll in enumerate([101.5, 101.9, 102.1])]
    rows += [row(f"weak VAE, seed {s}", nll, 2.0, 32) for s, nll in enumerate([103.0, 104.0])]
    groups = seed_groups(rows)
    assert groups["LM"]["runs"] == 3 and groups["LM"]["iw_nll_mean"] == 101.0 and groups["LM"]["iw_nll_sd"] == 1.0
    verdict = settled_verdict(groups)
    assert verdict["VAE"]["vae_within_lm_plus_1_sd"] and verdict["VAE"]["kl_at_least_5"]
    assert not verdict["weak VAE"]["vae_within_lm_plus_1_sd"] and not verdict["weak VAE"]["kl_at_least_5"]
    assert "| VAE | 3 | 101.83 ± 0.31 |" in seeds_table(groups)
    assert settled_verdict(seed_groups(rows[:1] + rows[3:4])) is None  # one run each: nothing settled
