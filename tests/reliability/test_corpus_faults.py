"""Corpus files as new users bring them (issue 24): each is read correctly, or refused with one
line naming the file, never a traceback, a hang or a crash.

The kinds: a byte-order mark, CRLF line ends, latin-1 bytes, binary files, truncated or damaged
gzip, JSON, values holding line breaks, blank and whitespace lines, salts, unusual atoms,
semicolon- and tab-separated files, a folder given as the corpus, one usable row, and SMILES so
long that RDKit would take minutes or crash on them. Then the cache: two recipes on the same
sentences, with and without attribute columns (``ptb_vae.yaml`` then ``ptb_cvae.yaml``).
"""

from __future__ import annotations

import gzip
import json
import time

import pytest

from seqvae.arguments import DataArguments
from seqvae.chem import MAX_SMILES_CHARACTERS, to_mol
from seqvae.data import PaddingCollator, load_molecules, load_texts, prepare_corpus, storage
from seqvae.data.corpus import load_training_corpus
from seqvae.data.normalization import InputNormalization, normalize_smiles
from seqvae.errors import SeqVAEError

LONG_SMILES = "C" * 20_000  # RDKit crashes on it (a 20,000-atom chain); 10,000 atoms take 3 s


def one_line_error(call, *fragments) -> str:
    """Run ``call``; it must raise a one-line SeqVAEError holding every fragment."""
    with pytest.raises(SeqVAEError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ------------------------------------------------------------------ files read as they should be

# name, content, load_molecules options, kept SMILES, skipped rows as (line, reason kind)
READ = {
    "bom_csv": ("bom.csv", "\ufeffsmiles,name\nCCO,a\nxx,b\nc1ccccc1,c\n", {}, ["CCO", "c1ccccc1"], [(3, "invalid SMILES")]),
    "bom_csv_gz": ("bom.csv.gz", "\ufeffsmiles,name\nCCO,a\nxx,b\nc1ccccc1,c\n", {}, ["CCO", "c1ccccc1"], [(3, "invalid SMILES")]),
    "bom_smi": ("bom.smi", "\ufeffCCO\tethanol\nxx\tjunk\nCCN\tethylamine\n", {}, ["CCO", "CCN"], [(2, "invalid SMILES")]),
    "bom_headerless_csv": ("bom_headerless.csv", "\ufeffCCO,a\nCCN,b\n", {}, ["CCO", "CCN"], []),
    "crlf_csv": ("crlf.csv", "smiles,name\r\nCCO,a\r\nxx,b\r\nCCN,c\r\n", {}, ["CCO", "CCN"], [(3, "invalid SMILES")]),
    "crlf_smi": ("crlf.smi", "CCO\r\nxx\r\nCCN\r\n", {}, ["CCO", "CCN"], [(2, "invalid SMILES")]),
    "crlf_txt_gz": ("crlf.txt.gz", "CCO\r\n\r\nCCN\r\n", {}, ["CCO", "CCN"], [(2, "empty")]),
    "blank_and_whitespace_csv": (
        "blank.csv", "smiles,name\nCCO,a\n\n   \n\t\nCCN,b\n", {}, ["CCO", "CCN"],
        [(3, "empty"), (4, "empty"), (5, "empty")],
    ),
    "blank_and_whitespace_smi": ("blank.smi", "CCO\n\n  \t \nCCN\n\n", {}, ["CCO", "CCN"], [(2, "empty"), (3, "empty"), (5, "empty")]),
    "spaces_around_smiles_csv": ("spaces.csv", "smiles,name\n  CCO  ,a\nCCN\t,b\n", {}, ["CCO", "CCN"], []),
    "semicolons_csv": ("semicolons.csv", "smiles;pIC50\nCCO;1,5\nxx;2,0\nCCN;3,5\n", {}, ["CCO", "CCN"], [(3, "invalid SMILES")]),
    "tabs_csv": ("tabs.csv", "id\tsmiles\tname\n1\tCCO\ta, b\n2\tCCN\tc\n", {}, ["CCO", "CCN"], []),
    "pipes_csv_with_delimiter": ("pipes.csv", "smiles|name\nCCO|a\nCCN|b\n", {"delimiter": "|"}, ["CCO", "CCN"], []),
    "tab_named_delimiter": ("tab_named.csv", "smiles\tname\nCCO\ta\nCCN\tb\n", {"delimiter": "tab"}, ["CCO", "CCN"], []),
    "salts_kept_whole": (
        "salts.smi", "[Na+].[O-]C(C)=O\nCCN.Cl\nO.O.c1ccccc1\n", {}, ["CC(=O)[O-].[Na+]", "CCN.Cl", "O.O.c1ccccc1"], [],
    ),
    "salts_largest_fragment": (
        "salts_largest.smi", "[Na+].[O-]C(C)=O\nCCN.Cl\nO.O.c1ccccc1\nCC(=O)[O-]\n", {"keep_largest_fragment": True},
        ["CC(=O)[O-]", "CCN", "c1ccccc1"], [(4, "duplicate")],
    ),
    "unusual_atoms": (
        "unusual.smi", "[U]\n[Fe+2]\n[2H]C([2H])([2H])O\n*CC*\n[Rn]\nC[Se]C\nc1cc[nH]c1\n[Xx]\n", {},
        ["[U]", "[Fe+2]", "[2H]C([2H])([2H])O", "*CC*", "[Rn]", "C[Se]C", "c1cc[nH]c1"], [(8, "invalid SMILES")],
    ),
}


@pytest.mark.parametrize("case", list(READ), ids=list(READ))
def test_hidden_kinds_are_read_with_exact_counts_and_lines(write_file, case):
    name, content, options, kept, skipped = READ[case]
    path = write_file(name, content)
    molecules, report = load_molecules(path, **options)
    assert list(molecules["smiles"]) == kept
    assert (report.rows_read, report.rows_kept) == (len(kept) + len(skipped), len(kept))
    assert [(row.line, row.reason_kind) for row in report.skipped] == skipped
    assert all(row.file == str(path) and row.record is None for row in report.skipped)


def test_values_holding_line_breaks_are_reported_by_line_and_record(write_file, tmp_path):
    # Records (spreadsheet rows, the header is record 1) and lines part after line 3.
    path = write_file(
        "quoted_newlines.csv",
        'smiles,name\nCCO,"a name\nover two lines"\nxx,b\n"CCN","c"\n"",d\nyy,"e\n\nf"\nCC(=O)O,g\n',
    )
    molecules, report = load_molecules(path)
    assert list(molecules["smiles"]) == ["CCO", "CCN", "CC(=O)O"]
    assert [(row.line, row.record, row.value, row.reason_kind) for row in report.skipped] == [
        (4, 3, "xx", "invalid SMILES"),
        (6, 5, "", "empty"),
        (7, 6, "yy", "invalid SMILES"),
    ]
    payload = json.loads(report.write(tmp_path / "data_report.json").read_text())
    assert [(row["line"], row["record"]) for row in payload["skipped"]] == [(4, 3), (6, 5), (7, 6)]


def test_record_numbers_are_left_out_where_they_equal_the_lines(write_file, tmp_path):
    path = write_file("plain.csv", 'smiles,name\nCCO,"quoted, no line break"\nxx,b\n')
    _, report = load_molecules(path)
    payload = json.loads(report.write(tmp_path / "data_report.json").read_text())
    assert payload["skipped"] == [{"file": str(path), "line": 3, "value": "xx", "reason": "invalid SMILES"}]


def test_sentences_holding_line_breaks_are_reported_by_line_and_record(write_file):
    path = write_file("reviews.csv", 'text,score\n"the film,\nsaid she, was good",1\nthe plot,n/a\n,3\nthe end,2\n')
    rows, report = load_texts(str(path), attributes=["score"])
    assert rows["text"] == ["the film, said she, was good", "the end"]
    assert rows["line"] == [2, 6]
    assert [(row.line, row.record, row.reason) for row in report.skipped] == [
        (4, 3, "not a number ('n/a')"),
        (5, 4, "empty line"),
    ]


@pytest.mark.parametrize(
    "name, content, empty_line",
    [
        ("bom.txt", "\ufeffthe cat sat\r\nthe dog ran\r\n\r\n", 3),
        ("crlf.txt.gz", "the cat sat\r\nthe dog ran\r\n\r\n", 3),
        ("semicolons.csv", "text;score\nthe cat sat;1,5\nthe dog ran;2\n;3\n", 4),
        ("bom_tabs.csv", "\ufefftext\tscore\nthe cat sat\t1\nthe dog ran\t2\n\t3\n", 4),
    ],
)
def test_text_corpora_with_hidden_kinds_are_read(write_file, name, content, empty_line):
    rows, report = load_texts(str(write_file(name, content)))
    assert rows["text"] == ["the cat sat", "the dog ran"]
    assert [(row.line, row.reason) for row in report.skipped] == [(empty_line, "empty line")]


# ----------------------------------------------------------------- files refused in one line

REFUSED = {
    "latin1_csv": ("latin1.csv", b"smiles,name\nCCO,caf\xe9\n", ["line 2", "not UTF-8", "0xe9", "re-save the file as UTF-8"]),
    "latin1_txt_gz": ("latin1.txt.gz", gzip.compress(b"CCO\n\xe9\n"), ["line 2", "not UTF-8"]),
    "png_named_csv": ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["line 1", "not UTF-8", "0x89"]),
    "nul_bytes": ("binary.smi", b"CCO\nCC\x00\x01\x02O\n", ["line 2", "NUL byte", "binary file"]),
    "gzip_named_csv": ("packed.csv", gzip.compress(b"smiles\nCCO\n"), ["not UTF-8", "0x8b"]),
    "plain_named_gz": ("plain.csv.gz", b"smiles\nCCO\n", ["cannot read", "check the file is complete"]),
    "json_array_in_csv": ("mols.csv", '[{"smiles": "CCO"}, {"smiles": "CCN"}]', ["holds JSON", "pandas.read_json"]),
    "json_pretty_in_csv": ("pretty.csv", '[\n  {"smiles": "CCO"},\n  {"smiles": "CCN"}\n]\n', ["holds JSON"]),
    "json_lines_in_smi": ("mols.smi", '{"smiles": "CCO"}\n{"smiles": "CCN"}\n', ["holds JSON"]),
    "json_suffix": ("mols.json", '["CCO", "CCN"]', ["unsupported file type .json", "JSON", ".csv"]),
    "jsonl_suffix": ("mols.jsonl", '{"smiles": "CCO"}\n', ["unsupported file type .jsonl", "JSON"]),
    "header_only": ("header_only.csv", "smiles,name\n", ["has a header line but no rows"]),
    "empty": ("empty.smi", "", ["is empty"]),
    "only_blank_lines": ("blank.csv", "\n\n\n", ["holds only blank lines"]),
    "ragged_first_row": ("ragged.csv", "smiles,name\nCCO,a,extra\nCCN,b\n", ["line 2", "more fields than the header", "comma"]),
    "ragged_later_row": ("ragged_later.csv", "smiles,name\nCCO,a\nCCN,b,c\n", ["cannot parse as CSV", "comma", "line 3, saw 3"]),
    "unclosed_quote": ("unclosed.csv", 'smiles,name\nCCO,"a\nCCN,b\n', ["cannot parse as CSV", "EOF inside string"]),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_unreadable_files_are_refused_in_one_line_naming_the_file(tmp_path, case):
    name, content, fragments = REFUSED[case]
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)  # as given: no gzip added
    one_line_error(lambda: load_molecules(path), str(path), *fragments)


