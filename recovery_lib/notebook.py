"""What the first cells of every procedure notebook call: validate parameters, set up the run.

``run = start(globals(), procedure="A")`` checks the ``parameters`` cell's values against its type
annotations (unknown, missing or wrongly typed parameters fail here, before anything is read or
written), resolves the site, and returns a :class:`Run` with the recorder, the approval gate and the
RecoveryManager the step cells use.
"""

from __future__ import annotations

import getpass
import secrets
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .approval import ApprovalGate
from .backup import RecoveryManager, suggest_backup_ids
from .clock import iso, now
from .errors import RecoveryError
from .escalation import Facts
from .records import Recorder
from .rendering import install_display_formatters
from .site import Site, load_site

# Names IPython and papermill put in a notebook's namespace that are not parameters.
_NOT_PARAMETERS = {"In", "Out", "get_ipython", "exit", "quit", "open"}
# Every action the approval gate asks for (procedures.py); ``approve`` may name only these.
APPROVAL_ACTIONS = ("restore", "repair", "backup", "stop_system", "start_system")
# Procedure B's ``remedy``: the recommended option, or one insisted on.
REMEDIES = ("least_loss", "repair", "restore")
_FIX = "Nothing was read or changed; fix the parameters and rerun."


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


def validate_parameters(namespace: dict[str, Any], hidden: set[str] | None = None) -> dict[str, Any]:
    """Check the values in ``namespace`` against its ``__annotations__``; return ``{name: value}``.

    ``hidden`` are the names the kernel defined itself (IPython's ``user_ns_hidden``). A parameter
    annotated without ``None`` in its type but set to ``None`` is required and missing.
    """
    declared: dict[str, Any] = dict(namespace.get("__annotations__", {}))
    hidden = hidden if hidden is not None else _kernel_names()
    problems = []
    for name in sorted(namespace):
        if name in declared or name in hidden or name in _NOT_PARAMETERS or name.startswith("_"):
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

    def __repr__(self) -> str:
        mode = "interactive: approve in the widgets" if self.gate.interactive else "headless: approvals by parameter"
        return f"Run {self.incident_id} ({self.kind}) by {self.operator} on site {self.site.name}, {mode}"

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


def _check_records(records: list[str], site: Site, incident_id: str) -> str:
    """Every path in ``records`` must be an executed notebook of one incident, on this site: a summary
    built from another incident's records would report its outcome as this one's. Returns that
    incident's id ("" when the records name none)."""
    from .records import read_notebook

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


def start(namespace: dict[str, Any], procedure: str) -> Run:
    """Validate the parameters of a procedure notebook and set up its run (see module docstring)."""
    values = validate_parameters(namespace)
    if values.get("kind", "incident") not in ("incident", "drill"):
        raise ParameterError(f'parameter \'kind\' must be "incident" or "drill", got {values["kind"]!r}. {_FIX}')
    if values.get("remedy", "least_loss") not in REMEDIES:
        raise ParameterError(
            f"parameter 'remedy' must be one of {', '.join(REMEDIES)}, got {values['remedy']!r}. {_FIX}"
        )
    _check_approvals(values.get("approve", []))
    site = load_site(values.get("site") or None)
    recorded_incident = _check_records(list(values.get("records", [])), site, values.get("incident_id") or "")
    if values.get("backup_id") is not None:
        _check_backup_id(site, values["backup_id"])
    operator = values.get("operator") or getpass.getuser()
    started = now()
    incident_id = values.get("incident_id") or recorded_incident or f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    recorder = Recorder(site.root)
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
    )
    run.record(
        "run",
        {
            "incident_id": incident_id,
            "kind": run.kind,
            "procedure": procedure,
            "operator": operator,
            "site": site.name,
            "started_at": run.started_at,
            "parameters": {k: _shown(v, site) for k, v in values.items() if k != "site"},
            "interactive": run.gate.interactive,
        },
    )
    if values.get("drill"):
        run.record("drill", values["drill"])
    return run
