"""Procedure steps about backups and restores: which backups exist and verify, which one to
restore from, the dry run and its approval, the restore, and the backups a procedure takes.

A backup tagged "verified" is only ever taken of a state that passed the trading gate (config,
data, reconciliation) and the procedure's own criteria: a broken state is never recorded as a good
recovery point for a later "latest" to pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recovery_lib.backup import BackupCheck, BackupError, BackupMetadata, BackupStatus
from recovery_lib.checks.gate import trading_gate
from recovery_lib.clock import now_iso
from recovery_lib.errors import RecoveryError
from recovery_lib.manager import PRE_RECOVERY_TAG
from recovery_lib.rendering import LiveDisplay, LiveWidget, human_age, human_size, human_time, name_all
from recovery_lib.restore.journal import RestoreError
from recovery_lib.restore.plan import RestorePlan, RestoreResult
from recovery_lib.runbook.checklist import Checklist
from recovery_lib.runbook.notebook import Run, ran
from recovery_lib.runbook.records import MIME_TYPE, to_plain
from recovery_lib.runbook.steps.base import (
    Again,
    Halted,
    NothingToDo,
    did,
    digest,
    halt,
    halted,
    idle,
    once,
    prepares,
    refused,
)

VERIFIED_TAG = "verified"
FITNESS_CHECKED = ("config", "data")  # the categories RecoveryManager.fitness checks (state has no check)


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
                "problems": check.problems if check else [],
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
            "verification": "❌ UNREADABLE: " + name_all(c.problems),
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
    """The verification column of the backups overview: every problem of a damaged backup is named."""
    if ok is None:
        return "not checked"
    if not ok:
        return "❌ DAMAGED: " + name_all(problems)
    return {
        "hashed": "✅ verifies (every byte hashed)",
        "sampled": "✅ verifies (structure; contents partly hashed this run)",
    }.get(contents or "", "✅ structure verifies (contents not hashed this run)")


@dataclass
class Candidate:
    """One backup as the picker offers it: what it is, whether it verifies, whether it can fix the fault."""

    metadata: BackupMetadata
    verification: str  # short: "✅ verifies (every byte hashed)", "❌ damaged", "not checked"
    problems: list[str]  # why restoring it cannot fix the fault; [] when it can
    fixes: str = ""  # what it passes: "passes the config check"

    @property
    def pre_recovery(self) -> bool:
        """A snapshot a restore took of the state it replaced: the state at the time of an incident."""
        return PRE_RECOVERY_TAG in self.metadata.tags

    @property
    def good(self) -> bool:
        """Verifies, holds what is needed, passes the checks and is not a snapshot of a broken state."""
        return not self.problems and not self.pre_recovery

    def verdict(self) -> str:
        """The mark a person reads first: ✅ can fix, ⚠ pre-recovery, ❌ cannot fix (and the first reason)."""
        if self.problems:
            more = f" (and {len(self.problems) - 1} more, named when it is selected)" if len(self.problems) > 1 else ""
            return f"❌ cannot fix: {_without_id(self.problems[0], self.metadata.backup_id)}{more}"
        passes = f", {self.fixes}" if self.fixes else ""
        if self.pre_recovery:
            return f"⚠ pre-recovery: the state at the time of an incident{passes}"
        return f"✅ {self.fixes or 'can fix the fault'}"

    def label(self) -> str:
        """One picker option: the mark, then id, age, size, tags, verification and what it fixes or why not."""
        m = self.metadata
        mark, _, verdict = self.verdict().partition(" ")
        facts = [m.backup_id, f"{human_age(m.age_hours())} old", human_size(m.size_bytes)]
        facts += [", ".join(m.tags) or "no tags", self.verification.removeprefix("✅ "), verdict]
        return f"{mark} " + " · ".join(facts)


def _without_id(problem: str, backup_id: str) -> str:
    """A problem as shown next to its backup's id: "holds a config that ..." (presentation only)."""
    return problem.removeprefix(f"backup {backup_id} ")


def _short_verification(check: BackupCheck | None) -> str:
    if check is None:
        return "not checked"
    if not check.ok:
        return "❌ damaged"
    return {"hashed": "✅ verifies (every byte hashed)", "sampled": "✅ verifies (partly hashed)"}.get(
        check.contents, "✅ structure verifies"
    )


