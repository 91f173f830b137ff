"""Helpers shared by the tests: run ``seqvae`` in process and check that a user error is one
``error:`` line with exit status 2 (tests/cli, tests/reliability); a toy sentence corpus (text tests)."""

from __future__ import annotations

from seqvae.cli import main

# six distinct toy sentences; text tests repeat them to make a corpus
TOY_SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the market fell sharply on monday",
    "shares of the company rose",
    "the dog saw the cat",
]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_user_error(status: int, out: str, err: str, *fragments: str) -> str:
    """Exit status 2, exactly one ``error:`` line naming every fragment, no traceback."""
    assert status == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]
