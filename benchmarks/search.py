"""Search time in your own library: 100,000 molecules indexed with the shipped ZINC model.

    OMP_NUM_THREADS=1 python benchmarks/search.py --data_dir ../shared/data/moses
    # -> benchmarks/results/search.json

The library is the first ``--size`` molecules of MOSES test (``test.csv.gz``, 176,074 SMILES,
see the folder's README), indexed with ``seqvae.load("zinc250k")``: posterior means (64
numbers) for scikit-learn's ``NearestNeighbors`` and Morgan fingerprints (radius 2, 2,048 bits)
for RDKit's ``BulkTanimotoSimilarity``. The build time covers reading each SMILES as the model
does, encoding, fingerprinting and fitting the neighbour structure; the same steps are timed
apart on the first ``--parts_size`` molecules, to show where the time goes.

Queries: ``--queries`` molecules drawn (seeded) from the library, each searched alone for its
``k = 10`` nearest, by latent and by Tanimoto; the JSON gives the median and 90th percentile
time of one query and how often the query itself came first (it must, always).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "search.json"


def read_library(data_dir: Path, size: int) -> list[str]:
    with gzip.open(data_dir / "test.csv.gz", "rt") as handle:
        next(handle)  # the SMILES header
        return [line.strip() for _, line in zip(range(size), handle)]


def time_queries(index, queries: list[str], k: int, by: str) -> dict:
    seconds, first_is_query = [], 0
    for query in queries:
        started = time.perf_counter()
        found = index.search(query, k=k, by=by)
        seconds.append(time.perf_counter() - started)
        first_is_query += found["smiles"].iloc[0] == query
    ordered = sorted(seconds)
    return {
        "median_query_ms": round(1000 * statistics.median(seconds), 2),
        "p90_query_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 2),
        "query_itself_first": f"{first_is_query}/{len(queries)}",
    }


def build_parts(vae, library: list[str]) -> dict:
    """Seconds of each step of an index build, measured on ``library`` (a slice): where the
    build time goes."""
    from seqvae.search import FingerprintSet

    parts, started = {}, time.perf_counter()
    normalized = vae.normalize_each(library)
    parts["read_as_the_model_does"], started = time.perf_counter() - started, time.perf_counter()
    vae.encode(normalized, progress=False)
    parts["encode"], started = time.perf_counter() - started, time.perf_counter()
    FingerprintSet(normalized)
    parts["fingerprints"] = time.perf_counter() - started
    return {name: round(seconds, 2) for name, seconds in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="../shared/data/moses")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--parts_size", type=int, default=5_000, help="molecules whose build steps are timed apart")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--machine_note", default="not stated", help="whether the machine ran other jobs meanwhile")
    args = parser.parse_args()

    import rdkit
    import sklearn
    import torch

    import seqvae

    vae = seqvae.load("zinc250k", device="cpu")
    library = read_library(Path(args.data_dir), args.size)
    started = time.perf_counter()
    index = vae.index(library, progress=False)
    build_seconds = time.perf_counter() - started
    queries = random.Random(0).sample(library, args.queries)
    result = {
        "model": "zinc250k (shipped)",
        "library": f"first {len(library):,} molecules of MOSES test.csv.gz",
        "indexed": index.num_indexed,
        "invalid_rows": len(index.invalid_rows),
        "latent_dim": int(index.latents.shape[1]),
        "index_build_seconds": round(build_seconds, 1),
        "neighbour_structure": f"sklearn NearestNeighbors ({index._nearest._fit_method})",
        f"build_seconds_by_step_first_{args.parts_size}": build_parts(vae, library[: args.parts_size]),
        "k": args.k,
        "num_queries": len(queries),
        "latent": time_queries(index, queries, args.k, "latent"),
        "tanimoto": time_queries(index, queries, args.k, "tanimoto"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only; {args.machine_note}",
        "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": torch.get_num_threads()},
        "versions": {"seqvae": seqvae.__version__, "scikit-learn": sklearn.__version__, "rdkit": rdkit.__version__},
        "command": "OMP_NUM_THREADS=1 python benchmarks/search.py --data_dir ../shared/data/moses",
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
