"""The parameters of a procedure notebook, checked before anything is read or written.

The ``parameters`` cell declares each one with its type (``backup_id: str = "latest"``);
:func:`validate_parameters` checks a namespace against those annotations, :func:`check_values` what the
types cannot say, and the ``check_*`` functions what needs the site (a backup id that names no backup,
records of another incident). Every refusal is a :class:`ParameterError` that names the parameter
and says what to do; nothing has been read or changed when it is raised.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from recovery_lib.backup import suggest_backup_ids
from recovery_lib.catalog import notebook
from recovery_lib.errors import ParameterError
from recovery_lib.runbook.journal import valid_incident_id
from recovery_lib.runbook.records import read_notebook
from recovery_lib.site.config import Site, looks_like_a_site

# Names IPython and papermill put in a notebook's namespace that are not parameters.
_NOT_PARAMETERS = {"In", "Out", "get_ipython", "exit", "quit", "open"}

# Every action the approval gate asks for (procedures.py); ``approve`` may name only these.
APPROVAL_ACTIONS = ("restore", "repair", "backup", "stop_system", "start_system")

# Procedure B's ``remedy``: the recommended option, or one insisted on.
REMEDIES = ("least_loss", "repair", "restore")

FIX_AND_RERUN = "Nothing was read or changed; fix the parameters and rerun."

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
    "seeded": "re-seed from a replica",
    "pushed": "copy the new backup off the host",
}
# Every parameter a procedure notebook declares, with the type its parameters cell gives it: what
# :func:`validate_values` checks a run started from plain Python against (no parameters cell there).
PARAMETER_TYPES: dict[str, Any] = {
    "site": str,
    "interactive": bool,
    "approve": list[str],
    "operator": str,
    "incident_id": str,
    "kind": str,
    "drill": dict,
    "backup_id": str,
    "remedy": str,
    "records": list[str],
    "replica": str,  # C, D: the replica to re-seed from ("" tries each configured one)
    "identity": str,  # C, D: the age key file of an encrypted replica ("" means $RECOVERY_AGE_IDENTITY)
    "resume_from": str,  # A-D: the failed run to resume (its run id or executed notebook); "" runs from the top
}


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
        raise ParameterError("; ".join(problems) + f". {FIX_AND_RERUN}")
    return values


def _kernel_names() -> set[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    return set(getattr(shell, "user_ns_hidden", {})) if shell is not None else set()


def check_values(values: dict[str, Any]) -> dict[str, Any]:
    """The checks the types cannot say: kind, remedy, incident id and approval names. Returns ``values``."""
    if values.get("kind", "incident") not in ("incident", "drill"):
        raise ParameterError(
            f'parameter \'kind\' must be "incident" or "drill", got {values["kind"]!r}. {FIX_AND_RERUN}'
        )
    if values.get("remedy", "least_loss") not in REMEDIES:
        raise ParameterError(
            f"parameter 'remedy' must be one of {', '.join(REMEDIES)}, got {values['remedy']!r}. {FIX_AND_RERUN}"
        )
    if values.get("incident_id") and not valid_incident_id(values["incident_id"]):
        raise ParameterError(
            f"parameter 'incident_id' {values['incident_id']!r} cannot name an incident: use letters, digits, "
            f"'.', '-' or '_' (e.g. the id triage printed), or leave it empty to join the open incident. "
            + FIX_AND_RERUN
        )
    _check_approvals(values.get("approve", []))
    return values


def validate_values(values: dict[str, Any]) -> dict[str, Any]:
    """Check parameters given as plain values (a run started outside a notebook) exactly as the
    validation cell checks a parameters cell: each against its type in :data:`PARAMETER_TYPES`."""
    unknown = sorted(set(values) - set(PARAMETER_TYPES))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} (a procedure takes: "
            f"{', '.join(PARAMETER_TYPES)}). {FIX_AND_RERUN}"
        )
    namespace: dict[str, Any] = {"__annotations__": {name: PARAMETER_TYPES[name] for name in values}, **values}
    return check_values(validate_parameters(namespace, hidden=set()))


def _check_approvals(approve: list[str]) -> None:
    """Refuse approval names the gate never asks for: a typo would silently leave a step unapproved."""
    unknown = [name for name in approve if name not in APPROVAL_ACTIONS]
    if unknown:
        raise ParameterError(
            f"parameter 'approve' names unknown action(s) {', '.join(map(repr, unknown))}; "
            f"the actions that can be approved are {', '.join(APPROVAL_ACTIONS)}. {FIX_AND_RERUN}"
        )


def check_backup_id(site: Site, backup_id: str) -> None:
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
        f'Use "latest" for the newest backup that verifies and fixes the fault. {FIX_AND_RERUN}'
    )


def check_looks_like_a_site(site: Site) -> None:
    """An empty ``site`` means $RECOVERY_SITE or the current directory; a kernel started in notebooks/
    would take that for the site (and write an incident journal there). Refused when nothing in it
    is a site's: no recovery.toml, no config, state or data, no backups."""
    if not looks_like_a_site(site):  # one rule for "a site" (site/config.py), as `recovery health` applies it
        raise ParameterError(
            f"parameter 'site': {site.root} does not look like a site (no recovery.toml, no config, state, data "
            f"or backups in it). Set 'site' (or $RECOVERY_SITE) to the site's directory. {FIX_AND_RERUN}"
        )


def check_records(records: list[str], site: Site, incident_id: str) -> str:
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
                f"(e.g. outputs/<run>/02_{notebook('B')}). {FIX_AND_RERUN}"
            )
        try:
            run = read_notebook(candidate).get("run") or {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ParameterError(
                f"parameter 'records': {path} is not a readable notebook ({type(exc).__name__}). {FIX_AND_RERUN}"
            ) from exc
        if run.get("site") not in (None, site.name):
            raise ParameterError(
                f"parameter 'records': {path} is a record of site {run['site']!r}, not of {site.name!r}. "
                + FIX_AND_RERUN
            )
        incidents.setdefault(str(run.get("incident_id")), []).append(candidate.name)
    known = set(incidents) - {"None"}
    if len(known) > 1 or (incident_id and known and known != {incident_id}):
        listed = "; ".join(f"{i}: {', '.join(names)}" for i, names in incidents.items())
        raise ParameterError(
            f"parameter 'records' mixes incidents ({listed})"
            + (f" or is not incident {incident_id!r}" if incident_id else "")
            + f"; give the notebooks of one incident. {FIX_AND_RERUN}"
        )
    return next(iter(known), "")
