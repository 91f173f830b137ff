"""``seqvae`` command line: thin subcommands over the library.

    seqvae train --config recipes/quickstart.yaml [--output_dir runs/x] [--max_steps N] [key=value ...]
    seqvae sample --model runs/x --num_samples 1000 [--temperature 1.0] [--output samples.csv]
    seqvae sample --model runs/cvae --num_samples 500 --condition logP=2.5 --condition qed=0.8 [--rerank 4]
    seqvae encode --model runs/x --input mols.csv --output latents.npy [--on_invalid skip|flag|error]
    seqvae encode --model runs/x --input mols.csv --output latents.csv   # line, id, smiles, valid, z0..
    seqvae score --model runs/x --input mols.csv --output scored.csv
    seqvae sample --model runs/x --num_samples 1000 --filter lipinski --filter pains --filter "sa<4.5"
    seqvae sample --model zinc250k --num_samples 1000000 --seed 1 --shard 0/4 --output samples/   # a folder of Parquet chunks
    seqvae encode --model runs/x --input mols.csv --chunk_size 50000 --output latents/             # resumable, see docs/sharded_generation.md
    seqvae decorate --model zinc250k --scaffold "c1ccc(*)cc1" --num_samples 100 [--condition logP=2.5] [--output file.csv]
    seqvae interpolate --model runs/x --start "CCO" --end "c1ccccc1O" --steps 8
    seqvae evaluate --samples samples.csv --reference test.csv [--train train.csv] [--output metrics.json]
    seqvae evaluate --model runs/x --num_samples 30000 --reference moses:test --scaffold_reference moses:test_scaffolds
    seqvae evaluate --model runs/ptb --text_test ptb:test --data_dir PATH [--num_importance_samples 500]
    seqvae report runs/x [--output report.png]

Problems the user can fix (a missing file, a bad recipe key, an unwritable output...) print one
``error:`` line and exit with status 2; no traceback. Output files are checked for writability
before the work starts. ``key=value`` overrides of ``seqvae train`` may stand anywhere after it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
from pathlib import Path

from .errors import SeqVAEError

MODEL_HELP = "run folder of a trained model, a shipped model (zinc250k) or a Hugging Face Hub id (user/repo)"

__all__ = ["main"]

logger = logging.getLogger("seqvae")


class Subcommand:
    """One ``seqvae`` subcommand: its arguments and what it runs."""

    name: str = ""
    help: str = ""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    @classmethod
    def run(cls, args: argparse.Namespace) -> int:
        raise NotImplementedError


def _add_decoding_options(parser: argparse.ArgumentParser, default_strategy: str, default_precision: str = "fp32") -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--strategy", choices=["sample", "greedy", "beam"], default=default_strategy)
    group.add_argument("--num_beams", type=int, default=4, help="hypotheses per latent (beam)")
    group.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (sample)")
    group.add_argument("--top_k", type=int, default=0, help="keep the k most likely tokens (0: all)")
    group.add_argument("--top_p", type=float, default=1.0, help="nucleus sampling mass (1.0: off)")
    group.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    group.add_argument(
        "--guidance_scale", type=float, default=0.0, help="classifier-free guidance toward --condition (0: off)"
    )
    group.add_argument(
        "--precision", choices=["fp32", "bf16", "int8", "auto"], default=default_precision,
        help="bf16: a bfloat16 copy of the model decodes (faster on GPUs and on CPUs with bf16 units; far slower on CPUs "
        "without them, e.g. AVX2-only); int8: the decoder multiplies with int8 weights (CPU); auto: the fastest of these "
        "that this machine runs well (logged; sample's default, where its quality matched fp32's)",
    )
    group.add_argument(
        "--no_syntax", dest="syntax", action="store_false",
        help="SMILES models: let the decoder write any token; by default it only writes tokens that keep the SMILES "
        "valid (balanced branches, closed rings, atoms within their valence, aromatic rings that can be kekulized)",
    )


def _add_condition_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument("--condition", action="append", default=[], metavar="NAME=VALUE", help=help or TARGET_HELP)


TARGET_HELP = "target property value (conditional models; repeat for several, e.g. --condition logP=2.5)"


def _add_chunk_options(parser: argparse.ArgumentParser) -> None:
    from .sharding import DEFAULT_CHUNK_SIZE

    group = parser.add_argument_group(
        "chunked output",
        "--shard or --chunk_size: --output is a folder of Parquet chunks, each written as soon as it is made; "
        "running the same command again skips the complete ones (docs/sharded_generation.md)",
    )
    group.add_argument(
        "--shard", metavar="i/N",
        help="make shard i (from 0) of N: a contiguous share of the chunks; the N shards may write into one --output "
        "folder; auto: RANK / WORLD_SIZE, as torchrun and accelerate launch set them",
    )
    group.add_argument(
        "--chunk_size", type=int,
        help=f"rows per chunk (default {DEFAULT_CHUNK_SIZE:,}); when sampling, chunk k is drawn with a seed made from "
        "(--seed, k), so the molecules depend on it, not on the number of shards",
    )


def _chunked_output(args):
    """``(folder, shard, chunk_size)`` when ``--shard`` or ``--chunk_size`` ask for a folder of
    chunks, checked before any work; ``None`` otherwise."""
    if args.shard is None and args.chunk_size is None:
        return None
    from .sharding import DEFAULT_CHUNK_SIZE, parse_shard

    shard = parse_shard(args.shard or "0/1")
    chunk_size = DEFAULT_CHUNK_SIZE if args.chunk_size is None else args.chunk_size
    if chunk_size < 1:
        raise SeqVAEError(f"--chunk_size must be at least 1, not {chunk_size}")
    return _check_chunk_folder(args.output), shard, chunk_size


def _check_chunk_folder(output: str | None) -> Path:
    from .runs import check_writable

    if not output:
        raise SeqVAEError("--shard and --chunk_size write a folder of Parquet chunks: name it with --output FOLDER")
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise SeqVAEError(f"--output {folder} is a file; with --shard or --chunk_size it names a folder of Parquet chunks")
    if not folder.exists() and folder.suffix.lower() not in ("", ".parquet"):
        raise SeqVAEError(
            f"--output {folder}: with --shard or --chunk_size the output is a folder of Parquet chunks; "
            f"give a folder name, e.g. {folder.with_suffix('')}"
        )
    return check_writable(folder, "--output")


def _model_device(args) -> str | None:
    """Under torchrun / accelerate launch with ``--shard auto``, each process's own GPU
    (``LOCAL_RANK``); otherwise the default."""
    local_rank = os.environ.get("LOCAL_RANK")
    if args.shard != "auto" or local_rank is None:
        return None
    import torch

    return f"cuda:{local_rank}" if torch.cuda.is_available() else None


def _chunk_progress(output, chunks: range, what: str):
    """One bar over this shard's rows, starting at the rows of its chunks already complete."""
    from tqdm.auto import tqdm

    total = sum(len(output.rows(chunk)) for chunk in chunks)
    done = sum(len(output.rows(chunk)) for chunk in chunks if output.is_complete(chunk))
    return tqdm(total=total, initial=done, desc=what, unit="row")


