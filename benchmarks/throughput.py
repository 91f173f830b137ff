"""Training and sampling speed, seqvae beside the MOSES VAE baseline, in one process tree.

    python benchmarks/throughput.py --data_dir ../shared/data/moses            # ~25 min on 2 cores
    python benchmarks/throughput.py --data_dir ../shared/data/moses --quick    # < 10 min
    # -> benchmarks/results/throughput.json (and .md)

The peer is the VAE of the PyPI package ``molsets==0.3.1`` (Polykovskiy et al. 2020), installed
with ``pip install --no-deps --target`` into a temporary folder (its pinned dependencies no
longer build) and patched there for current torch; the patches are listed in the JSON. Nothing
of it is imported by seqvae.

Each measurement runs in its own child process (this script with ``--worker``), so that peak
resident memory is per side and one side's allocations do not slow the other. Both sides read
the same molecules from MOSES train.

* Training: molecules/s and target tokens/s (each side's own tokens: characters for the peer,
  atom-level tokens for seqvae; ``<eos>`` counted, ``<bos>`` not), the median over timed
  windows of consecutive steps after warm-up. seqvae runs through its own ``train_model()`` (Trainer,
  length-grouped batches, data collator); the peer through its own trainer's epoch loop.
* Model FLOP/s: multiply-adds of the recurrent and output layers per target token (training
  = 3x forward), over the measured time, as a fraction of this machine's fp32 matmul FLOP/s
  measured in the same run (the GRU's own recurrent GEMM shape, batch 512).
* Sampling: 30,000 prior samples (``--quick``: 2,048) at temperature 1 from a model trained
  for ``--train_seconds``, decoded to SMILES; the peer at batch 512 (as seqvae) and at 32
  (its sampling script's default); seqvae again without refilling (each batch decoded on its
  own, as before finished rows handed their places to waiting latents), to show that change.
  The peer always runs ``max_len`` = 100 steps, so its speed does not depend on how long it
  was trained. On a CPU with bfloat16 units seqvae samples again
  with ``precision="bf16"`` (a bfloat16 copy of the decoder); the validity of both seqvae runs
  (same seed, same model) shows what the lower precision costs. Its speed-up
  (``sample_speedup_bf16``) is reported beside, not instead of, the fp32 one: the peer runs in
  fp32. Without bfloat16 units (AVX2 only) bf16 is emulated and far slower, so that row is left
  out and ``bf16_skipped`` says why. The matmul worker measures the bf16 matmul rate too
  (``matmul_bf16_flops``), for reference.
* Sampling ceiling: decoder multiply-adds per generated token times the tokens each molecule
  takes (seqvae: its samples' own tokens with ``<eos>``, and the mean of the training molecules;
  the peer: 99 steps), so each sampler's model FLOP/s as a fraction of the matmul rate, and
  ``sample_speedup_ceiling``: the speed-up a seqvae sampler running at the full matmul rate
  would reach over the peer as measured. Where it is below a target, no implementation of
  this architecture and tokenisation reaches that target on this machine in fp32.
* Preprocessing: the MOSES train split (1.58M SMILES) read, checked (RDKit's check is cached
  on disk after the first run, as in normal use), split, vocabulary built and tokenised into
  the on-disk Arrow cache, with the tokenised cache cleared first; then peak memory while
  training on the full split.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PEER = "molsets==0.3.1"
# (file, text in the package, replacement, why)
PEER_PATCHES = [
    (
        "moses/__init__.py", None, "",
        "the package __init__ imports the metrics stack (fcd_torch, pomegranate...), which the VAE does not use",
    ),
    (
        "moses/vae/model.py", "eos_mask = torch.zeros(n_batch, dtype=torch.uint8,",
        "eos_mask = torch.zeros(n_batch, dtype=torch.bool,",
        "VAE.sample indexes with a uint8 mask, which current torch refuses (bool mask instead)",
    ),
]
PEER_SAMPLING_STEPS = 99  # VAE.sample runs max_len - 1 = 99 steps over the whole batch, ended or not
SEQVAE_SAMPLING_ROW = "seqvae (moses_vae.yaml), batch 512"
PEER_SAMPLING_ROW = "peer, batch 512"
CONDITIONAL_TEMPERATURE = 0.3  # as zinc250k_cvae.yaml's evaluation and benchmarks/conditional.py sample
FREE_DECODING = " (decoded freely)"  # precision rows of SMILES models without the grammar
SEQVAE_RECIPES = {"seqvae (moses_vae.yaml)": "recipes/moses_vae.yaml", "seqvae (quickstart.yaml)": "recipes/quickstart.yaml"}


# ------------------------------------------------------------------------------ helpers


def peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes


def window_rates(step_seconds: list[float], per_step: list[float], warmup: int, window: int) -> list[float]:
    """``sum(per_step) / sum(seconds)`` over consecutive windows of ``window`` steps after ``warmup``."""
    rates = []
    for start in range(warmup, len(step_seconds) - window + 1, window):
        seconds = sum(step_seconds[start : start + window])
        rates.append(sum(per_step[start : start + window]) / seconds)
    return rates


def gru_macs(input_size: int, hidden_size: int) -> int:
    """Multiply-adds of one GRU step for one sequence (three gates, input and recurrent parts)."""
    return 3 * hidden_size * (input_size + hidden_size)


def decoder_macs_per_token(embedding: int, latent: int, decoder_hidden: int, layers: int, vocab: int) -> int:
    """Decoder GRU steps (``[embedding; z]`` into layer 1) + output layer, per token."""
    recurrent = gru_macs(embedding + latent, decoder_hidden) + (layers - 1) * gru_macs(decoder_hidden, decoder_hidden)
    return recurrent + decoder_hidden * vocab


def forward_macs_per_token(embedding: int, encoder_hidden: int, latent: int, decoder_hidden: int, layers: int, vocab: int) -> int:
    """Encoder step + decoder step + output layer, per token."""
    return gru_macs(embedding, encoder_hidden) + decoder_macs_per_token(embedding, latent, decoder_hidden, layers, vocab)


def sampling_flops_per_second(row: dict) -> float:
    """Model FLOP/s of a sampling run: decoder multiply-adds of every generated token, x2."""
    return row["molecules_per_second"] * row["steps_per_molecule"] * 2 * row["decoder_macs_per_token"]


def sampling_ceiling(report: dict) -> dict:
    """What the matmul rate allows: the sampling speed-up of a seqvae sampler at 100% of it."""
    ours, peer = report["sampling"][SEQVAE_SAMPLING_ROW], report["sampling"][PEER_SAMPLING_ROW]
    matmul = report["matmul_flops"]
    training_steps = report["training"]["seqvae (moses_vae.yaml)"]["tokens_per_molecule"]

    def ceiling(steps: float) -> float:
        return matmul / (2 * ours["decoder_macs_per_token"] * steps) / peer["molecules_per_second"]

    return {
        "peer_sampling_matmul_fraction": sampling_flops_per_second(peer) / matmul,
        "seqvae_sampling_matmul_fraction": sampling_flops_per_second(ours) / matmul,
        "seqvae_steps_per_molecule": ours["steps_per_molecule"],
        "training_molecule_steps": training_steps,
        "sample_speedup_ceiling": ceiling(ours["steps_per_molecule"]),
        "sample_speedup_ceiling_at_training_length": ceiling(training_steps),
    }


def read_molecules(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class BusyCore:
    """A competing process that keeps one core busy (a plain Python busy loop) while in use."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)  # running before the measurement starts
        return self

    def __exit__(self, *_):
        self.process.kill()
        self.process.wait()


