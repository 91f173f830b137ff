"""``seqvae sample`` and ``seqvae encode`` with ``--shard i/N`` / ``--chunk_size``: a folder of
Parquet chunks written as they are made, shards that add up to one process's output, resuming
after an interruption, and the settings check that keeps a resume from mixing outputs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from seqvae.errors import SeqVAEError
from seqvae.pipeline import SeqVAEPipeline
from seqvae.sharding import ChunkFolder, Shard, parse_shard, shard_chunks
from tests.support import assert_user_error, run_cli

pytestmark = pytest.mark.usefixtures("restore_logging")

SAMPLE = ["--num_samples", 22, "--seed", 3, "--chunk_size", 4]  # 6 chunks, the last of 2 rows


def sample(capsys, model, output, *extra):
    return run_cli(capsys, "sample", "--model", model, *SAMPLE, "--output", output, *extra)


def chunk_files(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("part-"))


@pytest.fixture
def molecules_with_ids(tmp_path):
    """A .smi file of 11 lines: one invalid, one empty, and lines 4-6 (one whole chunk of 3)
    without a name, so that chunk's ids are all missing."""
    rows = [
        "CCO a", "c1ccccc1O b", "CC(=O)O c",
        "CCN", "C1CC((", "CCCl",
        "", "c1ccncc1 h", "CC(C)O i",
        "OCCO j", "CS(C)=O k",
    ]
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(rows) + "\n")
    return path


def encode(capsys, model, molecules, output, *extra):
    return run_cli(
        capsys, "encode", "--model", model, "--input", molecules, "--output", output, "--on_invalid", "flag", *extra
    )


# ------------------------------------------------------------------------------ sampling


def test_sample_shards_in_one_folder_read_back_as_the_one_process_output(capsys, tmp_path, trained_run):
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    status, out, err = sample(capsys, trained_run.output_dir, one)
    assert status == 0, err
    assert "wrote 22 samples (" in out and "% valid) in 6 chunks" in out and "all 6 chunks are complete" in out

    status, out, err = sample(capsys, trained_run.output_dir, sharded, "--shard", "1/3")
    assert status == 0, err
    assert chunk_files(sharded) == ["part-00002.parquet", "part-00003.parquet"]  # its contiguous share only
    assert "2 of 6 chunks are complete" in out
    for shard in ("2/3", "0/3"):
        assert sample(capsys, trained_run.output_dir, sharded, "--shard", shard)[0] == 0

    expected = pd.read_parquet(one)
    assert len(expected) == 22 and list(expected.columns) == ["smiles", "valid"]
    assert expected["smiles"].iloc[:4].tolist() != expected["smiles"].iloc[4:8].tolist()  # chunks draw apart
    pd.testing.assert_frame_equal(pd.read_parquet(sharded), expected)


def test_sample_shards_in_their_own_folders_concatenate_in_order(capsys, tmp_path, trained_run):
    one = tmp_path / "one"
    assert sample(capsys, trained_run.output_dir, one)[0] == 0
    parts = []
    for index in range(4):
        folder = tmp_path / f"shard{index}"
        assert sample(capsys, trained_run.output_dir, folder, "--shard", f"{index}/4")[0] == 0
        parts.append(pd.read_parquet(folder))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), pd.read_parquet(one))


def test_an_interrupted_sample_resumes_to_the_uninterrupted_output(capsys, tmp_path, trained_run, monkeypatch):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert sample(capsys, trained_run.output_dir, whole)[0] == 0

    real = SeqVAEPipeline.sample_frame
    calls = []

    def interrupted_on_the_third_chunk(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SeqVAEPipeline, "sample_frame", interrupted_on_the_third_chunk)
    status, _, err = sample(capsys, trained_run.output_dir, resumed)
    assert status == 130 and "interrupted" in err
    assert chunk_files(resumed) == ["part-00000.parquet", "part-00001.parquet"]
    stale = resumed / ".part-00002.parquet.99999.tmp"  # as a write killed half-way leaves it
    stale.write_bytes(b"half a parquet file")

    calls.clear()
    monkeypatch.setattr(SeqVAEPipeline, "sample_frame", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    status, out, err = sample(capsys, trained_run.output_dir, resumed)
    assert status == 0, err
    assert len(calls) == 4 and "skipped 2 chunks already complete" in out  # only the missing chunks drawn
    assert not stale.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(resumed), pd.read_parquet(whole))