def candidates(run: Run, needs: tuple[str, ...]) -> list[Candidate]:
    """Every backup for the picker: the good candidates first, then the pre-recovery snapshots and the
    backups that cannot fix the fault (damaged, not SUCCESS, without ``needs``, failing the checks); each
    group newest first. Verification is the manager's structural check (contents within the health
    budget), fitness its memoised check of the restored categories."""
    checked = {c.backup_id: c for c in run.manager.check_all().backups}
    checks = [c for c in needs if c in FITNESS_CHECKED]
    fixes = f"passes the {' and '.join(checks)} check{'s' if len(checks) > 1 else ''}" if checks else ""
    found = []
    for metadata in run.manager.list_backups():  # newest first
        check = checked.get(metadata.backup_id)
        problems = []
        if metadata.status is not BackupStatus.SUCCESS:
            problems.append(f"is {metadata.status.value.upper()}, not SUCCESS: it is never restored from")
        if check is not None and not check.ok:
            problems += [f"does not verify: {problem}" for problem in check.problems]
        missing = [category for category in needs if not metadata.includes(category)]
        if missing:
            problems.append(f"holds {', '.join(metadata.categories) or 'nothing'}, not {', '.join(missing)}")
        if not problems:  # the checks read the backup's files: only of one that is whole and holds them
            problems += run.manager.fitness(metadata.backup_id, needs)
        found.append(Candidate(metadata, _short_verification(check), problems, fixes))
    return [c for c in found if c.good] + [c for c in found if not c.good]


class BackupChoice(LiveDisplay):
    """The backup a procedure restores from: the parameter's choice, or the picker's in JupyterLab.

    Displayed, it describes the backup selected now: in JupyterLab the display follows the picker
    (and warns when the pick is a pre-recovery snapshot or cannot fix the fault); an archived record
    shows the last pick.
    """

    def __init__(
        self,
        run: Run,
        metadata: BackupMetadata | None,
        skipped: list[str],
        widget: Any = None,
        *,
        needs: tuple[str, ...] = (),
        offered: list[Candidate] | None = None,
    ) -> None:
        self.run = run
        self.metadata = metadata
        self.skipped = [to_plain(reason, run.site.root) for reason in skipped]  # site paths, not the host's
        self.widget = widget
        self.needs = tuple(needs)
        self.offered = list(offered or [])  # the picker's options, in its order
        self._pick_record: dict[str, Any] | None = None  # the last pick, carried in this display for the archive

    @property
    def backup_id(self) -> str | None:
        """The backup selected now: the picker's value in JupyterLab, else the parameter's choice."""
        if self.widget is not None and self.widget.value:
            return str(self.widget.value)
        return self.metadata.backup_id if self.metadata else None

    @property
    def picked(self) -> Candidate | None:
        """The picker's candidate for the backup selected now (None without a picker)."""
        return next((c for c in self.offered if c.metadata.backup_id == self.backup_id), None)

    def unfit(self) -> list[str]:
        """Why restoring the backup selected now cannot fix the fault ([] if it can, or none is selected).

        A pre-recovery snapshot that passes the checks is not unfit: it is marked, not refused."""
        if self.backup_id is None:
            return []
        if (candidate := self.picked) is not None:
            return list(candidate.problems)
        return self.run.manager.fitness(self.backup_id, self.needs)

    def _selected(self) -> BackupMetadata | None:
        candidate = self.picked
        return candidate.metadata if candidate is not None else self.metadata

    def _lines(self) -> tuple[str, list[tuple[bool, str]]]:
        """(the selected backup in one sentence, what to read with it as (is a warning, text))."""
        metadata = self._selected()
        if metadata is None:
            return "No backup that verifies and can fix the fault.", []
        tags = ", ".join(metadata.tags) or "none"
        head = (
            f"Selected backup {metadata.backup_id}, taken {human_time(metadata.created_at)} "
            f"({human_age(metadata.age_hours())} ago), {human_size(metadata.size_bytes)}, tags: {tags}: "
            f"{metadata.description or 'no description'}"
        )
        notes: list[tuple[bool, str]] = []
        candidate = self.picked
        if candidate is not None:
            fixes = f"; {candidate.fixes}" if candidate.fixes and not candidate.problems else ""
            notes.append((False, candidate.verification + fixes))
        if unfit := self.unfit():
            shown = name_all([_without_id(p, metadata.backup_id) for p in unfit])
            notes.append((True, f"❌ Restoring it will not fix the fault: {shown}. Pick another backup."))
        if PRE_RECOVERY_TAG in metadata.tags:
            notes.append(
                (
                    True,
                    "⚠ A pre-recovery backup: the state at the time of an incident, saved before a restore "
                    "replaced it. Restoring it brings that state back; pick it only on purpose.",
                )
            )
        if self.metadata is not None and metadata.backup_id != self.metadata.backup_id:
            picked = f"Picked in the picker instead of {self.metadata.backup_id}; the next cell plans from it."
            notes.append((False, picked))
        return head, notes

    def _repr_html_(self) -> str:
        import html

        head, notes = self._lines()
        skipped = "".join(f"<li>{html.escape(s)}</li>" for s in self.skipped)
        listed = f"<p>Passed over:</p><ul>{skipped}</ul>" if skipped else ""
        if self._selected() is None:
            return f"<p><b>❌ {html.escape(head)}</b></p>" + listed
        backup_id = html.escape(self.backup_id or "")
        shown = html.escape(head).replace(backup_id, f"<code>{backup_id}</code>", 1)
        warned = "".join(
            f"<p><b>{html.escape(note)}</b></p>" if warning else f"<p>{html.escape(note)}</p>"
            for warning, note in notes
        )
        return f"<p>{shown}</p>{warned}{listed}"

    def __repr__(self) -> str:
        head, notes = self._lines()
        passed_over = "".join(f"\n  passed over: {s}" for s in self.skipped)
        return head + "".join(f"\n  {note}" for _, note in notes) + passed_over

    def picker_text(self) -> str:
        """What the picker's display says where the widget cannot run (an archived record)."""
        candidate = self.picked
        shown = candidate.label() if candidate is not None else (self.backup_id or "none")
        return f"Backup picked: {shown} (in the picker; run the next cell to plan)"

    def bundle(self) -> dict[str, Any]:
        """The display data: the description of the backup selected now, and the last pick's record."""
        data: dict[str, Any] = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if self._pick_record is not None:
            data[MIME_TYPE] = self._pick_record  # an archived notebook keeps the pick in this output
        return data

    def selection(self, requested: str, via: str) -> dict[str, Any]:
        """The ``backup_selection`` record of the backup selected now."""
        metadata = self._selected()
        return {
            "requested": requested,
            "backup_id": metadata.backup_id if metadata else None,
            "created_at": metadata.created_at if metadata else None,
            "age_hours": round(metadata.age_hours(), 3) if metadata else None,
            "skipped": self.skipped,
            "via": via,
            "pre_recovery": PRE_RECOVERY_TAG in metadata.tags if metadata else False,
            "unfit": self.unfit(),
        }

    def on_pick(self, requested: str) -> None:
        """The picker's value changed: record the pick, then update both displays."""
        plain = self.run.record("backup_selection", self.selection(requested, "picker"))
        self._pick_record = {"name": "backup_selection", "value": plain, "at": now_iso()}
        self.refresh()
        if isinstance(self.widget, LiveWidget):
            self.widget.refresh()


