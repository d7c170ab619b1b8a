"""Restore plans (Terraform's habit: plan, then apply that plan).

:func:`make_plan` reads the backup's manifest and the site and says, per file, what a restore
would do (create / replace / delete / unchanged) and what it would lose (a site file newer than the
backup's copy, a file the backup does not hold) without touching the disk. The plan carries a
fingerprint of the site it was made against (:func:`site_fingerprint`), and an apply on a site that
has changed since is refused. :mod:`recovery_lib.restore.apply` applies exactly this plan and
returns a :class:`RestoreResult`.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from recovery_lib.backup.model import BackupMetadata, FileEntry, Manifest
from recovery_lib.errors import RestoreError
from recovery_lib.fsops.fileio import hash_file
from recovery_lib.fsops.paths import UnsafePathError, assert_no_symlink_parents, is_within, within
from recovery_lib.rendering import human_time, name_all
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

ROWS_SUFFIX = ".csv"  # files whose loss is counted in rows (newline bytes), the unit people use
COUNT_BLOCK = 1 << 20


class Action(StrEnum):
    """What a restore does to one file."""

    CREATE = "create"
    REPLACE = "replace"
    DELETE = "delete"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class FileAction:
    """One file's fate; ``size`` is the bytes written (create/replace) or removed (delete).

    ``loses``: what the site would lose, "" when nothing: a replaced file newer than the backup's copy
    (for a CSV: the rows it has beyond the backup's), a deleted file the backup does not hold.
    """

    path: str
    action: Action
    size: int
    category: str
    loses: str = ""


@dataclass(frozen=True)
class RestorePlan:
    """Everything a restore will do, made without touching the disk. Apply it with ``apply_restore``."""

    backup_id: str
    backup_created_at: str
    categories: tuple[str, ...]
    tops: dict[str, tuple[str, ...]]
    actions: tuple[FileAction, ...]
    site_root: Path
    fingerprint: str
    blockers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # not blocking, but a person must read them before approving

    @property
    def changes(self) -> list[FileAction]:
        """Actions other than ``unchanged``."""
        return [a for a in self.actions if a.action is not Action.UNCHANGED]

    def count(self, action: Action) -> int:
        return sum(1 for a in self.actions if a.action is action)

    @property
    def bytes_to_write(self) -> int:
        return sum(a.size for a in self.actions if a.action in (Action.CREATE, Action.REPLACE))

    @property
    def losses(self) -> list[FileAction]:
        """The changes that would discard content the backup does not hold (see ``FileAction.loses``)."""
        return [a for a in self.actions if a.loses]

    def summary(self, limit: int = 20) -> str:
        """The dry-run text: counts and bytes, then every file whose restore loses newer content (never
        folded away), then the other changes (the first ``limit``, the rest counted by kind)."""
        lines = [
            f"Restore plan: backup {self.backup_id} (taken {human_time(self.backup_created_at)}) -> "
            f"{', '.join(self.categories)}",
            f"  create {self.count(Action.CREATE)}, replace {self.count(Action.REPLACE)}, "
            f"delete {self.count(Action.DELETE)}, unchanged {self.count(Action.UNCHANGED)}; "
            f"{self.bytes_to_write:,} bytes to write",
        ]
        losses = self.losses
        if losses:
            lines.append(f"  WOULD DISCARD NEWER CONTENT ({len(losses)} file(s); each is in the pre-recovery backup):")
            lines.extend(f"  {a.action.value:<9} {a.path}: {a.loses}" for a in losses)
        others = [a for a in self.changes if not a.loses]
        if others and losses:
            lines.append("  Other changes:")
        lines.extend(f"  {a.action.value:<9} {a.path} ({a.size:,} bytes)" for a in others[:limit])
        if len(others) > limit:
            kinds = Counter(a.action.value for a in others[limit:])
            lines.append(
                f"  ... and {len(others) - limit} more: {', '.join(f'{n} {kind}' for kind, n in kinds.items())}"
            )
        lines.extend(f"  WARNING: {warning}" for warning in self.warnings)
        lines.extend(f"  BLOCKED: {blocker}" for blocker in self.blockers)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"

    def __repr__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for records (paths are site-relative)."""
        return {
            "backup_id": self.backup_id,
            "backup_created_at": self.backup_created_at,
            "categories": list(self.categories),
            "counts": {a.value: self.count(a) for a in Action},
            "bytes_to_write": self.bytes_to_write,
            "changes": [{"path": a.path, "action": a.action.value, "size": a.size} for a in self.changes],
            "loses": [{"path": a.path, "action": a.action.value, "what": a.loses, "size": a.size} for a in self.losses],
            "blockers": list(self.blockers),
            "warnings": list(self.warnings),
        }


@dataclass
class RestoreResult:
    """The outcome of applying a plan. ``ok`` only if everything asked for was restored and verified."""

    plan: RestorePlan
    ok: bool
    problems: list[str] = field(default_factory=list)
    pre_recovery_backup_id: str | None = None
    pre_recovery_reused: bool = False  # the pre-recovery backup was taken earlier in the incident, of this state
    files_written: int = 0
    bytes_written: int = 0
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. leftovers the next command removes

    def summary(self) -> str:
        """One paragraph for a person."""
        if not self.ok:
            return f"❌ Restore from {self.plan.backup_id} did NOT verify: " + name_all(self.problems)
        if self.pre_recovery_backup_id is None:
            saved = "Nothing was left to save before the restore (the site was empty)."
        elif self.pre_recovery_reused:
            saved = (
                f"Previous state already saved in backup {self.pre_recovery_backup_id} "
                "(taken earlier in this incident)."
            )
        else:
            saved = f"Previous state saved in backup {self.pre_recovery_backup_id}."
        return (
            f"✅ Restored {', '.join(self.plan.categories)} from {self.plan.backup_id}: {self.files_written} "
            f"files, {self.bytes_written:,} bytes written and verified in {self.duration_s:.2f} s. {saved}"
            + "".join(f" Note: {note}." for note in self.notes)
        )

    def __repr__(self) -> str:
        return self.summary()


def site_tree(site_root: Path, top: str) -> dict[str, os.stat_result]:
    """Every non-directory under ``top`` in the site (symlinks included, never followed)."""
    found: dict[str, os.stat_result] = {}
    root = site_root / top
    try:
        info = os.lstat(root)
    except FileNotFoundError:
        return found
    if not stat.S_ISDIR(info.st_mode):
        found[top] = info
        return found
    for folder, dirs, files in os.walk(root):
        relative_folder = Path(folder).relative_to(site_root).as_posix()
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            try:
                found[f"{relative_folder}/{name}"] = os.lstat(path)
            except FileNotFoundError:
                continue
    return found


def site_fingerprint(site_root: Path, tops: list[str]) -> str:
    """A digest of what is under ``tops`` now (paths, sizes, mtimes, inodes): detects any change."""
    digest = hashlib.sha256()
    for top in sorted(tops):
        for path, info in sorted(site_tree(site_root, top).items()):
            digest.update(
                f"{path}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0{info.st_ino}\n".encode()
            )
    return digest.hexdigest()


def _same_content(path: Path, info: os.stat_result, entry: FileEntry) -> bool:
    if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
        return False
    try:
        return hash_file(path)[0] == entry.sha256
    except OSError:
        return False  # unreadable now: restoring it is the right move


def _rows(path: Path) -> int | None:
    """Newline bytes in ``path`` (a CSV's rows, header included), read in blocks; None if unreadable."""
    count = 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(COUNT_BLOCK):
                count += block.count(b"\n")
    except OSError:
        return None
    return count


def _when(mtime_ns: int) -> str:
    return human_time(datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat().replace("+00:00", "Z"))


def _replaced_loses(
    site_root: Path, backup_path: Path | None, path: str, info: os.stat_result, entry: FileEntry
) -> str:
    """What replacing the site's ``path`` with the backup's copy discards ("" if nothing newer).

    Cheap: only a CSV that is newer or larger than the backup's copy is read (its rows counted)."""
    newer = info.st_mtime_ns > entry.mtime_ns
    larger = info.st_size > entry.size
    if path.endswith(ROWS_SUFFIX) and stat.S_ISREG(info.st_mode) and (newer or larger):
        now_rows = _rows(site_root / path)
        then_rows = _rows(backup_path / path) if backup_path is not None else None
        if now_rows is not None and then_rows is not None and now_rows > then_rows:
            return (
                f"{now_rows - then_rows:,} row(s) newer than the backup "
                f"({now_rows:,} line(s) in the site's copy, {then_rows:,} in the backup's)"
            )
        if larger and then_rows is None:
            return f"{info.st_size - entry.size:,} byte(s) more than the backup's copy"
    if newer:
        return (
            f"changed after the backup (the site's copy is from {_when(info.st_mtime_ns)}, "
            f"the backup's from {_when(entry.mtime_ns)})"
        )
    return ""


def _deleted_loses(info: os.stat_result, backup_created_ns: int) -> str:
    """What deleting a site file the backup does not hold discards."""
    after = "; written after it" if info.st_mtime_ns > backup_created_ns else ""
    return f"not in the backup{after} ({info.st_size:,} bytes)"


def _refused(message: str) -> RestoreError:
    """The error for a refusal, logged: every refused restore leaves a trail."""
    log.warning("%s", message)
    return RestoreError(message)


def make_plan(
    site: Site,
    metadata: BackupMetadata,
    manifest: Manifest,
    categories: list[str],
    blockers: list[str],
    backup_path: Path | None = None,
) -> RestorePlan:
    """Compare the backup's files in ``categories`` with the site; touches nothing.

    ``backup_path``: the backup's directory, to count the rows of its copy of a CSV the site holds
    more of (without it, the loss is told in bytes).
    """
    tops: dict[str, tuple[str, ...]] = {}
    for category in categories:
        if category not in manifest.categories:
            raise _refused(
                f"backup {metadata.backup_id} holds {', '.join(manifest.categories) or 'nothing'}, not {category}; "
                "choose a backup that includes it (recovery backup list)."
            )
        tops[category] = tuple(manifest.categories[category])
        declared = [top.rstrip("/") for top in site.categories[category]]
        strays = [top for top in tops[category] if not is_within(top, declared)]
        if strays:
            raise _refused(
                f"backup {metadata.backup_id} maps {category} to {', '.join(strays)}, outside this site's {category} "
                f"paths ({', '.join(declared)} in recovery.toml); restore refused, nothing was changed."
            )
    all_tops = [top for paths in tops.values() for top in paths]
    for top in all_tops:
        if any(other != top and is_within(top, [other]) for other in all_tops):
            raise _refused(f"backup {metadata.backup_id} declares overlapping paths ({top}); cannot restore safely")
        try:
            assert_no_symlink_parents(site.root, top)  # its parents; ``top`` itself is moved aside whole
        except UnsafePathError as exc:
            raise _refused(f"{exc}. Remove it (or replace it with a real directory) and plan again.") from exc
        if (site.root / top).is_symlink():
            raise _refused(
                f"{site.root / top} is a symlink where a restored path goes; remove it and plan again "
                "(nothing was changed)."
            )
    actions: list[FileAction] = []
    created_ns = int(metadata.created.timestamp() * 1_000_000) * 1000
    for category, category_tops in tops.items():
        inside = within(category_tops)
        backup_files = {e.path: e for e in manifest.files if inside(e.path)}
        present: dict[str, os.stat_result] = {}
        for top in category_tops:
            present.update(site_tree(site.root, top))
        for path, entry in sorted(backup_files.items()):
            info = present.get(path)
            if info is None:
                actions.append(FileAction(path, Action.CREATE, entry.size, category))
            elif _same_content(site.root / path, info, entry):
                actions.append(FileAction(path, Action.UNCHANGED, entry.size, category))
            else:
                loses = _replaced_loses(site.root, backup_path, path, info, entry)
                actions.append(FileAction(path, Action.REPLACE, entry.size, category, loses))
        for path, info in sorted(present.items()):
            if path not in backup_files:
                actions.append(
                    FileAction(path, Action.DELETE, info.st_size, category, _deleted_loses(info, created_ns))
                )
    plan = RestorePlan(
        backup_id=metadata.backup_id,
        backup_created_at=metadata.created_at,
        categories=tuple(categories),
        tops=tops,
        actions=tuple(actions),
        site_root=site.root,
        fingerprint=site_fingerprint(site.root, all_tops),
        blockers=tuple(blockers),
    )
    log.info(
        "restore planned from backup %s (%s): create %d, replace %d, delete %d, unchanged %d; "
        "%d file(s) lose newer content",
        plan.backup_id,
        ", ".join(plan.categories),
        plan.count(Action.CREATE),
        plan.count(Action.REPLACE),
        plan.count(Action.DELETE),
        plan.count(Action.UNCHANGED),
        len(plan.losses),
    )
    for blocker in plan.blockers:
        log.warning("restore from backup %s blocked: %s", plan.backup_id, blocker)
    return plan
