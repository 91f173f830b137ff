"""Unit tests of seqvae.data: reading corpora, the report with file/line, splitting, tokenising."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
import torch

from seqvae import tokenization
from seqvae.data import (
    CorpusReport,
    PaddingCollator,
    bundled_corpus_files,
    load_molecules,
    resolve_corpus,
    split_train_validation,
    storage,
    tokenize_sequences,
)
from seqvae.data.corpus import tokenize_training_rows
from seqvae.data.report import rows_with_unknown
from seqvae.data.sources import download
from seqvae.errors import SeqVAEError
from seqvae.tokenization import (
    build_text_tokenizer,
    build_tokenizer,
    count_unknown,
    molecule_encoder,
)

# One corpus, written in every format. Index -> what happens to the row (max_length=10).
ROWS = [
    "CCO",  # 0 kept
    "",  # 1 empty (a fully blank line)
    "notasmiles",  # 2 invalid SMILES
    "c1ccccc1",  # 3 kept
    "OCC",  # 4 duplicate of row 0 after canonicalisation
    "CCCCCCCCCCCC",  # 5 too long: 12 tokens + <bos>/<eos> > 10
    "",  # 6 empty (CSV: an empty SMILES cell next to a name)
    "CC(=O)O",  # 7 kept
]
KEPT = ["CCO", "c1ccccc1", "CC(=O)O"]
SKIPPED = {1: "empty", 2: "invalid SMILES", 4: "duplicate", 5: "too long", 6: "empty"}


def corpus_text(kind: str) -> str:
    """ROWS as a .csv (with header), .smi (SMILES<tab>name) or .txt (SMILES only) file."""
    lines = []
    for index, smiles in enumerate(ROWS):
        if kind == "csv":
            lines.append("" if index == 1 else f"{smiles},mol{index}")
        elif kind == "smi":
            lines.append(f"{smiles}\tmol{index}" if smiles else "")
        else:
            lines.append(smiles)
    header = ["smiles,name"] if kind == "csv" else []
    return "\n".join(header + lines) + "\n"


FORMATS = [
    ("mols.csv", "csv", 2),  # the header is line 1: data starts on line 2
    ("mols.csv.gz", "csv", 2),
    ("mols.smi", "smi", 1),
    ("mols.smi.gz", "smi", 1),
    ("mols.txt", "txt", 1),
    ("mols.txt.gz", "txt", 1),
]


@pytest.mark.parametrize("name, kind, first_line", FORMATS, ids=[f[0] for f in FORMATS])
def test_every_format_keeps_valid_rows_and_reports_skipped_rows_with_their_line(
    write_file, name, kind, first_line
):
    path = write_file(name, corpus_text(kind))
    molecules, report = load_molecules(path, max_length=10)

    assert list(molecules["smiles"]) == KEPT
    assert list(molecules["text"]) == KEPT
    assert report.rows_read == len(ROWS)
    assert report.rows_kept == len(KEPT)
    assert report.skipped_counts == {"empty": 2, "invalid SMILES": 1, "duplicate": 1, "too long": 1}
    assert [(row.line, row.reason_kind) for row in report.skipped] == [
        (first_line + index, reason) for index, reason in SKIPPED.items()
    ]
    assert all(row.file == str(path) for row in report.skipped)
    by_line = {row.line: row for row in report.skipped}
    assert by_line[first_line + 2].value == "notasmiles"
    assert by_line[first_line + 4].value == "OCC"
    assert by_line[first_line + 4].reason == f"duplicate (of {name}:{first_line})"
    assert by_line[first_line + 5].reason == "too long (14 tokens > max_length 10)"


def test_report_counts_add_up(write_file):
    _, report = load_molecules(write_file("mols.csv", corpus_text("csv")), max_length=10)
    assert report.rows_read == report.rows_kept + sum(report.skipped_counts.values())
    assert len(report.skipped) == sum(report.skipped_counts.values())
    assert report.summary().startswith("3/8 rows kept")
    assert "1 invalid SMILES" in report.summary()


def test_report_write_produces_json_with_every_skipped_row(write_file, tmp_path):
    path = write_file("mols.csv", corpus_text("csv"))
    _, report = load_molecules(path, max_length=10)
    written = report.write(tmp_path / "reports" / "data_report.json")
    payload = json.loads(written.read_text())
    assert payload["rows_read"] == 8 and payload["rows_kept"] == 3
    assert payload["sources"] == [str(path)]
    assert payload["skipped_counts"] == report.skipped_counts
    assert [(row["line"], row["value"], row["reason"]) for row in payload["skipped"]] == [
        (2 + index, ROWS[index], reason)
        for index, reason in [
            (1, "empty"),
            (2, "invalid SMILES"),
            (4, "duplicate (of mols.csv:2)"),
            (5, "too long (14 tokens > max_length 10)"),
            (6, "empty"),
        ]
    ]
    assert all(row["file"] == str(path) for row in payload["skipped"])


def test_line_numbers_are_per_file_and_duplicates_name_the_first_file(write_file):
    first = write_file("a.smi", "CCO\nc1ccccc1\n")
    second = write_file("b.csv", "smiles\nCCN\nOCC\nxx\n")
    molecules, report = load_molecules([first, second])
    assert list(molecules["smiles"]) == ["CCO", "c1ccccc1", "CCN"]
    assert [(Path(r.file).name, r.line, r.reason) for r in report.skipped] == [
        ("b.csv", 3, "duplicate (of a.smi:1)"),
        ("b.csv", 4, "invalid SMILES"),
    ]
    assert report.sources == [str(first), str(second)]


def test_smiles_column_named_like_smiles_is_found_among_other_columns(write_file):
    path = write_file("moses_like.csv", "name,SMILES,logP\nm1,CCO,0.1\nm2,CCN,0.2\n")
    molecules, _ = load_molecules(path)
    assert list(molecules["smiles"]) == ["CCO", "CCN"]


def test_differently_named_smiles_column_is_detected_from_its_values(write_file):
    path = write_file(
        "assay.csv", "id,structure,activity\n1,CCO,0.5\n2,c1ccccc1,0.1\n3,CCN,0.3\n4,xx,0.2\n"
    )
    molecules, report = load_molecules(path)
    assert list(molecules["smiles"]) == ["CCO", "c1ccccc1", "CCN"]
    assert [(row.line, row.value) for row in report.skipped] == [(5, "xx")]


def test_explicit_smiles_column_is_used(write_file):
    path = write_file("two.csv", "a,b\nc1ccccc1,CCO\nCCCC,CCN\n")
    molecules, _ = load_molecules(path, smiles_column="b")
    assert list(molecules["smiles"]) == ["CCO", "CCN"]


def test_headerless_csv_reads_its_first_line_as_data(write_file):
    path = write_file("noheader.csv", "c1ccccc1O,first\nCCN,second\nxx,third\nCCCC,fourth\n")
    molecules, report = load_molecules(path)
    assert list(molecules["smiles"]) == ["Oc1ccccc1", "CCN", "CCCC"]
    assert report.rows_read == 4
    assert [(row.line, row.value) for row in report.skipped] == [(3, "xx")]


def test_headerless_csv_with_a_short_first_molecule_keeps_it(write_file):
    path = write_file("short_first.csv", "CCO\nCCN\nc1ccccc1\n")
    molecules, report = load_molecules(path)
    assert report.rows_read == 3
    assert list(molecules["smiles"]) == ["CCO", "CCN", "c1ccccc1"]


def test_canonicalize_rewrites_smiles_and_merges_spellings_of_one_molecule(write_file):
    path = write_file("spellings.smi", "OCC\nC(O)C\nC1=CC=CC=C1\n")
    molecules, report = load_molecules(path, canonicalize=True)
    assert list(molecules["smiles"]) == ["CCO", "c1ccccc1"]
    assert report.skipped_counts == {"duplicate": 1}


def test_without_canonicalize_smiles_are_kept_as_written(write_file):
    path = write_file("spellings.smi", "OCC\nC(O)C\nC1=CC=CC=C1\nxx\n")
    molecules, report = load_molecules(path, canonicalize=False)
    assert list(molecules["smiles"]) == ["OCC", "C(O)C", "C1=CC=CC=C1"]
    assert report.skipped_counts == {"invalid SMILES": 1}  # still validated


def test_deduplicate_off_keeps_repeats(write_file):
    path = write_file("repeats.smi", "CCO\nOCC\nCCO\n")
    molecules, report = load_molecules(path, deduplicate=False)
    assert list(molecules["smiles"]) == ["CCO", "CCO", "CCO"]
    assert report.skipped == []


def test_keep_largest_fragment_strips_counter_ions(write_file):
    path = write_file("salts.smi", "[Na+].[O-]C(=O)c1ccccc1\nCCN.Cl\n")
    stripped, _ = load_molecules(path, keep_largest_fragment=True)
    assert list(stripped["smiles"]) == ["O=C([O-])c1ccccc1", "CCN"]
    whole, _ = load_molecules(path, keep_largest_fragment=False)
    assert all("." in smiles for smiles in whole["smiles"])


def test_selfies_representation_fills_the_text_column_with_selfies(write_file):
    path = write_file("mols.smi", "CCO\nc1ccccc1\n")
    molecules, _ = load_molecules(path, representation="selfies")
    assert list(molecules["smiles"]) == ["CCO", "c1ccccc1"]
    assert list(molecules["text"]) == ["[C][C][O]", "[C][=C][C][=C][C][=C][Ring1][=Branch1]"]


def test_max_length_counts_selfies_symbols_for_selfies(write_file):
    path = write_file("mols.smi", "CCO\nc1ccccc1\n")
    # CCO is 3 SELFIES symbols (5 with <bos>/<eos>), benzene 8 (10)
    molecules, report = load_molecules(path, representation="selfies", max_length=6)
    assert list(molecules["smiles"]) == ["CCO"]
    assert report.skipped[0].reason == "too long (10 tokens > max_length 6)"


def test_unknown_representation_is_rejected(write_file):
    with pytest.raises(SeqVAEError, match="representation"):
        load_molecules(write_file("mols.smi", "CCO\n"), representation="inchi")


# ----------------------------------------------------------------------------- bad input


def test_missing_file_raises_naming_the_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(SeqVAEError, match="not found") as info:
        load_molecules(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("name", ["latin1.csv", "latin1.smi", "latin1.txt", "latin1.csv.gz"])
def test_non_utf8_file_raises_naming_file_and_line(write_file, name):
    path = write_file(name, b"CCO\n\xff\xfeCC\n")
    with pytest.raises(SeqVAEError) as info:
        load_molecules(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 2" in message
    assert "UTF-8" in message and "0xff" in message


def test_wrong_smiles_column_lists_the_real_columns(write_file):
    path = write_file("named.csv", "smiles,name\nCCO,ethanol\n")
    with pytest.raises(SeqVAEError) as info:
        load_molecules(path, smiles_column="smi")
    message = str(info.value)
    assert str(path) in message
    assert "'smi'" in message
    assert "smiles, name" in message


def test_csv_without_any_smiles_like_column_is_rejected(write_file):
    path = write_file("numbers.csv", "a,b\n1,2\n3,4\n")
    with pytest.raises(SeqVAEError, match="no column looks like SMILES") as info:
        load_molecules(path)
    assert str(path) in str(info.value)
    assert "a, b" in str(info.value)


def test_corpus_with_no_valid_row_is_rejected_with_the_counts(write_file):
    path = write_file("junk.csv", "smiles\nxx\nyy\n\n")
    with pytest.raises(SeqVAEError, match="no usable molecules") as info:
        load_molecules(path)
    message = str(info.value)
    assert str(path) in message
    assert "2 invalid SMILES" in message and "1 empty" in message


@pytest.mark.parametrize(
    "name",
    [
        "empty.csv",
        "empty.smi",
        "empty.txt",
    ],
)
def test_empty_file_raises_naming_the_file(write_file, name):
    path = write_file(name, "")
    with pytest.raises(SeqVAEError) as info:
        load_molecules(path)
    assert str(path) in str(info.value)


def test_header_only_csv_raises_naming_the_file(write_file):
    path = write_file("header_only.csv", "smiles\n")
    with pytest.raises(SeqVAEError) as info:
        load_molecules(path)
    assert str(path) in str(info.value)


def test_unsupported_extension_is_rejected(write_file):
    path = write_file("mols.json", '["CCO"]\n')
    with pytest.raises(SeqVAEError, match=r"unsupported file type \.json") as info:
        load_molecules(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_is_rejected(tmp_path):
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(b"smiles\nCCO\nCCN\n")[:-12])
    with pytest.raises(SeqVAEError) as info:
        load_molecules(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------- named corpora, files


def test_resolve_corpus_returns_a_local_file_as_is(write_file):
    path = write_file("mols.smi", "CCO\n")
    assert resolve_corpus(str(path)) == [path]


def test_named_corpus_split_is_read_from_data_dir(tmp_path):
    data_dir = tmp_path / "moses"
    data_dir.mkdir()
    (data_dir / "test.csv.gz").write_bytes(gzip.compress(b"SMILES\nCCO\nc1ccccc1\nCCN\n"))
    assert resolve_corpus("moses:test", data_dir=data_dir) == [data_dir / "test.csv.gz"]
    molecules, report = load_molecules("moses:test", data_dir=data_dir)
    assert list(molecules["smiles"]) == ["CCO", "c1ccccc1", "CCN"]
    assert report.sources == [str(data_dir / "test.csv.gz")]


def test_named_corpus_missing_from_data_dir_lists_the_files_looked_for(tmp_path):
    with pytest.raises(SeqVAEError) as info:
        resolve_corpus("moses:test", data_dir=tmp_path)
    assert "test.csv.gz" in str(info.value) and str(tmp_path) in str(info.value)


def test_named_corpus_unknown_split_lists_the_splits(tmp_path):
    with pytest.raises(SeqVAEError, match="no split 'validation'") as info:
        resolve_corpus("moses:validation", data_dir=tmp_path)
    assert "test_scaffolds" in str(info.value)


def test_bundled_resolves_to_files_shipped_with_rdkit():
    files = bundled_corpus_files()
    assert [f.name for f in files] == ["first_5K.smi", "wehi_mols.csv"]
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    assert resolve_corpus("bundled") == files


def test_bundled_corpus_loads_about_15k_molecules(bundled_molecules):
    molecules, report = bundled_molecules
    assert len(molecules) == report.rows_kept > 10000
    assert report.sources == [str(f) for f in bundled_corpus_files()]
    assert report.rows_read == report.rows_kept + sum(report.skipped_counts.values())


def test_download_fetches_a_file_url_once_and_reuses_it(tmp_path):
    source = tmp_path / "remote" / "corpus.csv"
    source.parent.mkdir()
    source.write_text("smiles\nCCO\n")
    cache = tmp_path / "cache"
    target = download(source.as_uri(), cache)
    assert target == cache / "corpus.csv"
    assert target.read_text() == "smiles\nCCO\n"
    source.write_text("smiles\nCCN\n")  # a second call must not fetch again
    assert download(source.as_uri(), cache) == target
    assert target.read_text() == "smiles\nCCO\n"
    assert sorted(p.name for p in cache.iterdir()) == ["corpus.csv"]


def test_download_of_a_missing_url_raises_and_leaves_no_partial_file(tmp_path):
    url = (tmp_path / "absent.csv").as_uri()
    cache = tmp_path / "cache"
    with pytest.raises(SeqVAEError, match="could not download") as info:
        download(url, cache)
    assert url in str(info.value)
    assert not (cache / "absent.csv").exists()
    assert not (cache / "absent.csv.part").exists()


# -------------------------------------------------------------------- split and tokenise


def numbered_dataset(size: int) -> datasets.Dataset:
    smiles = ["C" * (i + 1) for i in range(size)]
    return datasets.Dataset.from_dict({"smiles": smiles, "text": smiles})


def test_split_is_disjoint_complete_and_sized_by_the_fraction():
    train, validation = split_train_validation(numbered_dataset(40), 0.25, seed=0)
    assert len(train) == 30 and len(validation) == 10
    assert set(train["smiles"]).isdisjoint(validation["smiles"])
    assert set(train["smiles"]) | set(validation["smiles"]) == set(numbered_dataset(40)["smiles"])


def test_split_is_seeded():
    data = numbered_dataset(40)
    _, first = split_train_validation(data, 0.25, seed=1)
    _, again = split_train_validation(data, 0.25, seed=1)
    _, other = split_train_validation(data, 0.25, seed=2)
    assert list(first["smiles"]) == list(again["smiles"])
    assert set(first["smiles"]) != set(other["smiles"])


def test_split_keeps_at_least_one_validation_row():
    train, validation = split_train_validation(numbered_dataset(3), 0.01, seed=0)
    assert (len(train), len(validation)) == (2, 1)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_rejects_fraction_outside_the_open_unit_interval(fraction):
    with pytest.raises(SeqVAEError, match="validation_fraction"):
        split_train_validation(numbered_dataset(10), fraction, seed=0)


def test_split_rejects_a_single_molecule():
    with pytest.raises(SeqVAEError, match="at least 2"):
        split_train_validation(numbered_dataset(1), 0.5, seed=0)


def test_tokenize_sequences_adds_input_ids_and_length_and_counts_unknowns():
    tokenizer = build_tokenizer(["CCO", "c1ccccc1"], "smiles")
    data = datasets.Dataset.from_dict({"smiles": ["CCO", "CCN"], "text": ["CCO", "CCN"]})
    report = CorpusReport()
    encoded = tokenize_sequences(data, tokenizer, report)
    assert {"input_ids", "num_tokens", "smiles", "text"} <= set(encoded.column_names)
    assert encoded["input_ids"][0] == tokenizer("CCO")["input_ids"]
    assert list(encoded["num_tokens"]) == [5, 5]
    assert encoded["input_ids"][1][3] == tokenizer.unk_token_id
    assert (report.unknown_token_sequences, report.unknown_tokens) == (1, 1)
    assert "1 unknown tokens in 1 sequences" in report.summary()


def test_padding_collator_pads_to_the_longest_in_batch_with_a_mask():
    collate = PaddingCollator(pad_token_id=0)
    batch = collate([{"input_ids": [1, 5, 2]}, {"input_ids": [1, 5, 6, 7, 2]}, {"input_ids": [1, 2]}])
    assert batch["input_ids"].tolist() == [[1, 5, 2, 0, 0], [1, 5, 6, 7, 2], [1, 2, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert batch["input_ids"].dtype == torch.long


def test_padding_collator_uses_the_given_pad_id_and_does_not_pad_beyond_the_batch():
    batch = PaddingCollator(pad_token_id=9)([{"input_ids": [1, 2]}, {"input_ids": [1, 4, 2]}])
    assert batch["input_ids"].shape == (2, 3)
    assert batch["input_ids"][0, 2].item() == 9
    assert batch["attention_mask"][0].tolist() == [1, 1, 0]


# ------------------------------------------------------------------- corpora at scale


def test_split_takes_the_rows_of_datasets_train_test_split_for_the_same_seed():
    """Runs made before the split was rewritten re-create the same train and validation rows."""
    dataset = numbered_dataset(50)
    train, validation = split_train_validation(dataset, 0.2, seed=3)
    reference = dataset.train_test_split(test_size=10, seed=3, shuffle=True)
    assert train["smiles"][:] == reference["train"]["smiles"][:]
    assert validation["smiles"][:] == reference["test"]["smiles"][:]


def test_molecule_encoder_encodes_like_the_tokenizer_on_real_molecules():
    smiles = [line.split()[0] for line in bundled_corpus_files()[0].read_text().splitlines()[:2000] if line.strip()]
    tokenizer = build_tokenizer(smiles[:500], "smiles")  # the rest holds tokens it has not seen
    encoder = molecule_encoder(tokenizer, smiles[:100])
    assert encoder is not None
    assert encoder(smiles) == tokenizer(smiles)["input_ids"]
    assert tokenizer.unk_token_id in {token for ids in encoder(smiles) for token in ids}


def test_molecule_encoder_is_not_used_for_other_tokenizers():
    text_tokenizer = build_text_tokenizer(["a b c", "b c d"], "word")
    assert molecule_encoder(text_tokenizer, ["a b"]) is None


def test_a_vocabulary_learned_from_a_sample_gets_the_tokens_the_sample_missed(monkeypatch, tmp_path):
    monkeypatch.setattr(tokenization, "VOCABULARY_SAMPLE_SIZE", 20)
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path))
    texts = ["CCO"] * 40 + ["C[Se]C"]  # the sample of 20 cannot hold [Se]... unless it draws it
    rows = datasets.Dataset.from_dict({"smiles": texts, "text": texts})
    tokenizer = build_tokenizer(texts, "smiles", seed=0)
    assert "[Se]" not in tokenizer.get_vocab()
    report = CorpusReport()
    args = SimpleNamespace(representation="smiles", max_length=20)
    encoded, tokenizer = tokenize_training_rows(rows, tokenizer, args, report)
    assert "[Se]" in tokenizer.get_vocab()
    assert encoded["input_ids"][-1] == tokenizer("C[Se]C")["input_ids"]
    assert (report.unknown_tokens, report.unknown_token_sequences) == (0, 0)


def test_large_corpora_are_tokenised_once_into_a_memory_mapped_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 3)
    texts = ["CCO", "c1ccccc1", "CCN", "CC(=O)O"]
    tokenizer = build_tokenizer(texts[:2], "smiles")
    rows = datasets.Dataset.from_dict({"smiles": texts, "text": texts})
    first_report, second_report = CorpusReport(), CorpusReport()
    first = tokenize_sequences(rows, tokenizer, first_report)
    assert first.cache_files and Path(first.cache_files[0]["filename"]).is_relative_to(tmp_path / "tokenized")
    second = tokenize_sequences(rows, tokenizer, second_report)
    assert second.cache_files[0]["filename"] == first.cache_files[0]["filename"]
    assert second["input_ids"][:] == first["input_ids"][:] == tokenizer(texts)["input_ids"]
    # the vocabulary holds C O c 1: "N" in CCN, "(", "=", ")" in CC(=O)O
    assert (first_report.unknown_tokens, first_report.unknown_token_sequences) == (4, 2)
    assert (second_report.unknown_tokens, second_report.unknown_token_sequences) == (4, 2)
    other = tokenize_sequences(rows.select([0, 1, 2]), tokenizer)  # other rows: another file
    assert other.cache_files[0]["filename"] != first.cache_files[0]["filename"]


def test_a_second_run_saving_the_same_cache_entry_leaves_the_first_runs_file_alone(monkeypatch, tmp_path):
    # Two trainings on one corpus both tokenise it; the second save must not overwrite the Arrow
    # file the first has memory-mapped (that killed the first run with SIGBUS).
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 3)
    texts = ["CCO", "c1ccccc1", "CCN", "CC(=O)O"]
    tokenizer = build_tokenizer(texts, "smiles")
    first = tokenize_sequences(datasets.Dataset.from_dict({"smiles": texts, "text": texts}), tokenizer)
    folder = Path(first.cache_files[0]["filename"]).parent
    mapped = Path(first.cache_files[0]["filename"])
    before = (mapped.stat().st_ino, mapped.read_bytes())
    other = datasets.Dataset.from_dict({"text": ["N"] * 4, "input_ids": [[1]] * 4, "num_tokens": [1] * 4})
    assert storage.save_cache_entry(other, folder) == folder
    assert (mapped.stat().st_ino, mapped.read_bytes()) == before
    assert first["input_ids"][:] == datasets.load_from_disk(str(folder))["input_ids"][:] == tokenizer(texts)["input_ids"]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left behind


def test_a_half_written_cache_entry_is_replaced(monkeypatch, tmp_path):
    folder = tmp_path / "tokenized" / "abc"
    folder.mkdir(parents=True)
    (folder / "data-00000-of-00001.arrow").write_bytes(b"cut short")  # no dataset_info.json
    rows = datasets.Dataset.from_dict({"text": ["CCO", "CCN"]})
    storage.save_cache_entry(rows, folder)
    assert datasets.load_from_disk(str(folder))["text"] == ["CCO", "CCN"]


def test_rows_with_unknown_and_the_column_count_agree_with_the_list_count():
    tokenizer = build_tokenizer(["CCO"], "smiles")
    texts = ["CCO", "CCN", "NCCN", "OCO"]
    encoded = tokenize_sequences(datasets.Dataset.from_dict({"smiles": texts, "text": texts}), tokenizer)
    assert rows_with_unknown(encoded, tokenizer.unk_token_id) == [1, 2]
    report = CorpusReport()
    report.count_unknown_in(encoded, tokenizer.unk_token_id)
    expected = count_unknown(tokenizer(texts)["input_ids"], tokenizer.unk_token_id)
    assert (report.unknown_token_sequences, report.unknown_tokens) == (expected.sequences, expected.tokens) == (2, 3)


def test_the_tokenised_cache_is_keyed_by_every_column_not_only_the_texts(monkeypatch, tmp_path):
    # Keyed by the texts alone, a run with attribute columns reused the entry of a run without
    # them (recipes/ptb_vae.yaml, then ptb_cvae.yaml) and its collator failed: KeyError: 'money'.
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 3)
    texts = ["the cat sat", "a $ N deal", "the dog ran", "paid $ N"]
    tokenizer = build_text_tokenizer(texts, "word")
    plain = tokenize_sequences(datasets.Dataset.from_dict({"text": texts}), tokenizer)
    labelled = tokenize_sequences(datasets.Dataset.from_dict({"text": texts, "money": [0.0, 1.0, 0.0, 1.0]}), tokenizer)
    relabelled = tokenize_sequences(datasets.Dataset.from_dict({"text": texts, "money": [1.0, 1.0, 0.0, 1.0]}), tokenizer)
    files = {result.cache_files[0]["filename"] for result in (plain, labelled, relabelled)}
    assert len(files) == 3 and all(Path(f).is_relative_to(tmp_path / "tokenized") for f in files)
    assert (plain.column_names, labelled["money"], relabelled["money"]) == (
        ["text", "input_ids", "num_tokens"], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0]
    )
    again = tokenize_sequences(datasets.Dataset.from_dict({"text": texts, "money": [0.0, 1.0, 0.0, 1.0]}), tokenizer)
    assert again.cache_files[0]["filename"] == labelled.cache_files[0]["filename"]  # the same table: reused


@pytest.mark.parametrize(
    "content, delimiter",
    [
        ("smiles;name\nCCO;a\nCCN;b\n", None),
        ("smiles\tname\nCCO\ta, b\nCCN\tc\n", None),
        ("smiles|name\nCCO|a\nCCN|b\n", "|"),
        ("smiles\tname\nCCO\ta\nCCN\tb\n", "\\t"),
    ],
    ids=["semicolon_detected", "tab_detected", "pipe_given", "tab_given_as_backslash_t"],
)
def test_csv_delimiters_are_detected_or_taken_from_the_data_settings(write_file, content, delimiter):
    from seqvae.arguments import DataArguments
    from seqvae.data.corpus import load_corpus

    path = write_file("mols.csv", content)
    molecules, report = load_corpus(DataArguments(data=str(path), delimiter=delimiter))
    assert list(molecules["smiles"]) == ["CCO", "CCN"] and report.skipped == []


def test_a_semicolon_file_read_with_commas_names_the_delimiter(write_file):
    path = write_file("mols.csv", "smiles;logP\nCCO;1,5\nCCN;2,5;x,y\n")
    with pytest.raises(SeqVAEError) as info:
        load_molecules(path, delimiter=",")
    assert str(path) in str(info.value) and "delimiter comma" in str(info.value)