def _chunked_summary(output, shard, chunks: range, written: int, rows: str) -> str:
    """One line (shards may print at once): what this run wrote, what it found done, and whether
    the whole folder is complete."""
    head = f"shard {shard}: " if shard.count > 1 else ""
    text = f"{head}wrote {rows} in {_count(written, 'chunk')} to {output.folder}"
    if len(chunks) > written:
        text += f" (skipped {_count(len(chunks) - written, 'chunk')} already complete)"
    complete = output.complete_chunks()
    if complete == output.num_chunks:
        return text + f"; all {complete} chunks are complete: read them with pandas.read_parquet({str(output.folder)!r})"
    rest = " (the other shards make the rest)" if shard.count > 1 else ""
    return text + f"; {complete} of {output.num_chunks} chunks are complete{rest}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _model_identity(name: str) -> str:
    """``--model`` as a chunk manifest records it: a folder by its full path (the same model
    whatever the working folder of each shard), a shipped name or Hub id as given."""
    return str(Path(name).resolve()) if Path(name).exists() else name


def _decoding_options(args) -> dict:
    return {
        "strategy": args.strategy,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "guidance_scale": args.guidance_scale,
        "num_beams": args.num_beams,
        "precision": args.precision,
        "syntax": args.syntax,
    }


class Train(Subcommand):
    name = "train"
    help = "train a VAE from a recipe, then evaluate it and write metrics.json"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--config", "--recipe", dest="config", help="recipe YAML (see recipes/)")
        parser.add_argument("--output_dir", help="run folder (default: recipe's output_dir)")
        parser.add_argument("--max_steps", type=int, help="optimiser steps (overrides the recipe)")
        parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
        parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe keys to override")

    @classmethod
    def run(cls, args):
        from .recipe import parse_override
        from .workflow import train_and_evaluate

        overrides = dict(parse_override(text) for text in args.overrides)
        if args.max_steps is not None:
            overrides["max_steps"] = args.max_steps
        metrics = train_and_evaluate(args.config, overrides, args.output_dir, resume=args.resume)
        print(_format_metrics(metrics))
        return 0


