"""Procedure steps that restore: the dry run, its approval, and the restore of exactly the approved plan.

The dry run refuses exactly what the real restore would refuse; the approval is for that plan's digest
on that site state (:func:`plan_key`), and the restore applies that same plan object, so a dry run can
never disagree with what is done.
"""

from __future__ import annotations

from typing import Any

from recovery_lib.backup import BackupError
from recovery_lib.errors import UnfitPick
from recovery_lib.restore.journal import RestoreError
from recovery_lib.restore.plan import RestorePlan, RestoreResult
from recovery_lib.runbook.restore_record_types import RestorePlanRecord, RestoreResultRecord
from recovery_lib.runbook.resume import Earlier, Recorded
from recovery_lib.runbook.run import Run, ran
from recovery_lib.runbook.steps.base import EXECUTE, GO_ON, Halted, Replay, did, digest, halt, refused, step
from recovery_lib.runbook.steps.choice import BackupChoice


def prepared_then(record: str) -> Any:
    """Replay a step that prepared a change (a dry run, its approval; ``facts["prepares"]`` names the
    change) only when the change is replayed too. Otherwise it runs now: it only reads, and an approval
    given for the same plan stands."""

    def rebuild(run: Run, earlier: Earlier, *_: Any, **__: Any) -> Any:
        assert run.resume is not None
        change = str(earlier.facts.get("prepares") or "")
        if not run.resume.replays(change):
            return EXECUTE
        shown = earlier.record(record) or run.resume.records.get(record) or {}
        return Recorded(shown, f"{record.replace('_', ' ')} of run {earlier.run} (the {change} it prepared is done)")

    return rebuild


def prepares(change: str, site: bool = False) -> Any:
    """The facts of a step that prepares ``change``: what :func:`prepared_then` reads."""
    return lambda run, value, *a, **k: {"prepares": change, "site": site, "what": f"prepared the {change}"}


@step(
    prepares=("dry_run", "the dry run"),
    replay=Replay(prepared_then("restore_plan"), prepares("restore", site=True)),
)
def plan(
    run: Run, choice: BackupChoice, config: bool = False, state: bool = False, data: bool = False
) -> RestorePlan | Halted:
    """The dry run: the restore plan, recorded, and put up for approval. It refuses exactly what the
    real restore would refuse (a damaged backup included)."""
    choice = ran(choice)
    unfit = choice.unfit() if choice.widget is not None else []  # a named backup was refused earlier
    if unfit:
        raise UnfitPick(
            f"backup {choice.backup_id} (picked in the backup picker) cannot fix the fault: {'; '.join(unfit)}. "
            "Nothing was planned or changed: pick a backup marked ✅ in the picker above, then run this cell again."
        )
    try:
        restore_plan = run.manager.plan_restore(choice.backup_id or "latest", config, state, data)
    except (BackupError, RestoreError) as exc:
        run.facts.restore_failed = True
        return halt(run, f"dry run refused: {exc}")
    run.record("restore_plan", RestorePlanRecord(**restore_plan.to_dict(), key=plan_key(restore_plan)))
    return restore_plan


def plan_key(restore_plan: RestorePlan) -> str:
    """A digest of exactly what a plan does and the site it was made on: an approval is for this key."""
    return digest(restore_plan.to_dict(), restore_plan.fingerprint)


@step(  # a halted dry run is shown as it is; a plan is put up for approval
    consumes=True, on_halt=GO_ON, replay=Replay(prepared_then("approval_restore"), prepares("restore"))
)
def approval(run: Run, restore_plan: RestorePlan | Halted, then: str = "") -> Any:
    """The approval gate for the restore (widgets in JupyterLab, the ``approve`` parameter headless).
    ``then``: the title of the cell that applies it. Rerun with the same plan, an approval stands."""
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
    return run.gate.request("restore", what, step=then or "that restores", key=plan_key(restore_plan))


def _restored(run: Run, restore_plan: RestorePlan) -> tuple[str, str]:
    """The restore happened once per plan: run again with the same plan, it says so (even after a halt)."""
    return "restore", plan_key(restore_plan)


def _restored_then(run: Run, earlier: Earlier, *_: Any) -> Recorded:
    """The restore the failed run applied (its facts: the site is as that run left it)."""
    done = earlier.record("restore_result")
    written = f"{done.get('files_written', 0)} file(s), {done.get('bytes_written', 0):,} bytes written"
    saved = f"; pre-recovery backup {done['pre_recovery_backup_id']}" if done.get("pre_recovery_backup_id") else ""
    shown = Recorded(
        done, f"✅ Restored {', '.join(done.get('categories') or [])} from {done.get('backup_id')}: {written}{saved}."
    )
    return did(run, "restore", shown, f"restored from {done.get('backup_id')}", str(earlier.facts.get("key", "")))


def _restore_facts(run: Run, result: RestoreResult, restore_plan: RestorePlan) -> dict[str, Any]:
    what = f"restored {', '.join(restore_plan.categories)} from {restore_plan.backup_id}"
    return {"site": True, "key": plan_key(restore_plan), "what": what}


@step(consumes=True, again=_restored, replay=Replay(_restored_then, _restore_facts))
def restore(run: Run, restore_plan: RestorePlan | Halted) -> RestoreResult | Halted:
    """Apply exactly the approved plan. Fails closed (raises) without approval. Run again after it
    happened, it says so and returns the earlier result instead of restoring twice."""
    if skipped := refused(run, "restore"):
        return skipped
    try:
        result = run.manager.apply_restore(restore_plan)
    except (BackupError, RestoreError) as exc:
        run.facts.restore_failed = True
        run.record("restore_result", RestoreResultRecord(ok=False, error=str(exc)))
        return halt(run, f"restore failed: {exc}")
    run.record(
        "restore_result",
        RestoreResultRecord(
            ok=result.ok,
            backup_id=restore_plan.backup_id,
            backup_created_at=restore_plan.backup_created_at,
            categories=list(restore_plan.categories),
            files_restored=[a.path for a in restore_plan.changes],
            files_written=result.files_written,
            bytes_written=result.bytes_written,
            pre_recovery_backup_id=result.pre_recovery_backup_id,
            pre_recovery_reused=result.pre_recovery_reused,
            problems=result.problems,
            duration_s=result.duration_s,
        ),
    )
    if not result.ok:
        run.facts.restore_failed = True
        halt(run, "restore did not verify: " + "; ".join(result.problems[:3]))
    what = f"restored {', '.join(restore_plan.categories)} from {restore_plan.backup_id}"
    return did(run, "restore", result, what, plan_key(restore_plan))
