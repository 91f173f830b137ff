"""Unit tests of corpora given as several files (a list, a glob, a folder of shards), the
per-shard cache of checked tables, the lazy row reader and the streamed corpus's report."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqvae.data import load_molecules, load_texts, resolve_corpus, storage
from seqvae.data.corpus import load_corpus
from seqvae.data.readers import iter_rows, read_columns
from seqvae.data.report import SkippedRow, StreamReport
from seqvae.data.streaming import HashSplit
from seqvae.errors import SeqVAEError
from seqvae.recipe import load_recipe

# Duplicates across shards (CCO), an invalid row, an empty one and a salt: every kind of row a
# shard boundary could change the handling of.
MOLECULES = ["CCO", "c1ccccc1", "CCN", "xx", "CC(=O)O", "CCO", "", "OCC", "CCCl", "C1CC1", "[Na+].[Cl-]", "CCOC"]


def shards_of(rows: list[str], count: int) -> list[list[str]]:
    size = -(-len(rows) // count)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def write_shards(folder: Path, rows: list[str], count: int, suffix: str = ".smi", header: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, part in enumerate(shards_of(rows, count)):
        path = folder / f"part-{index:02d}{suffix}"
        text = header + "\n".join(part) + "\n"
        path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
        paths.append(path)
    return paths


def write_parquet_shards(folder: Path, rows: list[str], count: int, **columns: list) -> list[Path]:
    """Parquet shards of ``rows`` in a ``SMILES`` column (detected by name, as in a CSV), and
    any other ``columns`` (one value per row) beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for index, part in enumerate(shards_of(rows, count)):
        path = folder / f"part-{index:02d}.parquet"
        extra = {name: values[start : start + len(part)] for name, values in columns.items()}
        pq.write_table(pa.table({"id": list(range(start, start + len(part))), "SMILES": part, **extra}), path)
        paths.append(path)
        start += len(part)
    return paths


def rows_and_counts(source) -> tuple[list[str], tuple]:
    molecules, report = load_molecules(source, max_length=20)
    return list(molecules["smiles"]), (report.rows_read, report.rows_kept, report.skipped_counts)


# ------------------------------------------------------------------ several files, one corpus


@pytest.mark.parametrize("suffix, header", [(".smi", ""), (".csv.gz", "smiles\n")], ids=["smi", "csv_gz"])
def test_a_list_a_glob_and_a_folder_of_shards_read_as_the_concatenated_file(tmp_path, suffix, header):
    whole = write_shards(tmp_path / "whole", MOLECULES, 1, suffix, header)[0]
    shards = write_shards(tmp_path / "shards", MOLECULES, 3, suffix, header)
    (tmp_path / "shards" / "README.md").write_text("not a shard")  # a folder's other files are left out
    expected = rows_and_counts(whole)
    assert expected[0] == ["CCO", "c1ccccc1", "CCN", "CC(=O)O", "CCCl", "C1CC1", "[Cl-].[Na+]", "CCOC"]
    assert expected[1][2] == {"duplicate": 2, "invalid SMILES": 1, "empty": 1}  # OCC is CCO canonicalised
    for source in ([str(p) for p in shards], str(tmp_path / "shards" / f"part-*{suffix}"), str(tmp_path / "shards")):
        assert rows_and_counts(source) == expected, source
    assert resolve_corpus(str(tmp_path / "shards")) == shards  # by name, the README left out


def test_parquet_shards_read_as_the_same_rows_as_a_csv(tmp_path):
    expected = rows_and_counts(write_shards(tmp_path / "csv", MOLECULES, 1, ".csv", "smiles\n")[0])
    whole = write_parquet_shards(tmp_path / "whole", MOLECULES, 1)[0]
    shards = write_parquet_shards(tmp_path / "shards", MOLECULES, 3)
    for source in (str(whole), [str(p) for p in shards], str(tmp_path / "shards" / "*.parquet"), str(tmp_path / "shards")):
        assert rows_and_counts(source) == expected, source
    _, report = load_molecules(str(tmp_path / "shards"), max_length=20)
    skipped = [(Path(row.file).name, row.line, row.value) for row in report.skipped]
    assert ("part-00.parquet", 4, "xx") in skipped and ("part-01.parquet", 3, "") in skipped  # row numbers, per file


def test_parquet_property_columns_are_read_like_csv_columns(tmp_path):
    activity = [0.5, None, 1.5, 2.0]
    path = write_parquet_shards(tmp_path, ["CCO", "CCN", "c1ccccc1", "CC"], 1, activity=activity)[0]
    molecules, report = load_molecules(str(path), properties=["activity", "logP"])
    assert list(molecules["activity"]) == [0.5, 1.5, 2.0] and len(molecules["logP"]) == 3
    assert report.skipped_counts == {"property activity missing or not a number": 1}
    whole = read_columns(path, "SMILES", ["activity"])
    lazy = list(iter_rows(path, "SMILES", ["activity"]))
    assert [value for _, value, _ in lazy] == list(whole.values) and [line for line, *_ in lazy] == [1, 2, 3, 4]
    assert [cells["activity"] for *_, cells in lazy] == ["0.5", "", "1.5", "2.0"]
    with pytest.raises(SeqVAEError, match="no column 'smi'"):
        load_molecules(str(path), smiles_column="smi")


