"""Reliability item 8: bad input everywhere.

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

import argparse
import io
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from site_state import make_tiny_site, tree

from recovery_lib.cli.main import build_parser, main
from recovery_lib.errors import RecoveryError
from recovery_lib.manager import RecoveryManager
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import ParameterError, validate_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
RECOVERY_SCRIPT = Path(sys.executable).with_name("recovery")
EXIT_USAGE = 2

Words = tuple[str | tuple[str, ...], ...]  # every entry must occur; a tuple entry: any one of its options


# --- the command line: its subcommands, enumerated ---------------------------------------------------


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """Every runnable subcommand ("backup verify", ...) with its parser, found by walking argparse."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(leaf_commands(sub, (*prefix, name)))
    return found or {" ".join(prefix): parser}


LEAVES = leaf_commands(build_parser())

# For each subcommand: arguments that make an otherwise valid call, so one bad value is the only
# thing wrong. A new subcommand fails test_every_subcommand_is_covered until it is added here.
VALID_ARGS: dict[str, list[str]] = {
    "health": [],
    "site": [],
    "sandbox create": ["{tmp}/new-sandbox"],
    "backup create": [],
    "backup list": [],
    "backup verify": ["latest"],
    "backup prune": ["--keep-last", "1"],
    "restore": ["latest", "--all", "--dry-run"],
    "drill run": ["--scenario", "config", "--outputs", "{tmp}/outs"],
    "drill due": [],
    "drill report": ["--outputs", "{tmp}/outs"],
    "schedule": [],
}


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


SITE_COMMANDS = sorted(name for name, parser in LEAVES.items() if _option(parser, "--site"))


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


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A fresh :class:`World`; the current directory is an empty directory inside it."""
    site = make_tiny_site(tmp_path / "site")
    bare = make_tiny_site(tmp_path / "bare")
    file = tmp_path / "afile"
    file.write_text("not a directory\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return World(tmp=tmp_path, site=site, bare=bare, file=file, missing=tmp_path / "missing")


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


def test_every_subcommand_is_covered() -> None:
    """Promise: every subcommand the parser knows gets the bad-input cases below (none forgotten)."""
    assert set(VALID_ARGS) == set(LEAVES)
    assert set(SEMANTIC) <= set(LEAVES)
    assert SITE_COMMANDS, "no subcommand takes --site?"
    for name in LEAVES:
        assert [c for c in GENERIC_CASES if c.id.startswith(name.replace(" ", "-") + ":")], name


# --- generic cases, derived from the parser ------------------------------------------------------------


def _generic_cases() -> Iterator[Any]:
    """Per subcommand: an unknown option, each value-taking option without its value or with a value
    of the wrong type or outside its choices, each required positional left out, and for each
    --site option a missing site, a file, and an empty string."""
    for name, parser in sorted(LEAVES.items()):
        slug = name.replace(" ", "-")
        command = name.split()
        valid = VALID_ARGS[name]
        yield pytest.param(
            [*command, *valid, "--no-such-option"], ("--no-such-option", "unrecognized"), id=f"{slug}:unknown-option"
        )
        for action in parser._actions:
            if not action.option_strings:
                if action.required and action.dest not in ("help",) and action.nargs is None:
                    # a required positional: leave it out (the valid positional is the first VALID_ARGS entry)
                    rest = [a for a in valid if a != valid[0]] if valid else []
                    label = action.metavar or action.dest
                    yield pytest.param([*command, *rest], (str(label), "required"), id=f"{slug}:no-{action.dest}")
                continue
            flag = action.option_strings[-1]
            if action.nargs == 0 or flag in ("--help", "--version"):
                continue
            yield pytest.param([*command, *valid, flag], (flag, "expected one argument"), id=f"{slug}:{flag}-no-value")
            if action.choices:
                yield pytest.param(
                    [*command, *valid, flag, "bogus"], (flag, "bogus", "choose from"), id=f"{slug}:{flag}-bad-choice"
                )
            elif action.type is not None and action.type not in (str, Path):
                yield pytest.param(
                    [*command, *valid, flag, "not-a-number"], (flag, "not-a-number"), id=f"{slug}:{flag}-wrong-type"
                )
        if _option(parser, "--site"):
            yield pytest.param(
                [*command, *valid, "--site", "{missing}"],
                ("{missing}", "does not exist", "--site"),
                id=f"{slug}:site-missing",
            )
            yield pytest.param(
                [*command, *valid, "--site", "{file}"],
                ("{file}", "not a directory", ("--site", "choose", "pass")),
                id=f"{slug}:site-is-a-file",
            )
            yield pytest.param(
                [*command, *valid, "--site", ""],
                ("--site", "empty"),
                id=f"{slug}:site-empty",
            )


GENERIC_CASES = list(_generic_cases())


@pytest.mark.parametrize("argv, words", GENERIC_CASES)
def test_generic_bad_arguments_are_refused(
    world: World, argv: list[str], words: Words, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise: every subcommand refuses unknown options, missing or mistyped values, missing positionals
    and unusable --site paths with exit 2, a message naming the option or path, and nothing written."""
    if argv[-2:] == ["--site", ""]:
        monkeypatch.chdir(world.bare)  # where an empty --site lands today: a real site, so the damage shows
    check_refused(world, argv, words, capsys, monkeypatch)