class Sample(Subcommand):
    name = "sample"
    help = "sample molecules (or sentences) from a trained model's prior"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--model", required=True, help=MODEL_HELP)
        parser.add_argument("--num_samples", type=int, default=100)
        parser.add_argument("--batch_size", type=int, default=500)
        parser.add_argument(
            "--output", help="write a CSV (smiles, valid, properties; or text); default: print. "
            "With --shard / --chunk_size: a folder of Parquet chunks",
        )
        _add_condition_option(parser)
        parser.add_argument(
            "--rerank", type=int, default=1, help="draw K times as many and keep the best by the property head"
        )
        parser.add_argument(
            "--filter", action="append", default=[], metavar="NAME",
            help="molecule filter adding passes / failed_filters columns (repeat for several): lipinski, veber, "
            "pains, mcf, moses, or a threshold such as sa<4.5, qed>0.5, logP<5 (quote it: the shell reads < and >)",
        )
        _add_decoding_options(parser, "sample", default_precision="auto")
        _add_chunk_options(parser)

    @classmethod
    def run(cls, args):
        from .conditions import parse_condition_text
        from .pipeline import load

        chunked = _chunked_output(args)
        if args.output and not chunked:
            _check_output(args.output, "--output")  # now, not after all the sampling
        condition = parse_condition_text(args.condition)
        if args.filter:
            from .filters import check_filters

            check_filters(args.filter)  # before the model loads
        if chunked:
            from .generation import check_count

            check_count("num_samples", args.num_samples)  # it decides the chunks
        vae = load(args.model, device=_model_device(args))
        if chunked:
            return _sample_in_chunks(vae, args, condition, *chunked)
        frame = vae.sample_frame(
            args.num_samples,
            seed=args.seed,
            condition=condition,
            rerank=args.rerank,
            batch_size=args.batch_size,
            progress=True,
            mols=False,
            filters=args.filter,
            **_decoding_options(args),
        )
        if args.output:
            _write_table(frame, args.output)
            print(f"wrote {len(frame)} samples to {args.output}")
        else:
            print(frame.to_csv(index=False), end="")
        summary = sys.stderr if not args.output else sys.stdout  # stdout holds the CSV when there is no --output
        print(_sample_summary(frame), file=summary)
        if args.filter:
            from .filters import format_pass_rates

            print(format_pass_rates(frame.attrs["pass_rates"]), file=summary)
        return 0


def _sample_in_chunks(vae, args, condition: dict, folder: Path, shard, chunk_size: int) -> int:
    """``seqvae sample --shard / --chunk_size``: this shard's chunks, each drawn with its own
    seed and written as soon as it is drawn."""
    from .sharding import ChunkFolder, chunk_seed, shard_chunks, write_missing_chunks

    options = dict(
        condition=condition, rerank=args.rerank, batch_size=args.batch_size, filters=args.filter, **_decoding_options(args)
    )
    settings = {"model": _model_identity(args.model), "seed": args.seed, **options}  # what decides the molecules
    output = ChunkFolder(folder, "sample", settings, args.num_samples, chunk_size)

    def draw(chunk: int):
        rows = len(output.rows(chunk))
        return vae.sample_frame(rows, seed=chunk_seed(args.seed, chunk), progress=False, mols=False, **options)

    chunks = shard_chunks(shard, output.num_chunks)
    totals = _SampleTotals()
    with _chunk_progress(output, chunks, "sampling") as bar:
        for chunk, frame in write_missing_chunks(output, chunks, draw):
            totals.add(frame)
            bar.update(len(output.rows(chunk)))
    what = "sentences" if vae.representation == "text" else "samples"
    quality = f" ({totals.summary()})" if totals.rows and totals.summary() else ""
    print(_chunked_summary(output, shard, chunks, totals.chunks, f"{totals.rows} {what}{quality}"))
    return 0


class _SampleTotals:
    """Validity and filter pass rates over the chunks one run draws, without keeping them."""

    def __init__(self):
        self.chunks = self.rows = 0
        self.valid: int | None = None  # text models have no validity
        self.passed: dict[str, float] = {}

    def add(self, frame) -> None:
        self.chunks += 1
        self.rows += len(frame)
        if "valid" in frame.columns:
            self.valid = (self.valid or 0) + int(frame["valid"].sum())
        for label, rate in frame.attrs.get("pass_rates", {}).items():
            self.passed[label] = self.passed.get(label, 0.0) + rate * len(frame)

    def summary(self) -> str:
        parts = [] if self.valid is None else [f"{self.valid / self.rows:.1%} valid"]
        if self.passed:
            from .filters import format_pass_rates  # only with --filter: it loads the alert catalogues

            parts.append(format_pass_rates({label: count / self.rows for label, count in self.passed.items()}))
        return "; ".join(parts)


def _sample_summary(frame) -> str:
    """Validity, and for each target the mean absolute error of the valid molecules (text:
    how many distinct sentences)."""
    text = "text" in frame.columns
    usable = frame["text"].str.strip() != "" if text else frame["valid"]
    parts = [f"{len(frame)} sentences, {frame['text'].nunique()} distinct" if text else f"{frame['valid'].mean():.1%} valid"]
    for column in frame.columns:
        if not column.endswith("_target"):
            continue
        name = column.removesuffix("_target")
        target = frame[column].iloc[0]
        if f"{name}_error" in frame.columns:
            errors = frame.loc[usable, f"{name}_error"].abs()
            parts.append(f"{name} target {target:g}: mean absolute error {errors.mean():.3f}")
        elif name in frame.columns:  # a label measured on the output
            parts.append(f"{name} target {target}: {(frame[name] == target).mean():.1%} match")
    return "; ".join(parts)


def _add_molecule_file_arguments(parser, output_help: str) -> None:
    """The options of the subcommands that read a file of molecules with a model and write one
    row per input row (encode, score)."""
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--input", required=True, help=".csv/.smi/.txt file of molecules")
    parser.add_argument("--output", required=True, help=output_help)
    parser.add_argument("--smiles_column", help="CSV column with SMILES (detected if omitted)")
    parser.add_argument("--id_column", help="CSV column of row ids copied to a table output (default: id, name...)")


