"""Reliability item 8, bad input everywhere: the cases and what a refusal must look like.

Every ``recovery`` subcommand (enumerated from the argparse parser, so a new one cannot be forgotten)
and every notebook parameter (read from the notebooks' ``parameters`` cells, so a new one cannot be
forgotten) is fed wrong types, missing values, unknown backup ids, sites that do not exist or are
files, and malformed ``recovery.toml`` files. Each must be refused with a message that names the
offending option, parameter, file or id and says what to do; with exit status 2 (never 3, the
internal-error status, and never a Python traceback); and with nothing changed on disk: the whole
test directory (site, backups, the current directory and its neighbours) is snapshotted with
``tree()`` before and after, and a site that does not exist must not be created.

The CLI runs in-process (``recovery_lib.cli.main.main``, stderr captured) for speed; a handful of real
subprocess calls of the installed ``recovery`` script prove that no traceback escapes there either.
Known library bugs are strict xfails whose reason starts with ``BUG``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from snapshots import tree

from recovery_lib.cli.main import main
from recovery_lib.manager import RecoveryManager

EXIT_USAGE = 2


Words = tuple[str | tuple[str, ...], ...]  # every entry must occur; a tuple entry: any one of its options


@dataclass
class World:
    """The test directory: a site with one backup, a bare site, a plain file, a path that does not exist."""

    tmp: Path
    site: Path  # tiny site (tests that need backups in it call ``with_backup``)
    bare: Path  # tiny site, never any backups directory
    file: Path  # a regular file where a directory is expected
    missing: Path  # does not exist, must never be created

    def fill(self, argv: list[str]) -> list[str]:
        """Replace {tmp} {site} {bare} {file} {missing} in ``argv``."""
        names = {k: str(v) for k, v in vars(self).items()}
        return [arg.format(**names) for arg in argv]

    def with_backup(self) -> World:
        """Give ``site`` one SUCCESS backup (bad ids are then unknown among real ones)."""
        RecoveryManager(site=self.site).create_backup(description="good")
        return self

    def snapshot(self) -> dict[str, tuple]:
        """Everything under the test directory, backups and the current directory included."""
        return tree(self.tmp)


@dataclass
class Outcome:
    """What one CLI call did."""

    code: int | str | None
    out: str
    err: str


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """``recovery ARGV`` in-process; argparse's SystemExit becomes the exit code.

    ``drill run`` rebuilds the records page with papermill (~5 s) even after a failed drill; that page
    is replaced by a stand-in that writes ``outputs/index.html`` like the real one, so the disk effects
    stay the same and the bad-input checks stay fast.
    """
    if argv[:2] == ["drill", "run"]:

        def fake_index(outputs: Path, notebooks_dir: Path) -> Path:
            index = outputs / "index.html"
            index.write_text("<p>records page stand-in</p>\n")
            return index

        monkeypatch.setattr("recovery_lib.drills.report.write_index", fake_index)
    capsys.readouterr()
    out = io.StringIO()
    try:
        code: int | str | None = main(argv, out=out)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return Outcome(code, out.getvalue() + captured.out, captured.err)


def assert_words(message: str, words: Words) -> None:
    """Each entry of ``words`` occurs in ``message`` (case-insensitive); a tuple: one of its options."""
    lowered = message.lower()
    for word in words:
        options = (word,) if isinstance(word, str) else word
        assert any(option.lower() in lowered for option in options), f"none of {options} in message: {message!r}"


def assert_refused(outcome: Outcome, words: Words) -> None:
    """Exit 2 with a message on stderr naming the problem; never an internal error or a traceback."""
    assert "Traceback" not in outcome.err, outcome.err
    assert outcome.code != 3, f"internal error: {outcome.err}"
    assert outcome.code == EXIT_USAGE, f"exit {outcome.code}, stdout {outcome.out!r}, stderr {outcome.err!r}"
    assert outcome.err.strip(), "refused without a message"
    assert_words(outcome.err, words)


def check_refused(
    world: World,
    argv: list[str],
    words: Words,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setup: Callable[[World], None] | None = None,
) -> None:
    """Run ``argv`` against ``world`` and assert it was refused and changed nothing on disk."""
    if setup:
        setup(world)
    argv, words = world.fill(argv), tuple(world.fill([w])[0] if isinstance(w, str) else w for w in words)
    before = world.snapshot()
    outcome = run_cli(argv, capsys, monkeypatch)
    after = world.snapshot()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert_refused(outcome, words)
    assert changed == [], f"changed on disk: {changed}"
    assert not world.missing.exists()


def bug(reason: str) -> pytest.MarkDecorator:
    """A known library bug: the test asserts the correct behaviour and must fail until it is fixed."""
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


ID_WORDS: Words = (("backup list", "backup_id"),)


BAD_IDS = {
    "dotdot-slash": "../x",
    "dotdot": "..",
    "slash": "a/b",
    "absolute": "/etc",
    "hidden": ".lock",
    "empty": "",
    "unknown": "20990101T000000Z-full-abcdef",
}


def _make_backups_a_file(world: World) -> None:
    (world.site / "recovery.toml").write_text('[backups]\ndir = "config/config.toml"\n')


SEMANTIC: dict[str, list[Any]] = {
    "health": [
        pytest.param(["--site", "{site}", "--check", "nosuch"], ("nosuch", "choose from"), None, id="unknown-check"),
        pytest.param(
            ["--site", "{site}", "--json-file", "{missing}/report.json"],
            ("{missing}", "--json-file"),
            None,
            id="json-file-in-missing-dir",
        ),
        pytest.param(
            ["--site", "{site}", "--json-file", "{tmp}"],
            ("{tmp}", "--json-file"),
            None,
            id="json-file-is-a-directory",
        ),
    ],
    "sandbox create": [
        pytest.param(["{file}"], ("{file}", "not a directory", "choose"), None, id="dir-is-a-file"),
        pytest.param(["{site}"], ("{site}", "not a sandbox", "choose"), None, id="dir-not-a-sandbox"),
        pytest.param(["{tmp}/n", "--trades", "0"], ("--trades", "at least 1"), None, id="zero-trades"),
        pytest.param(["{tmp}/n", "--reports", "-1"], ("--reports", "negative"), None, id="negative-reports"),
        pytest.param(["{tmp}/n", "--size", "1X"], ("--size", "1X", "500M"), None, id="bad-size"),
        pytest.param(
            ["{file}/sub"],
            ("{file}", ("not a directory", "is a file", "choose")),
            None,
            id="dir-under-a-file",
        ),
    ],
    "backup create": [
        pytest.param(
            ["--site", "{site}"],
            ("config/config.toml", ("writable", "directory")),
            _make_backups_a_file,
            id="dir-is-file",
        ),
    ],
    "backup verify": [
        *[
            pytest.param([bad, "--site", "{site}"], (repr(bad), *ID_WORDS), None, id=f"id-{name}")
            for name, bad in BAD_IDS.items()
        ],
        pytest.param(
            ["latest", "--site", "{bare}"],
            ("no success backup", "{bare}/backups", "Procedure D"),
            None,
            id="latest-without-backups",
        ),
    ],
    "backup prune": [
        pytest.param(["--site", "{site}"], ("empty retention policy", "--keep-last"), None, id="empty-policy"),
        pytest.param(
            ["--site", "{bare}"],
            ("empty retention policy", "--keep-last"),
            None,
            id="empty-policy-no-backup-dir",
        ),
        pytest.param(["--site", "{site}", "--keep-last", "-1"], ("--keep-last", "-1"), None, id="negative-count"),
        pytest.param(
            ["--site", "{site}", "--keep-within", "7x"], ("--keep-within", "7x", "7d"), None, id="bad-duration"
        ),
        pytest.param(["--site", "{site}", "--keep-within=-7d"], ("--keep-within", "-7d"), None, id="negative-duration"),
    ],
    "restore": [
        *[
            pytest.param([bad, "--all", "--yes", "--site", "{site}"], (repr(bad), *ID_WORDS), None, id=f"id-{name}")
            for name, bad in BAD_IDS.items()
        ],
        pytest.param(
            ["latest", "--all", "--yes", "--site", "{bare}"],
            ("no success backup", "{bare}/backups", "Procedure D"),
            None,
            id="latest-without-backups",
        ),
        pytest.param(["latest", "--site", "{site}"], ("--config", "--all"), None, id="no-category"),
        pytest.param(
            ["latest", "--config", "--site", "{site}"], ("--dry-run", "--yes"), None, id="no-yes-off-terminal"
        ),
        pytest.param(
            ["latest", "--config", "--yes", "--site", "{site}"],
            ("recovery.toml", "backups.dir"),
            lambda w: (w.site / "recovery.toml").write_text("[backups]\ndir = 5\n"),
            id="bad-toml-with-yes",
        ),
    ],
    "drill run": [
        pytest.param(
            ["--scenario", "config", "--outputs", "{tmp}/outs", "--jobs", "0"],
            ("--jobs", "at least 1"),
            None,
            id="zero-jobs",
        ),
        pytest.param(
            ["--scenario", "all", "--outputs", "{tmp}/outs", "--jobs", "2", "--site", "{site}"],
            ("--site", "--jobs"),
            None,
            id="site-with-jobs",
        ),
        pytest.param(
            ["--scenario", "config", "--outputs", "{file}"],
            ("{file}", "--outputs"),
            None,
            id="outputs-is-a-file",
        ),
        pytest.param(
            ["--scenario", "config", "--outputs", "{tmp}/outs", "--site", "{site}"],
            ("{site}", "not a sandbox"),
            None,
            id="site-not-a-sandbox",
        ),
    ],
    "drill report": [
        pytest.param(
            ["--outputs", "{missing}"],
            ("{missing}", "--outputs", "does not exist"),
            None,
            id="outputs-missing",
        ),
        pytest.param(
            ["--outputs", "{file}"],
            ("{file}", "--outputs", "not a directory"),
            None,
            id="outputs-is-a-file",
        ),
    ],
}
