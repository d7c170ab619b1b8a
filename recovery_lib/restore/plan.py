"""Restore plans and their atomic application (Terraform's habit: plan, then apply that plan).

:func:`make_plan` reads the backup's manifest and the site and says, per file, what a restore
would do (create / replace / delete / unchanged) and what it would lose (a site file newer than the
backup's copy, a file the backup does not hold) without touching the disk. :func:`execute_plan`
applies exactly that plan: it stages every restored top-level path on the site's filesystem,
verifying hashes as it copies, and then swaps each one in through the journal of
:mod:`restore_journal`. The plan carries a fingerprint of the site it was made against, and an
apply on a site that has changed since is refused.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from recovery_lib.backup.model import BackupMetadata, FileEntry, Manifest
from recovery_lib.fsops.fileio import copy_and_hash, hash_file, sync_filesystem
from recovery_lib.fsops.paths import UnsafePathError, assert_no_symlink_parents, is_within
from recovery_lib.rendering import human_time, name_all
from recovery_lib.restore.journal import JOURNAL_NAME, Journal, RestoreError, cleanup, swap_in
from recovery_lib.site.config import Site

WORKERS = 2
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
        import html

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


def _site_tree(site_root: Path, top: str) -> dict[str, os.stat_result]:
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
        for path, info in sorted(_site_tree(site_root, top).items()):
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
            raise RestoreError(
                f"backup {metadata.backup_id} holds {', '.join(manifest.categories) or 'nothing'}, not {category}; "
                "choose a backup that includes it (recovery backup list)."
            )
        tops[category] = tuple(manifest.categories[category])
        declared = [top.rstrip("/") for top in site.categories[category]]
        strays = [top for top in tops[category] if not is_within(top, declared)]
        if strays:
            raise RestoreError(
                f"backup {metadata.backup_id} maps {category} to {', '.join(strays)}, outside this site's {category} "
                f"paths ({', '.join(declared)} in recovery.toml); restore refused, nothing was changed."
            )
    all_tops = [top for paths in tops.values() for top in paths]
    for top in all_tops:
        if any(other != top and is_within(top, [other]) for other in all_tops):
            raise RestoreError(f"backup {metadata.backup_id} declares overlapping paths ({top}); cannot restore safely")
        try:
            assert_no_symlink_parents(site.root, top)  # its parents; ``top`` itself is moved aside whole
        except UnsafePathError as exc:
            raise RestoreError(f"{exc}. Remove it (or replace it with a real directory) and plan again.") from exc
        if (site.root / top).is_symlink():
            raise RestoreError(
                f"{site.root / top} is a symlink where a restored path goes; remove it and plan again "
                "(nothing was changed)."
            )
    actions: list[FileAction] = []
    created_ns = int(metadata.created.timestamp() * 1_000_000) * 1000
    for category, category_tops in tops.items():
        backup_files = {e.path: e for e in manifest.files if is_within(e.path, category_tops)}
        present: dict[str, os.stat_result] = {}
        for top in category_tops:
            present.update(_site_tree(site.root, top))
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
    return RestorePlan(
        backup_id=metadata.backup_id,
        backup_created_at=metadata.created_at,
        categories=tuple(categories),
        tops=tops,
        actions=tuple(actions),
        site_root=site.root,
        fingerprint=site_fingerprint(site.root, all_tops),
        blockers=tuple(blockers),
    )


def _stage(
    site_root: Path,
    backup_path: Path,
    plan: RestorePlan,
    manifest: Manifest,
    staging: Path,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int]:
    """Build the new trees in ``staging``; unchanged files are hard-linked from the site, the rest
    copied from the backup with their hashes checked. Raises RestoreError on any mismatch."""
    entries = manifest.by_path()
    tops = [top for paths in plan.tops.values() for top in paths]
    for directory in manifest.dirs:
        if is_within(directory, tops):
            (staging / directory).mkdir(parents=True, exist_ok=True)
    work = [a for a in plan.actions if a.action is not Action.DELETE]
    for action in work:
        (staging / action.path).parent.mkdir(parents=True, exist_ok=True)
    total = sum(a.size for a in work if a.action is not Action.UNCHANGED)

    def corrupted(path: str) -> RestoreError:
        return RestoreError(
            f"backup {plan.backup_id}: {path} is corrupted (sha256 differs from the manifest); "
            "restore refused and the site was not changed. Verify the backup and choose another."
        )

    def place(action: FileAction) -> int:
        """Every backup file is read exactly once: copied and hashed, or (unchanged) only hashed."""
        entry = entries[action.path]
        target = staging / action.path
        if action.action is Action.UNCHANGED:
            source = site_root / action.path
            # Linking shares the inode with the live file, so only when no chmod is needed.
            if stat.S_IMODE(os.lstat(source).st_mode) == entry.mode:
                if hash_file(backup_path / action.path)[0] != entry.sha256:
                    raise corrupted(action.path)
                try:
                    os.link(source, target, follow_symlinks=False)
                    return 0
                except OSError:
                    pass  # another filesystem or link limit: copy it like the rest
        copied = copy_and_hash(backup_path / action.path, target, entry.mode)
        if copied.sha256 != entry.sha256 or copied.size != entry.size:
            raise corrupted(action.path)
        os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns))
        return copied.size

    from concurrent.futures import ThreadPoolExecutor

    written = files = 0
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for size in pool.map(place, work):
            written += size
            files += 1 if size or not entries else 0
            if progress:
                progress(written, total)
    return sum(1 for a in work if a.action is not Action.UNCHANGED), written


def _verify_result(site_root: Path, plan: RestorePlan, manifest: Manifest) -> list[str]:
    """After the swap: the restored trees hold exactly the backup's files, at the right sizes."""
    problems = []
    for category, tops in plan.tops.items():
        expected = {e.path: e for e in manifest.files if is_within(e.path, tops)}
        present: dict[str, os.stat_result] = {}
        for top in tops:
            present.update(_site_tree(site_root, top))
        for path, entry in expected.items():
            info = present.get(path)
            if info is None:
                problems.append(f"{path}: missing after restore ({category})")
            elif not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
                problems.append(f"{path}: wrong size or type after restore ({category})")
        problems.extend(
            f"{path}: unexpected file after restore ({category})" for path in present if path not in expected
        )
    return problems