class Encode(Subcommand):
    name = "encode"
    help = "write posterior means of the molecules in a file: a .npy array, or a .csv/.parquet table with each row's line"

    @classmethod
    def add_arguments(cls, parser):
        _add_molecule_file_arguments(
            parser,
            output_help="output .npy file [N, latent_dim]; or .csv / .parquet: a table of line, the id column, "
            "smiles, valid and z0..z{latent_dim-1}, one row per input row; with --shard / --chunk_size: a folder "
            "of Parquet chunks of that table",
        )
        parser.add_argument(
            "--on_invalid", choices=["error", "skip", "flag"], default="error",
            help="an invalid or empty row: stop with its line (error), leave it out (skip), or keep it with NaN "
            "latents (flag); skip and flag also write OUTPUT.rows.csv: the input line of each row of the array",
        )
        _add_chunk_options(parser)

    @classmethod
    def run(cls, args):
        import numpy as np

        from .pipeline import load

        chunked = _chunked_output(args)
        if chunked:
            return _encode_in_chunks(load(args.model, device=_model_device(args)), args, *chunked)
        output = _check_output(args.output, "--output")
        rows_path = _rows_path(output)
        vae = load(args.model)
        molecules, lines = _read_input(args)
        table = _input_rows(args, molecules, lines) if _is_table(output) else None  # a wrong --id_column fails now
        latents = _latents_of(vae, args, molecules, lines)
        valid = ~np.isnan(latents).any(axis=1)
        if not valid.any():
            raise SeqVAEError(f"{args.input}: none of its {len(molecules)} rows is a valid molecule; nothing to encode")
        kept = valid if args.on_invalid == "skip" else np.ones(len(molecules), dtype=bool)
        if table is not None:
            _write_table(_latent_table(table, latents, valid)[kept], output)
            print(f"wrote {int(kept.sum())} rows (line, valid, z0..z{latents.shape[1] - 1}) to {args.output}")
        else:
            np.save(output, latents[kept])
            print(f"wrote {int(kept.sum())} x {latents.shape[1]} latents to {args.output}")
        if args.on_invalid != "error":
            _report_invalid_rows(args, molecules, lines, valid)
        if args.on_invalid != "error" and table is None:  # a table carries its lines itself
            _write_rows(rows_path, molecules, lines, valid, kept)
            print(f"wrote the input line of each latent row to {rows_path}")
        return 0


def _encode_in_chunks(vae, args, folder: Path, shard, chunk_size: int) -> int:
    """``seqvae encode --shard / --chunk_size``: this shard's chunks of the input rows, each
    written as a table (line, id, smiles, valid, z...) as soon as it is encoded."""
    import numpy as np

    from .sharding import ChunkFolder, shard_chunks, write_missing_chunks

    molecules, lines = _read_input(args)
    table = _input_rows(args, molecules, lines)
    source = Path(args.input).resolve()
    stat = source.stat()
    settings = {
        "model": _model_identity(args.model), "input": str(source), "input_bytes": stat.st_size,
        "input_modified_ns": stat.st_mtime_ns,  # an edited input of the same size is another input
        "smiles_column": args.smiles_column, "id_column": args.id_column, "on_invalid": args.on_invalid,
    }
    output = ChunkFolder(folder, "encode", settings, len(molecules), chunk_size)
    invalid = _InvalidRows()

    def encode(chunk: int):
        rows = output.rows(chunk)
        part = slice(rows.start, rows.stop)
        latents = _latents_of(vae, args, molecules[part], lines[part])
        valid = ~np.isnan(latents).any(axis=1)
        invalid.add(molecules[part], lines[part], valid)
        frame = _latent_table(table.iloc[part], latents, valid)
        return frame[valid] if args.on_invalid == "skip" else frame

    chunks = shard_chunks(shard, output.num_chunks)
    written = rows = 0
    with _chunk_progress(output, chunks, "encoding") as bar:
        for chunk, frame in write_missing_chunks(output, chunks, encode, _column_types(table)):
            written, rows = written + 1, rows + len(frame)
            bar.update(len(output.rows(chunk)))
    print(_chunked_summary(output, shard, chunks, written, f"{rows} rows"))
    invalid.warn(args)
    return 0


def _latents_of(vae, args, molecules: list[str], lines: list[int]):
    """One latent row per input row: invalid rows stop with their line (``--on_invalid error``)
    or get NaN latents."""
    if args.on_invalid == "error":
        return _encode_every_row(vae, molecules, lines, args.input)
    return _encode_rows_or_nan(vae, molecules)


def _latent_table(rows, latents, valid):
    """The input's rows (line, id, smiles) with ``valid`` and the latents as ``z0``, ``z1``..."""
    return rows.assign(valid=valid, **{f"z{i}": latents[:, i] for i in range(latents.shape[1])})


def _column_types(table) -> dict:
    """The pyarrow type of each input column, from the whole input: one chunk whose ids are all
    missing would otherwise get a null column, and chunks would not read back as one table."""
    import pyarrow as pa

    schema = pa.Table.from_pandas(table, preserve_index=False).schema
    return {name: schema.field(name).type for name in table.columns}


TABLE_SUFFIXES = (".csv", ".parquet")
ID_COLUMN_NAMES = ("id", "name", "compound_id", "mol_id", "molecule_id", "identifier", "title")


