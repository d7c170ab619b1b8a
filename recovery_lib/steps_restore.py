"""Procedure steps about backups and restores: which backups exist and verify, which one to
restore from, the dry run and its approval, the restore, and the backups a procedure takes.

A backup tagged "verified" is only ever taken of a state that passed the trading gate (config,
data, reconciliation) and the procedure's own criteria: a broken state is never recorded as a good
recovery point for a later "latest" to pick.
"""

from __future__ import annotations

from typing import Any

from .backup import BackupError, BackupMetadata, BackupStatus
from .checklist import Checklist
from .errors import RecoveryError
from .gate import trading_gate
from .notebook import Run
from .records import to_plain
from .rendering import LiveWidget, human_age, human_size, human_time
from .restore import RestorePlan, RestoreResult
from .restore_journal import RestoreError
from .steps_base import Halted, NothingToDo, halt, halted, idle, refused

VERIFIED_TAG = "verified"


def backups_overview(run: Run) -> Any:
    """Every backup with age, size, status and verification (structure of all, contents within the
    health check's budget); unreadable and damaged backups are listed, never hidden. Recorded as ``backups``."""
    import pandas as pd

    checked = run.manager.check_all()
    by_id = {c.backup_id: c for c in checked.backups}
    rows = []
    for metadata in run.manager.list_backups():
        check = by_id.get(metadata.backup_id)
        rows.append(
            {
                "backup_id": metadata.backup_id,
                "type": metadata.backup_type.value,
                "created_at": metadata.created_at,
                "age_h": round(metadata.age_hours(), 2),
                "files": metadata.files_count,
                "size_bytes": metadata.size_bytes,
                "status": metadata.status.value,
                "verifies": check.ok if check else None,
                "contents": check.contents if check else None,
                "problems": check.problems[:3] if check else [],
                "tags": ", ".join(metadata.tags),
            }
        )
    unreadable = [c for c in checked.backups if c.unreadable]
    shown = [
        {
            "backup": row["backup_id"],
            "type": row["type"],
            "taken (UTC)": human_time(row["created_at"]),
            "age": human_age(row["age_h"]),
            "files": row["files"],
            "size": human_size(row["size_bytes"]),
            "status": row["status"],
            "verification": _verification_text(row["verifies"], row["contents"], row["problems"]),
            "tags": row["tags"],
        }
        for row in rows
    ]
    shown += [
        {
            "backup": c.backup_id,
            "type": "?",
            "taken (UTC)": "?",
            "age": "?",
            "files": "?",
            "size": "?",
            "status": "unreadable",
            "verification": "❌ UNREADABLE: " + "; ".join(c.problems[:2]),
            "tags": "",
        }
        for c in unreadable
    ]
    columns = ["backup", "type", "taken (UTC)", "age", "files", "size", "status", "verification", "tags"]
    frame = pd.DataFrame(shown, columns=columns)  # for people; the record keeps the raw values
    run.record(
        "backups",
        {
            "count": len(rows),
            "backups": rows,
            "unreadable": [{"backup_id": c.backup_id, "problems": c.problems} for c in unreadable],
            "damaged": [c.backup_id for c in checked.damaged],
            "bytes_hashed": checked.bytes_hashed,
        },
    )
    if not any(row["status"] == BackupStatus.SUCCESS.value and row["verifies"] for row in rows):
        run.facts.no_backup = True
    return frame


def _verification_text(ok: bool | None, contents: str | None, problems: list[str]) -> str:
    if ok is None:
        return "not checked"
    if not ok:
        return "❌ DAMAGED: " + "; ".join(problems[:2])
    return {
        "hashed": "✅ verifies (every byte hashed)",
        "sampled": "✅ verifies (structure; contents partly hashed this run)",
    }.get(contents or "", "✅ structure verifies (contents not hashed this run)")


class BackupChoice:
    """The backup a procedure restores from: the parameter's choice, or the picker's in JupyterLab."""

    def __init__(self, run: Run, metadata: BackupMetadata | None, skipped: list[str], widget: Any = None) -> None:
        self.run = run
        self.metadata = metadata
        self.skipped = [to_plain(reason, run.site.root) for reason in skipped]  # site paths, not the host's
        self.widget = widget

    @property
    def backup_id(self) -> str | None:
        if self.widget is not None and self.widget.value:
            return str(self.widget.value)
        return self.metadata.backup_id if self.metadata else None

    def _repr_html_(self) -> str:
        import html

        skipped = "".join(f"<li>{html.escape(s)}</li>" for s in self.skipped)
        listed = f"<p>Passed over:</p><ul>{skipped}</ul>" if skipped else ""
        if self.metadata is None:
            return "<p><b>❌ No backup that verifies and can fix the fault.</b></p>" + listed
        return (
            f"<p>Selected backup <code>{html.escape(self.metadata.backup_id)}</code>, taken "
            f"{human_time(self.metadata.created_at)} ({human_age(self.metadata.age_hours())} ago): "
            f"{html.escape(self.metadata.description or 'no description')}</p>" + listed
        )

    def __repr__(self) -> str:
        passed_over = "".join(f"\n  passed over: {s}" for s in self.skipped)
        if self.metadata is None:
            return "No backup that verifies and can fix the fault." + passed_over
        return f"Selected backup {self.metadata.backup_id} ({human_age(self.metadata.age_hours())} old)" + passed_over