# --- recovery.toml: every site-taking subcommand ----------------------------------------------------

BAD_TOMLS: dict[str, tuple[bytes, Words]] = {
    "invalid-toml": (b"[backups\nmax_age_hours = 24\n", (":1:", "not valid TOML", "expected")),
    "wrong-type": (b'[backups]\nmax_age_hours = "24h"\n', (":2:", "backups.max_age_hours", "must be", "24h")),
    "bool-for-number": (b"[backups]\nmax_age_hours = true\n", (":2:", "backups.max_age_hours", "must be")),
    "string-for-list": (b'[paths]\ncritical = "data"\n', (":2:", "paths.critical", "list of strings")),
    "unknown-key": (b"[backups]\nmax_age_hourz = 24\n", (":2:", "max_age_hourz", "unknown key", "max_age_hours")),
    "unknown-table": (b'[bakups]\ndir = "x"\n', (":1:", "bakups", "unknown table", "backups")),
    "not-a-table": (b"backups = 5\n", (":1:", "backups", "must be a table")),
    "unknown-procedure": (b"[targets.E]\nrto_minutes = 5\n", ("targets.E", "A, B, C, D")),
    "bad-choice": (b'[exchange]\nclient = "binance"\n', (":2:", "exchange.client", "binance", "simulated")),
    "negative": (b"[targets.A]\nrto_minutes = -1\n", (":2:", "targets.A.rto_minutes", "non-negative")),
    "absolute-path": (b'[paths]\nconfig = ["/etc"]\n', (":2:", "paths.config", "/etc", "relative path")),
    "dotdot-path": (b'[paths]\nconfig_file = "../x.toml"\n', (":2:", "paths.config_file", "../x.toml", "relative")),
    "not-utf8": (b"\xff\xfe[site]\n", ("UTF-8",)),
}


# Every case through `recovery site`; the three kinds the issue names through every site-taking subcommand
# (they all read the file with the same load_site, so the full set everywhere would only repeat itself).
EVERYWHERE = ("invalid-toml", "wrong-type", "unknown-key")
TOML_CASES = [
    pytest.param(
        command,
        case,
        id=f"{command.replace(' ', '-')}:{case}",
    )
    for command in SITE_COMMANDS
    for case in BAD_TOMLS
    if command == "site" or case in EVERYWHERE
]


