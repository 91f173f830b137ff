"""Helpers shared by the command-line tests (tests/cli, tests/reliability): run ``seqvae`` in
process and check that a user error is one ``error:`` line with exit status 2."""

from __future__ import annotations

from seqvae.cli import main


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
