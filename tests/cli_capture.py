"""Running the ``recovery`` command in-process with what it printed, for tests of its messages."""

from __future__ import annotations

import io

import pytest

from recovery_lib.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``recovery ARGV`` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    out = io.StringIO()
    code = main(list(argv), out=out)
    captured = capsys.readouterr()
    return code, out.getvalue() + captured.out, captured.err