def maybe_competing(args):
    """:class:`BusyCore` when the worker runs with ``--competitor``, else nothing."""
    import contextlib

    return BusyCore() if args.competitor == 1 else contextlib.nullcontext()


# ------------------------------------------------------------------------------ workers


def machine_description() -> dict:
    """The CPU (model name, cores, the vector units that decide the fast precision) and torch."""
    import torch

    from seqvae.generation import cpu_features
    from seqvae.threads import usable_cores

    features = cpu_features()
    units = [name for name in ("avx2", "avx512_f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8") if features.get(name)]
    return {
        "cpu": features.get("cpu_name", "unknown"), "cores": len(usable_cores()), "vector_units": units,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
    }


def worker_matmul(args) -> dict:
    import torch

    def rate(m: int, k: int, n: int, dtype, repeats: int = 100) -> float:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(min(10, repeats)):
            a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return 2 * m * k * n / statistics.median(times)

    from seqvae.generation import bf16_is_fast

    shapes = [(512, 512, 1536), (1024, 1024, 1024)]
    results = {f"{m}x{k}x{n}": rate(m, k, n, torch.float32) for m, k, n in shapes}
    fast_bf16 = bf16_is_fast("cpu")
    # emulated bf16 runs at about 1 GFLOP/s: a few products of the small shape say so
    bf16 = {f"{m}x{k}x{n}": rate(m, k, n, torch.bfloat16, repeats=100 if fast_bf16 else 3) for m, k, n in shapes[: 2 if fast_bf16 else 1]}
    return {
        "machine": machine_description(),
        "matmul_flops": max(results.values()), "by_shape": results, "threads": torch.get_num_threads(),
        "matmul_bf16_flops": max(bf16.values()), "bf16_by_shape": bf16, "bf16_units": fast_bf16,
    }


def worker_peer_train(args) -> dict:
    import torch

    sys.path.insert(0, args.peer_dir)
    from moses.vae import VAE, VAETrainer, vae_parser

    molecules = read_molecules(Path(args.molecules))
    config = vae_parser().parse_args([])  # the MOSES defaults: the architecture of moses_vae.yaml
    config.n_workers = 1  # no loader processes, as on seqvae's side
    trainer = VAETrainer(config)
    model = VAE(trainer.get_vocabulary(molecules), config)
    optimizer = torch.optim.Adam(trainer.get_optim_params(model), lr=config.lr_start)
    loader = trainer.get_dataloader(model, molecules, shuffle=True)
    times, molecules_per_step, tokens_per_step = [], [], []

    class Timed:
        """Stands in for tqdm in the peer's own epoch loop and times each batch."""

        def __iter__(self):
            last = time.perf_counter()
            for step, batch in enumerate(loader):
                if step == args.steps:
                    return
                yield batch
                now = time.perf_counter()
                times.append(now - last)
                molecules_per_step.append(len(batch))
                tokens_per_step.append(sum(len(x) - 1 for x in batch))
                last = now

        def set_postfix_str(self, *_):
            pass

    started = time.perf_counter()
    trainer._train_epoch(model, 0, Timed(), kl_weight=config.kl_w_start, optimizer=optimizer)
    vocab = len(model.vocabulary)
    macs = forward_macs_per_token(vocab, config.q_d_h, config.d_z, config.d_d_h, config.d_n_layers, vocab)
    return {
        "step_seconds": times, "molecules_per_step": molecules_per_step, "tokens_per_step": tokens_per_step,
        "train_flops_per_token": 3 * 2 * macs, "seconds": time.perf_counter() - started, "peak_rss_gb": peak_rss_gb(),
    }


