"""What the first cells of every procedure notebook call: validate parameters, set up the run.

``run = start(globals(), procedure="A")`` checks the ``parameters`` cell's values against its type
annotations (unknown, missing or wrongly typed parameters fail here, before anything is read or
written; :mod:`recovery_lib.runbook.parameters`), resolves the site, and returns a
:class:`~recovery_lib.runbook.run.Run` with the recorder, the approval gate and the RecoveryManager
the step cells use. :func:`begin` sets up the same run from plain Python, without a kernel.

One incident, one id, one journal: the run joins the incident named by ``incident_id``, else the
newest open incident of the site (triage starts a new one), and every record and decision goes into
that incident's journal as it is made (:mod:`recovery_lib.runbook.journal`).

Safe to run again: rerun in the same kernel with unchanged parameters, the validation cell returns
the same run (its approvals and results stand); with changed parameters it starts a new run of the
same incident. Every variable a later cell sets starts as :class:`NotRun`, so a cell run out of order
says which step has not run instead of failing with a ``NameError``.
"""

from __future__ import annotations

import getpass
import secrets
from pathlib import Path
from typing import Any

from recovery_lib.catalog import POST_RECOVERY, RECOVERY_PROCEDURES, TRIAGE
from recovery_lib.clock import iso, now, now_iso
from recovery_lib.errors import ParameterError, StepNotRun
from recovery_lib.manager import RecoveryManager
from recovery_lib.rendering import human_time, install_display_formatters
from recovery_lib.runbook.approval import ApprovalGate, Decision
from recovery_lib.runbook.journal import IncidentJournal, hold_procedure_lock, open_incident
from recovery_lib.runbook.parameters import (
    APPROVAL_ACTIONS,
    FIX_AND_RERUN,
    REMEDIES,
    STEP_VARIABLES,
    check_backup_id,
    check_looks_like_a_site,
    check_records,
    check_values,
    validate_parameters,
    validate_values,
)
from recovery_lib.runbook.record_types import AbortedRecord, RunRecord
from recovery_lib.runbook.records import Recorder, to_plain
from recovery_lib.runbook.resume import plan_resume
from recovery_lib.runbook.run import InvalidRun, NotRun, Run, ran
from recovery_lib.site.config import Site, load_site

# What the notebooks, the drills and the tests import from here (their homes are parameters and run).
__all__ = [
    "APPROVAL_ACTIONS",
    "REMEDIES",
    "STEP_VARIABLES",
    "InvalidRun",
    "NotRun",
    "ParameterError",
    "Run",
    "StepNotRun",
    "begin",
    "ran",
    "start",
    "validate_parameters",
]


