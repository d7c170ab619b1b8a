"""The runs of recovery procedures that did not recover: where a resumed run finds the one it goes on from.

:func:`failed_runs` lists them for the picker and ``recovery resume --list``; :func:`run_id_of` reads the
run id out of an executed notebook (the record a drill or ``recovery resume`` leaves), and
:func:`find_run` finds that run in the site's incident journals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recovery_lib.catalog import RECOVERY_PROCEDURES
from recovery_lib.errors import ParameterError
from recovery_lib.runbook.journal import SUFFIX, IncidentJournal, valid_incident_id
from recovery_lib.runbook.records import read_notebook
from recovery_lib.site.config import Site

STEP = "step"  # the journal entry kind of a completed step (written by steps.base, read by resume)


def find_run(site: Site, run_id: str, incident_id: str = "") -> tuple[IncidentJournal, list[dict[str, Any]]]:
    """The incident journal holding run ``run_id``, and that run's entries; ParameterError if none does."""
    directory = site.records_dir
    names = [f"{incident_id}{SUFFIX}"] if incident_id else sorted(p.name for p in directory.glob(f"*{SUFFIX}"))
    needle = json.dumps(run_id)
    for name in names:
        incident = name[: -len(SUFFIX)]
        if not valid_incident_id(incident):
            continue
        journal = IncidentJournal(directory, incident)
        if not journal.path.is_file() or needle not in journal.path.read_text(encoding="utf-8", errors="replace"):
            continue
        entries = [e for e in journal.entries() if e.get("run") == run_id]
        if entries:
            return journal, entries
    where = f"incident {incident_id}'s journal" if incident_id else f"the journals in {site.relative(directory)}"
    raise ParameterError(
        f"parameter 'resume_from': there is no run {run_id!r} in {where}. `recovery resume --list` names the "
        "failed runs of this site; give one of their ids, or the executed notebook of the failed run."
    )


def run_id_of(resume_from: str) -> tuple[str, str]:
    """(run id, incident id or "") of ``resume_from``: a run id, or the path of an executed notebook."""
    if not resume_from.endswith(".ipynb"):
        return resume_from, ""
    path = Path(resume_from)
    try:
        run = read_notebook(path).get("run") or {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ParameterError(
            f"parameter 'resume_from': {path} is not a readable executed notebook ({type(exc).__name__}: {exc}). "
            "Give the record of the failed run (outputs/<drill>/02_<procedure notebook>.ipynb) or its run id."
        ) from exc
    if not run.get("run_id"):
        raise ParameterError(
            f"parameter 'resume_from': {path} holds no run record (it never passed its validation cell): "
            "there is nothing to resume. Run the procedure from the top."
        )
    return str(run["run_id"]), str(run.get("incident_id") or "")


@dataclass
class FailedRun:
    """A run of a recovery procedure that did not recover: what a person may resume."""

    run_id: str
    incident_id: str
    procedure: str
    started_at: str
    operator: str
    kind: str  # incident | drill
    failed_step: str | None  # the first step that failed (None: it stopped on an error, or never judged)
    halted: str | None
    parameters: dict[str, Any]
    journal: Path

    def label(self) -> str:
        """One line for a picker or a list: procedure, when, who, where it stopped, and why."""
        where = f"failed at {self.failed_step}" if self.failed_step else "stopped before its outcome"
        why = f": {self.halted}" if self.halted else ""
        when = self.started_at.replace("T", " ")[:16]
        kind = " · drill" if self.kind == "drill" else ""
        return f"{self.procedure} · {when} UTC · {self.operator}{kind} · {where}{why} · run {self.run_id}"


def overtaken(entries: list[dict[str, Any]], run_id: str) -> str:
    """Why run ``run_id`` of an incident (its journal's ``entries``) must not be resumed any more ("" when it
    may): the incident was closed, a run resumed it since, or a later run of the same procedure went on
    after it. Resuming it then would stop trading and restore again on a site another run recovered."""
    if any(e.get("kind") == "closed" for e in entries):
        return "its incident is closed: the post-recovery notebook found it recovered"
    runs = [
        e for e in entries if e.get("kind") == "record" and e.get("name") == "run" and isinstance(e.get("value"), dict)
    ]
    own = next((e["value"] for e in runs if e.get("run") == run_id), {})
    for entry in runs:
        later = entry["value"]
        if later.get("resumed_from") == run_id:
            return f"run {entry.get('run')} resumed it since: resume that run instead if it did not recover"
        if later.get("procedure") == own.get("procedure") and str(later.get("started_at") or "") > str(
            own.get("started_at") or ""
        ):
            what = f"run {entry.get('run')} of procedure {own.get('procedure')} started after it"
            return f"{what}: resume that one if it did not recover"
    return ""


def failed_runs(site: Site, procedure: str | None = None) -> list[FailedRun]:
    """The runs of recovery procedures (of ``procedure``, or any) on ``site`` that did not recover and were
    not overtaken since (:func:`overtaken`), newest first. Read-only."""
    found: list[FailedRun] = []
    directory = site.records_dir
    for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
        incident = path.name[: -len(SUFFIX)]
        if not valid_incident_id(incident):
            continue
        journal = IncidentJournal(directory, incident)
        entries = journal.entries()
        by_run: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            by_run.setdefault(str(entry.get("run") or ""), []).append(entry)
        for run_id, lines in by_run.items():
            records = {e.get("name"): e.get("value") for e in lines if e.get("kind") == "record"}
            run = records.get("run") if isinstance(records.get("run"), dict) else None
            if run is None or run.get("procedure") not in RECOVERY_PROCEDURES or overtaken(entries, run_id):
                continue
            if (procedure and run.get("procedure") != procedure) or (records.get("outcome") or {}).get("success"):
                continue
            failed = next(
                (e.get("name") for e in lines if e.get("kind") == STEP and not (e.get("value") or {}).get("ok")),
                None,
            )
            found.append(
                FailedRun(
                    run_id=run_id,
                    incident_id=incident,
                    procedure=str(run.get("procedure")),
                    started_at=str(run.get("started_at") or ""),
                    operator=str(run.get("operator") or ""),
                    kind=str(run.get("kind") or "incident"),
                    failed_step=str(failed) if failed else None,
                    halted=(records.get("halted") or {}).get("reason"),
                    parameters=dict(run.get("parameters") or {}),
                    journal=journal.path,
                )
            )
    return sorted(found, key=lambda f: f.started_at, reverse=True)
