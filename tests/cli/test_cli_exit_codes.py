"""Exit statuses: one table in ``errors.py``, read by the CLI once; a bug is exit 3, never "bad input"."""

from __future__ import annotations

import ast
import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recovery_lib import errors
from recovery_lib.cli.main import main
from recovery_lib.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, RecoveryError

PACKAGE = Path(errors.__file__).parent

# Every exception type the library raises on purpose, and the exit status it means.
EXIT_CODES: dict[type[RecoveryError], int] = {
    errors.RecoveryError: EXIT_USAGE,
    errors.InvalidArgumentError: EXIT_USAGE,
    errors.CalendarError: EXIT_USAGE,
    errors.UnsafePathError: EXIT_USAGE,
    errors.FileChangedError: EXIT_USAGE,
    errors.SiteError: EXIT_USAGE,
    errors.SiteConfigError: EXIT_USAGE,
    errors.NotASiteError: EXIT_USAGE,
    errors.ExchangeError: EXIT_USAGE,
    errors.LedgerError: EXIT_USAGE,
    errors.BackupError: EXIT_USAGE,
    errors.NothingToBackUp: EXIT_USAGE,
    errors.BackupIncomplete: EXIT_FAILED,
    errors.LockedError: EXIT_USAGE,
    errors.LockFileError: EXIT_USAGE,
    errors.RestoreError: EXIT_USAGE,
    errors.ReplicaError: EXIT_FAILED,
    errors.ReplicaUnreachable: EXIT_FAILED,
    errors.ReplicaDamaged: EXIT_FAILED,
    errors.ReplicaLocked: EXIT_FAILED,
    errors.IdentityRequired: EXIT_USAGE,
    errors.ScheduleError: EXIT_USAGE,
    errors.SchedulerFailed: EXIT_FAILED,
    errors.ParameterError: EXIT_USAGE,
    errors.StepNotRun: EXIT_USAGE,
    errors.ApprovalRequired: EXIT_USAGE,
    errors.UnfitPick: EXIT_USAGE,
    errors.JournalError: EXIT_USAGE,
    errors.ProcedureBusy: EXIT_USAGE,
    errors.StaleReplay: EXIT_USAGE,
    errors.MidwayNotTaken: EXIT_FAILED,
    errors.ProcedureFailed: EXIT_FAILED,
}


class _Metadata:
    backup_id = "20260101T000000Z-full-abcdef"
    problems = ["data/trades.csv: cannot be read (Permission denied)"]


def make(kind: type[RecoveryError]) -> RecoveryError:
    """An instance of ``kind`` with a message naming what went wrong."""
    if kind is errors.SiteConfigError:
        return errors.SiteConfigError("/site/recovery.toml", 2, "backups.dir", "must be a string")
    if kind is errors.BackupIncomplete:
        return errors.BackupIncomplete(_Metadata(), _Metadata.problems[0])
    if kind is errors.ProcedureFailed:
        return errors.ProcedureFailed("A", ["Configuration validity"], None, "Trading stays stopped.")
    return kind(f"the {kind.__name__} message names the file and what to do")


def test_the_table_names_every_exception_in_errors_py() -> None:
    defined = {obj for obj in vars(errors).values() if inspect.isclass(obj) and issubclass(obj, BaseException)}
    assert defined == set(EXIT_CODES)
    assert {kind: kind.exit_code for kind in EXIT_CODES} == EXIT_CODES


def test_no_exception_type_is_defined_outside_errors_py() -> None:
    """A new public exception goes to errors.py with its exit code (private control flow may stay)."""
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith(("Error", "Exception")) or b in {c.__name__ for c in EXIT_CODES} for b in bases):
                    stray.append(f"{path.relative_to(PACKAGE)}: class {node.name}")
    assert stray == []


def test_invalid_argument_is_bad_input_and_still_a_value_error() -> None:
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert errors.InvalidArgumentError.exit_code == EXIT_USAGE