def test_a_delimiter_of_more_than_one_character_is_refused(write_file):
    path = write_file("mols.csv", "smiles,name\nCCO,a\n")
    one_line_error(lambda: load_molecules(path, delimiter=";;"), "delimiter must be one character", "';;'")


@pytest.mark.parametrize("cut", ["truncated", "damaged"])
def test_truncated_or_damaged_gzip_is_refused_naming_the_file(tmp_path, cut):
    packed = gzip.compress("".join(f"C{'C' * (i % 7)}O,m{i}\n" for i in range(2000)).encode(), mtime=0)
    if cut == "truncated":
        packed = packed[: len(packed) // 2]
    else:  # a flipped run of bytes in the middle: a zlib or CRC error, depending on where it lands
        middle = len(packed) // 2
        packed = packed[:middle] + bytes(b ^ 0xFF for b in packed[middle : middle + 64]) + packed[middle + 64 :]
    path = tmp_path / f"{cut}.csv.gz"
    path.write_bytes(packed)
    message = one_line_error(lambda: load_molecules(path), str(path))
    # damaged data may first decode to bytes that are not UTF-8; either way the file is named
    assert "cannot read" in message and "check the file is complete" in message or cut == "damaged" and "not UTF-8" in message


def test_json_text_corpus_is_refused(write_file):
    path = write_file("sentences.csv", '[{"text": "the cat sat"}]\n')
    one_line_error(lambda: load_texts(str(path)), str(path), "holds JSON")


def test_a_folder_given_as_the_corpus_says_it_is_a_folder_and_lists_its_files(tmp_path, write_file):
    write_file("corpus/train.csv", "smiles\nCCO\n")
    write_file("corpus/valid.smi.gz", "CCO\n")
    write_file("corpus/notes.md", "-")
    message = one_line_error(lambda: load_molecules(tmp_path / "corpus"), str(tmp_path / "corpus"), "is a directory")
    assert "train.csv, valid.smi.gz" in message and "notes.md" not in message and "not found" not in message
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    one_line_error(lambda: load_texts(str(empty)), "is a directory", ".csv")


@pytest.mark.parametrize("representation", ["smiles", "text"])
def test_one_usable_row_is_refused_naming_the_file_and_the_counts(write_file, representation):
    if representation == "text":
        path = write_file("one.txt", "the cat sat\n\n")
    else:
        path = write_file("one.csv", "smiles\nCCO\nxx\nOCC\n")
    data_args = DataArguments(data=str(path), representation=representation, max_length=20)
    message = one_line_error(lambda: load_training_corpus(data_args, seed=0), str(path), "at least 2")
    if representation == "text":
        assert "1 usable sentence (1/2 rows kept, 1 empty line)" in message
    else:
        assert "1 usable molecule (1/3 rows kept, 1 duplicate, 1 invalid SMILES)" in message


# ------------------------------------------------------------------- SMILES too long for RDKit


def test_a_huge_smiles_is_refused_before_rdkit_reads_it():
    start = time.perf_counter()
    assert to_mol(LONG_SMILES) is None
    message = one_line_error(lambda: normalize_smiles(LONG_SMILES), "too long", "20000 characters", str(MAX_SMILES_CHARACTERS))
    assert len(message) < 300  # the value is shown by its beginning only
    one_line_error(lambda: InputNormalization()(LONG_SMILES), "too long")
    assert time.perf_counter() - start < 1.0
    longest = "C" * MAX_SMILES_CHARACTERS  # the longest accepted is parsed
    assert normalize_smiles(longest) == longest


def test_a_corpus_with_a_huge_smiles_is_prepared_quickly_with_the_row_counted(tmp_path, write_file):
    rows = ["smiles", "CCO", "c1ccccc1", LONG_SMILES, "CCN", "C" * 300, "C" * 30, "CC(=O)O", "CCCl"]
    path = write_file("with_huge.csv", "\n".join(rows) + "\n")
    start = time.perf_counter()
    prepared = prepare_corpus(DataArguments(data=str(path), max_length=20, validation_fraction=0.2), seed=0)
    assert time.perf_counter() - start < 20  # RDKit would take minutes or crash on the 20,000-atom chain
    report = prepared.report
    assert (report.rows_read, report.rows_kept) == (8, 5)
    assert [(row.line, row.reason) for row in report.skipped] == [
        (4, f"too long (20000 characters > {MAX_SMILES_CHARACTERS}, the most seqvae parses)"),
        (6, "too long (at least 302 tokens > max_length 20: 300 atoms, not parsed)"),
        (7, "too long (32 tokens > max_length 20)"),  # near the limit: parsed, so the count is exact
    ]
    assert report.skipped[0].value == "C" * 80 + "... (20000 characters)"
    assert report.skipped_counts == {"too long": 3}
    assert sorted(prepared.training_texts() + list(prepared.validation_rows["smiles"])) == sorted(
        ["CCO", "c1ccccc1", "CCN", "CC(=O)O", "CCCl"]
    )


@pytest.mark.parametrize(
    "raw, options, fits",
    [
        # 10 atoms written with explicit hydrogens: 72 symbols raw, "CCCCCCCCCC" (12 with <bos>/<eos>) canonical
        ("[H]C([H])([H])" + "C([H])([H])" * 8 + "C([H])([H])[H]", {}, True),
        # 40 waters around 10 atoms: only the largest fragment is kept (or all 50 atoms, too many)
        (".".join(["O"] * 40 + ["CCCCCCCCCC"]), {"keep_largest_fragment": True}, True),
        (".".join(["O"] * 40 + ["CCCCCCCCCC"]), {}, False),
    ],
    ids=["explicit_hydrogens", "largest_fragment", "all_fragments"],
)
def test_rows_that_fit_after_canonicalisation_are_never_skipped_unparsed(write_file, raw, options, fits):
    molecules, report = load_molecules(write_file("fits.smi", f"{raw}\nCCO\n"), max_length=12, **options)
    assert list(molecules["smiles"]) == (["CCCCCCCCCC", "CCO"] if fits else ["CCO"])
    if not fits:
        assert report.skipped[0].reason == "too long (at least 52 tokens > max_length 12: 50 atoms, not parsed)"


# --------------------------------------------------------------------------------- the caches


@pytest.fixture
def small_cache(monkeypatch, tmp_path):
    """The on-disk caches, used by every corpus here (not only by 10,000-row ones)."""
    monkeypatch.setenv("SEQVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(storage, "CACHE_MIN_ROWS", 3)
    return tmp_path / "cache"


def test_two_text_recipes_on_one_corpus_and_cache_each_get_their_columns(small_cache, write_file):
    # recipes/ptb_vae.yaml, then recipes/ptb_cvae.yaml (attributes computed from the text) on
    # the same files: the second reused the first's tokenised rows, without its attribute
    # columns, and the collator failed with KeyError: 'money'.
    sentences = ["the company paid $ N million", "the market fell", "shares rose $ N", "the dog sat on the mat"] * 5
    train = write_file("ptb.train.txt", "\n".join(sentences) + "\n")
    valid = write_file("ptb.valid.txt", "\n".join(sentences[:4]) + "\n")
    common = {"data": str(train), "validation_data": str(valid), "representation": "text", "max_length": 12}
    plain = prepare_corpus(DataArguments(**common), seed=0)
    conditional = prepare_corpus(
        DataArguments(**common, properties=["money", "length"], attribute_rules={"money": "contains:$", "length": "words"}),
        seed=0,
    )
    assert (small_cache / "tokenized").is_dir()  # the cache was used
    assert "money" not in plain.train_set.column_names
    collator = PaddingCollator(conditional.tokenizer.pad_token_id, ["money", "length"])
    batch = collator([conditional.train_set[i] for i in range(4)])
    assert batch["properties"].tolist() == [[1.0, 6.0], [0.0, 3.0], [1.0, 4.0], [0.0, 6.0]]
    again = prepare_corpus(DataArguments(**common), seed=0)  # and back: the plain entry is still right
    assert again.train_set.column_names == plain.train_set.column_names


def test_checked_molecules_are_cached_per_property_column(small_cache, write_file):
    path = write_file("assay.csv", "smiles;activity;name\nCCO;1,5;a\nCCN;2;b\nCCC;3;c\nCCCl;4;d\n")
    plain, _ = load_molecules(path)
    for _ in range(2):  # checked, then read from the cache
        with_activity, report = load_molecules(path, properties=["activity"])
        assert with_activity["activity"] == [2.0, 3.0, 4.0]  # "1,5" is not a number: skipped and counted
        assert [(row.line, row.reason) for row in report.skipped] == [(2, "property activity missing or not a number ('1,5')")]
    assert len(list((small_cache / "checked").iterdir())) == 2
    assert load_molecules(path)[0].column_names == plain.column_names == ["smiles", "text"]