def test_a_damaged_parquet_file_is_one_clear_error(tmp_path):
    path = write_parquet_shards(tmp_path, MOLECULES, 1)[0]
    path.write_bytes(path.read_bytes()[:-20])  # cut short: its footer is gone
    with pytest.raises(SeqVAEError, match="cannot read .*part-00.parquet as Parquet"):
        load_molecules(str(path))


def test_the_recipe_key_data_takes_a_list_of_sources_and_the_corpus_reads_them_in_order(tmp_path):
    first, second = write_shards(tmp_path / "a", MOLECULES[:6], 1)[0], write_shards(tmp_path / "b", MOLECULES[6:], 2)
    data_args = load_recipe(None, {"data": [str(first), str(tmp_path / "b" / "*.smi")], "max_length": 20})[0]
    assert data_args.data == [str(first), str(tmp_path / "b" / "*.smi")]
    molecules, report = load_corpus(data_args)
    assert report.sources == [str(first), *map(str, second)]
    assert list(molecules["smiles"])[:3] == ["CCO", "c1ccccc1", "CCN"]
    for bad in ([], ["a.smi", 3]):
        with pytest.raises(SeqVAEError, match="'data' expects a file, folder or glob"):
            load_recipe(None, {"data": bad})


def test_sentences_come_from_a_glob_of_text_shards(tmp_path):
    for index, sentences in enumerate([["the cat sat", "a dog ran"], ["the end"]]):
        (tmp_path / f"part-{index}.txt").write_text("\n".join(sentences) + "\n")
    texts, report = load_texts(str(tmp_path / "part-*.txt"))
    assert list(texts["text"]) == ["the cat sat", "a dog ran", "the end"]
    assert report.rows_read == 3


def test_sentences_come_from_parquet_shards_too(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "sentence": ["the cat sat", ""]}), tmp_path / "part-0.parquet")
    texts, report = load_texts(str(tmp_path))
    assert list(texts["text"]) == ["the cat sat"] and list(texts["line"]) == [1]
    assert [(row.line, row.reason) for row in report.skipped] == [(2, "empty line")]  # row numbers for lines


def test_a_glob_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "shards" / "part-*.smi")
    with pytest.raises(SeqVAEError) as error:
        resolve_corpus(pattern)
    assert pattern in str(error.value) and "no corpus file matches" in str(error.value)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("-")
    with pytest.raises(SeqVAEError, match="it matches only a.md"):
        resolve_corpus(str(tmp_path / "notes" / "*"))


def test_shards_in_mixed_formats_are_refused_naming_both(tmp_path):
    write_shards(tmp_path / "mixed", MOLECULES[:4], 1, ".csv", "smiles\n")
    write_shards(tmp_path / "mixed", MOLECULES[4:], 1, ".smi.gz")
    with pytest.raises(SeqVAEError) as error:
        resolve_corpus(str(tmp_path / "mixed" / "part-*"))
    assert ".csv and .smi" in str(error.value) and "part-00.csv" in str(error.value)
    with pytest.raises(SeqVAEError) as error:
        resolve_corpus(str(tmp_path / "mixed"))
    assert "mixed formats, .csv and .smi" in str(error.value)


def test_a_folder_of_parquet_and_csv_shards_is_refused_naming_both(tmp_path):
    write_parquet_shards(tmp_path / "mixed", MOLECULES[:4], 1)
    (tmp_path / "mixed" / "extra.csv").write_text("smiles\nCCO\n")
    with pytest.raises(SeqVAEError, match=r"mixed formats, \.csv and \.parquet"):
        resolve_corpus(str(tmp_path / "mixed"))


def test_a_folder_without_corpus_files_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("-")
    with pytest.raises(SeqVAEError, match="is a directory with no corpus files"):
        resolve_corpus(str(tmp_path / "docs"))


# ------------------------------------------------------------------------ Hub datasets


def test_hub_molecules_come_from_a_local_dataset_with_its_split_and_columns(tmp_path):
    folder = tmp_path / "my_molecules"  # what load_dataset reads as a Hub dataset, offline
    write_parquet_shards(folder / "data", MOLECULES, 1, activity=[float(i) for i in range(len(MOLECULES))])
    (folder / "data" / "part-00.parquet").rename(folder / "data" / "train-00000.parquet")
    expected = rows_and_counts(str(tmp_path / "my_molecules" / "data"))
    assert rows_and_counts(f"hub:{folder}") == expected
    molecules, report = load_molecules(f"hub:{folder}", smiles_column="SMILES", properties=["activity"])
    assert report.sources == [f"hub:{folder}[train]"] and list(molecules["activity"])[:2] == [0.0, 1.0]
    assert ("xx", 4) in [(row.value, row.line) for row in report.skipped]  # row numbers stand in for lines
    test_split = {"id": [0, 1], "SMILES": ["CCN", "c1ccccc1"], "activity": [0.0, 1.0]}  # the splits share one schema
    pq.write_table(pa.table(test_split), folder / "data" / "test-00000.parquet")
    data_args = load_recipe(None, {"data": f"hub:{folder}", "hub_split": "test"})[0]
    assert list(load_corpus(data_args)[0]["smiles"]) == ["CCN", "c1ccccc1"]
    with pytest.raises(SeqVAEError, match="could not load the Hub dataset .*missing"):
        load_molecules(f"hub:{tmp_path / 'missing'}")
    with pytest.raises(SeqVAEError, match="no column 'smi'"):
        load_molecules(f"hub:{folder}", smiles_column="smi")