def run_raising(
    exc: BaseException, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *options: str
) -> tuple[int, str]:
    """``recovery [options] site`` with the command raising ``exc`` (a stand-in for a failing command)."""

    def failing(args: object, out: object) -> int:
        raise exc

    monkeypatch.setattr("recovery_lib.cli.site.cmd_site", failing)
    capsys.readouterr()
    code = main([*options, "site"], out=io.StringIO())
    return code, capsys.readouterr().err


@pytest.mark.parametrize("kind", list(EXIT_CODES), ids=lambda kind: kind.__name__)
def test_each_exception_type_exits_with_its_code_and_one_line(
    kind: type[RecoveryError], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = make(kind)
    code, err = run_raising(exc, monkeypatch, capsys)
    assert code == EXIT_CODES[kind]
    assert err == f"recovery: {'error: ' if code == EXIT_USAGE else ''}{exc}\n"


@pytest.mark.parametrize("bug", [ValueError("invalid literal for int()"), KeyError("status"), TypeError("x")])
def test_a_bug_is_an_internal_error_exit_3_in_one_line(
    bug: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_raising(bug, monkeypatch, capsys)
    assert code == EXIT_INTERNAL
    assert len(err.splitlines()) == 1, err
    assert "internal error" in err and "bug" in err and type(bug).__name__ in err
    assert "Traceback" not in err
    assert "-v" in err  # where the traceback is: no log file here, so -v shows it
    assert "error: " not in err.split("internal error")[0]  # not reported like bad input
    assert "input" not in err.lower() and "fix" not in err.lower()


def test_a_bug_shows_its_traceback_with_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_raising(ValueError("boom"), monkeypatch, capsys, "-v")
    assert code == EXIT_INTERNAL
    assert [line for line in err.splitlines() if "internal error, a bug" in line]
    assert "Traceback" in err and "ValueError: boom" in err


def test_a_bug_names_the_log_file_that_holds_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "recovery.log"
    code, err = run_raising(ValueError("boom"), monkeypatch, capsys, "--log-file", str(log_file))
    assert code == EXIT_INTERNAL
    assert f"the traceback is in {log_file}" in err and "Traceback" not in err
    logged = log_file.read_text()
    assert "internal error" in logged and "Traceback" in logged and "ValueError: boom" in logged


@pytest.mark.parametrize(
    "argv, words",
    [
        pytest.param(["resume"], ("RECORD.ipynb", "--list"), id="no-record"),
        pytest.param(["resume", "{tmp}/notes.txt"], ("{tmp}/notes.txt", ".ipynb"), id="not-a-notebook"),
        pytest.param(["resume", "{tmp}/gone.ipynb"], ("{tmp}/gone.ipynb", "not a readable"), id="missing-record"),
        pytest.param(["resume", "x.ipynb", "--list"], ("--list",), id="record-and-list"),
        pytest.param(["resume", "x.ipynb", "--procedure", "B"], ("--procedure", "--list"), id="procedure-no-list"),
    ],
)
def test_a_refused_resume_exits_2_in_one_line(
    argv: list[str], words: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recovery resume` refuses (exit 2, one line naming the file or option) before anything runs;
    its other statuses (0 recovered, 1 not recovered) are tests/cli/test_cli_resume.py's."""
    (tmp_path / "notes.txt").write_text("not a notebook\n")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    capsys.readouterr()
    code = main(argv, out=io.StringIO())
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert len(err.splitlines()) == 1 and err.startswith("recovery: error: "), err
    for word in words:
        assert word.format(tmp=tmp_path) in err, err


def test_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_raising(KeyboardInterrupt(), monkeypatch, capsys)
    assert code == 130 and err == "recovery: interrupted\n"


def test_a_reader_that_goes_away_is_not_reported_as_a_bug(sandbox: Path) -> None:
    """`recovery ... | head -1`: the pipe closes under the command; that is no internal error (exit 3)."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before a byte is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "recovery_lib.cli.main", "site", "--site", str(sandbox)],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert done.returncode == EXIT_FAILED, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
