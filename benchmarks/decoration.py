"""Scaffold decoration on ZINC250k test scaffolds; writes benchmarks/results/decoration.json.

    OMP_NUM_THREADS=1 python benchmarks/decoration.py [--num_samples 200] [--data_dir ../shared/data/zinc250k]

Scaffolds: the first 10 distinct ones derived from the DD-VAE ZINC250k test split
(``ddvae_test.smi.gz``, the first 5,000 molecules of the full list), in file order. Each is the
molecule's Bemis-Murcko scaffold with ``*`` where the molecule had substituents
(``Chem.ReplaceSidechains``); a scaffold with more than 2 such points keeps the first 2 (by atom
order) and the others get back their hydrogen. Acyclic molecules are skipped.

For each scaffold and each method (``constrained``, the default: the scaffold's tokens forced and
the substituents sampled; ``latent``: free decoding kept when it contains the scaffold),
``vae.decorate(scaffold, n=--num_samples, seed=0, method=...)`` with the shipped model
``seqvae.load("zinc250k")``, and per scaffold and overall:

* ``valid``: share of the decoded draws that are valid molecules;
* ``containing_of_valid``: share of the valid draws that contain the scaffold with every ``*``
  filled (the acceptance test of the method);
* ``unique``: distinct molecules found / draws that contained the scaffold;
* ``only_at_attachments``: share of the found molecules whose substituents sit at the ``*`` only;
* ``seconds_per_1000``: wall time per 1,000 distinct decorated molecules (CPU, one thread).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

import seqvae
from seqvae.decoration import contains_scaffold, parse_scaffold

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "zinc250k"
MAX_ATTACHMENTS = 2


def scaffold_with_attachments(smiles: str) -> str | None:
    """The molecule's Murcko scaffold with ``*`` at (at most 2 of) its substituted positions."""
    mol = Chem.MolFromSmiles(smiles)
    core = MurckoScaffold.GetScaffoldForMol(mol) if mol is not None else None
    if core is None or core.GetNumAtoms() == 0:
        return None  # acyclic: no scaffold
    marked = Chem.ReplaceSidechains(mol, core)
    if marked is None:
        return None
    marked = Chem.RWMol(marked)
    dummies = [atom for atom in marked.GetAtoms() if atom.GetAtomicNum() == 0]
    if not dummies:
        return None  # the molecule is its own scaffold
    for atom in dummies[MAX_ATTACHMENTS:]:
        atom.SetAtomicNum(1)  # given back its hydrogen below
    for atom in dummies:
        atom.SetIsotope(0)
        atom.SetFormalCharge(0)  # a dummy can keep the charge of the substituent it replaced ([O-])
    return Chem.MolToSmiles(Chem.RemoveHs(marked))


def test_scaffolds(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """``(test molecule, scaffold)`` for the first ``count`` distinct scaffolds of the test split."""
    chosen, seen = [], set()
    with gzip.open(data_dir / "ddvae_test.smi.gz", "rt") as handle:
        for line in handle:
            smiles = line.strip().split()[0] if line.strip() else ""
            scaffold = scaffold_with_attachments(smiles) if smiles else None
            if scaffold and scaffold not in seen:
                seen.add(scaffold)
                chosen.append((smiles, scaffold))
            if len(chosen) == count:
                break
    return chosen


def measure(vae, scaffold: str, num_samples: int, seed: int, method: str) -> dict:
    started = time.perf_counter()
    frame = vae.decorate(scaffold, n=num_samples, seed=seed, mols=False, method=method)
    seconds = time.perf_counter() - started
    stats = frame.attrs["decoration"]
    parsed = parse_scaffold(scaffold)
    mols = [Chem.MolFromSmiles(s) for s in frame["smiles"]]
    assert all(contains_scaffold(m, parsed) and "*" not in s for m, s in zip(mols, frame["smiles"]))
    strict = np.mean([contains_scaffold(m, parsed, only_at_attachments=True) for m in mols]) if mols else None
    return {
        "scaffold": scaffold,
        "attachment_points": parsed.attachment_points,
        "found": len(frame),
        "draws": stats["draws"],
        "valid": round(stats["valid"] / stats["draws"], 4),
        "containing_of_draws": round(stats["containing"] / stats["draws"], 4),
        "containing_of_valid": round(stats["containing"] / max(stats["valid"], 1), 4),
        "unique": round(len(frame) / max(stats["containing"], 1), 4),
        "only_at_attachments": None if strict is None else round(float(strict), 4),
        "seconds": round(seconds, 2),
        "seconds_per_1000": round(1000 * seconds / max(len(frame), 1), 2),
        "examples": frame["smiles"].head(5).tolist(),
    }


def run_method(vae, scaffolds: list[tuple[str, str]], args, method: str) -> dict:
    rows = []
    for molecule, scaffold in scaffolds:
        row = {"test_molecule": molecule, **measure(vae, scaffold, args.num_samples, args.seed, method)}
        print(method, json.dumps({k: v for k, v in row.items() if k != "examples"}), flush=True)
        rows.append(row)
    draws = sum(r["draws"] for r in rows)
    valid = sum(r["valid"] * r["draws"] for r in rows)
    containing = sum(r["containing_of_draws"] * r["draws"] for r in rows)
    found = sum(r["found"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    overall = {
        "scaffolds": len(rows),
        "scaffolds_with_all_found": sum(r["found"] == args.num_samples for r in rows),
        "found": found,
        "draws": draws,
        "valid": round(valid / draws, 4),
        "containing_of_valid": round(containing / max(valid, 1), 4),
        "unique": round(found / max(containing, 1), 4),
        "seconds_per_1000": round(1000 * seconds / max(found, 1), 2),
    }
    return {"overall": overall, "scaffolds": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--num_samples", type=int, default=200, help="molecules asked for per scaffold")
    parser.add_argument("--scaffolds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "decoration.json")
    parser.add_argument("--machine_note", default="not stated", help="whether the machine ran other jobs meanwhile")
    args = parser.parse_args()

    vae = seqvae.load("zinc250k", device="cpu")
    scaffolds = test_scaffolds(args.data_dir, args.scaffolds)
    methods = {method: run_method(vae, scaffolds, args, method) for method in ("constrained", "latent")}
    result = {
        "benchmark": "scaffold decoration (issue 25, Build 4)",
        "method": "latents drawn around the methyl-capped scaffold, every accepted molecule a new anchor; decoded "
        "with the scaffold's tokens forced (constrained) or freely (latent); kept when an RDKit query with each * "
        "as any heavy atom matches (seqvae.decoration)",
        "model": "seqvae.load('zinc250k') (shipped)",
        "scaffolds_from": "ddvae_test.smi.gz: Murcko scaffold of the first test molecules, * at up to 2 substituted positions",
        "num_samples_per_scaffold": args.num_samples,
        "max_draws_per_scaffold": 50 * args.num_samples,
        "seed": args.seed,
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python benchmarks/decoration.py "
        + " ".join(sys.argv[1:]),
        "overall": {method: summary["overall"] for method, summary in methods.items()},
        "methods": methods,
        "machine": {
            "note": f"{args.machine_note}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["overall"], indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