def choose_backup(run: Run, backup_id: str, needs: tuple[str, ...] = (), required: bool = True) -> BackupChoice:
    """Resolve ``backup_id``: "latest" is the newest SUCCESS backup that verifies, holds ``needs`` and whose
    restored categories pass the procedure's checks (a backup of the broken state fixes nothing).

    ``required``: halt the run when there is none (B does not: a repair in place may still work).
    In interactive runs the choice also comes with a picker of every good candidate.
    """
    if skipped := halted(run):
        return BackupChoice(run, None, [skipped.reason])
    notes_before = len(run.manager.notes)
    passed_over: list[str] = []
    metadata = None
    try:
        # The manager's own rule for "latest", so notebooks and the CLI can never pick differently.
        metadata = run.manager.latest(needs) if backup_id == "latest" else run.manager.get_backup(backup_id)
    except BackupError as exc:
        passed_over.append(str(exc))
    if metadata is not None and backup_id != "latest":  # the rule "latest" follows holds for a named one too
        unfit = run.manager.fitness(metadata.backup_id, needs)
        if unfit:
            passed_over += [f"{problem}: it cannot fix the fault; choose another backup or latest" for problem in unfit]
            metadata = None
    passed_over = run.manager.notes[notes_before:] + passed_over
    run.record(
        "backup_selection",
        {
            "requested": backup_id,
            "backup_id": metadata.backup_id if metadata else None,
            "created_at": metadata.created_at if metadata else None,
            "age_hours": round(metadata.age_hours(), 3) if metadata else None,
            "skipped": passed_over,
        },
    )
    if metadata is None:
        run.facts.no_backup = True
        if required:
            halt(run, f"no usable backup ({backup_id})")
        return BackupChoice(run, None, passed_over)
    widget = None
    if run.gate.interactive:
        import ipywidgets as widgets

        options = [
            (f"{m.backup_id}  ({human_age(m.age_hours())} old, {human_size(m.size_bytes)})", m.backup_id)
            for m in run.manager.list_backups()
            if m.status is BackupStatus.SUCCESS
        ]
        picker = widgets.Dropdown(
            options=options, value=metadata.backup_id, description="Backup:", layout=widgets.Layout(width="90%")
        )
        # The archived record cannot run the widget: it shows which backup was picked instead.
        widget = LiveWidget(picker, lambda: f"Backup picked: {picker.value} (in the picker; run the next cell to plan)")
        picker.observe(lambda _: widget.refresh(), names="value")
    return BackupChoice(run, metadata, passed_over, widget)


def plan(
    run: Run, choice: BackupChoice, config: bool = False, state: bool = False, data: bool = False
) -> RestorePlan | Halted:
    """The dry run: the restore plan, recorded, and put up for approval. It refuses exactly what the
    real restore would refuse (a damaged backup included)."""
    if skipped := halted(run):
        return skipped
    try:
        restore_plan = run.manager.plan_restore(choice.backup_id or "latest", config, state, data)
    except (BackupError, RestoreError) as exc:
        run.facts.restore_failed = True
        return halt(run, f"dry run refused: {exc}")
    run.record("restore_plan", restore_plan.to_dict())
    return restore_plan


def approval(run: Run, restore_plan: RestorePlan | Halted) -> Any:
    """The approval gate for the restore (widgets in JupyterLab, the ``approve`` parameter headless)."""
    if isinstance(restore_plan, Halted):
        return restore_plan
    if restore_plan.blockers:
        return halt(run, f"restore blocked: {restore_plan.blockers[0]}")
    # The plan itself is displayed just above: the gate repeats only what is being approved.
    what = (
        f"Restore {', '.join(restore_plan.categories)} from backup {restore_plan.backup_id}: "
        f"{len(restore_plan.changes)} file(s) to create, replace or delete, {restore_plan.bytes_to_write:,} bytes "
        "to write (the plan above)."
    )
    if "data" in restore_plan.categories:
        what += " Then the trades the exchange has after the restore point are written back into the ledger."
    return run.gate.request("restore", what, step="Perform actual restore")


