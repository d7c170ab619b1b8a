"""Reliability item 8, bad input: generic bad arguments derived from the CLI parser, malformed
``recovery.toml`` files, and the real console script (no traceback escapes).

The cases, the world they run in and what a refusal must look like are in ``bad_input_helpers.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bad_input_helpers import (
    SEMANTIC,
    Outcome,
    Words,
    World,
    assert_refused,
    assert_words,
    check_refused,
    run_cli,
)
from site_state import make_tiny_site

from recovery_lib.cli.main import build_parser

RECOVERY_SCRIPT = Path(sys.executable).with_name("recovery")


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
    "resume": ["--list"],
    "replica list": [],
    "replica push": [],
    "replica verify": [],
    "replica pull": ["latest"],
    "replica prune": ["--keep-last", "1", "--dry-run"],
    "drill run": ["--scenario", "config", "--outputs", "{tmp}/outs"],
    "drill due": [],
    "drill report": ["--outputs", "{tmp}/outs"],
    "schedule install": ["--systemd", "--dry-run"],
    "schedule status": [],
    "alerts test": [],
}


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


SITE_COMMANDS = sorted(name for name, parser in LEAVES.items() if _option(parser, "--site"))


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
            if action.nargs != "?":  # an optional value (`--midway [FAULT]`) may be left out
                yield pytest.param(
                    [*command, *valid, flag], (flag, "expected one argument"), id=f"{slug}:{flag}-no-value"
                )
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
# The two commands that bring a malformed recovery.toml back run on the defaults with a warning instead
# (test_tolerant_commands_warn_and_change_nothing; tests/restore/test_restore_settings.py for the story).
TOLERANT = ("backup list", "restore")
TOML_CASES = [
    pytest.param(
        command,
        case,
        id=f"{command.replace(' ', '-')}:{case}",
    )
    for command in SITE_COMMANDS
    for case in BAD_TOMLS
    if (command == "site" or case in EVERYWHERE) and command not in TOLERANT
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


@pytest.mark.parametrize("command", TOLERANT)
@pytest.mark.parametrize("case", EVERYWHERE)
def test_tolerant_commands_warn_and_change_nothing(
    world: World, command: str, case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise: `backup list` and `restore --dry-run` run on the defaults with a malformed recovery.toml,
    with a warning naming the file, the line and the problem, never a traceback, nothing written."""
    world.with_backup()
    text, words = BAD_TOMLS[case]
    (world.site / "recovery.toml").write_bytes(text)
    argv = world.fill([*command.split(), *VALID_ARGS[command], "--site", "{site}"])
    before = world.snapshot()
    outcome = run_cli(argv, capsys, monkeypatch)
    assert world.snapshot() == before
    assert outcome.code == 0, outcome
    assert "Traceback" not in outcome.err
    assert_words(outcome.err, ("WARNING", f"{world.site / 'recovery.toml'}", *words, "DEFAULT settings"))


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