# ------------------------------------------------------------------- the cache, one per shard


def test_appending_a_shard_reuses_the_checked_tables_of_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 3)
    checked = []
    run_check = storage.run_check
    monkeypatch.setattr(storage, "run_check", lambda raw, *args: checked.append(len(raw)) or run_check(raw, *args))
    folder = tmp_path / "shards"
    write_shards(folder, MOLECULES[:8], 2)
    first, _ = rows_and_counts(str(folder))
    assert checked == [4, 4]  # each shard checked once, and cached

    checked.clear()
    (folder / "part-02.smi").write_text("\n".join(MOLECULES[8:]) + "\n")  # a shard appended
    grown, _ = rows_and_counts(str(folder))
    assert checked == [4]  # only the new shard is checked; the others' tables come from the cache
    assert grown[: len(first)] == first and len(list((tmp_path / "cache" / "checked").iterdir())) == 3

    checked.clear()
    (folder / "part-01.smi").write_text("\n".join(MOLECULES[4:8] + ["CCCCO"]) + "\n")  # one shard changed
    assert "CCCCO" in rows_and_counts(str(folder))[0]
    assert checked == [5]  # only the changed shard is checked again


# --------------------------------------------------------------------------- the lazy reader


@pytest.mark.parametrize(
    "name, content, options",
    [
        ("named.smi", "\ufeffCCO mol1\n\nc1ccccc1\tmol2\n", {}),
        ("header.csv", 'id,SMILES,activity\n1,CCO,0.5\n2,"CCN",\n3,xx,1e3\n', {"properties": ["activity"]}),
        ("headerless.csv.gz", "CCO,1\nCCN,2\nc1ccccc1,3\n", {}),
        ("multiline.csv", 'smiles,note\nCCO,"two\nlines"\nCCN,plain\n', {}),
        ("semicolons.csv", "smiles;logP;x\nCCO;1,5;a\nCCN;2;b\n", {"properties": ["x"]}),
    ],
)
def test_rows_read_lazily_are_the_rows_read_whole(write_file, name, content, options):
    path = write_file(name, content)
    whole = read_columns(path, **options)
    lazy = list(iter_rows(path, **options))
    assert [value for _, value, _ in lazy] == list(whole.values)
    assert [line for line, _, _ in lazy] == list(whole.lines)
    for prop in options.get("properties", []):
        assert [cells[prop] for _, _, cells in lazy] == list(whole.columns[prop])


def test_a_damaged_shard_raises_after_its_readable_rows(tmp_path):
    packed = gzip.compress(("\n".join(["CCO"] * 20000) + "\n").encode())
    path = tmp_path / "cut.smi.gz"
    path.write_bytes(packed[: len(packed) // 2])
    rows, lines = [], iter_rows(path)
    with pytest.raises((EOFError, OSError)):
        rows.extend(lines)
    assert rows and rows[-1][0] == len(rows)  # the rows before the damage came, in line order


# ------------------------------------------------------------------- the streamed corpus's parts


def test_the_hash_split_is_seeded_deterministic_and_near_its_fraction():
    smiles = [f"C{'C' * (i % 40)}O{i}" for i in range(20000)]
    split = HashSplit(seed=1, fraction=0.1)
    held = [s for s in smiles if split.held_out(s)]
    assert held == [s for s in smiles if HashSplit(1, 0.1).held_out(s)]
    assert 0.09 < len(held) / len(smiles) < 0.11
    assert held != [s for s in smiles if HashSplit(2, 0.1).held_out(s)]
    assert not any(HashSplit(1, 0.0).held_out(s) for s in smiles)


def test_a_stream_report_counts_each_row_once_and_lists_a_bounded_number(tmp_path):
    report = StreamReport(sources=["a.smi"], listed_limit=2)
    assert [report.first_reading("a.smi", line) for line in (1, 2, 1, 2, 3)] == [True, True, False, False, True]
    for line in range(5):
        report.add_skipped(SkippedRow("a.smi", line, "xx", "invalid SMILES"))
    assert (len(report.skipped), report.unlisted_skips, report.skipped_counts) == (2, 3, {"invalid SMILES": 5})
    report.write(tmp_path / "data_report.json")
    report.shard_failed("b.smi.gz", 7, EOFError("Compressed file ended"))
    report.shard_failed("b.smi.gz", 7, EOFError("Compressed file ended"))  # the next epoch: counted once
    written = (tmp_path / "data_report.json").read_text()  # written again at once, not at the next interval
    assert '"b.smi.gz": "Compressed file ended"' in written and '"unreadable shard": 1' in written
