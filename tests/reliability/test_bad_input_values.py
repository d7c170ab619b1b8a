"""Reliability item 8, bad input: per-subcommand bad values (backup ids, refused restores, impossible
paths, out-of-range numbers).

The cases, the world they run in and what a refusal must look like are in ``bad_input_helpers.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from bad_input_helpers import SEMANTIC, Words, World, assert_words, check_refused, run_cli

# --- per-subcommand bad values -----------------------------------------------------------------------


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