# ------------------------------------------------------------------------------ encoding


def test_encode_shards_concatenate_to_the_one_process_encoding(capsys, tmp_path, trained_run, molecules_with_ids):
    one, sharded, plain = tmp_path / "one", tmp_path / "sharded", tmp_path / "plain.parquet"
    status, out, err = encode(capsys, trained_run.output_dir, molecules_with_ids, one, "--chunk_size", 3)
    assert status == 0, err
    assert "wrote 11 rows in 4 chunks" in out
    assert "flagged (NaN latents, valid=False) 2 of 11 rows" in err
    for shard in ("1/2", "0/2"):
        status, _, err = encode(capsys, trained_run.output_dir, molecules_with_ids, sharded, "--chunk_size", 3, "--shard", shard)
        assert status == 0, err
    assert encode(capsys, trained_run.output_dir, molecules_with_ids, plain)[0] == 0

    expected = pd.read_parquet(one)
    pd.testing.assert_frame_equal(pd.read_parquet(sharded), expected)
    assert expected["line"].tolist() == list(range(1, 12))
    assert expected["name"].fillna("-").tolist() == ["a", "b", "c", "-", "-", "-", "-", "h", "i", "j", "k"]
    assert expected["valid"].tolist() == [True] * 4 + [False, True, False] + [True] * 4
    unchunked = pd.read_parquet(plain)  # the same rows as without chunks
    latents = [f"z{i}" for i in range(8)]
    assert expected[["line", "smiles", "valid"]].equals(unchunked[["line", "smiles", "valid"]])
    np.testing.assert_allclose(expected[latents].to_numpy(), unchunked[latents].to_numpy(), atol=1e-5)


def test_a_missing_encode_chunk_is_remade_and_the_rest_skipped(capsys, tmp_path, trained_run, molecules_with_ids):
    output = tmp_path / "latents"
    assert encode(capsys, trained_run.output_dir, molecules_with_ids, output, "--chunk_size", 3, "--on_invalid", "skip")[0] == 0
    whole = pd.read_parquet(output)
    assert whole["valid"].all() and len(whole) == 9  # skip leaves the invalid rows out
    (output / "part-00001.parquet").unlink()
    status, out, err = encode(capsys, trained_run.output_dir, molecules_with_ids, output, "--chunk_size", 3, "--on_invalid", "skip")
    assert status == 0, err
    assert "wrote 2 rows in 1 chunk" in out and "skipped 3 chunks already complete" in out
    pd.testing.assert_frame_equal(pd.read_parquet(output), whole)


def test_an_edited_input_of_the_same_size_is_not_resumed(capsys, tmp_path, trained_run, molecules_with_ids):
    output = tmp_path / "latents"
    assert encode(capsys, trained_run.output_dir, molecules_with_ids, output, "--chunk_size", 3, "--shard", "0/2")[0] == 0
    text = molecules_with_ids.read_text()
    molecules_with_ids.write_text(text.replace("CCO a", "OCC a"))  # another molecule, same number of bytes
    os.utime(molecules_with_ids, ns=(1, 1))  # a modification time that differs whatever the clock's resolution
    result = encode(capsys, trained_run.output_dir, molecules_with_ids, output, "--chunk_size", 3, "--shard", "1/2")
    assert_user_error(*result, "other settings", "input_modified_ns")


