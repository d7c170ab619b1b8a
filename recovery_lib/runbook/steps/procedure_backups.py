"""The backups a procedure takes: an emergency or manual backup, the pre-recovery backup of the state a
restore replaces, and a backup tagged "verified".

A backup tagged "verified" is only ever taken of a state that passed the trading gate (config,
data, reconciliation) and the procedure's own criteria: a broken state is never recorded as a good
recovery point for a later "latest" to pick.
"""

from __future__ import annotations

from typing import Any

from recovery_lib.checks.gate import trading_gate
from recovery_lib.errors import RecoveryError, StaleReplay
from recovery_lib.runbook.checklist import Checklist
from recovery_lib.runbook.restore_record_types import BackupTakenRecord, PreRecoveryBackupRecord
from recovery_lib.runbook.resume import Earlier
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import (
    GO_ON,
    Again,
    Halted,
    NothingToDo,
    Replay,
    did,
    halt,
    once,
    refused,
    step,
)


def _named(run: Run, name: str, *_: Any, **__: Any) -> str:
    """Which of a procedure's backups a call takes: its record's name."""
    return name


def _taken_then(run: Run, earlier: Earlier, name: str, *_: Any, **__: Any) -> str:
    """The backup ``name`` the failed run took (its facts: the backup is still there)."""
    backup_id = str(earlier.record(name).get("backup_id") or "")
    if not backup_id:
        raise StaleReplay(f"the failed run's {name} record names no backup")
    return did(run, name, backup_id, f"backup {backup_id} taken")


def _taken_facts(run: Run, value: Any, name: str, *_: Any, **__: Any) -> dict[str, Any]:
    backup_id = (run.recorder.values.get(name) or {}).get("backup_id")
    return {"backups": [backup_id] if backup_id else [], "what": f"backup {backup_id} was taken"}


def _standalone_facts(run: Run, value: Any, name: str, *_: Any, **__: Any) -> dict[str, Any]:
    return {**_taken_facts(run, value, name), "standalone": True}


BACKUP_TAKEN = Replay(_taken_then, _taken_facts, _named)  # a procedure's backup is taken once, even across a resume
# A backup taken by create_backup stands on its own: taken after a failure (D after a halt), a resume keeps it.
BACKUP_TAKEN_ANYWAY = Replay(_taken_then, _standalone_facts, _named)

VERIFIED_TAG = "verified"


@step(on_halt=GO_ON, replay=BACKUP_TAKEN_ANYWAY)  # asks its own approval: D takes its emergency backup after a halt too
def create_backup(run: Run, name: str, description: str, tags: list[str]) -> str | Halted:
    """A backup taken by a procedure step (emergency, manual); recorded as ``name``. Never tagged "verified":
    that is :func:`verified_backup`'s to give."""
    if VERIFIED_TAG in tags:
        raise ValueError(f"{name}: a backup tagged {VERIFIED_TAG!r} is taken with verified_backup(), behind the gate")
    if again := once(run, name):
        return again
    if skipped := refused(run, "backup", f"Create a backup of the site: {description} (tags: {', '.join(tags)})"):
        run.record(name, BackupTakenRecord(ok=False, error=skipped.reason))
        return skipped
    try:
        backup_id = run.manager.create_backup(description=description, tags=tags)
    except RecoveryError as exc:  # a backup error, or a lock that cannot be taken: named, never a traceback
        run.record(name, BackupTakenRecord(ok=False, error=str(exc)))
        return halt(run, f"{name} failed: {exc}")
    run.record(name, BackupTakenRecord(ok=True, backup_id=backup_id, tags=tags))
    return did(run, name, backup_id, f"backup {backup_id} taken")


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


def _taken_once(run: Run, name: str, *_: Any, **__: Any) -> tuple[str, str]:
    """A procedure's backup ``name`` is taken once per run: run again, it names the one taken."""
    return name, ""


def _not_taken(run: Run, name: str, reasons: list[str]) -> NotTaken:
    """Record why the "verified" backup ``name`` was not taken, and say so."""
    run.record(name, BackupTakenRecord(ok=False, skipped=True, reasons=reasons))
    return NotTaken("; ".join(reasons))


def _not_taken_after_halt(run: Run, halted: Halted, name: str, *_: Any, **__: Any) -> NotTaken:
    """A halted procedure never takes a "verified" backup: the state it leaves did not verify."""
    return _not_taken(run, name, [f"the procedure halted ({halted.reason})"])