def worker_peer_sample(args) -> dict:
    import torch

    sys.path.insert(0, args.peer_dir)
    from moses.vae import VAE, VAETrainer, vae_parser

    molecules = read_molecules(Path(args.molecules))
    config = vae_parser().parse_args([])
    model = VAE(VAETrainer(config).get_vocabulary(molecules), config).eval()
    torch.manual_seed(0)
    model.sample(args.batch_size)  # warm-up
    started, samples = time.perf_counter(), []
    while len(samples) < args.num_samples:
        samples += model.sample(min(args.batch_size, args.num_samples - len(samples)))
    seconds = time.perf_counter() - started
    vocab = len(model.vocabulary)  # the peer embeds characters one-hot: embedding size = vocabulary size
    return {
        "molecules_per_second": len(samples) / seconds, "seconds": seconds, "peak_rss_gb": peak_rss_gb(),
        "steps_per_molecule": PEER_SAMPLING_STEPS,
        "decoder_macs_per_token": decoder_macs_per_token(vocab, config.d_z, config.d_d_h, config.d_n_layers, vocab),
    }


def worker_seqvae_train(args) -> dict:
    from transformers import TrainerCallback

    from seqvae.training import train_model

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.started = [], None

        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self.started)

    timer = StepTimer()
    overrides = {"data": args.molecules, "logging_steps": 10, "save_steps": 100_000, "validation_fraction": 0.01}
    if args.steps:
        overrides["max_steps"] = args.steps
    if args.train_seconds:
        overrides.update(max_steps=100_000, max_train_seconds=args.train_seconds)
    if args.max_tokens_per_chunk is not None:
        overrides["max_tokens_per_chunk"] = args.max_tokens_per_chunk
    if args.competitor is not None:  # contention rows: the steps are the measurement, not the model
        overrides.update(num_prior_samples=1, num_reconstruction_molecules=0, num_importance_samples=1)
    with maybe_competing(args):
        run = train_model(args.recipe, overrides, output_dir=args.output_dir, callbacks=[timer])
    config = run.model.config  # train_model() has saved the model in output_dir, for the sampling worker
    # the validation rows: a random 1% of the same molecules; <eos> counted, <bos> not
    target_tokens = statistics.mean(int(n) - 1 for n in run.validation["num_tokens"])
    macs = forward_macs_per_token(
        config.embedding_dim, config.encoder_hidden_size, config.latent_dim + config.condition_size,
        config.decoder_hidden_size, config.decoder_num_layers, config.vocab_size,
    )
    batch_size = json.loads((Path(args.output_dir) / "training_args.json").read_text())["per_device_train_batch_size"]
    return {
        "step_seconds": timer.times, "molecules_per_step": [batch_size] * len(timer.times),
        "tokens_per_step": [batch_size * target_tokens] * len(timer.times),
        "train_flops_per_token": 3 * 2 * macs, "seconds": run.train_seconds, "peak_rss_gb": peak_rss_gb(),
    }


def worker_seqvae_sample(args) -> dict:
    import torch

    from seqvae.chem import is_valid, without_rdkit_log
    from seqvae.pipeline import load

    vae = load(args.output_dir)
    options = {"batch_size": args.batch_size, "temperature": 1.0, "precision": args.precision or "fp32"}
    # decoded freely, as the peer decodes (and as seqvae did before the SMILES grammar became its
    # default): like for like; benchmarks/syntax_decoding.py times the grammar
    sample = sample_batch_by_batch if args.no_refill else (
        lambda vae, count, seed, **options: vae.sample(count, seed=seed, syntax=False, **options))
    sample(vae, args.batch_size, seed=1, **options)  # warm-up
    with maybe_competing(args):
        started, samples, seed = time.perf_counter(), [], 0
        # --sample_seconds: whole calls of num_samples until the time is up (slow contended runs)
        while not samples or (args.sample_seconds and time.perf_counter() - started < args.sample_seconds):
            samples += sample(vae, args.num_samples, seed=seed, **options)
            seed += 1
        seconds = time.perf_counter() - started
    with without_rdkit_log():
        valid = sum(map(is_valid, samples)) / len(samples)
    config = vae.model.config
    # decoder steps per molecule: its tokens and <eos> (<bos> is given, not generated)
    steps = statistics.mean(len(ids) - 1 for ids in vae.tokenizer(samples, verbose=False)["input_ids"])
    return {
        "molecules_per_second": len(samples) / seconds, "seconds": seconds, "peak_rss_gb": peak_rss_gb(), "valid": valid,
        "unique": len(set(samples)) / len(samples), "molecules": len(samples), "steps_per_molecule": steps,
        "threads_at_end": torch.get_num_threads(),
        "decoder_macs_per_token": decoder_macs_per_token(
            config.embedding_dim, config.latent_dim + config.condition_size, config.decoder_hidden_size,
            config.decoder_num_layers, config.vocab_size,
        ),
    }


def worker_precision(args) -> dict:
    """fp32 beside ``--precision`` (one or several, comma-separated) on a trained model (a run folder or a shipped name), same seeds:
    molecules/s, validity, uniqueness; for a conditional model with logP, the logP MAD over
    targets 0..5 (the headline of benchmarks/conditional.py: plain sampling at temperature 0.3).
    SMILES models are also timed decoded freely: the grammar's per-token CPU work is the same in
    every precision, so those rows show the model's own gain apart from it."""
    import seqvae
    from seqvae.metrics.conditional import control_metrics

    vae = seqvae.load(args.output_dir)  # fp32 (a shipped fp16 checkpoint is loaded as fp32)
    decodings = {"": True, **({FREE_DECODING: False} if vae.smiles_syntax is not None else {})}
    rows = {}
    for precision in ["fp32", *args.precision.split(",")] * 2:  # alternated: drift hits all
        for suffix, syntax in decodings.items():
            row = rows.setdefault(precision + suffix, {"precision": precision, "syntax": syntax, "runs_molecules_per_second": []})
            timed_sampling(vae, args, row)
    for row in rows.values():
        row["molecules_per_second"] = statistics.median(row["runs_molecules_per_second"])
        if "logP" in vae.property_names and row["syntax"]:
            mads, valid = [], []
            for target in range(6):
                frame = vae.sample_frame(
                    args.conditional_samples, seed=target, condition={"logP": float(target)},
                    temperature=CONDITIONAL_TEMPERATURE, precision=row["precision"],
                )
                mads.append(control_metrics(frame, "logP", float(target))["mad"])
                valid.append(float(frame["valid"].mean()))
            row["logP_mad_mean_over_targets_0_to_5"] = statistics.mean(mads)
            row["logP_mad_by_target"] = mads
            row["conditional_valid"] = statistics.mean(valid)
    return {"model": args.output_dir, "precisions": rows, "peak_rss_gb": peak_rss_gb()}