@prepares("select_backup", "the backup choice")
def choose_backup(run: Run, backup_id: str, needs: tuple[str, ...] = (), required: bool = True) -> BackupChoice:
    """Resolve ``backup_id``: "latest" is the newest SUCCESS backup that verifies, holds ``needs`` and whose
    restored categories pass the procedure's checks (a backup of the broken state fixes nothing).

    ``required``: halt the run when there is none (B does not: a repair in place may still work).
    In interactive runs the choice also comes with a picker of every backup: the good candidates first,
    then the pre-recovery snapshots and the ones that cannot fix the fault, each marked. A pick is
    recorded again as ``backup_selection`` (``via`` "picker").
    """
    if skipped := halted(run):
        return BackupChoice(run, None, [skipped.reason], needs=needs)
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
    choice = BackupChoice(run, metadata, passed_over, needs=needs)
    if metadata is None:
        run.record("backup_selection", choice.selection(backup_id, "parameter"))
        # "No usable backup" escalates: only when "latest" found none (a named one that cannot be used says
        # nothing of the others), and not when there is no fault to fix (B's assessment found none).
        run.facts.no_backup = run.facts.no_backup or (backup_id == "latest" and not run.nothing_to_do)
        if required:
            halt(run, f"no usable backup ({backup_id})")
        return choice
    run.record("backup_selection", choice.selection(backup_id, "parameter"))
    if run.gate.interactive:
        import ipywidgets as widgets

        choice.offered = candidates(run, needs)
        if not any(c.metadata.backup_id == metadata.backup_id for c in choice.offered):  # e.g. listed since
            choice.offered.insert(0, Candidate(metadata, "not checked", [], ""))
        picker = widgets.Dropdown(
            options=[(c.label(), c.metadata.backup_id) for c in choice.offered],
            value=metadata.backup_id,
            description="Backup:",
            layout=widgets.Layout(width="90%"),
        )
        # The archived record cannot run the widget: it shows which backup was picked, and what it is.
        choice.widget = LiveWidget(picker, choice.picker_text)
        picker.observe(lambda _: choice.on_pick(backup_id), names="value")
    return choice


class UnfitPick(RecoveryError):
    """The backup picked in JupyterLab cannot fix the fault: nothing is planned until another is picked."""


@prepares("dry_run", "the dry run")
def plan(
    run: Run, choice: BackupChoice, config: bool = False, state: bool = False, data: bool = False
) -> RestorePlan | Halted:
    """The dry run: the restore plan, recorded, and put up for approval. It refuses exactly what the
    real restore would refuse (a damaged backup included)."""
    if skipped := halted(run):
        return skipped
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
    run.record("restore_plan", {**restore_plan.to_dict(), "key": plan_key(restore_plan)})
    return restore_plan


