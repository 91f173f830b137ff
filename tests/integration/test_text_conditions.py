"""Conditional text generation: categorical and numeric attributes (issue 8).

A tiny model is trained on a synthetic CSV where the label decides the adjective (``good`` /
``bad``) and the ``length`` attribute (computed: words) varies from 3 to 9 words, so that the
tests can check that conditioning moves the output the right way.
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from seqvae import SeqVAE, SeqVAEConfig, SeqVAEError
from seqvae.cli import main
from seqvae.conditions import check_condition, condition_values
from seqvae.data import encode_labels, load_texts
from seqvae.data.attributes import text_attribute

NOUNS = ["the film", "the plot", "the cast", "the music", "the ending", "the story"]


def _sentence(label: str, words: int, generator: random.Random) -> str:
    adjective = generator.choice(["good", "great"] if label == "positive" else ["bad", "awful"])
    filler = ["very"] * (words - 3)  # "the film" + fillers + adjective = words
    price = ["at", "$", "N"] if generator.random() < 0.3 else []  # a 'money' attribute for the benchmark
    return " ".join([generator.choice(NOUNS), *filler, adjective, *price])


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """``text,label,score`` rows, and a validation file with one label never seen in training."""
    generator = random.Random(0)
    folder = tmp_path_factory.mktemp("reviews")
    rows = ["text,label,score"]
    for index in range(400):
        label = ["positive", "negative"][index % 2]
        rows.append(f"{_sentence(label, generator.randint(3, 9), generator)},{label},{generator.random():.3f}")
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    valid = ["text,label,score", "the film very good,positive,0.5", "the plot bad,negative,0.1", "the cast so-so,neutral,0.3"]
    (folder / "valid.csv").write_text("\n".join(valid) + "\n")
    return folder


@pytest.fixture(scope="module")
def review_run(reviews, make_overrides):
    from seqvae.workflow import train_and_evaluate

    overrides = make_overrides(
        reviews / "train.csv", representation="text", validation_data=str(reviews / "valid.csv"), max_length=16,
        properties=["label", "length", "money"], attribute_rules={"length": "words", "money": "contains:$"},
        property_units={"length": "words"},
        max_steps=300, per_device_train_batch_size=32, learning_rate=0.01, logging_steps=50, save_steps=1000,
        condition_drop_probability=0.1, unconditional_probability=0.1, num_importance_samples=2,
        embedding_dim=32, decoder_hidden_size=64,
    )
    metrics = train_and_evaluate(overrides=overrides, output_dir=reviews / "run")
    return reviews / "run", metrics


# --------------------------------------------------------------------------- reading attributes


def test_load_texts_reads_labels_numbers_and_computed_attributes(reviews):
    rows, report = load_texts(
        str(reviews / "train.csv"), attributes=["label", "score", "length", "money"],
        attribute_rules={"length": "words", "money": "contains:$"},
    )
    assert rows.column_names == ["text", "file", "line", "label", "score", "length", "money"]
    assert set(rows["label"]) == {"positive", "negative"}  # no value reads as a number: labels
    assert all(isinstance(v, float) for v in rows["score"])
    assert rows["length"] == [float(len(t.split())) for t in rows["text"]]
    assert rows["money"] == ["yes" if "$" in t.split() else "no" for t in rows["text"]]
    assert set(rows["money"]) == {"yes", "no"} and report.rows_kept == 400


def test_empty_labels_and_bad_numbers_are_skipped_and_counted(write_file):
    path = write_file("c.csv", "text,label,score\nthe film good,positive,1\nthe plot bad,,2\nthe cast good,positive,n/a\nthe end bad,negative,\n")
    rows, report = load_texts(str(path), attributes=["label", "score"])
    assert rows["text"] == ["the film good"] and report.rows_read == 4 and report.rows_kept == 1
    assert report.skipped_counts == {"empty label": 1, "not a number": 1, "empty value": 1}
    assert [(row.line, row.reason) for row in report.skipped] == [
        (3, "empty label"), (4, "not a number ('n/a')"), (5, "empty value")]


def test_categorical_attributes_can_be_forced_for_class_ids(write_file):
    path = write_file("c.csv", "text,topic\nshares rose,1\nthe team won,2\n")
    rows, _ = load_texts(str(path), attributes=["topic"])
    assert rows["topic"] == [1.0, 2.0]
    rows, _ = load_texts(str(path), attributes=["topic"], categorical_attributes=["topic"])
    assert rows["topic"] == ["1", "2"]


def test_attribute_columns_must_exist(write_file, tmp_path):
    path = write_file("c.csv", "text,label\nthe film good,positive\n")
    with pytest.raises(SeqVAEError, match=r"no column 'sentiment'.*columns: text, label"):
        load_texts(str(path), attributes=["sentiment"])
    txt = tmp_path / "s.txt"
    txt.write_text("the film good\n")
    with pytest.raises(SeqVAEError, match="a .txt file has no columns"):
        load_texts(str(txt), attributes=["label"])
    with pytest.raises(SeqVAEError, match="unknown attribute rule 'chars'"):
        text_attribute("chars", ["a b"])


def test_a_hub_class_label_column_gives_its_label_names(monkeypatch):
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])})
    table = datasets.Dataset.from_dict({"sentence": ["a fine film", "a dull film"], "label": [1, 0]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: table)  # stands in for the download
    rows, report = load_texts("hub:stanfordnlp/sst2", attributes=["label"])
    assert rows["text"] == ["a fine film", "a dull film"] and rows["label"] == ["positive", "negative"]
    assert report.sources == ["hub:stanfordnlp/sst2[train]"]


def test_text_attribute_rules():
    assert text_attribute("words", ["a b c", "d"]) == [3.0, 1.0]
    assert text_attribute("contains:$", ["it cost $ N", "a dollar$ sign", "$"]) == ["yes", "no", "yes"]


def test_labels_unseen_in_training_are_skipped_and_counted(write_file):
    path = write_file("v.csv", "text,label\nthe film good,positive\nthe cast so-so,neutral\n")
    rows, report = load_texts(str(path), attributes=["label"])
    encoded = encode_labels(rows, {"label": ["negative", "positive"]}, report)
    assert encoded["label"] == [1.0] and encoded["text"] == ["the film good"] and report.rows_kept == 1
    assert "label not seen in training (label='neutral'; known: negative, positive)" in report.skipped[-1].reason
    assert report.skipped[-1].line == 3


# ----------------------------------------------------------------------- conditions and the model


_TextConfig = SeqVAEConfig(
    representation="text", property_names=["label", "length"], property_labels=[["negative", "positive"], []],
    property_rules=["", "words"], property_means=[0.0, 6.0], property_stds=[1.0, 2.0],
    property_min=[0.0, 3.0], property_max=[1.0, 9.0], property_units=["", "words"],
)


def test_categorical_conditions_take_labels():
    assert check_condition(_TextConfig, {"label": "positive", "length": "7"}) == {"label": "positive", "length": 7.0}
    values = condition_values(_TextConfig, {"label": "positive"})
    assert values[0] == 1 and torch.isnan(values[1])


@pytest.mark.parametrize(
    "condition, fragment",
    [
        ({"label": "neutral"}, "unknown label 'neutral' for label: this model knows negative, positive"),
        ({"label": 1}, r"label is categorical: give one of its labels \(negative, positive\), not the number 1"),
        ({"label": "2.5"}, "label is categorical"),
        ({"length": "long"}, "the target for length must be a number, got 'long' .length is numeric, not a label."),
    ],
)
def test_wrong_kinds_of_targets_are_clear_errors(condition, fragment):
    with pytest.raises(SeqVAEError, match=fragment):
        check_condition(_TextConfig, condition)


def test_a_label_is_a_one_hot_code_and_a_number_is_normalised():
    model = SeqVAE(SeqVAEConfig(**{**_TextConfig.to_dict(), "vocab_size": 10, "embedding_dim": 8, "encoder_hidden_size": 8,
                                   "decoder_hidden_size": 8, "latent_dim": 4}))
    assert model.config.condition_size == 2 + 1 + 2  # one-hot of 2 labels, one number, two given-flags
    vector = model.condition_vector(torch.tensor([[1.0, 8.0], [0.0, float("nan")], [float("nan"), 4.0]]), 3)
    assert vector.tolist() == [[0, 1, 1.0, 1, 1], [1, 0, 0.0, 1, 0], [0, 0, -1.0, 0, 1]]


def test_a_categorical_property_needs_two_labels():
    with pytest.raises(ValueError, match="at least 2 labels"):
        SeqVAEConfig(property_names=["label"], property_labels=[["positive"]])


# ------------------------------------------------------------------------ a trained tiny model


def test_the_model_knows_its_labels_and_rules(review_run):
    import seqvae

    vae = seqvae.load(review_run[0])
    assert vae.config.property_names == ["label", "length", "money"]
    assert vae.config.property_labels == [["negative", "positive"], [], ["no", "yes"]]
    assert vae.config.property_rules == ["", "words", "contains:$"]
    assert "conditions=label[negative|positive], length, money[no|yes]" in repr(vae)
    assert "labels negative, positive" in vae._repr_html_() and "computed: words" in vae._repr_html_()
    report = json.loads((review_run[0] / "data_report.json").read_text())
    assert report["skipped_counts"] == {"label not seen in training": 1}  # the validation file's 'neutral'


def test_conditioning_on_the_label_moves_the_adjective(review_run):
    import seqvae

    vae = seqvae.load(review_run[0])

    def positive_share(label):
        sentences = vae.sample(60, seed=0, condition={"label": label})
        return sum(any(w in s.split() for w in ("good", "great")) for s in sentences) / 60

    assert positive_share("positive") >= positive_share("negative") + 0.5


def test_conditioning_on_length_moves_the_length_and_sample_frame_measures_it(review_run):
    import seqvae

    vae = seqvae.load(review_run[0])
    short = vae.sample_frame(40, seed=0, condition={"length": 3})
    long = vae.sample_frame(40, seed=0, condition={"length": 9, "label": "negative"})
    assert list(short.columns) == ["text", "length", "length_target", "length_error", "money"]
    assert short["money"].tolist() == ["yes" if "$" in t.split() else "no" for t in short["text"]]
    assert short["length"].tolist() == [float(len(t.split())) for t in short["text"]]
    assert (short["length_error"] == short["length"] - 3).all()
    assert long["length"].mean() >= short["length"].mean() + 2
    assert list(long.columns) == ["text", "label_target", "length", "length_target", "length_error", "money"]


def test_interpolation_holds_the_condition_or_moves_it(review_run):
    import seqvae

    vae = seqvae.load(review_run[0])
    start, end = "the film good", "the plot very very very very very bad"
    held = vae.interpolate(start, end, steps=4, condition={"length": 5})
    assert len(held) == 4 and all(text.strip() for text in held)
    moving = vae.interpolate(start, end, steps=4, condition=({"length": 3}, {"length": 9}))
    assert len(moving[-1].split()) > len(moving[0].split())
    assert vae.analogy("the film good", "the film bad", "the plot good", condition={"label": "negative"})
    with pytest.raises(SeqVAEError, match="must name the same properties"):
        vae.interpolate(start, end, steps=3, condition=({"length": 3}, {"label": "positive"}))


def test_cli_samples_with_a_label_and_reports_the_length_error(review_run, capsys, restore_logging):
    status = main(["sample", "--model", str(review_run[0]), "--num_samples", "5", "--seed", "0",
                   "--condition", "label=positive", "--condition", "length=5"])
    captured = capsys.readouterr()
    header, *lines = captured.out.splitlines()
    assert status == 0 and header == "text,label_target,length,length_target,length_error,money" and len(lines) == 5
    assert "length target 5: mean absolute error" in captured.err


def test_cli_reports_the_match_rate_of_a_measured_label(review_run, capsys, restore_logging):
    status = main(["sample", "--model", str(review_run[0]), "--num_samples", "10", "--seed", "0", "--condition", "money=yes"])
    captured = capsys.readouterr()
    assert status == 0 and "money target yes: " in captured.err and "% match" in captured.err


def test_control_benchmark_writes_its_figures(review_run, reviews, tmp_path):
    from benchmarks import text_control as benchmark

    test_file = tmp_path / "test.txt"
    test_file.write_text("the film very good\nthe plot bad at $ N\n")
    output = tmp_path / "control.json"
    result = benchmark.main(["--model", str(review_run[0]), "--test", str(test_file), "--num_samples", "30",
                             "--lengths", "3", "9", "--num_importance_samples", "2", "--output", str(output)])
    written = json.loads(output.read_text())
    assert written["guidance"] == result["guidance"] and set(written["guidance"]) == {"0.0", "0.5"}
    found = written["guidance"]["0.0"]
    rows = found["conditions"]
    assert set(rows) == {"none", "money=yes", "money=no", "length=3", "length=9"}
    assert found["verdict"]["money_yes_rate"] == rows["money=yes"]["money_rate"]
    assert found["verdict"]["worst_length_mae"] == max(rows["length=3"]["length_mae"], rows["length=9"]["length_mae"])
    assert all(len(row["examples"]) == 5 for row in rows.values())
    assert rows["money=yes"]["money_rate"] > rows["money=no"]["money_rate"]  # the tiny model follows the label
    assert written["test_metrics"]["sentences"] == 2 and written["test_metrics"]["kl"] >= 0
    assert output.with_suffix(".md").read_text().startswith("| condition |") and output.with_suffix(".png").stat().st_size > 0


def test_cli_interpolates_with_a_moving_condition(review_run, capsys, restore_logging):
    status = main(["interpolate", "--model", str(review_run[0]), "--start", "the film good", "--end", "the plot bad",
                   "--steps", "3", "--condition", "length=3", "--end_condition", "length=9"])
    assert status == 0 and len(capsys.readouterr().out.splitlines()) == 4


@pytest.mark.parametrize(
    "condition, fragment",
    [
        ("label=neutral", "unknown label 'neutral' for label: this model knows negative, positive"),
        ("label=3", "label is categorical"),
        ("length=long", "the target for length must be a number"),
        ("mood=happy", "unknown property 'mood'"),
    ],
)
def test_cli_bad_conditions_exit_2_with_a_message(review_run, condition, fragment, capsys, restore_logging):
    status = main(["sample", "--model", str(review_run[0]), "--num_samples", "2", "--condition", condition])
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and "Traceback" not in err


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ({"properties": ["label"], "attribute_rules": {"length": "words"}}, "attribute_rules / categorical_attributes name length"),
        ({"properties": ["length"], "attribute_rules": {"length": "chars"}}, "unknown attribute rule 'chars'"),
        ({"properties": ["num_tokens"], "attribute_rules": {"num_tokens": "words"}}, "reserved column name"),
        ({"properties": ["sentiment"]}, "no column 'sentiment'"),
    ],
)
def test_bad_attribute_settings_exit_2(reviews, setting, fragment, capsys, restore_logging):
    overrides = [f"{key}={json.dumps(value)}" for key, value in setting.items()]
    status = main(["train", f"data={reviews / 'train.csv'}", "representation=text", "max_steps=1",
                   f"output_dir={reviews / 'bad'}", "report_to=none", *overrides])
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and "Traceback" not in err


def test_a_label_column_with_only_one_label_is_refused(write_file, make_overrides, tmp_path):
    from seqvae.training import train_model

    path = write_file("one.csv", "text,label\n" + "".join(f"the film good {i},positive\n" for i in range(20)))
    with pytest.raises(SeqVAEError, match="same value in every training row"):
        train_model(overrides=make_overrides(path, representation="text", properties=["label"]), output_dir=tmp_path / "run")

