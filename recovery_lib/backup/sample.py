"""Every backup checked on every run, within a byte budget: the health check's view of backup damage.

Structure and metadata of every backup are verified each run (cheap). File contents are re-hashed
up to ``budget_bytes``: the newest recovery point's files first (up to half the budget while
there are older backups), then every other file in a random order, so successive runs cover
everything over time (like ``restic check --read-data-subset``). Backups share unchanged files by
hard link, so each inode is hashed at most once per run and its result applies to every backup
that lists it. Read-only: no lock, no cleanup, nothing written.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from recovery_lib.backup.listing import read_backups
from recovery_lib.backup.model import PRE_RECOVERY_TAG, BackupMetadata, BackupStatus, FileEntry
from recovery_lib.backup.verify import Problem, verify_backup_dir
from recovery_lib.errors import InvalidArgumentError
from recovery_lib.fsops.batches import map_in_batches
from recovery_lib.fsops.fileio import hash_file
from recovery_lib.rendering import name_all

log = logging.getLogger(__name__)

HASHED, SAMPLED, STRUCTURE_ONLY = "hashed", "sampled", "structure only"
UNREADABLE = "unreadable"


@dataclass
class BackupCheck:
    """One backup as this run saw it."""

    backup_id: str
    status: str  # metadata status value ("success", "partial", ...) or "unreadable"
    tags: list[str]
    ok: bool  # structure verifies and every hashed file matched
    contents: str  # "hashed" (every file hashed this run) | "sampled" (some) | "structure only"
    problems: list[str]  # each names the file and what is wrong
    unreadable: bool = False
    kinds: list[str] = field(default_factory=list)  # each problem's kind ("hash problem(s)"), to count unnamed ones

    def describe(self) -> str:
        """``backup X: data/trades.csv: hash: ...``, every problem named (beyond a few, counted by kind)."""
        if not self.problems:
            return f"backup {self.backup_id}: OK ({self.contents})"
        what = "unreadable: " if self.unreadable else ""
        kinds = self.kinds if len(self.kinds) == len(self.problems) else None
        return f"backup {self.backup_id}: {what}{name_all(self.problems, kinds)}"


@dataclass
class BackupsCheck:
    """Every backup of a backup directory: readable ones newest first, then the unreadable ones."""

    backups: list[BackupCheck]
    budget_bytes: int
    bytes_hashed: int
    files_hashed: int
    files_over_budget: int = 0  # files larger than the whole budget: only `verify --read-data` hashes them

    @property
    def damaged(self) -> list[BackupCheck]:
        """Backups that are not ok: damaged or unreadable."""
        return [check for check in self.backups if not check.ok]

    def summary(self) -> str:
        """One line for a person."""
        if not self.backups:
            return "no backups to check"
        counts = {kind: sum(1 for b in self.backups if b.contents == kind) for kind in (HASHED, SAMPLED)}
        hashed = f"hashed {self.files_hashed} files ({_mib(self.bytes_hashed)} of a {_mib(self.budget_bytes)} budget)"
        coverage = f"contents of {counts[HASHED]} fully and {counts[SAMPLED]} partly checked"
        over = f", {self.files_over_budget} file(s) larger than the budget" if self.files_over_budget else ""
        damaged = self.damaged
        if not damaged:
            return f"{len(self.backups)} backup(s) OK: {hashed}; {coverage}{over}"
        shown = name_all([check.describe() for check in damaged])
        return f"{len(damaged)} of {len(self.backups)} backup(s) damaged or unreadable: {shown}; {hashed}{over}"


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


@dataclass
class _Backup:
    """Working state of one readable backup during a run."""

    metadata: BackupMetadata
    problems: list[Problem]
    files: list[FileEntry] = field(default_factory=list)  # files whose contents can be hashed
    has_manifest: bool = True  # False: no file list to hash against, structure only
    hashed: int = 0


Inode = tuple[int, int]


def _inodes(backup_dir: Path, backups: list[_Backup]) -> dict[Inode, list[tuple[_Backup, FileEntry]]]:
    """Who lists each inode: a hard-linked file is one inode shared by several backups."""
    users: dict[Inode, list[tuple[_Backup, FileEntry]]] = {}
    for backup in backups:
        root = backup_dir / backup.metadata.backup_id
        for entry in backup.files:
            try:
                info = os.lstat(root / entry.path)
            except OSError as exc:  # vanished since the structure check: say so, never skip silently
                backup.problems.append(Problem(entry.path, "unreadable", exc.strerror or str(exc)))
                continue
            users.setdefault((info.st_dev, info.st_ino), []).append((backup, entry))
    return users


def _fill(order: list[Inode], size_of: dict[Inode, int], budget: int) -> list[Inode]:
    """Inodes in order while they fit (a large one skipped leaves room for smaller ones after it)."""
    picked, left = [], budget
    for inode in order:
        if size_of[inode] <= left:
            picked.append(inode)
            left -= size_of[inode]
    return picked


def _pick(
    users: dict[Inode, list[tuple[_Backup, FileEntry]]], first: _Backup | None, budget: int, rng: random.Random
) -> list[Inode]:
    """The first backup's inodes first, then every other one, each in a random order, within ``budget``.

    The first backup may claim only half the budget while other backups exist: were it larger than
    the budget, it would otherwise take every run and the older backups would never be hashed.
    """
    size_of = {inode: listed[0][1].size for inode, listed in users.items()}
    mine = [inode for inode, listed in users.items() if any(backup is first for backup, _ in listed)]
    mine_set = set(mine)  # built once: inside the comprehension it was rebuilt per inode (minutes at 100,000)
    others = [inode for inode in users if inode not in mine_set]
    rng.shuffle(mine)
    picked = _fill(mine, size_of, budget // 2 if others else budget)
    chosen = set(picked)
    rest = [inode for inode in mine if inode not in chosen] + others
    rng.shuffle(rest)
    return picked + _fill(rest, size_of, budget - sum(size_of[inode] for inode in picked))


def _first(backups: list[_Backup]) -> _Backup | None:
    """The newest recovery point (what "latest" restores from), else the newest backup of any kind."""
    for backup in backups:
        if backup.metadata.status is BackupStatus.SUCCESS and PRE_RECOVERY_TAG not in backup.metadata.tags:
            return backup
    return backups[0] if backups else None


def check_backups_sampled(backup_dir: Path, budget_bytes: int, seed: int | None = None) -> BackupsCheck:
    """Verify every backup's structure and re-hash file contents within ``budget_bytes``.

    ``seed`` fixes the random order (None: a fresh order each run). A budget at least the size of
    every distinct file hashes everything, whatever the seed.
    """
    if budget_bytes < 0:
        raise InvalidArgumentError(f"budget_bytes must be >= 0, got {budget_bytes} ([backups] health_read_mib)")
    found, unreadable = read_backups(backup_dir)
    backups = []
    for metadata in found:
        report = verify_backup_dir(backup_dir / metadata.backup_id, read_data=False)
        broken = {problem.path for problem in report.problems}
        files = [e for e in report.manifest.files if e.path not in broken] if report.manifest else []
        backups.append(_Backup(metadata, list(report.problems), files, has_manifest=report.manifest is not None))

    users = _inodes(backup_dir, backups)
    picked = _pick(users, _first(backups), budget_bytes, random.Random(seed))
    too_large = sum(1 for listed in users.values() if listed[0][1].size > budget_bytes)

    def digest(inode: Inode) -> tuple[str, int] | OSError:
        backup, entry = users[inode][0]
        try:
            return hash_file(backup_dir / backup.metadata.backup_id / entry.path)
        except OSError as exc:
            return exc

    bytes_hashed = 0
    for inode, outcome in map_in_batches(digest, picked, lambda inode: users[inode][0][1].size):
        if not isinstance(outcome, OSError):
            bytes_hashed += outcome[1]
        for backup, entry in users[inode]:  # one read, judged against every manifest that lists it
            backup.hashed += 1
            if isinstance(outcome, OSError):
                backup.problems.append(Problem(entry.path, "unreadable", outcome.strerror or str(outcome)))
            elif outcome[0] != entry.sha256:
                backup.problems.append(Problem(entry.path, "hash", "contents differ from the manifest (corrupted)"))

    checks = [_result(backup) for backup in backups]
    checks += [
        BackupCheck(u.backup_id, UNREADABLE, [], False, STRUCTURE_ONLY, [u.problem], unreadable=True)
        for u in unreadable
    ]
    result = BackupsCheck(checks, budget_bytes, bytes_hashed, len(picked), too_large)
    log.info("sampled the backups in %s: %s", backup_dir, result.summary())
    return result


def _result(backup: _Backup) -> BackupCheck:
    # Files the structure check already found missing or resized cannot be hashed; every other one counts.
    if backup.has_manifest and backup.hashed == len(backup.files):
        contents = HASHED
    else:
        contents = SAMPLED if backup.hashed else STRUCTURE_ONLY
    metadata = backup.metadata
    return BackupCheck(
        backup_id=metadata.backup_id,
        status=metadata.status.value,
        tags=list(metadata.tags),
        ok=not backup.problems,
        contents=contents,
        problems=[str(problem) for problem in backup.problems],
        kinds=[f"{problem.kind} problem(s)" for problem in backup.problems],
    )
