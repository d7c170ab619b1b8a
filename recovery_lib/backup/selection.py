"""Which backup serves a purpose: the latest recovery point, the parent of a new backup, and the newest
verified backup that retention must keep.

Each takes the backups newest first and a way to verify one (the caller's, so that every answer is
made against the disk as it is now); none writes anything.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path

from recovery_lib.backup.listing import UnreadableBackup
from recovery_lib.backup.model import PRE_RECOVERY_TAG, BackupMetadata, BackupStatus, BackupType, Manifest
from recovery_lib.backup.verify import VerifyReport
from recovery_lib.errors import BackupError
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

SHOWN_REASONS = 3  # a "nothing qualifies" error lists this many reasons, then counts the rest

Verify = Callable[..., VerifyReport]  # (backup_id, read_data=...) -> the report


def matching(
    backups: list[BackupMetadata], tags: list[str] | None, backup_type: BackupType | str | None
) -> list[BackupMetadata]:
    """Those of ``backups`` with any of ``tags`` (if given) and of ``backup_type`` (if given), in order."""
    if tags:
        backups = [m for m in backups if set(tags) & set(m.tags)]
    if backup_type:
        backups = [m for m in backups if m.backup_type == BackupType(backup_type)]
    return backups


def pick_latest(
    backups: Iterable[BackupMetadata],
    unreadable: Callable[[], list[UnreadableBackup]],
    needs: tuple[str, ...],
    verify: Verify,
    fitness: Callable[[str, tuple[str, ...]], list[str]],
    note: Callable[[str], None],
    backup_dir: Path,
    next_step: str = "",
) -> tuple[BackupMetadata, VerifyReport]:
    """The newest SUCCESS backup that holds ``needs``, is not a pre-recovery snapshot, verifies with
    every byte hashed and can fix the fault (``fitness`` finds no problem), with its verification.

    Each backup passed over is told to ``note`` with the reason, and so is each of the ``unreadable()``
    ones (never candidates, never silently). Raises :class:`BackupError` when none qualifies.
    """
    passed_over: list[str] = []
    chosen = None
    for metadata in backups:
        if metadata.status is not BackupStatus.SUCCESS:
            continue
        if not all(metadata.includes(category) for category in needs):
            continue  # e.g. a config-only pre-deploy backup when data is to be restored
        if PRE_RECOVERY_TAG in metadata.tags:
            continue  # a snapshot of the broken state a restore replaced: evidence, not a recovery point
        report = verify(metadata.backup_id, read_data=True)
        if not report.ok:
            passed_over.append(f"skipped backup {metadata.backup_id} for 'latest': {report.summary()}")
        elif unfit := fitness(metadata.backup_id, needs):
            passed_over.append(
                f"skipped backup {metadata.backup_id} for 'latest': it verifies but cannot fix the fault: "
                + "; ".join(unfit)
            )
        else:
            chosen = metadata, report
            break
        note(passed_over[-1])
    said = [f"skipped backup {item.backup_id} for 'latest': unreadable: {item.problem}" for item in unreadable()]
    for reason in said:
        note(reason)
    if chosen is None:
        raise no_recovery_point(backup_dir, needs, passed_over + said, next_step)
    log.info("'latest' is backup %s", chosen[0].backup_id)
    return chosen


def no_recovery_point(backup_dir: Path, needs: tuple[str, ...], reasons: list[str], next_step: str = "") -> BackupError:
    """Nothing qualifies as 'latest': say what was looked for, what to do next (``next_step``: the
    caller's, e.g. a replica to restore from; default: Procedure D) and the first reasons each was
    passed over."""
    holding = f" holding {', '.join(needs)}" if needs else ""
    checks = f" and passes the {', '.join(needs)} check(s)" if needs else ""
    shown = "".join(f" {reason}." for reason in reasons[:SHOWN_REASONS])
    more = f" (+{len(reasons) - SHOWN_REASONS} more in the notes)" if len(reasons) > SHOWN_REASONS else ""
    log.warning("no backup%s in %s qualifies as 'latest' (%d passed over)", holding, backup_dir, len(reasons))
    return BackupError(
        f"no SUCCESS backup{holding} in {backup_dir} verifies{checks}; nothing to restore from "
        f"({next_step or 'Procedure D: escalate and create a new backup'}).{shown}{more}"
    )


def replica_next_step(site: Site, needs: tuple[str, ...]) -> str:
    """When no local backup serves and ``site`` has replicas: the restore from one, as a command to run
    ("" without replicas: Procedure D is then the next step)."""
    if not site.replicas:
        return ""
    names = ", ".join(spec.name for spec in site.replicas)
    flags = " ".join(f"--{category}" for category in needs) or "--all"
    command = (
        f"recovery restore latest --from-replica {site.replicas[0].name} {flags} --dry-run "
        f"--site {shlex.quote(str(site.root))}"
    )
    return (
        f"a replica may hold a good copy ({names}): next, `{command}` (then --yes instead of --dry-run); "
        "`recovery replica list` shows what each holds; if none does, Procedure D: escalate and create a new backup"
    )


def pick_parent(backups: Iterable[BackupMetadata], verify: Verify) -> tuple[BackupMetadata, Manifest] | None:
    """The newest SUCCESS backup that ``verify`` passes: a new backup links unchanged files from it.

    A backup whose documents are damaged is never a parent; a file whose stored copy was truncated or
    replaced is copied afresh instead of linked (backup/create.py), so damage is not shared into new backups.
    """
    for metadata in backups:
        if metadata.status is BackupStatus.SUCCESS:
            report = verify(metadata.backup_id, read_data=False)
            if report.ok and report.manifest is not None:
                log.debug("parent of the new backup: %s", metadata.backup_id)
                return metadata, report.manifest
    return None


def newest_verified(backups: Iterable[BackupMetadata], verify: Verify) -> str | None:
    """The newest recovery point (SUCCESS, verifies, not a pre-recovery snapshot): prune never removes it."""
    for metadata in backups:
        if metadata.status is not BackupStatus.SUCCESS or PRE_RECOVERY_TAG in metadata.tags:
            continue
        if verify(metadata.backup_id, read_data=False).ok:
            return metadata.backup_id
    return None
