"""Tokenizer round trip on real corpora: the share of SMILES with decode(encode(s)) == s.

For each corpus the vocabulary is built from the corpus itself (as `seqvae train` does from its
training split) and every SMILES is encoded and decoded with the Rust tokenizer. Reports the rate,
failures (first 20) and unknown tokens, and writes benchmarks/results/tokenizer_roundtrip.json.

    python benchmarks/tokenizer_roundtrip.py [--shared ../shared/data] [--representation smiles]

For SELFIES the comparison is the same molecule after SMILES -> SELFIES -> tokens -> SELFIES ->
SMILES (canonical SMILES equality), since SELFIES decoding does not restore the input spelling.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from seqvae.chem import canonical_smiles
from seqvae.tokenization import build_tokenizer, count_unknown, from_model_text, to_model_text

ROOT = Path(__file__).resolve().parents[1]


def read_smiles(path: Path, header: bool) -> list[str]:
    with gzip.open(path, "rt") as handle:
        lines = [line.strip().split(",")[0] for line in handle]
    return [s for s in (lines[1:] if header else lines) if s]


def round_trip(smiles: list[str], representation: str, vocabulary_smiles: list[str] | None = None) -> dict:
    """Round trip of ``smiles`` with a vocabulary built from ``vocabulary_smiles`` (default: itself)."""
    started = time.perf_counter()
    texts = [to_model_text(s, representation) for s in smiles]
    vocabulary_texts = texts if vocabulary_smiles is None else [to_model_text(s, representation) for s in vocabulary_smiles]
    tokenizer = build_tokenizer([t for t in vocabulary_texts if t], representation)
    ids = tokenizer([t or "" for t in texts])["input_ids"]
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    if representation == "smiles":
        same = [a == b for a, b in zip(smiles, decoded)]
    else:
        same = [
            t is not None and canonical_smiles(from_model_text(d, representation)) == canonical_smiles(s)
            for s, t, d in zip(smiles, texts, decoded)
        ]
    unknown = count_unknown(ids, tokenizer.unk_token_id)
    failures = [s for s, ok in zip(smiles, same) if not ok]
    return {
        "molecules": len(smiles),
        "round_trip_ok": sum(same),
        "rate": sum(same) / len(smiles),
        "vocabulary": len(tokenizer),
        "unknown_token_sequences": unknown.sequences,
        "failures_first_20": failures[:20],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--representation", default="smiles", choices=["smiles", "selfies"])
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tokenizer_roundtrip.json"))
    args = parser.parse_args()
    shared = Path(args.shared)
    corpora = {
        "moses_test": (shared / "moses" / "test.csv.gz", True),
        "zinc250k": (shared / "zinc250k" / "250k_rndm_zinc_drugs_clean.smi.gz", False),
    }
    for path, _ in corpora.values():
        if not path.is_file():
            raise SystemExit(f"missing {path}: pass --shared with the folder holding moses/ and zinc250k/")
    moses_train = read_smiles(shared / "moses" / "train.csv.gz", header=True) if args.representation == "smiles" else None
    runs = {
        "moses_test": (read_smiles(*corpora["moses_test"]), None),
        # The realistic case: the vocabulary comes from the training split only.
        "moses_test_vocab_from_train": (read_smiles(*corpora["moses_test"]), moses_train),
        "zinc250k": (read_smiles(*corpora["zinc250k"]), None),
    }
    if args.representation == "selfies":  # converting 1.58M training SMILES to SELFIES takes ~30 min
        del runs["moses_test_vocab_from_train"]
    results = {}
    for name, (smiles, vocabulary_smiles) in runs.items():
        results[name] = round_trip(smiles, args.representation, vocabulary_smiles)
        r = results[name]
        print(f"{name:<28} {r['round_trip_ok']:>7}/{r['molecules']:<7} = {r['rate']:.4%}  "
              f"(vocab {r['vocabulary']}, {r['seconds']} s)")
    output = Path(args.output)
    if args.representation != "smiles":
        output = output.with_name(f"{output.stem}_{args.representation}{output.suffix}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"representation": args.representation, **results}, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
