"""Peak memory of a streaming training against corpus size (issue 26: at most 2 GB per process,
flat in the corpus size).

    OMP_NUM_THREADS=1 python benchmarks/streaming_memory.py                # ~25 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/streaming_memory.py --sizes 20000  # a quick look
    # -> benchmarks/results/streaming_memory.json

Corpora: the molecules of MOSES train (1.58M) and ZINC250k (249k), in a seeded order, each
written as RDKit random SMILES (``MolToRandomSmilesVect``: another atom order, so another
string, per form), as shards of ``--shard_rows`` rows (``.smi``) in ``--work`` (outside the
repository). The 1.6M-row corpus holds one form of each of its molecules; the 10M-row one five
or six forms of every molecule, spread over the shards. Both are written in one pass and kept
for later runs (a ``corpus.json`` in each folder says it is complete).

Each training runs in its own child process (this script with ``--train``): ``train_model()``
with ``streaming: true`` on the folder of shards, a small model, ``--steps`` steps of
``--batch_size`` rows. The figures: the child's own peak resident memory (``ru_maxrss``), the
peak of the process tree polled every 0.2 s (psutil), and the resident memory every 50 steps
(does it grow while the stream is read?).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODEL = {"embedding_dim": 32, "encoder_hidden_size": 64, "decoder_hidden_size": 64, "latent_dim": 16}


# ------------------------------------------------------------------------------- the corpora


def source_molecules(moses: Path, zinc: Path, seed: int) -> list[str]:
    """MOSES train's and ZINC250k's SMILES, in a seeded order."""
    with gzip.open(moses, "rt") as handle:
        molecules = handle.read().split()[1:]  # one SMILES a line after the header
    with gzip.open(zinc, "rt") as handle:
        molecules += [line.split()[0] for line in handle if line.strip()]
    random.Random(seed).shuffle(molecules)
    return molecules


def build_corpora(work: Path, sizes: list[int], shard_rows: int, seed: int, moses: Path, zinc: Path) -> dict[int, Path]:
    """One folder of ``.smi`` shards per size; built in one pass, reused when complete."""
    folders = {size: work / f"random_smiles_{size}" for size in sizes}
    missing = [size for size, folder in folders.items() if not (folder / "corpus.json").is_file()]
    if not missing:
        return folders
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    molecules = source_molecules(moses, zinc, seed)
    started = time.monotonic()
    writers = {size: ShardWriter(folders[size], shard_rows, -(-size // shard_rows)) for size in missing}
    for index, smiles in enumerate(molecules):
        wanted = max(_forms_of(index, size, len(molecules)) for size in missing)
        mol = Chem.MolFromSmiles(smiles) if wanted else None
        if mol is None:
            continue
        forms = list(Chem.MolToRandomSmilesVect(mol, wanted, randomSeed=seed + index))
        for size, writer in writers.items():
            writer.add(forms[: _forms_of(index, size, len(molecules))], index)
        if index % 200_000 == 0:
            print(f"  {index:,} molecules, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    for size, writer in writers.items():
        writer.close({"rows": writer.rows, "molecules_from": [str(moses), str(zinc)], "seed": seed,
                      "build_seconds": round(time.monotonic() - started, 1)})
    return folders


def _forms_of(index: int, size: int, num_molecules: int) -> int:
    """Random forms of molecule ``index`` in a corpus of ``size`` rows: the first ``size``
    molecules once, or every molecule ``size // num_molecules`` times and the first ones once more."""
    if size <= num_molecules:
        return int(index < size)
    rounds, extra = divmod(size, num_molecules)
    return rounds + int(index < extra)


class ShardWriter:
    """Writes rows into ``num_shards`` files; the forms of one molecule go to different shards."""

    def __init__(self, folder: Path, shard_rows: int, num_shards: int):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*.smi"):
            old.unlink()
        self.folder, self.rows = folder, 0
        self.handles = [open(folder / f"part-{i:04d}.smi", "w") for i in range(num_shards)]

    def add(self, forms: list[str], index: int) -> None:
        for form_number, form in enumerate(forms):
            self.handles[(index + form_number * 7) % len(self.handles)].write(form + "\n")
        self.rows += len(forms)

    def close(self, manifest: dict) -> None:
        for handle in self.handles:
            handle.close()
        (self.folder / "corpus.json").write_text(json.dumps(manifest, indent=1))


# --------------------------------------------------------------------------- the measurement