def _is_table(path: Path) -> bool:
    return path.suffix.lower() in TABLE_SUFFIXES


def _read_input(args) -> tuple[list[str], list[int]]:
    """The molecules of ``--input`` (stripped, empty rows as "") and the line of each."""
    from .data import read_smiles_column

    values, first_line = read_smiles_column(_existing(args.input), args.smiles_column)
    molecules = [str(v).strip() if v is not None else "" for v in values]
    return molecules, list(range(first_line, first_line + len(molecules)))


def _input_rows(args, molecules: list[str], lines: list[int]):
    """``line``, the input's id column when it has one, and ``smiles`` (as written): the columns
    that tie each output row to its input row."""
    import pandas as pd

    frame = pd.DataFrame({"line": lines})
    ids = _id_column(Path(args.input), args.smiles_column, args.id_column)
    if ids is not None:
        frame[ids[0]] = ids[1]
    frame["smiles"] = molecules
    return frame


def _id_column(path: Path, smiles_column: str | None, requested: str | None):
    """``(name, values)`` of the input's id column: ``--id_column``, else a CSV column named like
    an id (``id``, ``name``...), else a .smi file's names (the second field); ``None`` without."""
    from .data.readers import csv_delimiter, file_kind, read_columns, read_lines

    if file_kind(path) in (".smi", ".txt"):
        names = [fields[1] if len(fields) > 1 else None for fields in (line.split() for line in read_lines(path))]
        return ("name", names) if any(names) else None
    header = _csv_header(path, csv_delimiter(path))
    if requested is not None and requested not in header:
        raise SeqVAEError(f"--id_column {requested!r}: {path} has no such column (columns: {', '.join(header)})")
    name = requested or next((column for column in header if column.strip().lower() in ID_COLUMN_NAMES), None)
    if name is None or name == smiles_column:
        return None
    return name, read_columns(path, smiles_column, properties=[name]).columns[name]


def _csv_header(path: Path, delimiter: str) -> list[str]:
    import pandas as pd

    return [str(column) for column in pd.read_csv(path, sep=delimiter, nrows=0).columns]


def _encode_every_row(vae, molecules: list[str], lines: list[int], source: str):
    """``--on_invalid error``: one latent row per input row; an empty or invalid row is an
    error naming its line (looked for only on failure, so valid files are parsed once)."""
    empty = [line for line, value in zip(lines, molecules) if not value]
    if empty:
        raise SeqVAEError(
            f"{source}, line {empty[0]}: empty molecule ({len(empty)} empty rows); remove them, "
            "or pass --on_invalid skip (or flag)"
        )
    try:
        return vae.encode(molecules).cpu().numpy()
    except SeqVAEError:
        invalid = [line for line, value in zip(lines, vae.normalize_each(molecules)) if value is None]
        if vae.representation == "text" or not invalid:
            raise
        value = molecules[lines.index(invalid[0])]
        raise SeqVAEError(
            f"{source}, line {invalid[0]}: {_shown(value)} is not a valid SMILES ({len(invalid)} invalid rows); "
            "fix or remove them, or pass --on_invalid skip (or flag)"
        ) from None


def _encode_rows_or_nan(vae, molecules: list[str]):
    """``--on_invalid skip / flag``: one latent row per input row, NaN for an empty or invalid one."""
    import numpy as np

    latents = np.full((len(molecules), vae.config.latent_dim), np.nan, dtype=np.float32)
    filled = [index for index, value in enumerate(molecules) if value]
    if filled:
        latents[filled] = vae.encode([molecules[i] for i in filled], on_invalid="nan").cpu().numpy()
    return latents


def _report_invalid_rows(args, molecules: list[str], lines: list[int], valid) -> None:
    """One ``warning:`` line counting the rows left out (skip) or given NaN latents (flag)."""
    invalid = _InvalidRows()
    invalid.add(molecules, lines, valid)
    invalid.warn(args)


class _InvalidRows:
    """The rows that are empty or not valid molecules, counted (over chunks) for one warning."""

    def __init__(self):
        self.rows = self.count = 0
        self.first: tuple[int, str] | None = None  # (line, input)

    def add(self, molecules: list[str], lines: list[int], valid) -> None:
        self.rows += len(molecules)
        bad = [index for index, ok in enumerate(valid) if not ok]
        self.count += len(bad)
        if bad and self.first is None:
            self.first = (lines[bad[0]], molecules[bad[0]])

    def warn(self, args) -> None:
        if not self.count:
            return
        line, value = self.first
        done = "skipped" if args.on_invalid == "skip" else "flagged (NaN latents, valid=False)"
        print(
            f"warning: {args.input}: {done} {self.count} of {self.rows} rows that are empty or not valid "
            f"molecules; the first is line {line}: {_shown(value)}",
            file=sys.stderr,
        )


def _write_rows(path: Path, molecules: list[str], lines: list[int], valid, kept) -> None:
    """The companion table: for each row of the latent array, its input ``line``, the ``input``
    and whether it was ``valid``, so that rows still map to input lines after a skip."""
    import pandas as pd

    frame = pd.DataFrame({"line": lines, "input": molecules, "valid": valid})
    frame[kept].to_csv(path, index=False)


