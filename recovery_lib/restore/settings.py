"""Restoring ``recovery.toml``, the site's own settings, from the copy every backup holds.

``recovery.toml`` says where the backups are and which paths config, state and data are, so it is
restored on its own and first (the other categories are then restored with the settings it holds).
The backup's copy is checked before anything is written: the backup's structure verifies, the copy
hashes to its manifest entry, and it loads as valid settings. The current file is kept beside it as
``recovery.toml.replaced-<UTC time>`` (nothing is lost), then the copy replaces it atomically and is
hashed again. ``latest`` is the newest SUCCESS backup, not a pre-recovery snapshot, whose copy passes
all three checks; each backup passed over is explained in ``notes``.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from recovery_lib import clock
from recovery_lib.backup.lock import BackupLock, SiteRestoreLock
from recovery_lib.backup.model import PRE_RECOVERY_TAG, BackupMetadata, BackupStatus, FileEntry, read_metadata
from recovery_lib.backup.store import backup_path, no_such_backup
from recovery_lib.backup.verify import verify_backup_dir
from recovery_lib.errors import BackupError, RestoreError, SiteConfigError
from recovery_lib.fsops.atomic import atomic_write_bytes
from recovery_lib.rendering import human_time
from recovery_lib.restore.plan import Action
from recovery_lib.site.config import CONFIG_NAME, site_from_text

log = logging.getLogger(__name__)

DIFF_LINES = 40  # a dry run shows the change; a longer diff is cut (the file is small in practice)


@dataclass(frozen=True)
class SettingsPlan:
    """What restoring ``recovery.toml`` from ``backup_id`` does: create, replace or nothing (unchanged)."""

    site_root: Path
    backup_id: str
    backup_created_at: str
    action: Action
    content: bytes  # the backup's copy, hashed against its manifest entry
    mode: int
    current: bytes | None  # the site's file when planned (None: there is none)

    def diff(self) -> list[str]:
        """The change as a unified diff of the text (site's file, then the backup's copy)."""
        before = (self.current or b"").decode("utf-8", "replace").splitlines()
        after = self.content.decode("utf-8", "replace").splitlines()
        return list(
            difflib.unified_diff(
                before, after, f"{CONFIG_NAME} (site)", f"{CONFIG_NAME} ({self.backup_id})", lineterm=""
            )
        )

    def summary(self) -> str:
        """The plan for a person: the action, the backup, where the current file is kept, the diff."""
        head = (
            f"Restore plan: {CONFIG_NAME} from backup {self.backup_id} "
            f"(taken {human_time(self.backup_created_at)}): {self.action.value}, {len(self.content):,} bytes"
        )
        if self.action is Action.UNCHANGED:
            return f"{head}\n  the site's {CONFIG_NAME} is already identical: nothing to do"
        lines = [head]
        if self.current is not None:
            lines.append(f"  the current file is kept as {CONFIG_NAME}.replaced-<time> beside it")
        diff = self.diff()
        lines.extend(f"  {line}" for line in diff[:DIFF_LINES])
        if len(diff) > DIFF_LINES:
            lines.append(f"  ... and {len(diff) - DIFF_LINES} more diff line(s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class SettingsResult:
    """A restored ``recovery.toml``: ``kept_as`` is where the file it replaced now is (None: there was none)."""

    plan: SettingsPlan
    kept_as: Path | None

    def summary(self) -> str:
        """One line for a person."""
        if self.plan.action is Action.UNCHANGED:
            return f"{CONFIG_NAME} is already identical to backup {self.plan.backup_id}'s copy: nothing was changed."
        kept = f"; the file it replaced is kept as {self.kept_as.name}" if self.kept_as else ""
        return (
            f"Restored {CONFIG_NAME} from {self.plan.backup_id}: {len(self.plan.content):,} bytes written and "
            f"verified{kept}."
        )


def _copy_in(backup: Path, metadata: BackupMetadata) -> tuple[bytes, FileEntry] | str:
    """The backup's copy of recovery.toml, checked (structure, its hash); or why it cannot be used."""
    if metadata.status is not BackupStatus.SUCCESS:
        return f"it is {metadata.status.value.upper()}, not SUCCESS"
    report = verify_backup_dir(backup, read_data=True, hash_only=lambda path: path == CONFIG_NAME)
    if not report.ok or report.manifest is None:
        return f"it does not verify: {report.problems[0] if report.problems else 'no manifest'}"
    entry = report.manifest.by_path().get(CONFIG_NAME)
    if entry is None:
        return f"it holds no {CONFIG_NAME} (taken before backups kept it, or the site had none)"
    try:
        content = (backup / CONFIG_NAME).read_bytes()
    except OSError as exc:
        return f"its {CONFIG_NAME} cannot be read ({exc.strerror or exc})"
    if hashlib.sha256(content).hexdigest() != entry.sha256:  # the bytes that will be written, hashed once more
        return f"its {CONFIG_NAME} changed while it was read (sha256 differs from the manifest)"
    return content, entry