def execute_plan(
    site: Site,
    plan: RestorePlan,
    backup_path: Path,
    manifest: Manifest,
    progress: Callable[[int, int], None] | None = None,
    blockers: Callable[[], list[str]] = list,
    before_swap: Callable[[], object] = lambda: None,
) -> tuple[int, int, list[str], list[str]]:
    """Stage, verify, swap in, verify again. The caller holds the lock and has checked the blockers;
    ``before_swap()`` runs once staging has checked every restored byte (the caller's pre-recovery
    backup); ``blockers()`` is asked again just before the swap (the trading system may have been started).

    Returns (files written, bytes written, problems found after the swap, notes for the person).
    """
    if (site.root / JOURNAL_NAME).exists():
        raise RestoreError(
            f"{site.root / JOURNAL_NAME} exists: an earlier restore is unfinished; "
            "run any recovery command to complete it first."
        )
    tops = [top for paths in plan.tops.values() for top in paths]
    staged = sorted({top for top in tops if (backup_path / top).exists()})
    journal = Journal(
        restore_id=secrets.token_hex(4), backup_id=plan.backup_id, phase="staging", tops=sorted(tops), staged=staged
    )
    staging = journal.staging_dir(site.root)
    try:
        journal.save(site.root)  # first, so that a crash at any later point is found and undone
        staging.mkdir()
    except OSError as exc:
        left = _cleanup_after_failure(site.root, journal)
        raise RestoreError(
            f"cannot stage the restore in site {site.root}: {_where(exc, site.root)}: {exc.strerror}. "
            f"Nothing was changed; make the site writable and check the disk has space, then try again.{left}"
        ) from exc
    try:
        files, written = _stage(site.root, backup_path, plan, manifest, staging, progress)
        sync_filesystem(staging)  # staged bytes durable before the journal says "swap"
        _refuse_if(blockers())  # the system may have been started while staging
        before_swap()  # the pre-recovery backup: only once every restored byte has been checked
        _refuse_if(blockers())  # and again right before the swap
        journal.phase = "swapping"
        journal.save(site.root)
    except OSError as exc:
        left = _cleanup_after_failure(site.root, journal)  # nothing in the site was touched yet
        raise RestoreError(
            f"restore failed while staging: {_where(exc, site.root)}: {exc.strerror}. Nothing in the site "
            f"was changed; fix the cause (disk space, permissions) and restore again.{left}"
        ) from exc
    except BaseException:
        _cleanup_after_failure(site.root, journal)
        raise
    _swap(site.root, journal)
    notes = _finish(site.root, journal)
    problems = _verify_result(site.root, plan, manifest)
    return files, written, problems, notes


def _refuse_if(late: list[str]) -> None:
    if late:
        raise RestoreError(f"restore stopped before the swap, nothing was changed: {late[0]}")


def _where(exc: OSError, site_root: Path) -> str:
    """The file an OSError is about, or the site when the call had only a descriptor."""
    return str(exc.filename) if exc.filename else f"a file in {site_root}"


def _cleanup_after_failure(site_root: Path, journal: Journal) -> str:
    """Remove staging after a failure before the swap; if even that fails, the journal (still in
    phase "staging") makes the next recovery command roll it back. Returns a note for the message."""
    try:
        cleanup(site_root, journal)
    except OSError as exc:
        return (
            f" Removing the staging area also failed ({_where(exc, site_root)}: {exc.strerror}); "
            "the next recovery command removes it."
        )
    return ""


def _swap(site_root: Path, journal: Journal) -> None:
    """Swap the staged trees in. ``swap_in`` is idempotent, so one failed rename is retried at once;
    if it fails again the journal (phase "swapping") lets the next recovery command finish it."""
    try:
        swap_in(site_root, journal)
    except OSError:
        try:
            swap_in(site_root, journal)
        except OSError as exc:
            raise RestoreError(
                f"restore interrupted while swapping in the restored files: {_where(exc, site_root)}: "
                f"{exc.strerror}. The journal {site_root / JOURNAL_NAME} records where it stopped: fix the "
                "cause and run any recovery command (e.g. `recovery backup list`) to complete the restore."
            ) from exc


def _finish(site_root: Path, journal: Journal) -> list[str]:
    """Mark the swap done and remove staging and the old trees. The restore has happened by now, so a
    failure here is a note, not an error: the journal makes the next recovery command tidy up."""
    try:
        journal.phase = "swapped"
        journal.save(site_root)
        cleanup(site_root, journal)
    except OSError as exc:
        return [
            f"restored, but tidying up failed ({_where(exc, site_root)}: {exc.strerror}); "
            "the next recovery command removes what is left"
        ]
    return []