@step(again=_taken_once, on_halt=_not_taken_after_halt, replay=BACKUP_TAKEN)
def verified_backup(
    run: Run, name: str, description: str, tags: list[str], before: Checklist | None = None
) -> str | NotTaken:
    """A backup tagged "verified" (post-recovery, verification): only of a state that passes the trading
    gate and every criterion in ``before``, and never after the run halted. Taken once per run."""
    gate = trading_gate(run.site)
    reasons = [f"{check.name}: {check.detail}" for check in gate.failing]
    failed = [r for r in (before.rows if before else []) if r["passed"] is False]
    reasons += [f"criterion '{r['criterion']}' failed ({r['evidence']})" for r in failed]
    if reasons:
        return _not_taken(run, name, reasons)
    tags = list(dict.fromkeys([*tags, VERIFIED_TAG]))
    if skipped := refused(run, "backup", f"Create a backup of the site: {description} (tags: {', '.join(tags)})"):
        run.record(name, BackupTakenRecord(ok=False, error=skipped.reason))
        return NotTaken(skipped.reason)
    try:
        backup_id = run.manager.create_backup(description=description, tags=tags)
    except RecoveryError as exc:
        run.record(name, BackupTakenRecord(ok=False, error=str(exc)))
        return NotTaken(f"the backup failed: {exc}")
    run.record(name, BackupTakenRecord(ok=True, backup_id=backup_id, tags=tags))
    return did(run, name, backup_id, f"backup {backup_id} taken")


def _saved_then(run: Run, earlier: Earlier) -> str:
    """The pre-recovery backup of the failed run. Before its change happened, it must hold the site as it
    is now, and the change reuses it; once the change happened, it is what it saved then."""
    assert run.resume is not None
    saved = earlier.record("pre_recovery_backup")
    backup_id = saved.get("backup_id")
    if not backup_id:
        return str(saved.get("note") or "Nothing left in the site to save.")
    if run.resume.replays("apply_remedy") or run.resume.replays("restore"):
        return str(backup_id)
    if not run.manager.adopt_pre_recovery_backup(str(backup_id), str(saved.get("fingerprint") or "")):
        raise StaleReplay(f"backup {backup_id} no longer holds the site as it is now")
    return str(backup_id)


def _saved_facts(run: Run, value: Any) -> dict[str, Any]:
    backup_id = (run.recorder.values.get("pre_recovery_backup") or {}).get("backup_id")
    return {"backups": [backup_id] if backup_id else [], "site": True, "what": f"pre-recovery backup {backup_id}"}


@step(
    prepares=("pre_recovery_backup", "the pre-recovery backup"),
    idle=True,
    replay=Replay(_saved_then, _saved_facts),
)
def pre_recovery_backup(run: Run) -> str | Again | Halted | NothingToDo:
    """Back up the current state before restoring (runbook B step 5); nothing left to save is not an error.

    One per incident: a pre-recovery backup taken earlier in this incident (this kernel or another) of
    exactly the site as it is now is reused, and the restore reuses it too instead of taking its own.
    """
    earlier = _earlier_pre_recovery(run)
    if earlier is not None:
        backup_id, fingerprint, at = earlier
        if run.manager.adopt_pre_recovery_backup(backup_id, fingerprint):
            run.record(
                "pre_recovery_backup",
                PreRecoveryBackupRecord(ok=True, backup_id=backup_id, reused=True, fingerprint=fingerprint),
            )
            return Again(backup_id, f"backup {backup_id} of this very state", at, "earlier in this incident")
    tops = [run.site.path(top) for paths in run.site.categories.values() for top in paths]
    if not any(top.exists() for top in tops):
        run.record("pre_recovery_backup", PreRecoveryBackupRecord(ok=True, backup_id=None, note="nothing left to save"))
        return "Nothing left in the site to save."
    summary = "Create a backup of the site: Pre-recovery current state (tags: pre-recovery, emergency)"
    if skipped := refused(run, "backup", summary):
        return skipped
    try:
        backup_id, fingerprint = run.manager.create_pre_recovery_backup(
            "Pre-recovery current state", ["pre-recovery", "emergency"]
        )
    except RecoveryError as exc:
        run.record("pre_recovery_backup", PreRecoveryBackupRecord(ok=False, error=str(exc)))
        return halt(run, f"pre-recovery backup failed: {exc}")
    run.record("pre_recovery_backup", PreRecoveryBackupRecord(ok=True, backup_id=backup_id, fingerprint=fingerprint))
    return backup_id


def _earlier_pre_recovery(run: Run) -> tuple[str, str, str] | None:
    """The newest pre-recovery backup of this incident's journal with a fingerprint: (id, fingerprint, at)."""
    if run.journal is None:
        return None
    found = None
    for entry in run.journal.entries():
        value = entry.get("value") if entry.get("kind") == "record" else None
        if entry.get("name") != "pre_recovery_backup" or not isinstance(value, dict):
            continue
        if value.get("ok") and value.get("backup_id") and value.get("fingerprint"):
            found = (str(value["backup_id"]), str(value["fingerprint"]), str(entry.get("at", "")))
    return found