def plan_key(restore_plan: RestorePlan) -> str:
    """A digest of exactly what a plan does and the site it was made on: an approval is for this key."""
    return digest(restore_plan.to_dict(), restore_plan.fingerprint)


def approval(run: Run, restore_plan: RestorePlan | Halted, then: str = "") -> Any:
    """The approval gate for the restore (widgets in JupyterLab, the ``approve`` parameter headless).
    ``then``: the title of the cell that applies it. Rerun with the same plan, an approval stands."""
    restore_plan = ran(restore_plan)
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
    return run.gate.request("restore", what, step=then or "that restores", key=plan_key(restore_plan))


def restore(run: Run, restore_plan: RestorePlan | Halted) -> RestoreResult | Halted:
    """Apply exactly the approved plan. Fails closed (raises) without approval. Run again after it
    happened, it says so and returns the earlier result instead of restoring twice."""
    restore_plan = ran(restore_plan)
    if isinstance(restore_plan, Halted):
        return restore_plan
    if again := once(run, "restore", plan_key(restore_plan)):
        return again
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
            "pre_recovery_reused": result.pre_recovery_reused,
            "problems": result.problems,
            "duration_s": result.duration_s,
        },
    )
    if not result.ok:
        run.facts.restore_failed = True
        halt(run, "restore did not verify: " + "; ".join(result.problems[:3]))
    what = f"restored {', '.join(restore_plan.categories)} from {restore_plan.backup_id}"
    return did(run, "restore", result, what, plan_key(restore_plan))


def create_backup(run: Run, name: str, description: str, tags: list[str]) -> str | Halted:
    """A backup taken by a procedure step (emergency, manual); recorded as ``name``. Never tagged "verified":
    that is :func:`verified_backup`'s to give."""
    if VERIFIED_TAG in tags:
        raise ValueError(f"{name}: a backup tagged {VERIFIED_TAG!r} is taken with verified_backup(), behind the gate")
    if again := once(run, name):
        return again
    if skipped := refused(run, "backup", f"Create a backup of the site: {description} (tags: {', '.join(tags)})"):
        run.record(name, {"ok": False, "error": skipped.reason})
        return skipped
    try:
        backup_id = run.manager.create_backup(description=description, tags=tags)
    except RecoveryError as exc:  # a backup error, or a lock that cannot be taken: named, never a traceback
        run.record(name, {"ok": False, "error": str(exc)})
        return halt(run, f"{name} failed: {exc}")
    run.record(name, {"ok": True, "backup_id": backup_id, "tags": tags})
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


def verified_backup(
    run: Run, name: str, description: str, tags: list[str], before: Checklist | None = None
) -> str | NotTaken:
    """A backup tagged "verified" (post-recovery, verification): only of a state that passes the trading
    gate and every criterion in ``before``, and never after the run halted. Taken once per run."""
    if again := once(run, name):
        return again
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
    return did(run, name, backup_id, f"backup {backup_id} taken")


@prepares("pre_recovery_backup", "the pre-recovery backup")
def pre_recovery_backup(run: Run) -> str | Again | Halted | NothingToDo:
    """Back up the current state before restoring (runbook B step 5); nothing left to save is not an error.

    One per incident: a pre-recovery backup taken earlier in this incident (this kernel or another) of
    exactly the site as it is now is reused, and the restore reuses it too instead of taking its own.
    """
    if skipped := halted(run) or idle(run):
        return skipped
    earlier = _earlier_pre_recovery(run)
    if earlier is not None:
        backup_id, fingerprint, at = earlier
        if run.manager.adopt_pre_recovery_backup(backup_id, fingerprint):
            run.record(
                "pre_recovery_backup", {"ok": True, "backup_id": backup_id, "reused": True, "fingerprint": fingerprint}
            )
            return Again(backup_id, f"backup {backup_id} of this very state", at, "earlier in this incident")
    tops = [run.site.path(top) for paths in run.site.categories.values() for top in paths]
    if not any(top.exists() for top in tops):
        run.record("pre_recovery_backup", {"ok": True, "backup_id": None, "note": "nothing left to save"})
        return "Nothing left in the site to save."
    summary = "Create a backup of the site: Pre-recovery current state (tags: pre-recovery, emergency)"
    if skipped := refused(run, "backup", summary):
        return skipped
    try:
        backup_id, fingerprint = run.manager.create_pre_recovery_backup(
            "Pre-recovery current state", ["pre-recovery", "emergency"]
        )
    except RecoveryError as exc:
        run.record("pre_recovery_backup", {"ok": False, "error": str(exc)})
        return halt(run, f"pre-recovery backup failed: {exc}")
    run.record("pre_recovery_backup", {"ok": True, "backup_id": backup_id, "fingerprint": fingerprint})
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