def timed_sampling(vae, args, row: dict) -> None:
    """One timed run of prior sampling in ``row``'s precision and decoding: molecules/s, validity
    and uniqueness into ``row``."""
    from seqvae.chem import is_valid, without_rdkit_log

    options = {"batch_size": args.batch_size, "precision": row["precision"], "syntax": row["syntax"]}
    vae.sample(args.batch_size, seed=99, **options)  # warm-up
    started = time.perf_counter()
    samples = vae.sample(args.num_samples, seed=0, **options)
    row["runs_molecules_per_second"].append(len(samples) / (time.perf_counter() - started))
    with without_rdkit_log():
        row["valid"] = sum(map(is_valid, samples)) / len(samples)
    row["unique"] = len(set(samples)) / len(samples)
    row["molecules"] = len(samples)


def sample_batch_by_batch(vae, count: int, seed: int, batch_size: int, **options) -> list[str]:
    """seqvae's sampler without refilling (as before it): each batch decoded on its own, its
    finished rows leaving until its longest molecule ends; for the before/after row."""
    import torch

    from seqvae.generation import decode_latents, ids_to_strings

    generator, ids = torch.Generator().manual_seed(seed), []
    while len(ids) < count:
        z = torch.randn(min(batch_size, count - len(ids)), vae.model.config.latent_dim, generator=generator)
        ids += decode_latents(vae.model, z, generator=generator, **options)
    return ids_to_strings(vae.tokenizer, ids, vae.representation)


def worker_preprocess(args) -> dict:
    """Read, check (cached), split, build the vocabulary and tokenise the MOSES train split."""
    import shutil

    from seqvae import data
    from seqvae.data.corpus import load_training_corpus, tokenize_training_corpus
    from seqvae.recipe import load_recipe

    shutil.rmtree(data.cache_root() / "tokenized", ignore_errors=True)
    data_args, *_ = load_recipe("recipes/moses_vae.yaml", {"data_dir": args.data_dir})
    started = time.perf_counter()
    train_rows, validation_rows, report = load_training_corpus(data_args, seed=0)
    read_seconds = time.perf_counter() - started
    train_set, validation_set, _ = tokenize_training_corpus(train_rows, validation_rows, data_args, report)
    seconds = time.perf_counter() - started
    return {
        "molecules": len(train_set) + len(validation_set), "seconds": seconds, "read_and_check_seconds": read_seconds,
        "vocabulary_and_tokenise_seconds": seconds - read_seconds, "peak_rss_gb": peak_rss_gb(),
    }


def worker_train_full(args) -> dict:
    """Peak memory while training moses_vae.yaml on the whole MOSES train split (a few steps)."""
    from seqvae.training import train_model

    overrides = {"data_dir": args.data_dir, "max_steps": args.steps, "logging_steps": 1, "save_steps": 100_000}
    if args.molecules:
        overrides["data"] = args.molecules
    if args.max_tokens_per_chunk is not None:
        overrides["max_tokens_per_chunk"] = args.max_tokens_per_chunk
    run = train_model("recipes/moses_vae.yaml", overrides, output_dir=args.output_dir)
    chunk = json.loads((Path(args.output_dir) / "training_args.json").read_text())["max_tokens_per_chunk"]
    return {"molecules": len(run.training_texts), "steps": args.steps, "max_tokens_per_chunk": chunk, "peak_rss_gb": peak_rss_gb()}


WORKERS = {
    "matmul": worker_matmul, "peer-train": worker_peer_train, "peer-sample": worker_peer_sample,
    "seqvae-train": worker_seqvae_train, "seqvae-sample": worker_seqvae_sample, "preprocess": worker_preprocess,
    "train-full": worker_train_full, "precision": worker_precision,
}


# ------------------------------------------------------------------------------ driver


