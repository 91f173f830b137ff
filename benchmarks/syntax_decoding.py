"""Prior samples with and without the SMILES grammar (seqvae.syntax): validity, uniqueness,
novelty, why the invalid ones fail (RDKit: parse, valence, kekulization), length, and speed
(molecules/s, median of alternated runs); writes benchmarks/results/syntax_decoding.json.

    python benchmarks/syntax_decoding.py --model zinc250k --train_data zinc250k:ddvae_train \
        --data_dir ../shared/data/zinc250k
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from pathlib import Path

from rdkit import Chem

import seqvae
from seqvae.chem import without_rdkit_log
from seqvae.data import load_molecules
from seqvae.metrics.molecules import canonical_set, canonical_valid

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="run folder or shipped name (repeatable)")
    parser.add_argument("--train_data", action="append", default=[], help="training molecules of each --model, for novelty ('' for none)")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--num_samples", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3, help="alternated timing runs per setting")
    parser.add_argument("--precision", default="fp32", help="fp32 (default here) so that the two settings run the same arithmetic")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "syntax_decoding.json"))
    args = parser.parse_args(argv)
    report = {"settings": vars(args), "machine": platform.platform(), "models": {}}
    for index, model in enumerate(args.model):
        train = args.train_data[index] if index < len(args.train_data) else ""
        report["models"][model] = compare(model, train, args)
        print(json.dumps({model: report["models"][model]}, indent=1), flush=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    return report


def compare(model: str, train_data: str, args) -> dict:
    vae = seqvae.load(model, device="cpu")
    training = None
    if train_data:
        training = canonical_set(load_molecules(train_data, data_dir=args.data_dir)[0]["smiles"])
    vae.sample(500, seed=0, progress=False, precision=args.precision)  # warm up
    speeds = {True: [], False: []}
    samples = {}
    for repeat in range(args.repeats):
        for syntax in (False, True):
            started = time.perf_counter()
            drawn = vae.sample(args.num_samples, seed=repeat, syntax=syntax, progress=False, precision=args.precision)
            speeds[syntax].append(args.num_samples / (time.perf_counter() - started))
            if repeat == 0:
                samples[syntax] = drawn
    rows = {}
    for syntax, label in ((False, "without_syntax"), (True, "with_syntax")):
        rows[label] = {
            **quality(samples[syntax], training),
            "molecules_per_second": round(statistics.median(speeds[syntax]), 1),
            "molecules_per_second_runs": [round(speed, 1) for speed in speeds[syntax]],
        }
    rows["speed_ratio"] = round(rows["with_syntax"]["molecules_per_second"] / rows["without_syntax"]["molecules_per_second"], 3)
    return rows


def quality(samples: list[str], training: set[str] | None) -> dict:
    valid = canonical_valid(samples)
    distinct = set(valid)
    result = {
        "validity": round(len(valid) / len(samples), 4),
        "uniqueness": round(len(distinct) / len(valid), 4) if valid else None,
        "novelty": round(len(distinct - training) / len(distinct), 4) if training is not None and distinct else None,
        "mean_length_characters": round(sum(map(len, samples)) / len(samples), 1),
        "failures": failure_kinds(samples),
    }
    return result


def failure_kinds(samples: list[str]) -> dict[str, float]:
    """Share of all samples by why RDKit refuses them: ``parse`` (not a SMILES), or the
    sanitisation error's name (``AtomValenceException``, ``KekulizeException``...)."""
    kinds = Counter()
    with without_rdkit_log():
        for smiles in samples:
            mol = Chem.MolFromSmiles(smiles, sanitize=False) if smiles else None
            if mol is None:
                kinds["parse"] += 1
                continue
            try:
                Chem.SanitizeMol(mol)
            except Exception as error:  # noqa: BLE001 (RDKit raises several types; the name is the answer)
                kinds[type(error).__name__] += 1
    return {kind: round(count / len(samples), 4) for kind, count in kinds.most_common()}


if __name__ == "__main__":
    main()
