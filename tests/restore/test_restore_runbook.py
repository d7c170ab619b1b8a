"""Restore through the runbook's own procedure snippets (A, B, C), run nearly verbatim.

Every test works on a private copy of the sandbox site (``sandbox`` fixture) with real files; a
failure path always checks both that the failure is reported and that nothing was lost.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from restore_helpers import CATEGORIES, backup_path, corrupt_config, files_under, snapshot

from recovery_lib import health_check
from recovery_lib.backup import BackupStatus
from recovery_lib.backup.model import read_metadata
from recovery_lib.manager import RecoveryManager

NON_CATEGORY = ("exchange", "run", "recovery.toml", ".recovery-sandbox.json")


# --- the runbook's procedures, nearly verbatim ---------------------------------------------------

IMPORTS = "from recovery_lib import RecoveryManager, BackupType, BackupStatus\n"

PROCEDURE_A_2 = (
    IMPORTS
    + """
recovery = RecoveryManager(backup_dir="backups")
backups = recovery.list_backups()

print(f"Available backups: {len(backups)}")
for backup in backups[:5]:
    print(f"  - {backup.backup_id[:30]}... ({backup.created_at})")
"""
)
PROCEDURE_A_3 = """
# Use most recent successful backup
backup_to_restore = backups[0]
print(f"Selected backup: {backup_to_restore.backup_id}")
print(f"Description: {backup_to_restore.description}")
"""
PROCEDURE_A_4 = """
success = recovery.restore_backup(
    backup_to_restore.backup_id,
    restore_config=True,
    dry_run=True
)

if success:
    print("✅ Dry-run successful, proceeding with actual restore")
else:
    print("❌ Dry-run failed, investigate before proceeding")
    # STOP HERE and escalate
"""
PROCEDURE_A_5 = """
success = recovery.restore_backup(
    backup_to_restore.backup_id,
    restore_config=True,
    restore_state=False,
    restore_data=False
)

if success:
    print("✅ Config restored successfully")
else:
    print("❌ Restore failed")
    # Escalate immediately
"""

PROCEDURE_B_2 = (
    IMPORTS
    + """
recovery = RecoveryManager()

# Find backups with data
data_backups = [
    b for b in recovery.list_backups()
    if b.backup_type in [BackupType.FULL, BackupType.DATA]
    and b.status == BackupStatus.SUCCESS
]

if not data_backups:
    print("🚨 No data backups available!")
    # Escalate immediately

backup_to_restore = data_backups[0]
print(f"Selected backup: {backup_to_restore.backup_id}")
print(f"Files: {backup_to_restore.files_count}")
print(f"Size: {backup_to_restore.size_bytes} bytes")
"""
)
PROCEDURE_B_3 = """
from datetime import datetime

backup_time = datetime.fromisoformat(
    backup_to_restore.created_at.replace('Z', '+00:00')
)
current_time = datetime.now(backup_time.tzinfo)
data_loss_window = current_time - backup_time

print(f"⚠️  Data loss window: {data_loss_window.total_seconds()/3600:.1f} hours")
print("   (All data from this period will be lost)")
"""
PROCEDURE_B_5 = """
# Create backup of current state before restore
current_backup = recovery.create_backup(
    include_data=True,
    description="Pre-recovery current state",
    tags=["pre-recovery", "emergency"]
)
print(f"Current state backed up: {current_backup}")
"""
PROCEDURE_B_6 = """
success = recovery.restore_backup(
    backup_to_restore.backup_id,
    restore_config=False,
    restore_state=False,
    restore_data=True
)

if success:
    print("✅ Data restored successfully")
else:
    print("❌ Data restore failed")
    # Escalate immediately
"""
PROCEDURE_B_7 = """
import pandas as pd

# Check positions file
positions = pd.read_csv("data/positions.csv")
print(f"✅ Positions restored: {len(positions)} rows")

# Check trades file
trades = pd.read_csv("data/trades.csv")
print(f"✅ Trades restored: {len(trades)} rows")

# Verify data makes sense
if len(positions) > 0:
    print(f"   Latest position: {positions.iloc[-1]['symbol']}")
"""

PROCEDURE_C_2 = (
    "from recovery_lib import health_check\n"
    + IMPORTS
    + """
# Run all health checks
results = health_check.run_all()
failed_checks = [name for name, r in results.items() if not r.healthy]

print(f"Failed checks: {', '.join(failed_checks)}")

# Check backup availability
recovery = RecoveryManager()
backups = recovery.list_backups()
print(f"Available backups: {len(backups)}")
"""
)
PROCEDURE_C_3 = """
# Find most recent FULL backup
full_backups = [
    b for b in backups
    if b.backup_type == BackupType.FULL
    and b.status == BackupStatus.SUCCESS
]

