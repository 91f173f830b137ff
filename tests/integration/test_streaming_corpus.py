"""Integration tests of streamed corpora (``streaming: true``): shards read lazily as a
``datasets.IterableDataset``, checked and tokenised on the fly, shuffled with a seed, split
between processes, damaged shards skipped and reported, and a training run on a stream."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqvae
from seqvae.arguments import DataArguments
from seqvae.data import PaddingCollator, bundled_corpus_files, load_molecules, prepare_corpus, run_split
from seqvae.data.streaming import HashSplit
from seqvae.errors import SeqVAEError

SEED = 0
SETTINGS = {"streaming": True, "max_length": 80, "validation_fraction": 0.1, "vocabulary_sample_size": 100,
            "shuffle_buffer_size": 50, "standardize": False}  # rows stay the canonical SMILES written


@pytest.fixture(scope="module")
def molecules() -> list[str]:
    """240 distinct usable NCI molecules, canonical: every row of the stream is one of them, once."""
    kept, _ = load_molecules(bundled_corpus_files()[0], max_length=80)
    return list(kept["smiles"][:240])


def write_shards(folder: Path, rows: list[str], count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // count)
    paths = []
    for index, start in enumerate(range(0, len(rows), size)):
        path = folder / f"part-{index}.smi.gz"
        path.write_bytes(gzip.compress(("\n".join(rows[start : start + size]) + "\n").encode()))
        paths.append(path)
    return paths


def write_parquet(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"name": [f"m{i}" for i in range(len(rows))], "SMILES": rows}), path, row_group_size=16)
    return path


def streamed(data, process_index: int = 0, num_processes: int = 1, **settings):
    data_args = DataArguments(data=str(data), **{**SETTINGS, **settings})
    return prepare_corpus(data_args, seed=SEED, process_index=process_index, num_processes=num_processes)


def training_side(rows: list[str], fraction: float = 0.1) -> list[str]:
    split = HashSplit(SEED, fraction)
    return [smiles for smiles in rows if not split.held_out(smiles)]


# --------------------------------------------------------------------------- what comes out


def test_the_stream_gives_tokenised_training_rows_the_collator_reads(tmp_path, molecules):
    write_shards(tmp_path / "shards", molecules, 4)
    corpus = streamed(tmp_path / "shards" / "part-*.smi.gz")
    assert isinstance(corpus.train_set, datasets.IterableDataset) and corpus.streaming
    rows = list(corpus.train_set)
    tokenizer = corpus.tokenizer
    for row in rows:
        assert row["num_tokens"] == len(row["input_ids"])
        assert (row["input_ids"][0], row["input_ids"][-1]) == (tokenizer.bos_token_id, tokenizer.eos_token_id)
    assert tokenizer.decode(rows[0]["input_ids"], skip_special_tokens=True) == rows[0]["text"]
    # every training molecule once; the held-out ones (the validation set among them) never
    assert Counter(row["smiles"] for row in rows) == Counter(training_side(molecules))
    validation = list(corpus.validation_rows["smiles"])
    assert validation and set(validation) <= set(molecules[:100]) - set(training_side(molecules))
    batch = PaddingCollator(tokenizer.pad_token_id)(rows[:8])
    assert batch["input_ids"].shape[0] == 8 and batch["attention_mask"].sum() == sum(r["num_tokens"] for r in rows[:8])
    # the vocabulary and the bounded training texts come from the first rows only
    assert len(corpus.training_texts()) == len(corpus.train_rows) <= SETTINGS["vocabulary_sample_size"]
    list(corpus.train_set)  # a second epoch: the report still counts each row once
    assert (corpus.report.rows_read, corpus.report.rows_kept) == (240, 240)


def test_properties_computed_and_read_from_csv_columns_come_with_each_streamed_row(tmp_path, molecules):
    (tmp_path / "shards").mkdir()
    for index in range(2):  # the activity is the row's index, "n/a" on every tenth row
        rows = [f"{i},{smiles},{'n/a' if i % 10 == 0 else i}" for i, smiles in enumerate(molecules[:60]) if i % 2 == index]
        (tmp_path / "shards" / f"part-{index}.csv").write_text("id,smiles,activity\n" + "\n".join(rows) + "\n")
    corpus = streamed(tmp_path / "shards", properties=["logP", "activity"], validation_fraction=0.2)
    whole, _ = load_molecules(str(tmp_path / "shards"), max_length=80, properties=["logP", "activity"])
    expected = {smiles: (logp, activity) for smiles, logp, activity in zip(whole["smiles"], whole["logP"], whole["activity"])}
    rows = list(corpus.train_set)
    assert rows and all((row["logP"], row["activity"]) == pytest.approx(expected[row["smiles"]]) for row in rows)
    assert corpus.report.skipped_counts == {"property activity missing or not a number": 6}
    assert corpus.properties["property_names"] == ["logP", "activity"]
    batch = PaddingCollator(corpus.tokenizer.pad_token_id, ["logP", "activity"])(rows[:4])
    assert batch["properties"].shape == (4, 2)


def test_with_validation_data_the_whole_stream_trains(tmp_path, molecules):
    write_shards(tmp_path / "shards", molecules[:100], 2)
    held_out = tmp_path / "valid.smi"
    held_out.write_text("\n".join(molecules[200:220]) + "\n")
    corpus = streamed(tmp_path / "shards", validation_data=str(held_out))
    assert Counter(row["smiles"] for row in corpus.train_set) == Counter(molecules[:100])
    assert list(corpus.validation_rows["smiles"]) == molecules[200:220]


# -------------------------------------------------------------- order and processes


def smiles_order(dataset) -> list[str]:
    return [row["smiles"] for row in dataset]


def test_the_stream_is_shuffled_with_its_seed(tmp_path, molecules):
    write_shards(tmp_path / "shards", molecules, 4)
    first = smiles_order(streamed(tmp_path / "shards").train_set)
    assert first == smiles_order(streamed(tmp_path / "shards").train_set)  # same seed, same order
    assert first != training_side(molecules)  # not the file order
    other_seed = prepare_corpus(DataArguments(data=str(tmp_path / "shards"), **SETTINGS), seed=SEED + 1).train_set
    assert smiles_order(other_seed) != first
    epoch_two = streamed(tmp_path / "shards").train_set
    epoch_two.set_epoch(1)  # what the Trainer calls each epoch: another order, the same rows
    reshuffled = smiles_order(epoch_two)
    assert reshuffled != first and sorted(reshuffled) == sorted(first)


@pytest.mark.parametrize("num_shards", [4, 3], ids=["shards_per_process", "rows_per_process"])
def test_two_processes_read_disjoint_parts_that_cover_the_stream(tmp_path, molecules, num_shards):
    write_shards(tmp_path / "shards", molecules, num_shards)
    whole = smiles_order(streamed(tmp_path / "shards").train_set)
    parts = [smiles_order(streamed(tmp_path / "shards", process_index=rank, num_processes=2).train_set) for rank in (0, 1)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(whole)


# --------------------------------------------------------------------------- damaged shards


def test_a_damaged_shard_is_skipped_named_and_counted_while_the_others_are_read(tmp_path, molecules):
    good = write_shards(tmp_path / "shards", molecules[:120], 3)
    damaged = tmp_path / "shards" / "part-3.smi.gz"
    packed = gzip.compress(("\n".join(molecules[120:] * 40) + "\n").encode())
    damaged.write_bytes(packed[: len(packed) // 2])  # cut short: rows, then the end of the data
    corpus = streamed(tmp_path / "shards", validation_fraction=0.05)
    corpus.report.write(tmp_path / "run" / "data_report.json")
    rows = smiles_order(corpus.train_set)
    assert Counter(training_side(molecules[:120], 0.05)) - Counter(rows) == Counter()  # the good shards, whole
    report = corpus.report
    assert list(report.failed_shards) == [str(damaged)] and report.skipped_counts["unreadable shard"] == 1
    failure = next(row for row in report.skipped if row.reason.startswith("unreadable shard"))
    assert failure.file == str(damaged) and failure.line > 1  # the rows before the damage were read
    written = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert str(damaged) in written["failed_shards"]  # the report on disk says so while the stream goes on
    assert {str(path) for path in good} <= set(written["sources"])


def test_parquet_shards_stream_in_row_groups_and_a_damaged_one_is_counted(tmp_path, molecules, monkeypatch):
    for index in range(3):
        write_parquet(tmp_path / "shards" / f"part-{index}.parquet", molecules[index * 40 : index * 40 + 40] + ["xx"])
    damaged = write_parquet(tmp_path / "shards" / "part-3.parquet", molecules[120:])
    damaged.write_bytes(damaged.read_bytes()[:-30])  # cut short: its footer is gone
    monkeypatch.setattr(pq, "read_table", None)  # a stream never reads a whole file
    corpus = streamed(tmp_path / "shards", validation_fraction=0.05)
    rows = smiles_order(corpus.train_set)
    assert Counter(rows) == Counter(training_side(molecules[:120], 0.05))
    report = corpus.report
    assert list(report.failed_shards) == [str(damaged)] and report.skipped_counts["unreadable shard"] == 1
    invalid = [(Path(row.file).name, row.line) for row in report.skipped if row.reason == "invalid SMILES"]
    assert invalid == [(f"part-{index}.parquet", 41) for index in range(3)]  # row numbers stand in for lines


def test_a_hub_dataset_streams_through_datasets_streaming(tmp_path, molecules):
    write_parquet(tmp_path / "hub_molecules" / "data" / "train-00000.parquet", molecules[:100])
    corpus = streamed(f"hub:{tmp_path / 'hub_molecules'}")
    assert Counter(smiles_order(corpus.train_set)) == Counter(training_side(molecules[:100]))
    assert corpus.report.sources == [f"hub:{tmp_path / 'hub_molecules'}[train]"]
    with pytest.raises(SeqVAEError, match="could not load the Hub dataset .*missing"):
        streamed(f"hub:{tmp_path / 'missing'}")


def test_a_corpus_whose_every_shard_fails_is_an_error_naming_them(tmp_path):
    (tmp_path / "shards").mkdir()
    for index in range(2):
        (tmp_path / "shards" / f"part-{index}.smi.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SeqVAEError) as error:
        streamed(tmp_path / "shards")
    assert "no shard of the corpus could be read" in str(error.value)
    assert "part-0.smi.gz" in str(error.value) and "part-1.smi.gz" in str(error.value)


def test_a_text_corpus_cannot_be_streamed(tmp_path):
    (tmp_path / "a.txt").write_text("the cat sat\n")
    with pytest.raises(SeqVAEError, match="streaming reads molecule corpora"):
        streamed(tmp_path / "a.txt", representation="text")


# ------------------------------------------------------------------------------ a training run


def test_a_streamed_corpus_trains_a_model_end_to_end(tmp_path, molecules, make_overrides):
    write_shards(tmp_path / "shards", molecules, 4)
    overrides = make_overrides(
        tmp_path / "shards", **{**SETTINGS, "max_steps": 6, "save_steps": 100, "num_prior_samples": 10}
    )
    output_dir = tmp_path / "run"
    vae = seqvae.train(None, output_dir=output_dir, **overrides)
    assert "validity" in vae.metrics and vae.metrics == json.loads((output_dir / "metrics.json").read_text())
    log = [json.loads(line) for line in (output_dir / "training_log.jsonl").read_text().splitlines()]
    assert max(entry.get("step", 0) for entry in log) == 6
    report = json.loads((output_dir / "data_report.json").read_text())
    assert report["streamed"] is True and report["rows_read"] > 0
    train_rows, validation_rows = run_split(output_dir)  # a streamed run's rows: its sample, not the corpus
    assert 0 < len(train_rows) <= SETTINGS["vocabulary_sample_size"] and len(validation_rows)