def _shown(value: Any, site: Site) -> Any:
    """Parameters as the record shows them: no host-specific absolute paths."""
    if isinstance(value, list):
        return [_shown(item, site) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        shown = site.relative(Path(value))
        return shown if not shown.startswith("/") else Path(value).name
    return value


def _resolve_incident(
    values: dict[str, Any], site: Site, procedure: str, recorded: str, previous: Run | None
) -> tuple[str, str]:
    """(incident id, where it came from): the parameter, the records, this kernel's run, the site's open
    incident (not for triage, which starts one), or a new id."""
    if values.get("incident_id"):
        return values["incident_id"], "parameter"
    if recorded:
        return recorded, "records"
    if previous is not None:
        return previous.incident_id, previous.incident_source
    if procedure != TRIAGE:
        found = open_incident(site.records_dir)
        if found:
            return found, "journal"
    if procedure == POST_RECOVERY:  # a summary of nothing would be an incident of its own: refuse
        raise ParameterError(
            f"there is no open incident on site {site.name} ({site.relative(site.records_dir)} has none) and "
            "neither 'incident_id' nor 'records' is set: run 00 and the procedure first, or name the incident "
            f"in 'incident_id'. {FIX_AND_RERUN}"
        )
    return f"{now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}", "new"


def _reset_step_variables(namespace: dict[str, Any], keep: bool) -> None:
    """Every step variable holds NotRun until its step runs; ``keep`` leaves the ones a step already set."""
    for variable, step in STEP_VARIABLES.items():
        if not keep or variable not in namespace:
            namespace[variable] = NotRun(variable, step)


def start(namespace: dict[str, Any], procedure: str) -> Run:
    """Validate the parameters of a procedure notebook and set up its run (see module docstring)."""
    previous = namespace.get("run")
    previous = previous if isinstance(previous, Run) and previous.procedure == procedure else None
    try:
        values = check_values(validate_parameters(namespace, known=previous.namespace_names if previous else None))
    except ParameterError as exc:
        if previous is not None or isinstance(namespace.get("run"), InvalidRun):
            namespace["run"] = InvalidRun(str(exc))  # the cells below must not go on with the old parameters
        raise
    if previous is not None and values == previous.parameters:
        _lock(previous.site, procedure, previous.incident_id, previous.operator)
        previous.reruns += 1
        _reset_step_variables(namespace, keep=True)
        return previous
    run = _open(procedure, values, previous, set(namespace))
    _reset_step_variables(namespace, keep=False)
    return run


def begin(procedure: str, **parameters: Any) -> Run:
    """Start a run of ``procedure`` from plain Python (a script, a test): no kernel, no parameters cell.

    ``parameters`` are the notebook's (``site``, ``interactive``, ``approve``, ``backup_id`` ...), checked
    as the validation cell checks them, and the run is set up exactly as :func:`start` sets it up:
    ``begin("A", site=path, interactive=False, approve=["restore"])``. Omitted ones take the notebooks'
    defaults (interactive, a new or the open incident, the logged-in operator, "latest").
    """
    return _open(procedure, validate_values(parameters), None, set())


def _open(procedure: str, values: dict[str, Any], previous: Run | None, namespace_names: set[str]) -> Run:
    """Set up a run of ``procedure`` with checked ``values``: the site, its incident, journal, recorder,
    gate and manager. ``previous``: this kernel's earlier run (its incident goes on); ``namespace_names``:
    the kernel's names now (a rerun of the validation cell ignores the ones defined later)."""
    site = load_site(values.get("site") or None)
    check_looks_like_a_site(site)
    recorded_incident = check_records(list(values.get("records", [])), site, values.get("incident_id") or "")
    if values.get("backup_id") is not None and not values.get("resume_from"):  # a resume checks its own choice
        check_backup_id(site, values["backup_id"])
    operator = values.get("operator") or getpass.getuser()
    started = now()
    manager = RecoveryManager(site=site)
    resume = None
    if values.get("resume_from"):
        resume = plan_resume(site, manager, procedure, values["resume_from"], values.get("incident_id") or "")
        _check_same_decisions(values, resume.parameters, resume.from_run)
        incident_id, source = resume.incident_id, "resume"
    else:
        incident_id, source = _resolve_incident(values, site, procedure, recorded_incident, previous)
    _lock(site, procedure, incident_id, operator)
    journal = IncidentJournal(site.records_dir, incident_id)
    also_open = open_incident(site.records_dir) if source == "new" and procedure == TRIAGE else None
    run_id = f"{procedure}-{started:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(2)}"
    earlier = [r for r in journal.runs() if r.procedure == procedure]
    if source == "new" or not journal.path.exists():
        journal.append(
            "opened",
            run_id,
            procedure,
            "incident",
            {"by": operator, "site": site.name, "kind": values.get("kind", "incident")},
        )
    recorder = Recorder(site.root, sink=lambda name, plain: journal.append("record", run_id, procedure, name, plain))
    install_display_formatters()  # tables without index noise or truncated cells
    run = Run(
        procedure=procedure,
        parameters=values,
        site=site,
        operator=operator,
        incident_id=incident_id,
        kind=values.get("kind", "incident"),
        started_at=iso(started),
        recorder=recorder,
        gate=ApprovalGate(
            bool(values.get("interactive", True)), list(values.get("approve", [])), operator, recorder.record
        ),
        manager=manager,
        run_id=run_id,
        journal=journal,
        incident_source=source,
        namespace_names=namespace_names,
        also_open=also_open,
        resume=resume,
    )
    run.gate._on_decision = lambda decision: _decided(run, decision)
    if earlier and run.gate.interactive:
        run.gate.remember([_decision(d) for r in earlier for d in r.decisions])
    run.record(
        "run",
        RunRecord(
            incident_id=incident_id,
            incident_source=source,
            run_id=run_id,
            kind=run.kind,
            procedure=procedure,
            operator=operator,
            site=site.name,
            started_at=run.started_at,
            parameters={k: _shown(v, site) for k, v in values.items() if k != "site"},
            interactive=run.gate.interactive,
            journal=run.relative(journal.path),
            earlier_runs=[r.run for r in earlier],
            resumed_from=resume.from_run if resume else None,
        ),
    )
    if values.get("drill"):
        run.record("drill", values["drill"])
    if resume is not None:
        run.record("resume", resume.to_record())
    return run


# The parameters that decide what a procedure does: a resumed run goes on with the failed run's.
DECISIONS = ("backup_id", "remedy", "replica")


def _check_same_decisions(values: dict[str, Any], failed: dict[str, Any], run_id: str) -> None:
    """Refuse a resumed run whose deciding parameters differ from the failed run's (it would replay a
    choice made for other parameters)."""
    changed = [
        f"{name}={values[name]!r} (run {run_id} had {failed[name]!r})"
        for name in DECISIONS
        if name in values and name in failed and values[name] != failed[name]
    ]
    if changed:
        raise ParameterError(
            "parameter 'resume_from': a resumed run goes on with the failed run's decisions, but "
            f"{'; '.join(changed)}. Set them as the failed run had them (`recovery resume` does), or leave "
            f"'resume_from' empty to run the procedure from the top with the new ones. {FIX_AND_RERUN}"
        )


WRITING_PROCEDURES = RECOVERY_PROCEDURES  # the runbook's recovery procedures write to the site


def _lock(site: Site, procedure: str, incident_id: str, operator: str) -> None:
    """One recovery procedure at a time on a site (held by this kernel until the outcome cell)."""
    if procedure in WRITING_PROCEDURES:
        holder = {"procedure": procedure, "incident": incident_id, "operator": operator, "since": now_iso()}
        hold_procedure_lock(site.records_dir, holder)


def _decision(entry: dict[str, Any]) -> Decision:
    """A decision as the journal holds it."""
    return Decision(
        action=str(entry.get("action", "")),
        approved=bool(entry.get("approved")),
        by=str(entry.get("by", "")),
        at=str(entry.get("at", "")),
        via=str(entry.get("via", "")),
        summary=str(entry.get("summary", "")),
        key=str(entry.get("key", "")),
        note=str(entry.get("note", "")),
    )


def _decided(run: Run, decision: Decision) -> None:
    """Every decision goes into the journal when it is made; an Abort click halts the run there and then."""
    assert run.journal is not None
    run.journal.append("decision", run.run_id, run.procedure, decision.action, to_plain(decision, run.site.root))
    if decision.via == "widget" and not decision.approved and _all_refused(run, decision.action):
        offered = run.gate.groups.get(decision.action, (decision.action,))
        action = " or ".join(offered)  # a choice is aborted as a whole: "restore or repair"
        what = "; ".join(run.gate.requested.get(a, "") for a in offered)
        run.aborted = AbortedRecord(action=action, by=decision.by, at=decision.at, what=what)
        run.record("aborted", run.aborted)
        run.facts.aborted = run.halt(
            f"aborted by {decision.by} at {human_time(decision.at)}: {action} was not approved"
        )


def _all_refused(run: Run, action: str) -> bool:
    """An abort of a choice (repair or restore) halts once every option of it is refused."""
    offered = run.gate.groups.get(action, (action,))
    return all((d := run.gate.decisions.get(a)) is not None and not d.approved for a in offered)
