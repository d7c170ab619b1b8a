"""Procedure steps that choose the backup to restore from: every backup listed with what it is, the
candidates that can fix the fault first, and the choice (the parameter's, or the picker's in JupyterLab).

A backup is chosen for what it fixes: it verifies, holds the categories the procedure restores, and
those pass the procedure's checks; a pre-recovery snapshot of a broken state is marked, never preferred.
"""

from __future__ import annotations

from typing import Any

from recovery_lib.backup import BackupError, BackupMetadata, BackupStatus
from recovery_lib.clock import now_iso
from recovery_lib.errors import StaleReplay
from recovery_lib.manager import PRE_RECOVERY_TAG
from recovery_lib.rendering import LiveDisplay, LiveWidget, human_age, human_size, human_time, name_all
from recovery_lib.runbook.records import MIME_TYPE, to_plain
from recovery_lib.runbook.restore_record_types import BackupSelectionRecord, BackupsRecord
from recovery_lib.runbook.resume import Earlier, Recorded
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import GO_ON, Halted, Replay, halt, step
from recovery_lib.runbook.steps.candidates import Candidate, candidates, without_id


@step(on_halt=GO_ON)  # it only reads: the record lists the backups after a halt too
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
        BackupsRecord(
            count=len(rows),
            backups=rows,
            unreadable=[{"backup_id": c.backup_id, "problems": c.problems} for c in unreadable],
            damaged=[c.backup_id for c in checked.damaged],
            bytes_hashed=checked.bytes_hashed,
        ),
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
            shown = name_all([without_id(p, metadata.backup_id) for p in unfit])
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

    def selection(self, requested: str, via: str) -> BackupSelectionRecord:
        """The ``backup_selection`` record of the backup selected now."""
        metadata = self._selected()
        return BackupSelectionRecord(
            requested=requested,
            backup_id=metadata.backup_id if metadata else None,
            created_at=metadata.created_at if metadata else None,
            age_hours=round(metadata.age_hours(), 3) if metadata else None,
            skipped=self.skipped,
            via=via,
            pre_recovery=PRE_RECOVERY_TAG in metadata.tags if metadata else False,
            unfit=self.unfit(),
        )

    def on_pick(self, requested: str) -> None:
        """The picker's value changed: record the pick, then update both displays."""
        plain = self.run.record("backup_selection", self.selection(requested, "picker"))
        self._pick_record = {"name": "backup_selection", "value": plain, "at": now_iso()}
        self.refresh()
        if isinstance(self.widget, LiveWidget):
            self.widget.refresh()


def _no_choice(
    run: Run, halted: Halted, backup_id: str = "", needs: tuple[str, ...] = (), required: bool = True
) -> BackupChoice:
    """The backup choice of a halted run: none, and the halt is why."""
    return BackupChoice(run, None, [halted.reason], needs=needs)


def _chosen_then(
    run: Run, earlier: Earlier, backup_id: str = "", needs: tuple[str, ...] = (), required: bool = True
) -> BackupChoice | Recorded:
    """The backup the failed run chose (the picker's last pick included). Once the restore it was chosen for
    stands, that is history (the backup may be gone since); before, it must still verify, every byte, and fix
    the fault, or the choice is made again."""
    assert run.resume is not None
    selection = run.resume.records.get("backup_selection") or earlier.record("backup_selection")
    chosen, skipped = selection.get("backup_id"), list(selection.get("skipped") or [])
    if chosen is None:
        return BackupChoice(run, None, skipped, needs=needs)
    if run.resume.change_stands:
        return Recorded(selection, f"backup {chosen} was chosen, and run {earlier.run} restored from it")
    if selection.get("unfit"):
        raise StaleReplay(f"backup {chosen}, picked then, cannot fix the fault: {'; '.join(selection['unfit'])}")
    try:
        metadata = run.manager.get_backup(str(chosen))
        report = run.manager.verify_backup(str(chosen), read_data=True)
    except BackupError as exc:
        raise StaleReplay(f"backup {chosen}, chosen then, cannot be read any more: {exc}") from exc
    if not report.ok:
        raise StaleReplay(f"backup {chosen}, chosen then, is damaged now: {'; '.join(map(str, report.problems[:3]))}")
    if unfit := run.manager.fitness(str(chosen), needs):
        raise StaleReplay(f"backup {chosen}, chosen then, cannot fix the fault now: {'; '.join(unfit)}")
    return BackupChoice(run, metadata, skipped, needs=needs)


def _choice_facts(run: Run, value: BackupChoice, *_: Any, **__: Any) -> dict[str, Any]:
    chosen = value.backup_id
    return {"chosen": [chosen] if chosen else [], "what": f"backup {chosen or 'none'} was chosen"}


@step(
    prepares=("select_backup", "the backup choice"),
    on_halt=_no_choice,
    replay=Replay(_chosen_then, _choice_facts),
)
def choose_backup(run: Run, backup_id: str, needs: tuple[str, ...] = (), required: bool = True) -> BackupChoice:
    """Resolve ``backup_id``: "latest" is the newest SUCCESS backup that verifies, holds ``needs`` and whose
    restored categories pass the procedure's checks (a backup of the broken state fixes nothing).

    ``required``: halt the run when there is none (B does not: a repair in place may still work).
    In interactive runs the choice also comes with a picker of every backup: the good candidates first,
    then the pre-recovery snapshots and the ones that cannot fix the fault, each marked. A pick is
    recorded again as ``backup_selection`` (``via`` "picker").
    """
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