def restore(run: Run, restore_plan: RestorePlan | Halted) -> RestoreResult | Halted:
    """Apply exactly the approved plan. Fails closed (raises) without approval."""
    if isinstance(restore_plan, Halted):
        return restore_plan
    if skipped := halted(run) or refused(run, "restore"):
        return skipped
    try:
        result = run.manager.apply_restore(restore_plan)
    except (BackupError, RestoreError) as exc:
        run.facts.restore_failed = True
        run.record("restore_result", {"ok": False, "error": str(exc)})
        return halt(run, f"restore failed: {exc}")
    run.record(
        "restore_result",
        {
            "ok": result.ok,
            "backup_id": restore_plan.backup_id,
            "backup_created_at": restore_plan.backup_created_at,
            "categories": list(restore_plan.categories),
            "files_restored": [a.path for a in restore_plan.changes],
            "files_written": result.files_written,
            "bytes_written": result.bytes_written,
            "pre_recovery_backup_id": result.pre_recovery_backup_id,
            "problems": result.problems,
            "duration_s": result.duration_s,
        },
    )
    if not result.ok:
        run.facts.restore_failed = True
        halt(run, "restore did not verify: " + "; ".join(result.problems[:3]))
    return result


def create_backup(run: Run, name: str, description: str, tags: list[str]) -> str | Halted:
    """A backup taken by a procedure step (emergency, manual); recorded as ``name``. Never tagged "verified":
    that is :func:`verified_backup`'s to give."""
    if VERIFIED_TAG in tags:
        raise ValueError(f"{name}: a backup tagged {VERIFIED_TAG!r} is taken with verified_backup(), behind the gate")
    if skipped := refused(run, "backup", f"Create a backup of the site: {description} (tags: {', '.join(tags)})"):
        run.record(name, {"ok": False, "error": skipped.reason})
        return skipped
    try:
        backup_id = run.manager.create_backup(description=description, tags=tags)
    except RecoveryError as exc:  # a backup error, or a lock that cannot be taken: named, never a traceback
        run.record(name, {"ok": False, "error": str(exc)})
        return halt(run, f"{name} failed: {exc}")
    run.record(name, {"ok": True, "backup_id": backup_id, "tags": tags})
    return backup_id


class NotTaken:
    """A "verified" backup that was refused because the state did not verify; ``reason`` says why."""

    ok = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"⛔ Not taken: the state is not verified ({self.reason}). It is not backed up as verified."

    def _repr_html_(self) -> str:
        import html

        return f"<p><b>⛔ Not taken</b>: the state is not verified ({html.escape(self.reason)}).</p>"


def verified_backup(
    run: Run, name: str, description: str, tags: list[str], before: Checklist | None = None
) -> str | NotTaken:
    """A backup tagged "verified" (post-recovery, verification): only of a state that passes the trading
    gate and every criterion in ``before``, and never after the run halted."""
    reasons = [f"the procedure halted ({run.halted})"] if run.halted else []
    if not reasons:
        gate = trading_gate(run.site)
        reasons += [f"{check.name}: {check.detail}" for check in gate.failing]
        failed = [r for r in (before.rows if before else []) if r["passed"] is False]
        reasons += [f"criterion '{r['criterion']}' failed ({r['evidence']})" for r in failed]
    if reasons:
        run.record(name, {"ok": False, "skipped": True, "reasons": reasons})
        return NotTaken("; ".join(reasons))
    tags = list(dict.fromkeys([*tags, VERIFIED_TAG]))
    if skipped := refused(run, "backup", f"Create a backup of the site: {description} (tags: {', '.join(tags)})"):
        run.record(name, {"ok": False, "error": skipped.reason})
        return NotTaken(skipped.reason)
    try:
        backup_id = run.manager.create_backup(description=description, tags=tags)
    except RecoveryError as exc:
        run.record(name, {"ok": False, "error": str(exc)})
        return NotTaken(f"the backup failed: {exc}")
    run.record(name, {"ok": True, "backup_id": backup_id, "tags": tags})
    return backup_id


def pre_recovery_backup(run: Run) -> str | Halted | NothingToDo:
    """Back up the current state before restoring (runbook B step 5); nothing left to save is not an error."""
    if skipped := halted(run) or idle(run):
        return skipped
    tops = [run.site.path(top) for paths in run.site.categories.values() for top in paths]
    if not any(top.exists() for top in tops):
        run.record("pre_recovery_backup", {"ok": True, "backup_id": None, "note": "nothing left to save"})
        return "Nothing left in the site to save."
    summary = "Create a backup of the site: Pre-recovery current state (tags: pre-recovery, emergency)"
    if skipped := refused(run, "backup", summary):
        return skipped
    try:
        backup_id = run.manager.create_backup(
            description="Pre-recovery current state", tags=["pre-recovery", "emergency"]
        )
    except RecoveryError as exc:
        run.record("pre_recovery_backup", {"ok": False, "error": str(exc)})
        return halt(run, f"pre-recovery backup failed: {exc}")
    run.record("pre_recovery_backup", {"ok": True, "backup_id": backup_id})
    return backup_id
