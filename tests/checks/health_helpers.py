"""Helpers of the health-check tests: run every built-in check and prove checking changed nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from snapshots import files

from recovery_lib import HealthResult, RecoveryManager, health_check
from recovery_lib.backup import BackupStatus
from recovery_lib.backup.model import read_metadata

BUILTIN = ["config", "data", "backups", "disk", "process", "exchange", "reconciliation", "replicas"]
# A fresh sandbox has no backup (so its replica holds none either) and no running process.
FRESH_UNHEALTHY = {"backups", "process", "replicas"}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the site with its bytes: checking must change none."""
    return files(root)


def run_all(sandbox: Path) -> dict[str, HealthResult]:
    """Run every built-in check and make sure that checking changed nothing in the site."""
    before = snapshot(sandbox)
    results = health_check.run_all(sandbox)
    assert snapshot(sandbox) == before
    assert list(results) == BUILTIN
    return results


def unhealthy(results: dict[str, HealthResult]) -> set[str]:
    return {name for name, result in results.items() if not result.healthy}


def expect_failure(sandbox: Path, name: str, *fragments: str, also: frozenset[str] = frozenset()) -> HealthResult:
    """``name`` is unhealthy with a message containing every fragment; no other check but ``also`` changed."""
    results = run_all(sandbox)
    result = results[name]
    assert not result.healthy, result.message
    for fragment in fragments:
        assert fragment in result.message, result.message
    assert unhealthy(results) == FRESH_UNHEALTHY | {name} | also
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def write_backup(sandbox: Path, created: datetime, status: BackupStatus = BackupStatus.SUCCESS) -> str:
    """A real backup, then its metadata re-dated (and re-checksummed) to ``created``."""
    backup_id = RecoveryManager(site=sandbox).create_backup()
    path = sandbox / "backups" / backup_id / "metadata.json"
    metadata = read_metadata(path.parent)
    metadata.created_at = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    metadata.status = status
    path.chmod(0o644)
    path.write_bytes(metadata.to_json())
    return backup_id