def _rows_path(output: Path) -> Path:
    """``latents.npy`` -> ``latents.rows.csv`` (beside it)."""
    return output.with_name(output.name.removesuffix(".npy") + ".rows.csv")


def _shown(value: str) -> str:
    """An input as an error message quotes it: at most 60 characters."""
    return repr(value if len(value) <= 60 else value[:60] + "...")


class Score(Subcommand):
    name = "score"
    help = "score each molecule of a file: ELBO, reconstruction, nearest training molecule (rows kept in order)"

    @classmethod
    def add_arguments(cls, parser):
        _add_molecule_file_arguments(parser, output_help="the scored table, .csv or .parquet, one row per input row")
        parser.add_argument(
            "--training", help="molecules to find the nearest of (a file or moses:train; default: the run's training set)"
        )
        parser.add_argument("--data_dir", help="folder holding moses:* files for --training")
        parser.add_argument("--num_samples", type=int, default=8, help="draws z ~ q(z|x) averaged into the ELBO")
        parser.add_argument("--seed", type=int, default=0, help="seed of those draws")
        parser.add_argument("--batch_size", type=int, default=128)

    @classmethod
    def run(cls, args):
        from .evaluation import read_molecules
        from .pipeline import load

        output = _check_output(args.output, "--output")
        if not _is_table(output):
            raise SeqVAEError(f"--output {output}: give a .csv or .parquet file name")
        vae = load(args.model)
        molecules, lines = _read_input(args)
        rows = _input_rows(args, molecules, lines)  # a wrong --id_column fails before the scoring
        training = read_molecules(args.training, "training set", args.data_dir) if args.training else None
        scored = vae.score(
            molecules, training=training, num_samples=args.num_samples, seed=args.seed, batch_size=args.batch_size,
            progress=True,
        )
        frame = rows.join(scored.drop(columns="smiles"))
        _write_table(frame, output)
        print(_score_summary(frame, args.output))
        if scored.attrs.get("note"):
            print(f"note: {scored.attrs['note']}", file=sys.stderr)
        return 0


def _score_summary(frame, path: str) -> str:
    """How many rows, how many flagged invalid, the median negative ELBO and the share reconstructed."""
    valid = frame[frame["valid"]]
    invalid = len(frame) - len(valid)
    flagged = f", {invalid} invalid (kept, valid=False)" if invalid else ""
    measured = (
        f"; median neg_elbo {valid['neg_elbo'].median():.2f} nats, {valid['reconstructed'].mean():.1%} reconstructed"
        if len(valid) else ""
    )
    return f"wrote {len(frame)} scored rows to {path}{flagged}{measured}"


class Interpolate(Subcommand):
    name = "interpolate"
    help = "decode points between two molecules (or sentences) in latent space"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--model", required=True, help=MODEL_HELP)
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", required=True)
        parser.add_argument("--steps", type=int, default=8)
        parser.add_argument("--method", choices=["linear", "slerp"], default="linear")
        _add_condition_option(parser, "conditional models: held fixed along the path (or the start's, with --end_condition)")
        parser.add_argument(
            "--end_condition", action="append", default=[], metavar="NAME=VALUE",
            help="the condition at --end: the condition moves from --condition to this along the path",
        )
        _add_decoding_options(parser, "greedy")

    @classmethod
    def run(cls, args):
        from .chem import is_valid
        from .conditions import parse_condition_text
        from .pipeline import load

        condition = parse_condition_text(args.condition)
        if args.end_condition:
            condition = (condition, parse_condition_text(args.end_condition))
        vae = load(args.model)
        table = vae.homotopy(
            args.start, args.end, steps=args.steps, method=args.method, seed=args.seed, condition=condition or None,
            **_decoding_options(args),
        )
        print("step\tweight\toutput")
        for row in table.itertuples():
            flag = "" if vae.representation == "text" or is_valid(row.output) else "  (invalid)"
            print(f"{row.step}\t{row.weight:.3f}\t{row.output}{flag}")
        return 0


