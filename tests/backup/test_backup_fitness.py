"""A backup is chosen for what it fixes: "latest" passes over a backup that captured the fault.

The issue's sequence, for real on a sandbox: a good backup, a bad edit, the nightly backup (of the
bad state), then the fault is noticed and "latest" must pick the older, good backup and say why.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from recovery_lib.backup import BackupError, fitness_problems
from recovery_lib.cli.main import main
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import load_site

CONFIG = "config/config.toml"
POSITIONS = "data/positions.csv"


def break_config(site: Path) -> None:
    """A bad edit: an unterminated table header on line 3 (the first lines are comment and blank)."""
    text = (site / CONFIG).read_text()
    (site / CONFIG).write_text(text.replace("[trading]", "[trading", 1))


def hand_edit_positions(site: Path) -> None:
    """A hand edit that no trade explains: BTC/USD quantity changed."""
    text = (site / POSITIONS).read_text()
    line = next(line for line in text.splitlines() if line.startswith("BTC/USD,"))
    symbol, quantity, price = line.split(",")
    (site / POSITIONS).write_text(text.replace(line, f"{symbol},{float(quantity) + 1:.4f},{price}"))


def test_latest_for_config_passes_over_the_nightly_backup_of_a_broken_config(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup(description="before the edit")
    break_config(sandbox)
    nightly = manager.create_backup(description="nightly")
    assert manager.verify_backup(nightly, read_data=True).ok  # it verifies: it faithfully holds the fault

    fresh = RecoveryManager(site=sandbox)
    assert fresh.latest(("config",)).backup_id == good

    [note] = [note for note in fresh.notes if nightly in note]
    assert "cannot fix the fault" in note
    assert f"backup {nightly} holds a config that fails the config check: {CONFIG} is not valid TOML at line" in note
    assert fresh.latest().backup_id == nightly  # asked for nothing in particular: the newest that verifies
    assert fresh.latest(("state",)).backup_id == nightly  # state has no check; the config is not restored


def test_latest_for_data_passes_over_the_nightly_backup_of_hand_edited_positions(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    hand_edit_positions(sandbox)
    nightly = manager.create_backup()

    fresh = RecoveryManager(site=sandbox)
    assert fresh.latest(("data",)).backup_id == good
    [note] = [note for note in fresh.notes if nightly in note]
    assert f"backup {nightly} holds data that fails the data check: {POSITIONS}: BTC/USD quantity" in note
    assert fresh.latest(("config",)).backup_id == nightly  # its config is fine


def test_a_restore_of_latest_restores_the_good_config_and_says_which_it_skipped(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    manager.create_backup()
    good_config = (sandbox / CONFIG).read_bytes()
    break_config(sandbox)
    nightly = manager.create_backup()

    out = io.StringIO()
    code = main(["restore", "latest", "--config", "--yes", "--site", str(sandbox)], out=out)

    assert code == 0, out.getvalue()
    assert (sandbox / CONFIG).read_bytes() == good_config
    assert f"note: skipped backup {nightly} for 'latest': it verifies but cannot fix the fault" in out.getvalue()


def test_no_backup_that_can_fix_the_fault_is_a_clear_error(sandbox: Path) -> None:
    break_config(sandbox)
    manager = RecoveryManager(site=sandbox)
    first, second = manager.create_backup(), manager.create_backup()
    before = sorted(p.name for p in manager.backup_dir.iterdir())

    with pytest.raises(BackupError) as caught:
        RecoveryManager(site=sandbox).latest(("config",))

    message = str(caught.value)
    assert "no SUCCESS backup holding config" in message and "escalate" in message
    assert f"skipped backup {second} for 'latest'" in message and f"skipped backup {first} for 'latest'" in message
    assert "is not valid TOML" in message
    assert sorted(p.name for p in manager.backup_dir.iterdir()) == before


def test_fitness_problems_reads_the_backups_copy_not_the_site(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    break_config(sandbox)
    hand_edit_positions(sandbox)
    bad = manager.create_backup()
    site = load_site(sandbox)

    assert fitness_problems(site, manager.backup_dir / good, ("config", "state", "data")) == []
    problems = fitness_problems(site, manager.backup_dir / bad, ("config", "state", "data"))
    assert [p.split(":")[0] for p in problems] == [
        f"backup {bad} holds a config that fails the config check",
        f"backup {bad} holds data that fails the data check",
    ]
    assert fitness_problems(site, manager.backup_dir / bad, ("state",)) == []


def test_a_data_backup_taken_after_the_data_was_lost_cannot_fix_it(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup()
    (sandbox / POSITIONS).unlink()
    after = manager.create_backup()

    fresh = RecoveryManager(site=sandbox)
    assert fresh.latest(("data",)).backup_id == good
    assert any(after in note and f"{POSITIONS} is missing" in note for note in fresh.notes), fresh.notes


def test_the_memo_answers_once_per_backup_and_again_when_a_file_changes(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    backup = manager.create_backup()
    site = load_site(sandbox)
    path = manager.backup_dir / backup
    memo: dict = {}

    assert fitness_problems(site, path, ("config", "data"), memo) == []
    assert fitness_problems(site, path, ("config", "data"), memo) == []
    assert len(memo) == 2  # one entry per category: the second question read nothing

    # Someone edits the backup's copy (tampering, or a test): the memo must not hide it.
    positions = path / POSITIONS
    positions.chmod(0o644)
    hand_edited = positions.read_text().replace("BTC/USD,", "BTC/USD,1", 1)
    positions.write_text(hand_edited)
    problems = fitness_problems(site, path, ("config", "data"), memo)
    assert [p.split(":")[0] for p in problems] == [f"backup {backup} holds data that fails the data check"]
    assert problems == fitness_problems(site, path, ("config", "data"))  # memo or not, the same answer
