"""Every code block of README.md runs, and the Markdown links of the docs point to files that exist.

How each fenced block is checked (a block without one of these languages fails the test):

* ``python``: executed in a fresh namespace per block, so a block must define every name it
  uses; tracebacks point at README.md's own line numbers. ``seqvae.train(...)`` gets the
  ``fast_overrides`` below (tiny model, two steps); nothing else is changed.
* ``bash``: one command per line (``\\`` continues a line, ``#`` starts a comment). ``seqvae ...``
  lines run through :func:`seqvae.cli.main` in this process, changed only as ``fast_arguments``
  says (tiny models, two training steps, small sample counts, no reference-statistics cache); a
  line that starts as one of ``SKIPPED`` says is not run, for the reason given there; any other
  line fails.
* ``console``: ``$ `` lines are commands run as above; the lines after one are output that must
  appear (an ``error:`` line also means exit status 2).

Everything runs in a folder laid out as a user's checkout would be: ``my_molecules.csv`` (an
``id,SMILES`` file), ``recipes/`` (this repository's), ``runs/quickstart`` (the session's tiny
trained run, standing in for what ``./run quickstart`` writes) and, beside it,
``../shared/data/{moses,zinc250k,ptb}`` holding a few hundred molecules or sentences under the
real corpora's file names; ``SEQVAE_CACHE`` points into the same temporary folder. The ``bash``
and ``console`` blocks run first, in README order, as a user would run them; the ``python``
blocks then load the run folders those commands wrote.
"""

from __future__ import annotations

import io
import logging
import re
import shlex
import shutil
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

LANGUAGES = ("python", "bash", "console")

# Lines that are shown but not run. The first words of the line pick the rule.
SKIPPED = {
    "./run quickstart": "installs into ./.venv and trains for minutes; CI runs it on its own",
    "./run test": "installs into ./.venv and runs the whole suite, this file included",
    "pip install": "installs packages into the environment the tests already run in",
    "seqvae train --config recipes/ptb_optimus_gpt2.yaml": "downloads gpt2 from the Hugging Face Hub; the tests have no network",
    "seqvae train --config recipes/ptb_vae.yaml encoder_type=pretrained": "downloads bert-base-cased from the Hub; the tests have no network",
}

# Training changes applied to every `seqvae train` line and `seqvae.train(...)` call, with the
# tests' tiny model sizes: the recipe's corpus, representation and objective stay; the model
# trains two steps (autoencoder pre-training, where a recipe has it, one) and the
# end-of-training evaluation is small.
FAST_TRAINING = {
    "max_steps": 2,
    "max_length": 80,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 64,
    "logging_steps": 1,
    "save_steps": 1000,
    "report_to": "none",
    "num_prior_samples": 20,
    "num_reconstruction_molecules": 10,
    "num_importance_samples": 5,
}
MAX_EVALUATED_SAMPLES = 100  # `seqvae evaluate --num_samples N` draws at most this many
TEXT_IMPORTANCE_SAMPLES = 5  # `seqvae evaluate --text_test`: K for IW-NLL


# ------------------------------------------------------------------------------ reading the README


@dataclass
class Block:
    language: str
    line: int  # README line of the block's first code line (1-based)
    code: str

    @property
    def name(self) -> str:
        return f"{self.language}@README.md:{self.line}"


def readme_blocks() -> list[Block]:
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    opening = None
    for number, line in enumerate(lines, start=1):
        if opening is None and line.startswith("```"):
            opening = (number, line[3:].strip())
        elif opening is not None and line.startswith("```"):
            start, language = opening
            blocks.append(Block(language, start + 1, "\n".join(lines[start:number - 1]) + "\n"))
            opening = None
    assert opening is None, f"README.md:{opening[0]}: a code fence is never closed"
    return blocks


@dataclass
class Command:
    line: int
    text: str
    expected_output: list[str] = field(default_factory=list)


def commands(block: Block) -> list[Command]:
    """The block's commands: continuation lines joined, comment-only lines dropped."""
    found, pending, pending_line = [], "", 0
    for offset, raw in enumerate(block.code.splitlines()):
        if block.language == "console":
            if raw.startswith("$ "):
                found.append(Command(block.line + offset, raw[2:]))
            elif raw.strip():
                assert found, f"README.md:{block.line + offset}: output before any `$ ` command"
                found[-1].expected_output.append(raw)
            continue
        if not pending:
            pending_line = block.line + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        text = (pending + raw).strip()
        pending = ""
        if shlex.split(text, comments=True):
            found.append(Command(pending_line, text))
    return found