class Evaluate(Subcommand):
    name = "evaluate"
    help = (
        "MOSES metrics of a sample file, or of a model's samples (plus latent diagnostics); "
        "for a text model, IW-NLL / PPL / KL / MI / AU / BLEU on --text_test sentences"
    )

    @classmethod
    def add_arguments(cls, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--samples", help="generated molecules (.csv/.smi/.txt), invalid ones included")
        source.add_argument("--model", help=MODEL_HELP + ": sample --num_samples molecules, then evaluate")
        parser.add_argument("--num_samples", type=int, default=30000, help="molecules to draw with --model")
        parser.add_argument("--reference", help="test set for FCD/SNN/Frag/Scaf/properties: a file or moses:test")
        parser.add_argument(
            "--scaffold_reference", help="scaffold test set for the /TestSF metrics: a file or moses:test_scaffolds"
        )
        parser.add_argument("--train", help="training set for Novelty: a file or moses:train")
        parser.add_argument("--data_dir", help="folder holding the moses:* files (default: download them)")
        parser.add_argument("--smiles_column", help="CSV column with SMILES in --samples (detected if omitted)")
        parser.add_argument("--output", help="write the metrics as JSON")
        parser.add_argument("--save_samples", help="with --model: also write the samples as CSV")
        parser.add_argument("--n_jobs", type=int, default=2, help="worker processes for RDKit work")
        parser.add_argument("--device", default="cpu", help="where ChemNet (FCD) runs, e.g. cuda")
        parser.add_argument("--no_cache", action="store_true", help="recompute reference statistics")
        parser.add_argument("--batch_size", type=int, default=500, help="sampling batch size with --model")
        parser.add_argument(
            "--text_test", "--text-test", help="text models: test sentences (.txt, .csv, ptb:test or hub:NAME)"
        )
        parser.add_argument(
            "--num_importance_samples", type=int, default=500, help="text models: IW-NLL samples per sentence"
        )
        parser.add_argument("--hub_split", default="test", help="text models: split of a hub:NAME test set")
        _add_decoding_options(parser, "sample")

    @classmethod
    def run(cls, args):
        from .evaluation import evaluate, format_metrics_table, read_molecules, write_metrics_json
        from .metrics.moses import DEFAULT_CACHE_DIR

        for path, option in ((args.output, "--output"), (args.save_samples, "--save_samples")):
            if path:
                _check_output(path, option)  # before the sampling and the metrics
        if args.num_samples < 1:
            raise SeqVAEError(f"--num_samples must be at least 1, not {args.num_samples}")
        if args.n_jobs < 1:
            raise SeqVAEError(f"--n_jobs must be at least 1, not {args.n_jobs}")

        if args.text_test:
            if not args.model:
                raise SeqVAEError("--text_test scores a text model: give it with --model runs/x (not --samples)")
            return cls.run_text(args)

        def read(source, what, column=None):
            return read_molecules(source, what, args.data_dir, column) if source else None

        samples = read(args.samples, "samples", args.smiles_column)
        references = {
            "reference": read(args.reference, "reference"),
            "scaffold_reference": read(args.scaffold_reference, "scaffold reference"),
            "train": read(args.train, "training set"),
        }
        options = {}
        if args.model:
            from .pipeline import load

            vae = options["model"] = load(args.model)
            if vae.representation == "text":
                raise SeqVAEError(f"{args.model} is a text model: give its test sentences with --text_test FILE")
            samples = vae.sample(
                args.num_samples, seed=args.seed, batch_size=args.batch_size, progress=True, **_decoding_options(args)
            )
            if args.save_samples:
                from .inference import samples_frame

                _write_table(samples_frame(samples), args.save_samples)
                print(f"wrote {len(samples)} samples to {args.save_samples}")
        report = evaluate(
            samples, **references, **options, n_jobs=args.n_jobs, device=args.device,
            cache_dir=None if args.no_cache else DEFAULT_CACHE_DIR, progress=True,
        )
        for message in report["details"]["warnings"]:
            print(f"warning: {message}", file=sys.stderr)
        print(format_metrics_table(report))
        if args.output:
            print(f"wrote {write_metrics_json(report, args.output)}")
        return 0


    @classmethod
    def run_text(cls, args):
        from .data import load_texts
        from .evaluation import text_metrics
        from .pipeline import load

        vae = load(args.model)
        if vae.representation != "text":
            raise SeqVAEError(f"{args.model} is a molecule model; --text_test is for text models")
        if args.num_importance_samples < 1:
            raise SeqVAEError(f"--num_importance_samples must be at least 1, not {args.num_importance_samples}")
        lowercase = vae.normalization.lowercase  # read test text as training did
        rows, report = load_texts(args.text_test, data_dir=args.data_dir, hub_split=args.hub_split, lowercase=lowercase)
        print(f"test sentences: {report.summary()}")
        metrics = text_metrics(
            vae, rows["text"], num_importance_samples=args.num_importance_samples, seed=args.seed or 0, progress=True
        )
        shown = {key: value for key, value in metrics.items() if not isinstance(value, (dict, str))}
        print(_format_metrics({key: round(value, 4) if isinstance(value, float) else value for key, value in shown.items()}))
        if args.output:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(json.dumps({**metrics, "test": report.summary()}, indent=2))
            print(f"wrote {args.output}")
        return 0


class Report(Subcommand):
    name = "report"
    help = "draw a run folder's report.png: training curves and sampled molecules (or sentences)"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("run_dir", help="run folder written by seqvae train")
        parser.add_argument("--output", help="picture file, .png or .svg (default: RUN_DIR/report.png)")

    @classmethod
    def run(cls, args):
        from .runs import read_metrics, report_path
        from .viz import run_report

        run_dir = Path(args.run_dir)
        if not run_dir.is_dir():
            raise SeqVAEError(f"run folder not found: {run_dir}")
        target = _check_output(args.output or report_path(run_dir), "--output" if args.output else "the report")
        path = run_report(run_dir).save(target)
        print(f"wrote {path}")
        metrics = read_metrics(run_dir)
        if metrics:
            print(_format_metrics({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}))
        return 0


class Decorate(Subcommand):
    name = "decorate"
    help = "molecules that contain a scaffold, with its attachment points * filled (sampled around its latent)"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--model", required=True, help=MODEL_HELP)
        parser.add_argument("--scaffold", required=True, help='SMILES with * at the attachment points, e.g. "c1ccc(*)cc1"')
        parser.add_argument("--num_samples", type=int, default=100, help="distinct molecules to find")
        parser.add_argument("--max_draws", type=int, help="latents decoded at most (default: 50 per molecule asked for)")
        parser.add_argument(
            "--only_at_attachments", action="store_true", help="substituents at the * only (core atoms keep their degree)"
        )
        _add_condition_option(parser)
        parser.add_argument("--output", help="write a CSV (smiles, parent, scale, properties); default: print")
        parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible molecules")
        parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of the decoding")
        parser.add_argument(
            "--method", choices=["constrained", "latent"], default="constrained",
            help="constrained: the scaffold's tokens are written and the substituents sampled (SMILES models); "
            "latent: free decoding, kept when it contains the scaffold",
        )

    @classmethod
    def run(cls, args):
        from .conditions import parse_condition_text
        from .decoration import parse_scaffold
        from .pipeline import load

        if args.output:
            _check_output(args.output, "--output")
        parse_scaffold(args.scaffold)  # a bad scaffold fails before the model loads
        condition = parse_condition_text(args.condition)
        vae = load(args.model)
        frame = vae.decorate(
            args.scaffold, n=args.num_samples, condition=condition or None, seed=args.seed, mols=False,
            max_draws=args.max_draws, only_at_attachments=args.only_at_attachments, temperature=args.temperature,
            method=args.method,
        )
        stats = frame.attrs["decoration"]
        if args.output:
            _write_table(frame, args.output)
            print(f"wrote {len(frame)} molecules to {args.output}")
        else:
            print(frame.to_csv(index=False), end="")
        print(
            f"{stats['found']} distinct molecules containing {args.scaffold} from {stats['draws']} draws "
            f"({stats['valid']} valid, {stats['containing']} contained the scaffold)",
            file=sys.stderr if not args.output else sys.stdout,
        )
        return 0


SUBCOMMANDS = [Train, Sample, Encode, Score, Interpolate, Evaluate, Report, Decorate]


def _existing(path: str) -> Path:
    if not Path(path).is_file():
        raise SeqVAEError(f"input file not found: {path}")
    return Path(path)


def _check_output(path: str | Path, option: str) -> Path:
    """``path`` when a file can be written there (its folder is created); otherwise one line
    naming ``option``, before any work is done."""
    from .runs import check_writable

    path = Path(path)
    if path.is_dir():
        raise SeqVAEError(f"{option} {path} is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise SeqVAEError(f"{option} {path}: {path.parent} is a file, not a folder")
    check_writable(path.parent, f"the folder of {option}")
    if path.exists() and not os.access(path, os.W_OK):
        raise SeqVAEError(f"{option} {path} exists and is read-only; remove it or choose another name")
    return path


def _write_table(frame, path: str | Path) -> None:
    """``.parquet`` through pyarrow, anything else as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _format_metrics(metrics: dict) -> str:
    width = max(len(key) for key in metrics)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in metrics.items())


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="seqvae", description="Sequence VAEs for molecules and text.")
    parser.add_argument("--version", action="version", version=f"seqvae {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--logfile", help="also write logs to this file")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(handler=command)
    return parser


def _configure_logging(args) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handlers = [logging.StreamHandler(sys.stderr)]
    if args.logfile:
        handlers.append(logging.FileHandler(args.logfile))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers)
    for noisy in ("transformers", "datasets", "accelerate", "torch"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights" bars on every model load


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``argv`` parsed; ``seqvae train``'s ``key=value`` overrides may stand anywhere after it
    (between and after options: argparse alone takes one unbroken run of them), while any other
    leftover word is an error, as with ``parse_args``."""
    args, leftover = parser.parse_known_args(argv)
    if getattr(args, "handler", None) is Train:
        args.overrides = [*args.overrides, *(word for word in leftover if not word.startswith("-"))]
        leftover = [word for word in leftover if word.startswith("-")]
    if leftover:
        parser.error(f"unrecognized arguments: {' '.join(leftover)}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_arguments(parser, argv)
    try:
        if args.logfile:
            _check_output(args.logfile, "--logfile")
        _configure_logging(args)
        return args.handler.run(args)
    except SeqVAEError as error:
        return _user_error(str(error), error, args)
    except pickle.UnpicklingError as error:  # a pickled file was refused (never executed): the file is the problem
        return _user_error(f"refused to load a pickled file: {_first_line(error)}", error, args)
    except OSError as error:  # a path the user gave: missing, unreadable, unwritable, disk full
        return _user_error(_os_error_text(error), error, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _user_error(message: str, error: BaseException, args) -> int:
    """One ``error:`` line and status 2; with ``-v`` the traceback too, for a bug report."""
    if args.verbose:
        logger.debug("the error's traceback", exc_info=error)
    print(f"error: {message}", file=sys.stderr)
    return 2


def _os_error_text(error: OSError) -> str:
    """``Permission denied: /ro/samples.csv`` rather than ``[Errno 13] Permission denied: '/ro/...'``."""
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return _first_line(error)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