@pytest.mark.parametrize("command, case", TOML_CASES)
def test_malformed_recovery_toml_is_refused(
    world: World, command: str, case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise: a malformed recovery.toml (bad TOML, wrong type, unknown key or table, bad path, not UTF-8)
    stops every site-taking subcommand with exit 2 and a message naming the file, the line and the key,
    with nothing written."""
    text, words = BAD_TOMLS[case]
    (world.site / "recovery.toml").write_bytes(text)
    argv = [*command.split(), *VALID_ARGS[command], "--site", "{site}"]
    check_refused(world, argv, ("recovery.toml", *words), capsys, monkeypatch)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('[escalation]\nlevel2 = "Team Lead"\n', id="escalation-level-not-a-table"),
        pytest.param("[targets]\nA = 5\n", id="target-not-a-table"),
    ],
)
def test_subtable_that_is_not_a_table_is_named_as_such(
    world: World, text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise: the recovery.toml message says what is wrong (not a table) and where (the line)."""
    (world.site / "recovery.toml").write_text(text)
    check_refused(world, ["site", "--site", "{site}"], ("recovery.toml:2:", "must be a table"), capsys, monkeypatch)


# --- per-subcommand bad values -----------------------------------------------------------------------

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


@pytest.mark.parametrize(
    "command, args, words, setup",
    [
        pytest.param(command, *case.values, id=f"{command.replace(' ', '-')}:{case.id}", marks=case.marks)
        for command, cases in SEMANTIC.items()
        for case in cases
    ],
)
def test_bad_values_are_refused(
    world: World,
    command: str,
    args: list[str],
    words: Words,
    setup: Callable[[World], None] | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Promise: unknown or malformed backup ids ('..', '/', 'latest' with no backups), refused restores,
    impossible paths and out-of-range numbers are refused with exit 2, a message naming the id, option
    or path and what to do, and nothing on disk changed (no pre-recovery backup, no lock, no outputs)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: restore must not ask
    check_refused(world.with_backup(), [*command.split(), *args], words, capsys, monkeypatch, setup)


def test_verify_all_without_backups_fails(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise: `backup verify all` on a site without backups says there are none, naming the backup
    directory, and exits 1 (failed: nothing to restore from; a cron monitor must not read 'all verified'),
    with nothing changed on disk. Not bad input, so not exit 2: the command and its arguments are fine."""
    before = world.snapshot()
    outcome = run_cli(world.fill(["backup", "verify", "all", "--site", "{bare}"]), capsys, monkeypatch)
    assert world.snapshot() == before
    assert "Traceback" not in outcome.err
    assert outcome.code == 1, f"exit {outcome.code}, stdout {outcome.out!r}, stderr {outcome.err!r}"
    assert_words(outcome.err, ("no backups", str(world.bare / "backups")))


# --- the real console script: no traceback escapes ---------------------------------------------------

SUBPROCESS_CASES = [
    pytest.param([], ("COMMAND", "required"), id="no-command"),
    pytest.param(["health", "--site", "{missing}"], ("{missing}", "does not exist", "--site"), id="missing-site"),
    pytest.param(["site", "--site", "{tmp}/broken"], ("recovery.toml:1:", "not valid TOML"), id="invalid-toml"),
    pytest.param(["backup", "verify", "../x", "--site", "{site}"], ("'../x'", "backup list"), id="id-dotdot"),
    pytest.param(["restore", "latest", "--all", "--yes", "--site", "{bare}"], ("no success backup",), id="no-backups"),
    pytest.param(["sandbox", "create", "{tmp}/n", "--trades", "many"], ("--trades", "many"), id="wrong-type"),
]


@pytest.mark.parametrize("argv, words", SUBPROCESS_CASES)
def test_console_script_refuses_without_traceback(world: World, argv: list[str], words: Words) -> None:
    """Promise: the installed `recovery` script exits 2 with a one-line reason, never a traceback."""
    (make_tiny_site(world.tmp / "broken") / "recovery.toml").write_text("[site\n")
    argv, words = world.fill(argv), tuple(world.fill([w])[0] if isinstance(w, str) else w for w in words)
    before = world.snapshot()
    done = subprocess.run([str(RECOVERY_SCRIPT), *argv], capture_output=True, text=True, check=False, timeout=60)
    assert world.snapshot() == before
    assert_refused(Outcome(done.returncode, done.stdout, done.stderr), words)


def test_module_entry_point_refuses_without_traceback(world: World) -> None:
    """Promise: `python -m recovery_lib.cli.main` behaves like the script on bad input."""
    done = subprocess.run(
        [sys.executable, "-m", "recovery_lib.cli.main", "restore", "..", "--all", "--site", str(world.site)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert_refused(Outcome(done.returncode, done.stdout, done.stderr), ("'..'", "backup list"))


# --- notebook parameters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notebook:
    """One notebook's parameters cell (defaults and annotations) and the cell that checks them."""

    name: str
    source: str
    validate_source: str
    annotations: dict[str, Any]

    def namespace(self, **overrides: Any) -> dict[str, Any]:
        """The kernel namespace after the parameters cell (and papermill's injected overrides)."""
        namespace: dict[str, Any] = {}
        exec(compile(self.source, self.name, "exec", dont_inherit=True), namespace)
        namespace.pop("__builtins__", None)
        namespace.update(overrides)
        return namespace

    @property
    def uses_start(self) -> bool:
        return "start(globals()" in self.validate_source


def read_notebooks() -> dict[str, Notebook]:
    """Every notebook in notebooks/, its parameters read with nbformat (new parameters are covered)."""
    found = {}
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        annotations: dict[str, Any] = {}
        exec(compile(cells[index].source, path.name, "exec", dont_inherit=True), annotations)
        found[path.stem] = Notebook(
            path.stem, cells[index].source, cells[index + 1].source, annotations["__annotations__"]
        )
    return found


NOTEBOOKS = read_notebooks()
# Values of the wrong type for each annotation the parameters cells use.
WRONG_TYPES: dict[Any, list[Any]] = {
    str: [5, ["x"]],
    bool: ["yes", 1],
    list[str]: ["restore", 5, [5]],  # list parameters are list[str]: a bare `list` would not check its items
    dict: [[], "x"],
}


def _parameter_cases() -> Iterator[Any]:
    for nb in NOTEBOOKS.values():
        for name, annotation in nb.annotations.items():
            assert annotation in WRONG_TYPES, f"{nb.name}: no wrong values for {name}: {annotation}"
            for value in WRONG_TYPES[annotation]:
                yield pytest.param(nb.name, name, value, id=f"{nb.name}-{name}-{type(value).__name__}")
            yield pytest.param(nb.name, name, None, id=f"{nb.name}-{name}-None")
            yield pytest.param(nb.name, name, KeyError, id=f"{nb.name}-{name}-deleted")


@pytest.mark.parametrize("notebook, parameter, value", list(_parameter_cases()))
def test_validate_parameters_names_the_bad_parameter(notebook: str, parameter: str, value: Any) -> None:
    """Promise: every parameter of every notebook, set to a wrong type, None or left undefined, is refused
    by validate_parameters with a RecoveryError naming it and saying to fix the parameters."""
    namespace = NOTEBOOKS[notebook].namespace()
    if value is KeyError:
        del namespace[parameter]
    else:
        namespace[parameter] = value
    with pytest.raises(RecoveryError) as raised:
        validate_parameters(namespace, hidden=set())
    assert_words(str(raised.value), (f"'{parameter}'", "fix the parameters"))
    if value is None or value is KeyError:
        assert_words(str(raised.value), (("missing", "no value"),))


@pytest.mark.parametrize("notebook", list(NOTEBOOKS))
def test_unknown_parameter_is_refused(notebook: str) -> None:
    """Promise: a misspelt parameter (papermill -p bakup_id ...) is refused, naming it and the real ones."""
    nb = NOTEBOOKS[notebook]
    with pytest.raises(RecoveryError) as raised:
        validate_parameters(nb.namespace(bakup_id="x"), hidden=set())
    assert_words(str(raised.value), ("'bakup_id'", "unknown parameter", *nb.annotations))


def run_validate_cell(nb: Notebook, namespace: dict[str, Any]) -> None:
    """Execute the notebook's validation cell (the one after the parameters) on ``namespace``."""
    exec(compile(nb.validate_source, f"{nb.name}:validate", "exec", dont_inherit=True), namespace)


@pytest.mark.parametrize(
    "notebook, parameter, value",
    [
        pytest.param(nb.name, name, value, id=f"{nb.name}-{name}-{label}")
        for nb in NOTEBOOKS.values()
        for name, annotation in nb.annotations.items()
        for label, value in (("wrong-type", WRONG_TYPES[annotation][0]),)
    ],
)
def test_validation_cell_refuses_before_touching_the_site(
    world: World, notebook: str, parameter: str, value: Any
) -> None:
    """Promise: the notebook's own validation cell (start() for the procedures) refuses a wrongly typed
    parameter with a RecoveryError naming it, before the site is read or written."""
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(**({"site": str(world.site)} if "site" in nb.annotations else {}))
    namespace[parameter] = value
    before = world.snapshot()
    with pytest.raises(RecoveryError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), (f"'{parameter}'",))
    assert world.snapshot() == before


PROCEDURE_NOTEBOOKS = [nb.name for nb in NOTEBOOKS.values() if nb.uses_start]


def _site_with_toml(text: str) -> Callable[[World], str]:
    """A ``site`` parameter value: the world's site, with ``text`` as its recovery.toml."""

    def make(world: World) -> str:
        (world.site / "recovery.toml").write_text(text)
        return str(world.site)

    return make


SITE_CASES: dict[str, tuple[Callable[[World], Any], Words, list[Any]]] = {
    "site-missing": (lambda w: str(w.missing), ("{missing}", "does not exist", "--site"), []),
    "site-is-a-file": (
        lambda w: str(w.file),
        ("{file}", "not a directory", ("--site", "choose", "pass")),
        [],
    ),
    "site-invalid-toml": (
        _site_with_toml("[site\n"),
        ("recovery.toml:1:", "not valid TOML"),
        [],
    ),
    "site-unknown-key": (
        _site_with_toml("[backups]\nkeep = 3\n"),
        ("recovery.toml:2:", "backups.keep", "unknown key"),
        [],
    ),
    "site-wrong-type": (
        _site_with_toml('[targets.A]\nrto_minutes = "ten"\n'),
        ("recovery.toml:2:", "targets.A.rto_minutes", "must be"),
        [],
    ),
}


def _start_cases() -> Iterator[Any]:
    for name in PROCEDURE_NOTEBOOKS:
        nb = NOTEBOOKS[name]
        for case, (make, words, marks) in SITE_CASES.items():
            yield pytest.param(name, "site", make, words, id=f"{name}-{case}", marks=marks)
        yield pytest.param(name, "kind", lambda w: "party", ("'kind'", "incident", "drill"), id=f"{name}-kind-party")
        for parameter, annotation in nb.annotations.items():
            if typing.get_origin(annotation) is list:
                yield pytest.param(
                    name,
                    parameter,
                    lambda w: [5],
                    (f"'{parameter}'",),
                    id=f"{name}-{parameter}-int-item",
                )
        yield pytest.param(
            name,
            "approve",
            lambda w: ["restor"],
            ("'approve'", "restor", "restore"),
            id=f"{name}-approve-typo",
        )


@pytest.mark.parametrize("notebook, parameter, make, words", list(_start_cases()))
def test_start_refuses_bad_values(
    world: World, notebook: str, parameter: str, make: Callable[[World], Any], words: Words
) -> None:
    """Promise: start() (the procedure notebooks' validation cell) refuses a site that is missing, a file
    or has a malformed recovery.toml, an unknown kind and malformed approvals, naming the parameter or
    file, without creating the site or changing anything on disk."""
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(site=str(world.site), interactive=False, kind="drill")
    namespace[parameter] = make(world)
    words = tuple(world.fill([w])[0] if isinstance(w, str) else w for w in words)
    before = world.snapshot()
    with pytest.raises(RecoveryError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), words)
    assert world.snapshot() == before
    assert not world.missing.exists()


BACKUP_ID_NOTEBOOKS = [name for name in PROCEDURE_NOTEBOOKS if "backup_id" in NOTEBOOKS[name].annotations]


@pytest.mark.parametrize("backup_id", BAD_IDS.values(), ids=BAD_IDS)
@pytest.mark.parametrize("notebook", BACKUP_ID_NOTEBOOKS)
def test_backup_id_parameter_is_refused_by_the_validation_cell(world: World, notebook: str, backup_id: str) -> None:
    """Promise: a backup_id parameter that is unknown or climbs out ('..', '/') is refused by the
    validation cell, naming the parameter and the id and saying where the backups are listed, before
    any step runs (a typo must never stop trading), and nothing on disk changed."""
    world.with_backup()
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(site=str(world.site), interactive=False, kind="drill", backup_id=backup_id)
    before = world.snapshot()
    with pytest.raises(ParameterError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), ("'backup_id'", repr(backup_id), "backup list"))
    assert "run" not in namespace
    assert world.snapshot() == before