def test_a_chunk_whose_ids_are_all_missing_keeps_the_folder_one_table(tmp_path):
    # pandas 2 holds ids as objects: alone, a first chunk of missing ones would be a null column,
    # and pyarrow, reading the folder with the first chunk's schema, cannot cast the later strings.
    import pyarrow as pa

    whole = pd.DataFrame({"id": pd.Series([None, None, "c", None], dtype=object), "x": [1, 2, 3, 4]})
    output = ChunkFolder(tmp_path / "out", "test", {}, num_rows=4, chunk_size=2)
    types = {"id": pa.string()}
    for chunk in range(2):
        output.write(chunk, whole.iloc[output.rows(chunk).start : output.rows(chunk).stop], types)
    read = pd.read_parquet(tmp_path / "out")
    assert read["x"].tolist() == [1, 2, 3, 4]
    assert read["id"].fillna("-").tolist() == ["-", "-", "c", "-"]


# ------------------------------------------------------------------------------ user errors


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("3/2", "i must be below N"),
        ("2/2", "i must be below N"),
        ("x", "expected i/N"),
        ("0/0", "N must be at least 1"),
        ("-1/2", "expected i/N"),
        ("1/2/3", "expected i/N"),
    ],
)
@pytest.mark.parametrize("command", ["sample", "encode"])
def test_a_bad_shard_is_one_line_before_the_model_loads(capsys, tmp_path, command, value, fragment):
    inputs = ["--input", tmp_path / "absent.csv"] if command == "encode" else []
    result = run_cli(capsys, command, "--model", tmp_path / "no_model", *inputs, "--output", tmp_path / "out", f"--shard={value}")
    assert_user_error(*result, f"--shard {value!r}", fragment, "0 <= i < N")


def test_shard_auto_reads_the_launchers_rank_and_world_size():
    assert parse_shard("auto", {"RANK": "1", "WORLD_SIZE": "4"}) == Shard(1, 4)
    assert parse_shard("auto", {}) == Shard(0, 1)
    with pytest.raises(SeqVAEError, match="RANK=4 and WORLD_SIZE=4"):
        parse_shard("auto", {"RANK": "4", "WORLD_SIZE": "4"})


@pytest.mark.parametrize("num_chunks", [0, 1, 5, 6, 13])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_take_contiguous_chunks_that_cover_each_once(num_chunks, count):
    ranges = [shard_chunks(Shard(index, count), num_chunks) for index in range(count)]
    assert [chunk for chunks in ranges for chunk in chunks] == list(range(num_chunks))
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


@pytest.mark.parametrize(
    "changed, fragments",
    [
        (["--seed", 4], ["seed 3 there, 4 now"]),
        (["--chunk_size", 5], ["chunk_size 4 there, 5 now"]),
        (["--temperature", 0.5], ["temperature 1.0 there, 0.5 now"]),
    ],
)
def test_resuming_with_other_settings_is_refused(capsys, tmp_path, trained_run, changed, fragments):
    output = tmp_path / "samples"
    assert sample(capsys, trained_run.output_dir, output, "--shard", "0/2")[0] == 0
    before = {name: (output / name).read_bytes() for name in chunk_files(output)}
    result = sample(capsys, trained_run.output_dir, output, "--shard", "1/2", *changed)
    assert_user_error(*result, f"--output {output}", "other settings", *fragments)
    assert {name: (output / name).read_bytes() for name in chunk_files(output)} == before


def test_chunked_output_must_be_a_folder_seqvae_can_own(capsys, tmp_path, trained_run):
    model = trained_run.output_dir
    result = run_cli(capsys, "sample", "--model", model, "--shard", "0/2")
    assert_user_error(*result, "--output FOLDER")
    result = run_cli(capsys, "sample", "--model", model, "--chunk_size", 5, "--output", tmp_path / "s.csv")
    assert_user_error(*result, "s.csv", "folder of Parquet chunks", "e.g.")
    (tmp_path / "file").write_text("x")
    result = run_cli(capsys, "sample", "--model", model, "--chunk_size", 5, "--output", tmp_path / "file")
    assert_user_error(*result, "is a file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_cli(capsys, "sample", "--model", model, "--chunk_size", 5, "--output", tmp_path / "mine")
    assert_user_error(*result, "notes.txt", "no _manifest.json", "new or empty folder")
    result = run_cli(capsys, "sample", "--model", model, "--chunk_size", 0, "--output", tmp_path / "z")
    assert_user_error(*result, "--chunk_size must be at least 1, not 0")