def run_worker(name: str, environment: dict | None = None, **options) -> dict:
    import os

    command = [sys.executable, __file__, "--worker", name]
    for key, value in options.items():
        if value is True:
            command.append(f"--{key}")
        elif value is not None and value is not False:
            command += [f"--{key}", str(value)]
    print(f"[throughput] {name} {options} {environment or ''}", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env={**os.environ, **(environment or {})})
    if done.returncode != 0:
        raise SystemExit(f"the {name} worker failed (exit {done.returncode}); its output is above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def install_peer(folder: Path) -> list[str]:
    """pip-install the peer without dependencies into ``folder`` and apply :data:`PEER_PATCHES`."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(folder), PEER]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"could not install {PEER} from PyPI (needs the package index); or pass --peer_dir")
    return apply_peer_patches(folder)


def apply_peer_patches(folder: Path) -> list[str]:
    """Apply :data:`PEER_PATCHES` to the installed copy; fail loudly when one no longer fits."""
    applied = []
    for file, old, new, why in PEER_PATCHES:
        path = folder / file
        text = path.read_text()
        if old is None:
            path.write_text(new)
        elif old in text:
            path.write_text(text.replace(old, new))
        else:
            raise SystemExit(f"{PEER}: {file} no longer holds {old!r}; the patch list needs updating")
        applied.append(f"{file}: {why}")
    return applied


def molecule_sample(data_dir: str, count: int, seed: int = 0) -> list[str]:
    path = Path(data_dir) / "train.csv.gz"
    if not path.is_file():
        raise SystemExit(f"{path} not found: give --data_dir, the folder holding MOSES train.csv.gz")
    with gzip.open(path, "rt") as handle:
        rows = [line.split(",")[0].strip() for line in handle][1:]
    return random.Random(seed).sample(rows, count)


def training_figures(result: dict, warmup: int, window: int) -> dict:
    molecules = window_rates(result["step_seconds"], result["molecules_per_step"], warmup, window)
    tokens = window_rates(result["step_seconds"], result["tokens_per_step"], warmup, window)
    if not molecules:
        raise SystemExit(f"too few timed steps ({len(result['step_seconds'])}) for warm-up {warmup} and window {window}")
    tokens_per_second = statistics.median(tokens)
    return {
        "molecules_per_second": statistics.median(molecules), "tokens_per_second": tokens_per_second,
        "windows": len(molecules), "steps": len(result["step_seconds"]),
        "tokens_per_molecule": sum(result["tokens_per_step"]) / sum(result["molecules_per_step"]),
        "model_flops_per_second": tokens_per_second * result["train_flops_per_token"],
        "peak_rss_gb": result["peak_rss_gb"],
    }


def precision_markdown(report: dict) -> str:
    """The reduced-precision rows (``precision_rows``) as markdown; empty when there are none."""
    lines = []
    machine = report.get("precision_machine")
    if machine:
        lines.append(f"\nPrecision rows measured on: {machine['cpu']}, {machine['cores']} cores "
                     f"({', '.join(machine['vector_units']) or 'no AVX2'}), torch {machine['torch']}.")
    if report.get("reduced_precision"):
        lines += ["", f"Reduced precision on this CPU (`--precision auto`): **{report['reduced_precision']}**, beside fp32 on trained models "
                  "(same seeds; molecules/s: median of 2 alternated runs):", "",
                  "| model | precision | molecules/s (T = 1) | valid | unique | logP MAD, targets 0..5 (T = 0.3) |", "|---|---|---|---|---|---|"]
        for model, entry in report["precision"].items():
            for precision, row in entry["precisions"].items():
                mad = row.get("logP_mad_mean_over_targets_0_to_5")
                conditional = "-" if mad is None else f"{mad:.3f} (valid {row['conditional_valid']:.1%})"
                lines.append(f"| {model} ({entry['model']}) | {precision} | {row['molecules_per_second']:.0f} | {row['valid']:.1%} | "
                             f"{row['unique']:.1%} | {conditional} |")
        lines.append(f"\n{report['reduced_precision']} over fp32 on the shipped model (`int8_speedup`, the issue's name for either): "
                     f"{report['int8_speedup']:.2f}x, validity {100 * report['reduced_precision_validity_change']:+.1f} points.")
        others = {k: v for k, v in report.get("reduced_precision_speedups", {}).items() if k != report["reduced_precision"]}
        if others:
            lines.append("Also measured: " + ", ".join(f"{k} {v:.2f}x fp32" for k, v in others.items()) + ".")
        free = report.get("reduced_precision_speedups_decoded_freely")
        if free:
            lines.append("Decoded freely (without the SMILES grammar's CPU work, the same in every precision): "
                         + ", ".join(f"{k} {v:.2f}x fp32" for k, v in free.items()) + ".")
    if report.get("reduced_precision_skipped"):
        lines.append(f"\nReduced precision not measured: {report['reduced_precision_skipped']}.")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    lines = []
    machine = report.get("matmul", {}).get("machine")
    if machine:
        lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores ({', '.join(machine['vector_units']) or 'no AVX2'}), "
                 f"torch {machine['torch']}.", ""]
    if "training" not in report:  # a file of precision rows only (``--only precision`` into a new file)
        return precision_markdown(report).lstrip("\n") + "\n"
    lines += ["| | training molecules/s | training tokens/s | model GFLOP/s (fraction of matmul) | peak RSS GB |", "|---|---|---|---|---|"]
    for name, row in report["training"].items():
        fraction = row["model_flops_per_second"] / report["matmul_flops"]
        lines.append(
            f"| {name} | {row['molecules_per_second']:.1f} | {row['tokens_per_second']:.0f} | "
            f"{row['model_flops_per_second'] / 1e9:.1f} ({fraction:.0%}) | {row['peak_rss_gb']:.2f} |"
        )
    lines += ["", "| sampling | molecules/s | valid | peak RSS GB |", "|---|---|---|---|"]
    for name, row in report["sampling"].items():
        valid = f"{row['valid']:.1%}" if "valid" in row else "- (untrained)"
        lines.append(f"| {name} | {row['molecules_per_second']:.1f} | {valid} | {row['peak_rss_gb']:.2f} |")
    lines += ["", "| ratio | value |", "|---|---|"]
    for key in ("train_speedup", "train_token_speedup", "sample_speedup", "sample_speedup_vs_peer_default_batch",
                "sample_speedup_without_refilling",
                "sample_speedup_bf16", "sample_speedup_int8", "matmul_fraction", "peer_sampling_matmul_fraction",
                "sampling_matmul_fraction", "sample_speedup_ceiling", "sample_speedup_ceiling_at_training_length",
                "int8_speedup", "contended_over_idle",
                "contended_over_idle_training_fixed", "contended_over_idle_sampling_fixed",
                "contended_over_idle_training_auto", "contended_over_idle_sampling_auto"):
        if key in report:
            lines.append(f"| {key} | {report[key]:.2f} |")
    if "sample_speedup_ceiling" in report:
        lines.append(
            f"\nSampling ceiling: seqvae molecules take {report['seqvae_steps_per_molecule']:.1f} decoder steps "
            f"({report['training_molecule_steps']:.1f} for the training molecules), the peer's {PEER_SAMPLING_STEPS}; "
            f"at the full matmul rate seqvae would sample {report['sample_speedup_ceiling']:.2f}x the peer "
            f"({report['sample_speedup_ceiling_at_training_length']:.2f}x at the training molecules' length)."
        )
    if precision := precision_markdown(report):
        lines.append(precision)
    if report.get("contention"):
        lines += ["", "Throughput with a busy loop on one core (training: quickstart.yaml; sampling: the moses_vae model above):", "",
                  "| setting | training steps/s | sampling molecules/s | threads at the end |", "|---|---|---|---|"]
        for name, row in report["contention"].items():
            lines.append(f"| {name} | {row['training_steps_per_second']:.2f} | {row['sampling_molecules_per_second']:.0f} | "
                         f"{row['threads_at_end_of_sampling']} |")
    if report.get("import_time"):
        timing = report["import_time"]
        lines.append(f"\n`import seqvae` (python -X importtime, median): {timing['total_self_ms']:.0f} ms, of which torch and "
                     f"transformers {timing['torch_transformers_ms']:.0f} ms, seqvae itself {timing['seqvae_own_ms']:.0f} ms.")
    if "bf16_skipped" in report:
        lines.append(f"\nbf16 sampling not run: {report['bf16_skipped']}.")
    if "matmul_bf16_flops" in report.get("matmul", {}):
        lines.append(f"\nMatmul rate: fp32 {report['matmul_flops'] / 1e9:.0f} GFLOP/s, "
                     f"bf16 {report['matmul']['matmul_bf16_flops'] / 1e9:.0f} GFLOP/s.")
    for key, when in (("preprocessing_first_run", "first run"), ("preprocessing", "checked table cached")):
        if report.get(key):
            p = report[key]
            lines += ["", f"Preprocessing {p['molecules']:,} MOSES train SMILES ({when}): {p['seconds']:.1f} s "
                      f"(read and check {p['read_and_check_seconds']:.1f} s, vocabulary and tokenising "
                      f"{p['vocabulary_and_tokenise_seconds']:.1f} s), peak RSS {p['peak_rss_gb']:.2f} GB."]
    for row in report.get("memory", []):
        batches = f"row chunks of <= {row['max_tokens_per_chunk']:,} tokens" if row.get("max_tokens_per_chunk") else "whole batches"
        lines.append(f"Training moses_vae.yaml on {row['molecules']:,} molecules ({row['steps']} steps, {batches}): peak RSS {row['peak_rss_gb']:.2f} GB.")
    return "\n".join(lines) + "\n"


def compare_chunking(args) -> None:
    """Training speed and peak memory of moses_vae.yaml with its max_tokens_per_chunk and with
    whole batches, alternating runs on the same molecules; medians of the runs."""
    recipe = "recipes/moses_vae.yaml"
    budget = yaml.safe_load(Path(recipe).read_text())["max_tokens_per_chunk"]
    work = Path(tempfile.mkdtemp(prefix="seqvae-chunking-"))
    molecules_file = work / "molecules.smi"
    molecules_file.write_text("\n".join(molecule_sample(args.data_dir, 512 * 40)) + "\n")
    runs = {"whole batches": [], f"chunks of <= {budget} tokens": []}
    for _ in range(args.chunking_repeats):
        for (name, rows), chunk in zip(runs.items(), (0, budget)):
            result = run_worker(
                "seqvae-train", molecules=molecules_file, recipe=recipe, steps=16,
                output_dir=work / f"chunk{chunk}", max_tokens_per_chunk=chunk,
            )
            rows.append(training_figures(result, warmup=4, window=4))
    summary = {
        name: {
            "molecules_per_second_runs": [round(r["molecules_per_second"], 1) for r in rows],
            "median_molecules_per_second": statistics.median(r["molecules_per_second"] for r in rows),
            "median_peak_rss_gb": statistics.median(r["peak_rss_gb"] for r in rows),
        }
        for name, rows in runs.items()
    }
    whole, chunked = summary.values()
    report = {
        "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
        "what": "moses_vae.yaml, 16 steps of batch 512 per run (median of 4-step windows after 4 warm-up steps)",
        "runs": summary,
        "speed_ratio_chunked_to_whole": chunked["median_molecules_per_second"] / whole["median_molecules_per_second"],
    }
    output = Path(args.output).with_name("chunking.json")
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


CONTENTION_POLICIES = {"threads fixed (before)": "fixed", "threads follow the free cores (seqvae default)": "auto"}


def contention_rows(work: Path, molecules_file: Path, quick: bool) -> dict:
    """quickstart.yaml training steps/s and moses_vae sampling molecules/s, idle and with a busy
    loop on one core, with the thread count fixed at torch's choice and with seqvae's governor."""
    seconds = 20 if quick else 40
    rows = {}
    for policy, setting in CONTENTION_POLICIES.items():
        for competitor in (False, True):
            name = f"{policy}, {'one core busy' if competitor else 'idle'}"
            environment = {"SEQVAE_NUM_THREADS": setting}
            trained = run_worker(
                "seqvae-train", environment, molecules=molecules_file, recipe="recipes/quickstart.yaml",
                train_seconds=seconds, output_dir=work / "contention", competitor=int(competitor),
            )
            # short windows: a collapsed run may take only a few steps in the time
            figures = training_figures(trained, warmup=2, window=2)
            sampled = run_worker(
                "seqvae-sample", environment, output_dir=work / "moses_vae", num_samples=512, batch_size=512,
                sample_seconds=seconds / 2, competitor=int(competitor),
            )
            rows[name] = {
                "training_steps_per_second": figures["molecules_per_second"] / trained["molecules_per_step"][0],
                "training_molecules_per_second": figures["molecules_per_second"],
                "sampling_molecules_per_second": sampled["molecules_per_second"],
                "threads_at_end_of_sampling": sampled["threads_at_end"],
            }
    return rows


def contention_ratios(rows: dict) -> dict:
    """Contended over idle throughput per policy; ``contended_over_idle``: seqvae's default, the
    lower of training and sampling."""
    ratios = {}
    for policy, setting in CONTENTION_POLICIES.items():
        idle, busy = rows[f"{policy}, idle"], rows[f"{policy}, one core busy"]
        for kind in ("training_molecules_per_second", "sampling_molecules_per_second"):
            ratios[f"contended_over_idle_{kind.split('_')[0]}_{setting}"] = busy[kind] / idle[kind]
    ratios["contended_over_idle"] = min(ratios["contended_over_idle_training_auto"], ratios["contended_over_idle_sampling_auto"])
    return ratios


def precision_rows(args, quick: bool) -> dict:
    """Each reduced precision this CPU runs fast beside fp32, on trained models; the one that
    ``auto`` picks is ``reduced_precision``, and its speed-up ``int8_speedup`` (the issue's name
    for either)."""
    from seqvae.generation import bf16_is_fast, int8_is_fast, resolve_precision

    reduced = resolve_precision("auto", "cpu")
    fast = [name for name, available in (("bf16", bf16_is_fast("cpu")), ("int8", int8_is_fast())) if available]
    if not fast:
        return {"reduced_precision": None, "reduced_precision_skipped": "this CPU has neither bfloat16 units nor int8 dot products"}
    models = {"shipped": args.precision_model}
    if args.conditional_model:
        models["conditional"] = args.conditional_model
    rows = {
        name: run_worker("precision", output_dir=model, precision=",".join(fast), num_samples=2048 if quick else 20_000,
                         batch_size=512, conditional_samples=200 if quick else 1000)
        for name, model in models.items()
    }
    shipped = rows["shipped"]["precisions"]

    def speedups(suffix: str) -> dict:
        base = shipped["fp32" + suffix]["molecules_per_second"]
        return {name: shipped[name + suffix]["molecules_per_second"] / base for name in fast}

    default = speedups("")
    figures = {
        "reduced_precision": reduced, "precision": rows, "reduced_precision_speedups": default,
        "int8_speedup": default[reduced],
        "reduced_precision_validity_change": shipped[reduced]["valid"] - shipped["fp32"]["valid"],
    }
    if "fp32" + FREE_DECODING in shipped:  # a SMILES model: also without the grammar's fixed CPU work
        free = speedups(FREE_DECODING)
        figures["reduced_precision_speedups_decoded_freely"] = free
        figures["int8_speedup_decoded_freely"] = free[reduced]
    return figures


def remeasure_precision(args) -> None:
    """``--only precision``: the precision rows measured again into the JSON and .md at
    ``--output`` (a new file holds only them: another machine's figures stay apart)."""
    output = Path(args.output)
    report = json.loads(output.read_text()) if output.is_file() else {"quick": args.quick}
    for key in ("reduced_precision", "precision", "reduced_precision_speedups", "int8_speedup",
                "reduced_precision_validity_change", "reduced_precision_skipped",
                "reduced_precision_speedups_decoded_freely", "int8_speedup_decoded_freely"):
        report.pop(key, None)
    report.update(precision_rows(args, report.get("quick", False)))
    report["precision_command"] = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    report["precision_machine"] = machine_description()  # the rest of the file may come from another day's machine
    output.write_text(json.dumps(report, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def import_time(repeats: int) -> dict:
    """``python -X importtime -c "import seqvae"`` in fresh interpreters (benchmarks/import_time.py)."""
    from import_time import one_import, summary

    return summary([one_import(ROOT) for _ in range(repeats)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data/moses", help="folder with MOSES train.csv.gz")
    parser.add_argument("--quick", action="store_true", help="fewer steps and samples: under 10 minutes on 2 cores")
    parser.add_argument("--output", default="benchmarks/results/throughput.json")
    parser.add_argument("--peer_dir", default=None, help="an already installed and patched copy of the peer")
    parser.add_argument("--train_seconds", type=float, default=None, help="seqvae training time before sampling")
    parser.add_argument("--skip_preprocessing", action="store_true")
    parser.add_argument(
        "--only", choices=["precision"], default=None,
        help="measure only the reduced-precision rows again, into the --output JSON and .md (a new file holds them alone)",
    )
    parser.add_argument(
        "--precision_model", default="zinc250k",
        help="trained model for the reduced-precision rows (run folder or shipped name; default: the shipped ZINC250k model)",
    )
    parser.add_argument(
        "--conditional_model", default=None,
        help="a trained conditional run with logP (recipes/README.md trains one): its logP MAD in fp32 and reduced precision",
    )
    parser.add_argument(
        "--chunking_repeats", type=int, default=0,
        help="only compare moses_vae.yaml training with and without max_tokens_per_chunk, this many times each "
        "(alternating), and write benchmarks/results/chunking.json",
    )
    # worker options
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    for name, kind in [
        ("molecules", str), ("steps", int), ("recipe", str), ("output_dir", str), ("num_samples", int), ("batch_size", int),
        ("max_tokens_per_chunk", int), ("precision", str), ("sample_seconds", float),
        ("conditional_samples", int),
    ]:
        parser.add_argument(f"--{name}", type=kind, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no_refill", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--competitor", type=int, choices=[0, 1], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    if args.chunking_repeats:
        compare_chunking(args)
        return
    if args.only == "precision":
        remeasure_precision(args)
        return

    quick = args.quick
    steps, warmup, window = (10, 2, 2) if quick else (24, 4, 4)
    num_samples = 2048 if quick else 30_000
    train_seconds = args.train_seconds or (60 if quick else 300)
    work = Path(tempfile.mkdtemp(prefix="seqvae-throughput-"))
    molecules_file = work / "molecules.smi"
    molecules_file.write_text("\n".join(molecule_sample(args.data_dir, 512 * (steps + 20))) + "\n")
    patches = []
    if args.peer_dir is None:
        args.peer_dir = str(work / "peer")
        patches = install_peer(Path(args.peer_dir))

    report = {"command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:]), "quick": quick,
              "peer": PEER, "peer_patches": patches, "training": {}, "sampling": {}}
    report["matmul"] = run_worker("matmul")
    report["matmul_flops"] = report["matmul"]["matmul_flops"]
    peer = run_worker("peer-train", molecules=molecules_file, steps=steps, peer_dir=args.peer_dir)
    report["training"]["peer (molsets 0.3.1 VAE)"] = training_figures(peer, warmup, window)
    for name, recipe in SEQVAE_RECIPES.items():
        seconds = train_seconds if "moses_vae" in recipe else None
        result = run_worker(
            "seqvae-train", molecules=molecules_file, recipe=recipe, steps=None if seconds else steps * 4,
            train_seconds=seconds, output_dir=work / Path(recipe).stem,
        )
        report["training"][name] = training_figures(result, warmup, window)
    report["seqvae_training_seconds_before_sampling"] = train_seconds

    peer_batches = [(512, num_samples), (32, num_samples // 4)]
    for batch_size, count in peer_batches:
        report["sampling"][f"peer, batch {batch_size}"] = run_worker(
            "peer-sample", molecules=molecules_file, num_samples=count, batch_size=batch_size, peer_dir=args.peer_dir
        )
    from seqvae.generation import int8_is_fast

    precisions = [("fp32", "")]
    if report["matmul"]["bf16_units"]:
        precisions.append(("bf16", ", bf16"))
    else:
        report["bf16_skipped"] = (
            f"this CPU has no bfloat16 units (bf16 matmul {report['matmul']['matmul_bf16_flops'] / 1e9:.1f} GFLOP/s, "
            f"emulated): bf16 sampling would be far slower than fp32"
        )
    if int8_is_fast():
        precisions.append(("int8", ", int8"))
    for precision, suffix in precisions:
        report["sampling"][f"{SEQVAE_SAMPLING_ROW}{suffix}"] = run_worker(
            "seqvae-sample", output_dir=work / "moses_vae", num_samples=num_samples, batch_size=512, precision=precision
        )
    report["sampling"][f"{SEQVAE_SAMPLING_ROW}, without refilling"] = run_worker(
        "seqvae-sample", output_dir=work / "moses_vae", num_samples=num_samples, batch_size=512, no_refill=True
    )

    report["contention"] = contention_rows(work, molecules_file, quick)
    report.update(contention_ratios(report["contention"]))
    report.update(precision_rows(args, quick))
    report["import_time"] = import_time(repeats=3 if quick else 5)

    # The machine's matmul rate drifts (shared host): measured again at the end, the better kept.
    report["matmul_end"] = run_worker("matmul")
    report["matmul_flops"] = max(report["matmul_flops"], report["matmul_end"]["matmul_flops"])
    train = report["training"]
    ours, theirs = train["seqvae (moses_vae.yaml)"], train["peer (molsets 0.3.1 VAE)"]
    report["train_speedup"] = ours["molecules_per_second"] / theirs["molecules_per_second"]
    report["train_token_speedup"] = ours["tokens_per_second"] / theirs["tokens_per_second"]
    report["matmul_fraction"] = ours["model_flops_per_second"] / report["matmul_flops"]
    sampled = report["sampling"]
    def rate(row: str) -> float:
        return sampled[row]["molecules_per_second"]

    report["sample_speedup"] = rate(SEQVAE_SAMPLING_ROW) / rate(PEER_SAMPLING_ROW)
    report["sample_speedup_vs_peer_default_batch"] = rate(SEQVAE_SAMPLING_ROW) / rate("peer, batch 32")
    for key, suffix in (("sample_speedup_without_refilling", ", without refilling"), ("sample_speedup_bf16", ", bf16"),
                        ("sample_speedup_int8", ", int8")):
        if SEQVAE_SAMPLING_ROW + suffix in sampled:
            report[key] = rate(SEQVAE_SAMPLING_ROW + suffix) / rate(PEER_SAMPLING_ROW)
    report.update(sampling_ceiling(report))
    report["sampling_matmul_fraction"] = report["seqvae_sampling_matmul_fraction"]
    if not (args.skip_preprocessing or quick):
        # twice: the first run may check the molecules with RDKit (cached on disk afterwards, as in
        # normal use); the second reads the checked table and tokenises
        report["preprocessing_first_run"] = run_worker("preprocess", data_dir=args.data_dir)
        report["preprocessing"] = run_worker("preprocess", data_dir=args.data_dir)
        report["memory"] = [
            run_worker("train-full", data_dir=args.data_dir, steps=5, output_dir=work / "full"),
            run_worker("train-full", data_dir=args.data_dir, steps=5, output_dir=work / "full-whole", max_tokens_per_chunk=0),
            run_worker("train-full", data_dir=args.data_dir, steps=5, output_dir=work / "subset", molecules=molecules_file),
        ]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