def measure(corpus: Path, args) -> dict:
    """Train on ``corpus`` in a child process; its peak memory and what it read."""
    import psutil

    with tempfile.TemporaryDirectory(dir=args.work) as run_dir, tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.processes}"]
        command = [*(launcher if args.processes > 1 else [sys.executable]), __file__, "--train", str(corpus), "--run_dir",
                   run_dir, "--child_output", out.name, "--steps", str(args.steps), "--batch_size", str(args.batch_size)]
        started, peak_tree = time.monotonic(), 0
        child = subprocess.Popen(command)
        process = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak_tree = max(peak_tree, sum(p.memory_info().rss for p in tree))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.2)
        if child.returncode:
            raise SystemExit(f"the training on {corpus} failed (exit status {child.returncode})")
        ranks = [json.loads(Path(f"{out.name}.rank{rank}").read_text()) for rank in range(args.processes)]
        for rank in range(args.processes):
            Path(f"{out.name}.rank{rank}").unlink()
    rows = json.loads((corpus / "corpus.json").read_text())["rows"]
    per_rank = {"peak_rss_gb_by_rank": [rank["peak_rss_gb"] for rank in ranks]} if args.processes > 1 else {}
    return {"corpus_rows": rows, "shards": len(list(corpus.glob("part-*.smi"))), "processes": args.processes,
            "peak_rss_tree_gb": round(peak_tree / 1e9, 3), **ranks[0], **per_rank,
            "wall_seconds": round(time.monotonic() - started, 1)}


def train_child(args) -> None:
    """The child: a streaming training with ``train_model()``, then its figures as JSON."""
    import psutil
    from transformers import TrainerCallback

    from seqvae.training import train_model

    me, by_step = psutil.Process(), {}

    class MemoryByStep(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if state.global_step == 1 or state.global_step % 50 == 0:
                by_step[state.global_step] = round(me.memory_info().rss / 1e9, 3)

    overrides = {
        "data": args.train, "streaming": True, "standardize": False, "max_length": 100,
        "max_steps": args.steps, "per_device_train_batch_size": args.batch_size, "per_device_eval_batch_size": 256,
        "logging_steps": 50, "save_steps": 10 * args.steps, "report_to": "none", "seed": 0, **MODEL,
    }
    started = time.monotonic()
    run = train_model(None, overrides, args.run_dir, callbacks=[MemoryByStep()])
    report = run.report
    result = {
        "train_seconds": round(run.train_seconds, 1), "prepare_and_train_seconds": round(time.monotonic() - started, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),  # Linux: kilobytes
        "rss_gb_by_step": by_step, "rows_read": report.rows_read, "rows_kept": report.rows_kept,
        "vocabulary_sample_rows": len(run.training_texts), "validation_rows": len(run.validation),
        "eval_loss": run.validation_metrics.get("eval_loss"),
    }
    Path(f"{args.child_output}.rank{os.environ.get('RANK', '0')}").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/work/tmp_corpora"), help="where the corpora are written")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_600_000, 10_000_000])
    parser.add_argument("--shard_rows", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1, help="data-parallel training processes (torchrun)")
    parser.add_argument("--machine_note", default="shared with other jobs while measured", help="how busy the machine was")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--moses", type=Path, default=SHARED / "moses" / "train.csv.gz")
    parser.add_argument("--zinc", type=Path, default=SHARED / "zinc250k" / "250k_rndm_zinc_drugs_clean.smi.gz")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "streaming_memory.json")
    parser.add_argument("--build_only", action="store_true", help="write the corpora, measure nothing")
    parser.add_argument("--train", help=argparse.SUPPRESS)  # child mode: the corpus folder
    parser.add_argument("--run_dir", help=argparse.SUPPRESS)
    parser.add_argument("--child_output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train_child(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    folders = build_corpora(args.work, args.sizes, args.shard_rows, args.seed, args.moses, args.zinc)
    if args.build_only:
        return
    runs = [measure(folders[size], args) for size in args.sizes]
    report = {
        "command": " ".join(["OMP_NUM_THREADS=1 python benchmarks/streaming_memory.py", *sys.argv[1:]]),
        "target": "peak RSS per process <= 2 GB, flat in corpus size (issue 26)",
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {args.machine_note}",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "model": MODEL, "processes": args.processes,
                     "shuffle_buffer_size": 10000, "vocabulary_sample_size": 200000, "standardize": False},
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
