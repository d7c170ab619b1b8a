"""What the first cells of every procedure notebook call: validate parameters, set up the run.

``run = start(globals(), procedure="A")`` checks the ``parameters`` cell's values against its type
annotations (unknown, missing or wrongly typed parameters fail here, before anything is read or
written), resolves the site, and returns a :class:`Run` with the recorder, the approval gate and the
RecoveryManager the step cells use.

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
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.backup import suggest_backup_ids
from recovery_lib.clock import iso, now, now_iso
from recovery_lib.errors import RecoveryError
from recovery_lib.manager import RecoveryManager
from recovery_lib.rendering import human_time, install_display_formatters
from recovery_lib.runbook.approval import ApprovalGate, Decision
from recovery_lib.runbook.escalation import Facts
from recovery_lib.runbook.journal import IncidentJournal, hold_procedure_lock, open_incident, valid_incident_id
from recovery_lib.runbook.records import Recorder, read_notebook, to_plain
from recovery_lib.site.config import Site, load_site

# Names IPython and papermill put in a notebook's namespace that are not parameters.
_NOT_PARAMETERS = {"In", "Out", "get_ipython", "exit", "quit", "open"}
# Every action the approval gate asks for (procedures.py); ``approve`` may name only these.
APPROVAL_ACTIONS = ("restore", "repair", "backup", "stop_system", "start_system")
# Procedure B's ``remedy``: the recommended option, or one insisted on.
REMEDIES = ("least_loss", "repair", "restore")
_FIX = "Nothing was read or changed; fix the parameters and rerun."
# Every variable a step cell of a procedure notebook sets, and the step that sets it
# (tests/test_notebooks.py checks the notebooks set no other). Before that step has run, the
# variable holds a NotRun naming it; on a rerun of the validation cell they are not parameters.
STEP_VARIABLES = {
    "choice": "select the backup",
    "plan": "the dry run",
    "result": "the restore",
    "remedies": "the dry run",
    "config_check": "verify configuration",
    "reconciliation": "reconcile",
    "restart_action": "restart",
    "post_backup": "post-recovery backup",
    "directory": "assess the backup system",
    "verification": "verify backup integrity",
    "emergency": "create a new backup",
    "health": "health checks",
    "results": "health checks",
    "triage": "scenario detection",
    "exchange_check": "external connectivity",
    "summary": "document incident",
    "escalation": "escalation",
}


class ParameterError(RecoveryError):
    """A notebook parameter is unknown, missing or of the wrong type; nothing was done."""


def _matches(value: Any, annotation: Any) -> bool:
    """isinstance for the annotations a parameters cell uses: str, int, float, bool, list[str], X | None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(annotation))
    if annotation is type(None) or annotation is None:
        return value is None
    if origin in (list, tuple):
        (inner,) = typing.get_args(annotation)[:1] or (Any,)
        return isinstance(value, list | tuple) and all(inner is Any or _matches(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is Any:
        return True
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    if typing.get_args(annotation):  # list[str], str | None: the full form, not just "list"
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def validate_parameters(
    namespace: dict[str, Any], hidden: set[str] | None = None, known: set[str] | None = None
) -> dict[str, Any]:
    """Check the values in ``namespace`` against its ``__annotations__``; return ``{name: value}``.

    ``hidden`` are the names the kernel defined itself (IPython's ``user_ns_hidden``). A parameter
    annotated without ``None`` in its type but set to ``None`` is required and missing. ``known``:
    on a rerun in the same kernel, the names that were there at the first validation; names the
    later cells (or the person) defined since are not parameters, so they are not errors.
    """
    declared: dict[str, Any] = dict(namespace.get("__annotations__", {}))
    hidden = hidden if hidden is not None else _kernel_names()
    problems = []
    for name in sorted(namespace):
        if name in declared or name in hidden or name in _NOT_PARAMETERS or name.startswith("_"):
            continue
        if known is not None and (name not in known or name in STEP_VARIABLES or name == "run"):
            continue
        if isinstance(namespace[name], types.ModuleType) or callable(namespace[name]):
            continue  # imports of the validation cell; parameters are data
        problems.append(f"unknown parameter {name!r} (this notebook takes: {', '.join(sorted(declared))})")
    values = {}
    for name, annotation in declared.items():
        if name not in namespace:
            problems.append(f"parameter {name!r} has no value")
            continue
        value = namespace[name]
        if value is None and not _matches(None, annotation):
            problems.append(f"required parameter {name!r} is missing (expected {_type_name(annotation)})")
        elif not _matches(value, annotation):
            problems.append(
                f"parameter {name!r} must be {_type_name(annotation)}, got {type(value).__name__} {value!r}"
            )
        values[name] = value
    if problems:
        raise ParameterError("; ".join(problems) + f". {_FIX}")
    return values


def _kernel_names() -> set[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    return set(getattr(shell, "user_ns_hidden", {})) if shell is not None else set()


@dataclass
class Run:
    """One execution of a procedure notebook: who, where, what was approved and recorded."""

    procedure: str
    parameters: dict[str, Any]
    site: Site
    operator: str
    incident_id: str
    kind: str
    started_at: str
    recorder: Recorder
    gate: ApprovalGate
    manager: RecoveryManager
    facts: Facts = field(default_factory=Facts)  # what escalation needs to know
    halted: str | None = None  # why the procedure stopped early, if it did
    summary: Any = None  # the incident summary (post-recovery notebook)
    criteria: Any = None  # the success criteria checklist, once judged
    remedy_action: str | None = None  # the remedy put up for approval (Procedure B)
    nothing_to_do: str | None = None  # the assessment found no fault: writing steps leave the site alone
    known_trade_ids: set[int] = field(default_factory=set)  # trade ids known before a data remedy changed the ledger
    run_id: str = ""  # this run in the incident journal
    journal: IncidentJournal | None = None
    incident_source: str = "new"  # parameter | records | journal (the open incident) | new
    done: dict[str, Any] = field(default_factory=dict)  # steps that happened, by key: a rerun says so
    namespace_names: set[str] = field(default_factory=set)  # the kernel's names at the first validation
    reruns: int = 0  # times the validation cell ran again with the same parameters
    aborted: dict[str, Any] | None = None  # who clicked Abort on what, and when
    also_open: str | None = None  # triage started a new incident while this one was still open

    def __repr__(self) -> str:
        mode = "interactive: approve in the widgets" if self.gate.interactive else "headless: approvals by parameter"
        joined = {
            "journal": " (joined the open incident of this site)",
            "new": " (a new incident)",
        }.get(self.incident_source, "")
        again = (
            f". Validation rerun {self.reruns}x with the same parameters: the same run goes on, approvals stand"
            if self.reruns
            else ""
        )
        journal = f"; journal {self.relative(self.journal.path)}" if self.journal else ""
        if self.also_open:
            journal += (
                f". NOTE: incident {self.also_open} is still open (P has not closed it); this triage starts a new "
                f"one. To go on with {self.also_open} instead, set incident_id to it and rerun this cell"
            )
        return (
            f"Run of procedure {self.procedure} in incident {self.incident_id}{joined} ({self.kind}) by "
            f"{self.operator} on site {self.site.name}, {mode}{journal}{again}"
        )

    def halt(self, reason: str) -> str:
        """Stop the procedure here (the first reason wins); recorded as ``halted``. Returns the reason."""
        reason = to_plain(reason, self.site.root)  # messages name files by their site path, never the host's
        if not self.halted:
            self.halted = reason
            self.record("halted", {"reason": reason, "at": now_iso()})
        return self.halted

    def record(self, name: str, value: Any) -> Any:
        """Record a structured result into the notebook."""
        return self.recorder.record(name, value)

    def relative(self, path: Path | str) -> str:
        """A path as the record shows it: relative to the site when inside it."""
        return self.site.relative(Path(path))


def _shown(value: Any, site: Site) -> Any:
    """Parameters as the record shows them: no host-specific absolute paths."""
    if isinstance(value, list):
        return [_shown(item, site) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        shown = site.relative(Path(value))
        return shown if not shown.startswith("/") else Path(value).name
    return value


def _check_approvals(approve: list[str]) -> None:
    """Refuse approval names the gate never asks for: a typo would silently leave a step unapproved."""
    unknown = [name for name in approve if name not in APPROVAL_ACTIONS]
    if unknown:
        raise ParameterError(
            f"parameter 'approve' names unknown action(s) {', '.join(map(repr, unknown))}; "
            f"the actions that can be approved are {', '.join(APPROVAL_ACTIONS)}. {_FIX}"
        )


def _check_backup_id(site: Site, backup_id: str) -> None:
    """An explicit backup id must name a backup of this site: a typo is refused here, before trading is
    stopped or anything is written, with the nearest ids suggested. Read-only."""
    well_formed = bool(backup_id) and "/" not in backup_id and not backup_id.startswith(".")
    if backup_id == "latest" or (well_formed and (site.backup_dir / backup_id).is_dir()):
        return
    near = suggest_backup_ids(site.backup_dir, backup_id)
    # The list is named even with a suggestion: a near id is a guess, and may be the wrong backup.
    hint = (f" Did you mean: {', '.join(near)}?" if near else "") + " `recovery backup list` shows the backups."
    raise ParameterError(
        f"parameter 'backup_id': there is no backup {backup_id!r} in {site.relative(site.backup_dir)}.{hint} "
        f'Use "latest" for the newest backup that verifies and fixes the fault. {_FIX}'
    )


def _check_looks_like_a_site(site: Site) -> None:
    """An empty ``site`` means $RECOVERY_SITE or the current directory; a kernel started in notebooks/
    would take that for the site (and write an incident journal there). Refused when nothing in it
    is a site's: no recovery.toml, no config, state or data, no backups."""
    tops = [site.path(top) for paths in site.categories.values() for top in paths]
    if site.config_source is None and not site.backup_dir.exists() and not any(top.exists() for top in tops):
        raise ParameterError(
            f"parameter 'site': {site.root} does not look like a site (no recovery.toml, no config, state, data "
            f"or backups in it). Set 'site' (or $RECOVERY_SITE) to the site's directory. {_FIX}"
        )


def _check_records(records: list[str], site: Site, incident_id: str) -> str:
    """Every path in ``records`` must be an executed notebook of one incident, on this site: a summary
    built from another incident's records would report its outcome as this one's. Returns that
    incident's id ("" when the records name none)."""
    incidents: dict[str, list[str]] = {}
    for path in records:
        candidate = Path(path)
        if not candidate.is_file():
            what = "is a directory" if candidate.is_dir() else "does not exist"
            raise ParameterError(
                f"parameter 'records': {path} {what}; list the executed notebooks (.ipynb) of this incident "
                f"(e.g. outputs/<run>/02_B_data_recovery.ipynb). {_FIX}"
            )
        try:
            run = read_notebook(candidate).get("run") or {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ParameterError(
                f"parameter 'records': {path} is not a readable notebook ({type(exc).__name__}). {_FIX}"
            ) from exc
        if run.get("site") not in (None, site.name):
            raise ParameterError(
                f"parameter 'records': {path} is a record of site {run['site']!r}, not of {site.name!r}. {_FIX}"
            )
        incidents.setdefault(str(run.get("incident_id")), []).append(candidate.name)
    known = set(incidents) - {"None"}
    if len(known) > 1 or (incident_id and known and known != {incident_id}):
        listed = "; ".join(f"{i}: {', '.join(names)}" for i, names in incidents.items())
        raise ParameterError(
            f"parameter 'records' mixes incidents ({listed})"
            + (f" or is not incident {incident_id!r}" if incident_id else "")
            + f"; give the notebooks of one incident. {_FIX}"
        )
    return next(iter(known), "")


class NotRun:
    """What a step variable holds before its step has run (a cell run out of order says so)."""

    ok = False

    def __init__(self, variable: str, step: str) -> None:
        self.variable = variable
        self.step = step

    def summary(self) -> str:
        """One line for a person."""
        return f"not run: the step '{self.step}' (which sets `{self.variable}`) has not run in this kernel"

    def __repr__(self) -> str:
        return f"⏭ {self.summary()}"


class StepNotRun(RecoveryError):
    """A cell needs the result of a step that has not run yet: nothing was done."""


def ran(value: Any) -> Any:
    """``value``, or :class:`StepNotRun` naming the step to run first when it is a :class:`NotRun`."""
    if isinstance(value, NotRun):
        raise StepNotRun(
            f"this cell needs `{value.variable}`, which the step '{value.step}' sets, and that step has not run "
            "in this kernel. Nothing was done: run the cells above it first, in order."
        )
    return value


class InvalidRun:
    """What ``run`` becomes when the validation cell is rerun with parameters that fail: the cells below
    refuse (with the reason) instead of going on with the old parameters."""

    def __init__(self, problem: str) -> None:
        self._problem = problem

    def __getattr__(self, name: str) -> Any:
        raise ParameterError(f"the parameters failed validation, so no step runs: {self._problem}")

    def __repr__(self) -> str:
        return f"⛔ No run: the parameters failed validation ({self._problem})"


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
    if procedure != "triage":
        found = open_incident(site.records_dir)
        if found:
            return found, "journal"
    if procedure == "P":  # a summary of nothing would be an incident of its own: refuse
        raise ParameterError(
            f"there is no open incident on site {site.name} ({site.relative(site.records_dir)} has none) and "
            "neither 'incident_id' nor 'records' is set: run 00 and the procedure first, or name the incident "
            f"in 'incident_id'. {_FIX}"
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
        values = _validated(namespace, previous)
    except ParameterError as exc:
        if previous is not None or isinstance(namespace.get("run"), InvalidRun):
            namespace["run"] = InvalidRun(str(exc))  # the cells below must not go on with the old parameters
        raise
    if previous is not None and values == previous.parameters:
        _lock(previous.site, procedure, previous.incident_id, previous.operator)
        previous.reruns += 1
        _reset_step_variables(namespace, keep=True)
        return previous
    site = load_site(values.get("site") or None)
    _check_looks_like_a_site(site)
    recorded_incident = _check_records(list(values.get("records", [])), site, values.get("incident_id") or "")
    if values.get("backup_id") is not None:
        _check_backup_id(site, values["backup_id"])
    operator = values.get("operator") or getpass.getuser()
    started = now()
    incident_id, source = _resolve_incident(values, site, procedure, recorded_incident, previous)
    _lock(site, procedure, incident_id, operator)
    journal = IncidentJournal(site.records_dir, incident_id)
    also_open = open_incident(site.records_dir) if source == "new" and procedure == "triage" else None
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
        manager=RecoveryManager(site=site),
        run_id=run_id,
        journal=journal,
        incident_source=source,
        namespace_names=set(namespace),
        also_open=also_open,
    )
    run.gate._on_decision = lambda decision: _decided(run, decision)
    if earlier and run.gate.interactive:
        run.gate.remember([_decision(d) for r in earlier for d in r.decisions])
    run.record(
        "run",
        {
            "incident_id": incident_id,
            "incident_source": source,
            "run_id": run_id,
            "kind": run.kind,
            "procedure": procedure,
            "operator": operator,
            "site": site.name,
            "started_at": run.started_at,
            "parameters": {k: _shown(v, site) for k, v in values.items() if k != "site"},
            "interactive": run.gate.interactive,
            "journal": run.relative(journal.path),
            "earlier_runs": [r.run for r in earlier],
        },
    )
    if values.get("drill"):
        run.record("drill", values["drill"])
    _reset_step_variables(namespace, keep=False)
    return run


WRITING_PROCEDURES = ("A", "B", "C", "D")


def _lock(site: Site, procedure: str, incident_id: str, operator: str) -> None:
    """One recovery procedure at a time on a site (held by this kernel until the outcome cell)."""
    if procedure in WRITING_PROCEDURES:
        holder = {"procedure": procedure, "incident": incident_id, "operator": operator, "since": now_iso()}
        hold_procedure_lock(site.records_dir, holder)


def _validated(namespace: dict[str, Any], previous: Run | None) -> dict[str, Any]:
    values = validate_parameters(namespace, known=previous.namespace_names if previous else None)
    if values.get("kind", "incident") not in ("incident", "drill"):
        raise ParameterError(f'parameter \'kind\' must be "incident" or "drill", got {values["kind"]!r}. {_FIX}')
    if values.get("remedy", "least_loss") not in REMEDIES:
        raise ParameterError(
            f"parameter 'remedy' must be one of {', '.join(REMEDIES)}, got {values['remedy']!r}. {_FIX}"
        )
    if values.get("incident_id") and not valid_incident_id(values["incident_id"]):
        raise ParameterError(
            f"parameter 'incident_id' {values['incident_id']!r} cannot name an incident: use letters, digits, "
            f"'.', '-' or '_' (e.g. the id triage printed), or leave it empty to join the open incident. {_FIX}"
        )
    _check_approvals(values.get("approve", []))
    return values


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
        run.aborted = {"action": action, "by": decision.by, "at": decision.at, "what": what}
        run.record("aborted", run.aborted)
        run.facts.aborted = run.halt(
            f"aborted by {decision.by} at {human_time(decision.at)}: {action} was not approved"
        )


def _all_refused(run: Run, action: str) -> bool:
    """An abort of a choice (repair or restore) halts once every option of it is refused."""
    offered = run.gate.groups.get(action, (action,))
    return all((d := run.gate.decisions.get(a)) is not None and not d.approved for a in offered)
