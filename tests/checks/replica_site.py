"""Helpers of the replica health and triage tests: a sandbox with ``file://`` replicas, real backups
re-dated where a test needs an old one, and real pushes (RecoveryManager.push_to_replica)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recovery_lib import RecoveryManager
from recovery_lib.backup.model import read_metadata


def drop_replicas(site: Path) -> Path:
    """Remove the ``[[replicas]]`` tables from recovery.toml (the last tables of a sandbox's), so a test
    configures exactly the replicas it needs. Returns ``site``."""
    toml = site / "recovery.toml"
    lines = toml.read_text().splitlines(keepends=True)
    cut = next((i for i, line in enumerate(lines) if line.strip() == "[[replicas]]"), len(lines))
    assert all(not line.lstrip().startswith("[") or line.strip() == "[[replicas]]" for line in lines[cut:])
    toml.write_text("".join(lines[:cut]))
    return site


def add_replica(site: Path, name: str, directory: Path, **keys: object) -> None:
    """Append a ``[[replicas]]`` table for the ``file://`` replica in ``directory`` to recovery.toml."""
    lines = ["", "[[replicas]]", f'name = "{name}"', f'url = "file://{directory}"']
    for key, value in keys.items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    toml = site / "recovery.toml"
    toml.write_text(toml.read_text() + "\n".join(lines) + "\n")


def backup(site: Path, hours_ago: float = 0.0, **flags: object) -> str:
    """A real backup (``flags``: create_backup's), its metadata re-dated ``hours_ago`` and re-checksummed.
    Not pushed (the tests push with :func:`push` where they mean to)."""
    flags.setdefault("push", False)
    backup_id = RecoveryManager(site=site).create_backup(**flags)  # type: ignore[arg-type]
    if hours_ago:
        path = site / "backups" / backup_id / "metadata.json"
        metadata = read_metadata(path.parent)
        created = datetime.now(UTC) - timedelta(hours=hours_ago)
        metadata.created_at = created.isoformat().replace("+00:00", "Z")
        path.chmod(0o644)
        path.write_bytes(metadata.to_json())
    return backup_id


def push(site: Path, replica: str | None = None, target: str = "latest") -> list[str]:
    """Push for real; returns the ids pushed (the push records its outcome for the health check)."""
    report = RecoveryManager(site=site).push_to_replica(replica, target)
    assert report.ok, report.summary()
    return report.pushed


def unmount(directory: Path) -> Path:
    """Take the replica's disk away (its parent directory disappears); returns where it went."""
    away = directory.parent.with_name(directory.parent.name + "-unmounted")
    directory.parent.rename(away)
    return away


def remount(away: Path, directory: Path) -> None:
    """Put the disk back."""
    away.rename(directory.parent)


def writable(path: Path) -> None:
    """The fs transport leaves the replica read-only: let a test play the attacker or the crash."""
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)


def lose_host(site: Path) -> None:
    """The site's config, data, state and its local backups are gone; recovery.toml survives (a new host)."""
    for name in ("config", "data", "state", "backups"):
        shutil.rmtree(site / name)