def _checked(site_root: Path, backup: Path, metadata: BackupMetadata) -> tuple[bytes, FileEntry] | str:
    """:func:`_copy_in`, and the copy loads as valid settings for this site."""
    copy = _copy_in(backup, metadata)
    if isinstance(copy, str):
        return copy
    try:
        site_from_text(site_root, copy[0])
    except SiteConfigError as exc:
        return f"its {CONFIG_NAME} is malformed too ({f'line {exc.line}: ' if exc.line else ''}{exc.problem})"
    return copy


def plan_settings(
    site_root: Path, backup_dir: Path, backups: list[BackupMetadata], backup_id: str, notes: list[str]
) -> SettingsPlan:
    """Plan restoring ``recovery.toml`` from ``backup_id`` (``latest``: the newest whose copy passes every
    check, see the module); ``backups`` are the listed ones, newest first. Touches nothing."""
    if backup_id == "latest":
        passed: list[str] = []
        for metadata in backups:
            if PRE_RECOVERY_TAG in metadata.tags:
                continue  # the state a restore replaced: after a broken edit, the broken file
            found = _checked(site_root, backup_path(backup_dir, metadata.backup_id), metadata)
            if not isinstance(found, str):
                return _plan(site_root, metadata, *found)
            passed.append(f"backup {metadata.backup_id} passed over for {CONFIG_NAME}: {found}")
            notes.append(passed[-1])
            log.info("%s", passed[-1])
        raise RestoreError(
            f"no backup in {backup_dir} holds a {CONFIG_NAME} that verifies and loads "
            f"({len(backups)} looked at{'; ' + '; '.join(passed[:3]) if passed else ''}). "
            f"Fix {site_root / CONFIG_NAME} by hand (docs/recovery-toml.md), or pass --backup-dir if the backups "
            "are elsewhere. Nothing was changed."
        )
    path = backup_path(backup_dir, backup_id)
    if not path.is_dir():
        raise no_such_backup(backup_dir, backup_id, [m.backup_id for m in backups[:5]])
    try:
        metadata = read_metadata(path)
    except BackupError as exc:
        raise RestoreError(f"backup {backup_id} cannot be used: {exc}. Nothing was changed.") from exc
    found = _checked(site_root, path, metadata)
    if isinstance(found, str):
        raise RestoreError(
            f"backup {backup_id} cannot give back {CONFIG_NAME}: {found}. Choose another backup "
            f"(`recovery backup list`), or `latest`. Nothing was changed."
        )
    return _plan(site_root, metadata, *found)


def _current(site_root: Path) -> bytes | None:
    try:
        return (site_root / CONFIG_NAME).read_bytes()
    except FileNotFoundError:
        return None


def _plan(site_root: Path, metadata: BackupMetadata, content: bytes, entry: FileEntry) -> SettingsPlan:
    current = _current(site_root)
    action = Action.CREATE if current is None else Action.UNCHANGED if current == content else Action.REPLACE
    plan = SettingsPlan(site_root, metadata.backup_id, metadata.created_at, action, content, entry.mode, current)
    log.info("restore of %s planned from backup %s: %s", CONFIG_NAME, plan.backup_id, action.value)
    return plan


def _kept_name(site_root: Path) -> Path:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    candidate = site_root / f"{CONFIG_NAME}.replaced-{stamp}"
    number = 2
    while candidate.exists():
        candidate = site_root / f"{CONFIG_NAME}.replaced-{stamp}-{number}"
        number += 1
    return candidate


def apply_settings(plan: SettingsPlan, backup_dir: Path, lock_timeout_s: float = 30.0) -> SettingsResult:
    """Apply ``plan``: refuse if the site's file changed since the plan; keep the current file beside it;
    put the backup's copy in place atomically; hash it again. Holds the backup directory's lock (the
    backup cannot be pruned meanwhile) and the site's restore lock (no other restore runs)."""
    site_root = plan.site_root
    target = site_root / CONFIG_NAME
    with (
        BackupLock(backup_dir, "restore settings", timeout_s=lock_timeout_s),
        SiteRestoreLock(site_root, timeout_s=lock_timeout_s),
    ):
        if _current(site_root) != plan.current:
            log.warning("restore of %s refused: the file changed since the plan", CONFIG_NAME)
            raise RestoreError(
                f"{target} changed since the plan was made; nothing was changed. Plan again (--dry-run) and review."
            )
        if plan.action is Action.UNCHANGED:
            return SettingsResult(plan, None)
        kept = None
        try:
            if plan.current is not None:
                kept = _kept_name(site_root)
                atomic_write_bytes(kept, plan.current, mode=stat.S_IMODE(os.stat(target).st_mode))
            atomic_write_bytes(target, plan.content, mode=plan.mode)
        except OSError as exc:
            where = exc.filename or site_root
            raise RestoreError(
                f"cannot write {where}: {exc.strerror or exc}. {target} is unchanged or wholly replaced (the write "
                "is atomic); make the site writable and restore again."
            ) from exc
        if hashlib.sha256(target.read_bytes()).hexdigest() != hashlib.sha256(plan.content).hexdigest():
            raise RestoreError(f"{target} does not read back as written; check the disk and restore again.")
    log.info("restored %s from backup %s (replaced file kept as %s)", CONFIG_NAME, plan.backup_id, kept)
    return SettingsResult(plan, kept)