if not full_backups:
    print("🚨 No full backups available!")
    # May need to perform partial recovery
    # Escalate to senior engineer

recovery_backup = full_backups[0]
print(f"Recovery point: {recovery_backup.created_at}")
print(f"Description: {recovery_backup.description}")
"""
PROCEDURE_C_5 = """
print("🔧 Initiating full system restore...")

success = recovery.restore_backup(
    recovery_backup.backup_id,
    restore_config=True,
    restore_state=True,
    restore_data=True,
    dry_run=False
)

if not success:
    print("❌ CRITICAL: Full restore failed")
    # Stop here and escalate to senior engineer immediately
    raise Exception("Full restore failed")

print("✅ Full restore completed")
"""


@pytest.fixture
def runbook(sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run runbook snippets in one namespace with the sandbox as the current directory."""
    monkeypatch.chdir(sandbox)
    namespace: dict[str, object] = {"__name__": "__runbook__"}

    def execute(*snippets: str) -> str:
        capsys.readouterr()
        for snippet in snippets:
            exec(snippet, namespace)
        return capsys.readouterr().out

    return execute


def test_procedure_a_restores_a_corrupted_config(sandbox: Path, backed_up, runbook) -> None:
    manager, backup_id = backed_up
    good_backup = backup_path(manager, backup_id)
    corrupt_config(sandbox)
    assert not health_check.run_all(sandbox)["config"].healthy
    untouched = {top: snapshot(sandbox / top) for top in ("state", "data", "exchange", "run")}
    recovery_toml = (sandbox / "recovery.toml").read_bytes()

    out = runbook(PROCEDURE_A_2, PROCEDURE_A_3, PROCEDURE_A_4, PROCEDURE_A_5)

    assert "Available backups: 1" in out
    assert f"Selected backup: {backup_id}" in out
    assert "Description: known good" in out
    assert "✅ Dry-run successful, proceeding with actual restore" in out
    assert "✅ Config restored successfully" in out
    assert "❌" not in out
    results = health_check.run_all()
    assert results["config"].healthy, results["config"].message
    assert results["data"].healthy, results["data"].message
    assert files_under(sandbox, "config") == files_under(good_backup, "config")
    assert {top: snapshot(sandbox / top) for top in untouched} == untouched
    assert (sandbox / "recovery.toml").read_bytes() == recovery_toml


def test_procedure_b_restores_deleted_data(sandbox: Path, backed_up, runbook) -> None:
    manager, backup_id = backed_up
    good_backup = backup_path(manager, backup_id)
    shutil.rmtree(sandbox / "data")
    assert not health_check.run_all(sandbox)["data"].healthy

    out = runbook(PROCEDURE_B_2, PROCEDURE_B_3, PROCEDURE_B_5, PROCEDURE_B_6, PROCEDURE_B_7)

    assert f"Selected backup: {backup_id}" in out
    assert "Data loss window: 0.0 hours" in out
    assert "Current state backed up: " in out
    assert "✅ Data restored successfully" in out
    assert "✅ Positions restored: 8 rows" in out
    assert "✅ Trades restored: 500 rows" in out
    assert health_check.run_all()["data"].healthy
    assert files_under(sandbox, "data") == files_under(good_backup, "data")
    # The backup of the broken state recorded the missing data directory as absent, not as an error.
    snapshot_id = out.split("Current state backed up: ")[1].split()[0]
    assert read_metadata(backup_path(manager, snapshot_id)).status is BackupStatus.SUCCESS
    assert RecoveryManager(site=sandbox).get_backup("latest").backup_id == backup_id


def test_procedure_c_full_restore_after_config_and_data_loss(sandbox: Path, backed_up, runbook) -> None:
    manager, backup_id = backed_up
    good_backup = backup_path(manager, backup_id)
    corrupt_config(sandbox)
    shutil.rmtree(sandbox / "data")
    (sandbox / "state/strategy_state.json").write_text("{not json")
    non_category = {name: snapshot(sandbox / name) if (sandbox / name).is_dir() else None for name in NON_CATEGORY}
    top_files = {name: (sandbox / name).read_bytes() for name in NON_CATEGORY if (sandbox / name).is_file()}

    out = runbook(PROCEDURE_C_2, PROCEDURE_C_3, PROCEDURE_C_5)

    assert "Failed checks: config, data" in out
    assert f"Recovery point: {read_metadata(good_backup).created_at}" in out
    assert "✅ Full restore completed" in out
    results = health_check.run_all()
    assert results["config"].healthy and results["data"].healthy
    for category in CATEGORIES:
        assert files_under(sandbox, category) == files_under(good_backup, category), category
    assert {n: snapshot(sandbox / n) if (sandbox / n).is_dir() else None for n in NON_CATEGORY} == non_category
    assert {name: (sandbox / name).read_bytes() for name in top_files} == top_files