@pytest.mark.parametrize("notebook", BACKUP_ID_NOTEBOOKS)
def test_latest_without_backups_halts_with_what_to_do(world: World, notebook: str) -> None:
    """Promise: "latest" with no backups halts the procedure at the backup choice with a reason saying
    what to do (Procedure D), and nothing on disk changed but the incident journal, which records it."""
    assert not (world.bare / "backups").exists()
    nb = NOTEBOOKS[notebook]
    namespace = nb.namespace(site=str(world.bare), interactive=False, kind="drill", backup_id="latest")
    before = world.snapshot()
    run_validate_cell(nb, namespace)
    choice = steps.choose_backup(namespace["run"], namespace["backup_id"])
    assert choice.metadata is None
    halted = namespace["run"].halted
    assert halted and "latest" in halted
    assert_words(" ".join(choice.skipped), (("backup list", "Procedure D"),))
    journal = f"bare/incidents/{namespace['run'].incident_id}.jsonl"
    after = world.snapshot()
    assert set(after) - set(before) == {"bare/incidents", journal, "bare/incidents/.procedure.lock"}
    assert {k: v for k, v in after.items() if not k.startswith("bare/incidents")} == before
    assert '"halted"' in (world.tmp / journal).read_text()  # the halt is on disk, saved notebook or not