def skip_rule(text: str) -> str | None:
    """The ``SKIPPED`` rule whose words the command line starts with, if any."""
    words = shlex.split(text, comments=True)
    return next((start for start in SKIPPED if words[: len(start.split())] == start.split()), None)


BLOCKS = readme_blocks()
SHELL_BLOCKS = [block for block in BLOCKS if block.language in ("bash", "console")]
PYTHON_BLOCKS = [block for block in BLOCKS if block.language == "python"]


# ------------------------------------------------------------------------------ the user's folder


def sentences() -> list[str]:
    """Short PTB-like sentences (lower case, numbers as N), some with `$`, covering the
    README's example words."""
    subjects = ["the market", "shares", "the company", "the cat", "he", "she", "investors", "the bank"]
    verbs = ["fell", "rose", "sat", "is", "said", "paid"]
    endings = ["sharply", "on friday", "tall", "short", "$ N million", "in the quarter", "$ N a share"]
    return [f"{s} {v} {e}" for s in subjects for v in verbs for e in endings]


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory, nci_smiles, trained_run) -> Path:
    """``<tmp>/main`` (the checkout the README's commands run in) and ``<tmp>/shared/data``."""
    top = tmp_path_factory.mktemp("readme")
    main_dir, data = top / "main", top / "shared" / "data"
    for folder in (main_dir, data / "moses", data / "zinc250k", data / "ptb"):
        folder.mkdir(parents=True)
    shutil.copytree(ROOT / "recipes", main_dir / "recipes")
    shutil.copytree(trained_run.output_dir, main_dir / "runs" / "quickstart", ignore=shutil.ignore_patterns("checkpoint-*"))
    (main_dir / "my_molecules.csv").write_text(
        "id,SMILES\n" + "".join(f"nci{i},{smiles}\n" for i, smiles in enumerate(nci_smiles))
    )
    splits = {"train": nci_smiles[:200], "test": nci_smiles[200:260], "test_scaffolds": nci_smiles[260:]}
    for split, rows in splits.items():
        (data / "moses" / f"{split}.csv").write_text("SMILES\n" + "".join(f"{s}\n" for s in rows))
    (data / "zinc250k" / "250k_rndm_zinc_drugs_clean_3.csv").write_text(
        "smiles\n" + "".join(f"{s}\n" for s in nci_smiles)
    )
    texts = sentences()
    for split, rows in {"train": texts[::2], "valid": texts[1::4], "test": texts[3::4]}.items():
        (data / "ptb" / f"ptb.{split}.txt").write_text("".join(f" {text} \n" for text in rows))
    return main_dir


@pytest.fixture(scope="module")
def fast_training(tiny_model_kwargs) -> dict:
    return {**FAST_TRAINING, **tiny_model_kwargs}


def fast_overrides(recipe, fast_training: dict) -> dict:
    """``fast_training``, plus one step of autoencoder pre-training where the recipe has some
    (it must end before ``max_steps``)."""
    import yaml

    keys = yaml.safe_load(Path(recipe).read_text()) if recipe else {}
    if keys.get("autoencoder_pretraining_steps"):
        return {**fast_training, "autoencoder_pretraining_steps": 1}
    return dict(fast_training)


def fast_arguments(argv: list[str], fast_training: dict) -> list[str]:
    """The changes made to a README `seqvae` command line before it runs.

    ``train``: the line's ``key=value`` overrides move behind its options (argparse reads one run
    of them), followed by the fast-training ones. ``evaluate``: at most ``MAX_EVALUATED_SAMPLES``
    samples, ``TEXT_IMPORTANCE_SAMPLES`` for IW-NLL, one worker, and no reference-statistics cache.
    """
    argv = list(argv)
    if argv[:1] == ["train"]:
        overrides = [word for word in argv[1:] if re.match(r"[A-Za-z_]\w*=", word)]
        options = [word for word in argv[1:] if word not in overrides]
        recipe = next((argv[i + 1] for i, word in enumerate(argv) if word in ("--config", "--recipe")), None)
        fast = fast_overrides(recipe, fast_training)
        argv = ["train", *options, *overrides, *(f"{key}={value}" for key, value in fast.items())]
    if argv[:1] == ["evaluate"]:
        if "--num_samples" in argv:
            where = argv.index("--num_samples") + 1
            argv[where] = str(min(int(argv[where]), MAX_EVALUATED_SAMPLES))
        if "--text_test" in argv:
            argv += ["--num_importance_samples", str(TEXT_IMPORTANCE_SAMPLES)]
        argv += ["--n_jobs", "1", "--no_cache"]
    return argv


