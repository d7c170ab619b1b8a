"""The backups health check: what counts as a usable backup, and damage reported as a fault."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from health_helpers import expect_failure, snapshot, write_backup

from recovery_lib import RecoveryManager, health_check
from recovery_lib.backup import BackupStatus

# --- backups ----------------------------------------------------------------------------------


def test_backup_dir_unwritable(sandbox: Path) -> None:
    backups = sandbox / "backups"
    backups.chmod(0o555)
    try:
        result = health_check.run("backups", sandbox)
    finally:
        backups.chmod(0o755)
    assert not result.healthy
    assert "backup directory backups/ is not writable (mode dr-xr-xr-x)" in result.message


def test_backup_dir_missing(sandbox: Path) -> None:
    (sandbox / "backups").rmdir()
    expect_failure(sandbox, "backups", "backup directory backups/ is missing", "Procedure D")
    assert not (sandbox / "backups").exists()  # reporting does not recreate it


def test_fresh_backup_is_healthy(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, datetime.now(UTC))
    result = health_check.run("backups", sandbox)
    assert result.healthy, result.message
    assert result.message == f"newest backup {backup_id} is 0.0 h old"
    assert result.details["newest"] == backup_id
    # The writability probe cleaned up after itself (.replicas: the push after the backup, recorded).
    assert sorted(p.name for p in (sandbox / "backups").iterdir()) == [".lock", ".replicas", backup_id]


def test_stale_backup_is_unhealthy(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    result = health_check.run("backups", sandbox)
    assert not result.healthy
    # max_age_hours fails, and so does the sandbox's daily schedule (tests/checks/test_health_freshness.py).
    assert result.message.startswith(f"newest backup {backup_id} is 30.0 h old (max 24 h); missed the scheduled")
    assert result.details["age_hours"] == pytest.approx(30, abs=0.01)


def test_newest_successful_backup_counts(sandbox: Path) -> None:
    write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    # Half an hour: after the last daily slot whose grace has passed, whatever the time of day.
    newest = write_backup(sandbox, datetime.now(UTC) - timedelta(minutes=30))
    result = health_check.run("backups", sandbox)
    assert result.healthy and result.details["newest"] == newest


def test_partial_backup_is_ignored(sandbox: Path) -> None:
    write_backup(sandbox, datetime.now(UTC), status=BackupStatus.PARTIAL)
    assert "no successful backups in backups/" in health_check.run("backups", sandbox).message
    old = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    result = health_check.run("backups", sandbox)
    assert not result.healthy and f"newest backup {old} is 30.0 h old" in result.message


def test_unreadable_backup_metadata_is_reported_not_counted(sandbox: Path) -> None:
    (sandbox / "backups/broken").mkdir()
    (sandbox / "backups/broken/metadata.json").write_text("{not json")
    result = health_check.run("backups", sandbox)
    assert not result.healthy and "no successful backups in backups/" in result.message
    assert "backup broken: unreadable: broken/metadata.json is unreadable" in result.message
    assert result.details["damaged"] == ["broken"]


def test_backup_without_timezone_does_not_hide_a_good_one(sandbox: Path) -> None:
    (sandbox / "backups/naive").mkdir()
    (sandbox / "backups/naive/metadata.json").write_text(
        json.dumps({"status": "success", "created_at": "2026-11-25T20:00:00"})
    )
    assert "no successful backups in backups/" in health_check.run("backups", sandbox).message
    good = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=1))
    result = health_check.run("backups", sandbox)
    assert result.details["newest"] == good and f"newest backup {good} is 1.0 h old" in result.message
    # ...and the unreadable one is never silent: the check stays red until it is dealt with (Procedure D).
    assert not result.healthy and "backup naive: unreadable: naive/metadata.json is malformed" in result.message


# --- backups: damage is a fault -------------------------------------------------------------------


def replace_with_flipped_byte(path: Path, offset: int = 100) -> None:
    """Damage one backup's own copy (same size, new inode: a hard-linked sibling keeps its bytes)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.parent.chmod(0o755)
    path.unlink()
    path.write_bytes(bytes(data))


def health_cli(sandbox: Path) -> tuple[int, dict]:
    from recovery_lib.cli.main import main

    out = io.StringIO()
    code = main(["health", "--site", str(sandbox), "--check", "backups", "--json"], out=out)
    return code, json.loads(out.getvalue())["checks"]["backups"]


def test_damaged_and_unreadable_backups_make_health_red(sandbox: Path) -> None:
    """Issue 11: a byte flipped in the newest backup and metadata.json gone from the one before were green."""
    manager = RecoveryManager(site=sandbox)
    oldest, second, newest = (manager.create_backup() for _ in range(3))
    assert health_cli(sandbox)[0] == 0  # fresh and sound: green
    replace_with_flipped_byte(sandbox / "backups" / newest / "data/trades.csv")
    (sandbox / "backups" / second).chmod(0o755)
    (sandbox / "backups" / second / "metadata.json").unlink()
    before = snapshot(sandbox)

    code, result = health_cli(sandbox)

    assert code == 1 and result["healthy"] is False
    message = result["message"]
    assert f"backup {newest}: data/trades.csv: hash: contents differ from the manifest (corrupted)" in message
    assert f"backup {second}: unreadable: {second}/metadata.json is missing" in message
    assert "Procedure D" in message and oldest not in message
    details = result["details"]
    assert details["damaged"] == [newest, second]
    assert [c["backup_id"] for c in details["checked"]] == [newest, oldest, second]
    assert [c["ok"] for c in details["checked"]] == [False, True, False]
    assert details["budget_bytes"] == 256 * 1024 * 1024 and details["bytes_hashed"] > 0
    assert details["files_hashed"] > 0 and details["quarantined"] == 0
    assert snapshot(sandbox) == before  # the check found the damage and touched nothing


def test_quarantined_backups_are_counted_and_keep_health_green(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    damaged, good = manager.create_backup(), manager.create_backup()
    replace_with_flipped_byte(sandbox / "backups" / damaged / "data/trades.csv")
    assert not health_check.run("backups", sandbox).healthy

    manager.quarantine_backup(damaged, "hash mismatch in data/trades.csv")

    result = health_check.run("backups", sandbox)
    assert result.healthy, result.message
    assert result.message == f"newest backup {good} is 0.0 h old; 1 quarantined backup(s) await the post-mortem"
    assert result.details["quarantined"] == 1 and result.details["damaged"] == []


def test_the_health_budget_comes_from_recovery_toml(sandbox: Path) -> None:
    RecoveryManager(site=sandbox).create_backup()
    text = (sandbox / "recovery.toml").read_text().replace("[backups]\n", "[backups]\nhealth_read_mib = 0\n", 1)
    (sandbox / "recovery.toml").write_text(text)
    result = health_check.run("backups", sandbox)
    assert result.healthy and result.details["budget_bytes"] == 0 and result.details["bytes_hashed"] == 0
    assert [c["contents"] for c in result.details["checked"]] == ["structure only"]


def test_a_stale_and_damaged_backup_reports_both(sandbox: Path) -> None:
    backup_id = write_backup(sandbox, datetime.now(UTC) - timedelta(hours=30))
    replace_with_flipped_byte(sandbox / "backups" / backup_id / "config/config.toml", offset=3)
    result = health_check.run("backups", sandbox)
    assert not result.healthy
    assert f"backup {backup_id}: config/config.toml: hash:" in result.message
    assert f"newest backup {backup_id} is 30.0 h old (max 24 h)" in result.message