def test_report_notebook_refuses_a_missing_outputs_directory(world: World) -> None:
    """Promise: the records page's validation cell refuses an outputs directory that does not exist,
    naming the parameter, instead of showing an empty report as if no drill had ever run."""
    nb = NOTEBOOKS["R_drill_report"]
    namespace = nb.namespace(outputs=str(world.missing))
    with pytest.raises(RecoveryError) as raised:
        run_validate_cell(nb, namespace)
    assert_words(str(raised.value), ("'outputs'", str(world.missing)))
    assert not world.missing.exists()


def test_papermill_bad_site_fails_in_validation_with_one_line(world: World) -> None:
    """Promise: run headless with papermill, a site that is a file fails in the validation cell with one
    clear line (no traceback wall), no step runs, and nothing on disk changes."""
    output = world.tmp / "out" / "V.ipynb"
    output.parent.mkdir()
    before = world.snapshot()
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(NOTEBOOK_DIR / "V_verification.ipynb"),
            str(output),
            parameters={"site": str(world.file), "interactive": False, "kind": "drill"},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(world.tmp / "cwd"),
        )
    assert raised.value.ename == "SiteError" and str(world.file) in raised.value.evalue
    executed = nbformat.read(output, as_version=4)
    errors = [(cell, out) for cell in executed.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert len(errors) == 1
    cell, error = errors[0]
    assert cell.metadata.get("tags") == ["validate"]
    shown = "\n".join(error.traceback)
    assert len(error.traceback) <= 2 and "Traceback" not in shown and 'File "' not in shown, shown
    assert str(world.file) in shown
    after = {k: v for k, v in world.snapshot().items() if not k.startswith("out/")}
    assert after == before


@pytest.mark.parametrize("command", [["backup", "create"], ["backup", "prune", "--keep-last", "3"]])
def test_a_site_with_nothing_in_it_is_not_written_to(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a new user: an empty directory given as the site got backups/ and backups/.lock."""
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = run_cli([*command, "--site", str(empty)], capsys, monkeypatch)
    code, out, err = outcome.code, outcome.out, outcome.err
    assert not any(empty.iterdir()), f"{command} wrote into {empty}: {sorted(empty.iterdir())}"
    if command[1] == "create":
        assert code == 2 and "nothing to back up" in err
    else:
        assert code == 0 and "remove 0" in out
