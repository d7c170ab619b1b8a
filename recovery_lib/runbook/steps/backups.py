"""Procedure D's steps: the backup directory, every backup verified, damaged ones quarantined (never
deleted: they are evidence), and the automated schedule as really installed."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.backup import BackupError, BackupStatus
from recovery_lib.checks.builtin import writable_problem
from recovery_lib.checks.default import health_check
from recovery_lib.clock import now
from recovery_lib.rendering import Findings, frame_html, frame_text, name_all
from recovery_lib.runbook.restore_record_types import (
    BackupDirRecord,
    BackupScheduleRecord,
    BackupVerificationRecord,
    QuarantineRecord,
)
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import GO_ON, Halted, refused, step
from recovery_lib.schedule import schedule_status


@step(on_halt=GO_ON)  # each of Procedure D's steps asks its own approval
def backup_dir_status(run: Run) -> Findings | Halted:
    """Runbook D step 1: the backup directory exists (created if not; a file in its place is moved
    aside, never deleted) and is writable."""
    directory = run.manager.backup_dir
    created = False
    fixed_mode = False
    moved_aside = None
    if directory.exists() and not directory.is_dir():
        aside = directory.with_name(f"{directory.name}.not-a-directory-{now():%Y%m%dT%H%M%SZ}")
        summary = f"Move the file {run.relative(directory)} (where the backup directory belongs) aside to {aside.name}"
        if skipped := refused(run, "backup", summary):
            return skipped
        directory.rename(aside)
        moved_aside = run.relative(aside)
    if not directory.exists():
        if skipped := refused(run, "backup", f"Create the missing backup directory {run.relative(directory)}"):
            return skipped
        directory.mkdir(parents=True)
        created = True
    elif not directory.stat().st_mode & stat.S_IWUSR:
        if skipped := refused(run, "backup", f"Give the owner write permission on {run.relative(directory)}"):
            return skipped
        directory.chmod(stat.S_IMODE(directory.stat().st_mode) | stat.S_IWUSR)
        fixed_mode = True
    writable = health_check.run("backups", run.site)
    backups = run.manager.list_backups()
    if created or not any(m.status is BackupStatus.SUCCESS for m in backups):
        run.facts.no_backup = True  # runbook: "Backup not available" escalates to level 2
    status = BackupDirRecord(
        backup_dir=run.relative(directory),
        created=created,
        permissions_fixed=fixed_mode,
        moved_aside=moved_aside,
        writable=writable_problem(directory) is None,
        backups=len(backups),
        message=writable.message,
    )
    run.record("backup_dir", status)
    return Findings("Backup directory", status)


@dataclass
class BackupVerification:
    """Every backup hashed: the rows a person reads, and which ones are damaged or unreadable."""

    rows: list[dict[str, str]] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # backup directory names, unreadable ones included
    quarantined: list[str] = field(default_factory=list)  # set by quarantine_damaged: where each damaged one went
    quarantined_ids: list[str] = field(default_factory=list)  # idem: which damaged backups moved (criteria read this)

    def frame(self) -> Any:
        """A table: mark, backup, status, problems."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["", "backup", "status", "problems"])

    def _repr_html_(self) -> str:
        return frame_html(self.frame())

    def __repr__(self) -> str:
        return frame_text(self.frame())


@step(on_halt=GO_ON)  # it only reads; never replayed by a resumed run: the verdict is about the backups now
def verify_all_backups(run: Run) -> BackupVerification:
    """Runbook D step 2: every backup verified, every byte hashed; unreadable ones listed too."""
    result = BackupVerification()
    for metadata in run.manager.list_backups():
        report = run.manager.verify_backup(metadata.backup_id, read_data=True)
        shown = name_all([str(p) for p in report.problems], [f"{p.kind} problem(s)" for p in report.problems])
        result.rows.append(
            {
                "": "✅ verifies" if report.ok else "❌ DAMAGED",
                "backup": metadata.backup_id,
                "status": metadata.status.value,
                "problems": shown,
            }
        )
        if not report.ok:
            result.damaged.append(metadata.backup_id)
    for unreadable in run.manager.unreadable:
        row = {"": "❌ UNREADABLE", "backup": unreadable.backup_id, "status": "?", "problems": str(unreadable)}
        result.rows.append(row)
        result.damaged.append(unreadable.backup_id)
    run.record(
        "backup_verification",
        BackupVerificationRecord(rows=result.rows, damaged=len(result.damaged), ids=result.damaged),
    )
    return result


@step(on_halt=GO_ON)  # asks its own approval; run again after a resume, it moves only what is damaged now
def quarantine_damaged(run: Run, verification: BackupVerification) -> Findings | Halted:
    """Move every damaged or unreadable backup out of use (``.quarantine-<id>`` in the backup directory):
    never restored from, never a parent of a new backup, kept as evidence for the post-mortem."""
    if not verification.damaged:
        run.record("quarantine", QuarantineRecord(ok=True, quarantined=[], failed=[]))
        return Findings("Quarantine", {"ok": True, "quarantined": "none: every backup verifies"})
    names = ", ".join(verification.damaged)
    summary = f"Move the damaged backups out of use (kept as evidence, never deleted): {names}"
    if skipped := refused(run, "backup", summary):
        return skipped
    moved, failed = [], []
    for backup_id in verification.damaged:
        try:
            moved.append(run.manager.quarantine_backup(backup_id, "failed verification in Procedure D"))
        except BackupError as exc:
            failed.append(f"{backup_id}: {exc}")
        else:
            verification.quarantined_ids.append(backup_id)
    run.record("quarantine", QuarantineRecord(ok=not failed, quarantined=moved, failed=failed))
    verification.quarantined = moved
    return Findings(
        "Quarantine",
        {"ok": not failed, "quarantined": moved or "none", "failed": failed or "none"},
    )


def shown_path(run: Run, path: Path) -> str:
    """A path as records name it: relative to the site inside it, ``../<name>`` beside it (the sandbox's
    unit directory), absolute elsewhere (``/etc/systemd/system``): records hold no host path of the site."""
    root = run.site.root
    if path.parent == root.parent and path != root:
        return f"../{path.name}"
    return run.relative(path)


@step(on_halt=GO_ON)  # it only reads
def backup_schedule(run: Run) -> str:
    """Runbook D step 4: the automated backup schedule, as really installed (systemd units or crontab)
    against what recovery.toml declares; ❌ names what is missing and the command that installs it."""
    status = schedule_status(run.site, show=lambda path: shown_path(run, path))
    record = status.to_record("backup")
    run.record("backup_schedule", BackupScheduleRecord(**record))
    if not status.confirmed("backup"):
        return "❌ Automated backup schedule NOT confirmed: " + "; ".join(status.problems("backup")) + "."
    runs = {None: "the unit directory is not one systemd reads, so nothing here says whether it runs", True: "running"}
    installed = f"{record['scheduler']}; read {record['where']}"
    return f"✅ Automated backups installed ({installed}): {'; '.join(record['entries'])} ({runs[status.active]})"