@dataclass
class Outcome:
    command: Command
    skipped: str | None = None
    status: int | str | None = None
    output: str = ""


def run_seqvae(argv: list[str]) -> tuple[int | str, str]:
    """``seqvae ARGV`` in this process: (exit status, or "exception"; stdout + stderr)."""
    from seqvae.cli import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    captured = io.StringIO()
    try:
        with redirect_stdout(captured), redirect_stderr(captured):
            status = main(argv)
    except SystemExit as stop:  # argparse: unknown options and the like
        status = stop.code
    except Exception:  # noqa: BLE001 - reported by the block's test
        status, captured = "exception", io.StringIO(captured.getvalue() + traceback.format_exc())
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return status, captured.getvalue()


@pytest.fixture(scope="module")
def shell_outcomes(user_folder, fast_training) -> dict[int, list[Outcome]]:
    """Every bash / console block run in README order, as a user would: block line -> outcomes."""
    outcomes = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(user_folder)
        patch.setenv("SEQVAE_CACHE", str(user_folder.parent / "cache"))
        for block in SHELL_BLOCKS:
            results = outcomes[block.line] = []
            for command in commands(block):
                rule = skip_rule(command.text)
                if rule is not None:
                    results.append(Outcome(command, skipped=SKIPPED[rule]))
                    continue
                words = shlex.split(command.text, comments=True)
                if words[0] != "seqvae":
                    results.append(Outcome(command, status="not run: no rule for this command", output=""))
                    continue
                status, output = run_seqvae(fast_arguments(words[1:], fast_training))
                results.append(Outcome(command, status=status, output=output))
    return outcomes


# ------------------------------------------------------------------------------ the tests


def test_every_code_block_is_fenced_with_a_language_this_test_runs():
    assert BLOCKS, "README.md has no code blocks"
    assert [b.name for b in BLOCKS if b.language not in LANGUAGES] == []
    lines = README.read_text(encoding="utf-8").splitlines()
    fenced, indented = False, []
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"    \S", line) and number > 1 and not lines[number - 2].strip():
            indented.append(number)
    assert indented == [], f"README.md lines {indented}: indented code; fence it with a language so it runs here"


def test_every_skip_rule_is_used_by_a_readme_line():
    used = {skip_rule(command.text) for block in SHELL_BLOCKS for command in commands(block)}
    assert set(SKIPPED) - used == set(), "rules for lines the README no longer has: remove them"


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda block: block.name)
def test_readme_shell_block_runs(block, shell_outcomes):
    outcomes = shell_outcomes[block.line]
    assert outcomes, f"{block.name}: no commands"
    failures = []
    for outcome in outcomes:
        if outcome.skipped is not None:
            continue
        expected = outcome.command.expected_output
        wanted_status = 2 if any(line.startswith("error:") for line in expected) else 0
        missing = [line for line in expected if line not in outcome.output.splitlines()]
        if outcome.status != wanted_status or missing:
            failures.append(
                f"README.md:{outcome.command.line}: {outcome.command.text}\n"
                f"exit status {outcome.status!r} (wanted {wanted_status}); missing output {missing}\n"
                f"{outcome.output[-3000:]}"
            )
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.name)
def test_readme_python_block_runs(block, shell_outcomes, user_folder, fast_training, monkeypatch):
    import seqvae

    train = seqvae.train

    def fast_train(recipe=None, output_dir=None, **overrides):
        return train(recipe, output_dir, **{**overrides, **fast_overrides(recipe, fast_training)})

    monkeypatch.setattr(seqvae, "train", fast_train)
    monkeypatch.chdir(user_folder)
    monkeypatch.setenv("SEQVAE_CACHE", str(user_folder.parent / "cache"))
    code = "\n" * (block.line - 1) + block.code  # tracebacks show README.md's line numbers
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102 - the README's own code


# ------------------------------------------------------------------------------ links

DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "recipes" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation dropped, spaces -> -)."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("document", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_markdown_links_point_to_files_and_headings_that_exist(document):
    broken = []
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {resolved.name}")
    assert broken == [], f"{document.relative_to(ROOT)}: {broken}"
