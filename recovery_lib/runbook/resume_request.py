"""What ``recovery resume RECORD.ipynb`` asks a procedure notebook to do: the resumed run's parameters.

The failed run's executed notebook (the record a drill, papermill or JupyterLab left) says which
procedure ran, its run id and incident, and its parameters. :func:`resume_parameters` turns that into
the parameters of the run that goes on from it: the same procedure and decisions, headless
(``interactive=False``), in the failed run's incident, with ``resume_from`` set to its run id and the
approvals it had plus the ones given now. Every reason not to resume (not a notebook, not a failed run
of A-D, a run that recovered, an unknown approval, a record of another site, a run resumed since) is a
:class:`~recovery_lib.errors.ParameterError` naming the file and what to do; nothing has been run or
changed when it is raised. Read-only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from recovery_lib.catalog import RECOVERY_PROCEDURES
from recovery_lib.errors import ParameterError, SiteError
from recovery_lib.runbook.failed_runs import find_run, overtaken
from recovery_lib.runbook.journal import IncidentJournal
from recovery_lib.runbook.parameters import APPROVAL_ACTIONS, PARAMETER_TYPES
from recovery_lib.runbook.records import NotebookRecords, read_notebook
from recovery_lib.site.config import Site, load_site

RESUMED = "-resumed-"  # <stem>-resumed-<UTC time>.ipynb: the record of a resumed run
_RESUMED_SUFFIX = re.compile(rf"{RESUMED}\d{{8}}T\d{{6}}Z$")
LIST_HINT = "`recovery resume --list` names the failed runs of this site"


def read_record(record_path: str | Path) -> NotebookRecords:
    """The executed notebook ``record_path`` of a failed run of A-D, with its ``run`` record; refuses
    (ParameterError naming the file) anything else: no notebook, unreadable, never validated, a run of
    another procedure, a run that recovered."""
    path = Path(record_path)
    if path.suffix != ".ipynb":
        raise ParameterError(
            f"{path}: not an executed notebook (.ipynb). Give the record of the failed run, e.g. "
            f"outputs/<drill>/02_<procedure notebook>.ipynb; {LIST_HINT}. Nothing was run."
        )
    try:
        record = read_notebook(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ParameterError(
            f"{path}: not a readable executed notebook ({type(exc).__name__}: {exc}). Give the record of the "
            f"failed run; {LIST_HINT}. Nothing was run."
        ) from exc
    run = record.get("run")
    if not isinstance(run, dict) or not run.get("run_id") or not run.get("incident_id"):
        raise ParameterError(
            f"{path}: holds no run record (the notebook never passed its validation cell): there is nothing "
            "to resume. Run the procedure from the top. Nothing was run."
        )
    procedure = run.get("procedure")
    if procedure not in RECOVERY_PROCEDURES:
        raise ParameterError(
            f"{path}: a record of procedure {procedure}, not of a recovery procedure "
            f"({', '.join(RECOVERY_PROCEDURES)}): only those resume. Run {procedure} again from the top. "
            "Nothing was run."
        )
    if (record.get("outcome") or {}).get("success"):
        raise ParameterError(
            f"{path}: run {run['run_id']} recovered (its outcome is success): there is nothing to resume. "
            "Run V (verification) and P (post-recovery) next. Nothing was run."
        )
    return record


def resume_parameters(
    record_path: str | Path, extra_approve: Iterable[str] = (), site: str | None = None
) -> dict[str, Any]:
    """The parameters of the run that resumes the failed run recorded in ``record_path``.

    The failed run's parameters (the values papermill passed, else the run record's), with
    ``interactive=False``, its ``incident_id``, ``resume_from`` = its run id, and ``approve`` = the
    approvals its ``approve`` parameter gave (a headless run's only: an interactive run ignored that
    parameter, and what a person clicked is not carried into a run nobody watches) plus
    ``extra_approve``. ``operator`` is left empty: the person resuming acts, and is recorded as such.
    ``site``: the ``--site`` given, else the one the failed run ran on, else the usual default; it
    must be the site the record is of. Refusals: :func:`read_record`, an unknown approval, another
    site, a run resumed since (ParameterError naming the file). Read-only."""
    path = Path(record_path)
    record = read_record(path)
    run: dict[str, Any] = record["run"]
    approvals = list(extra_approve)
    unknown = [a for a in approvals if a not in APPROVAL_ACTIONS]
    if unknown:
        raise ParameterError(
            f"{path}: unknown approval {', '.join(map(repr, unknown))}: a resumed run may approve "
            f"{', '.join(APPROVAL_ACTIONS)}. Fix --approve and resume again. Nothing was run."
        )
    passed = dict(record.parameters)  # exactly what papermill passed (absolute paths included)
    root = _site(path, run, site if site is not None else passed.get("site"))
    recorded = dict(run.get("parameters") or {})  # every declared parameter, paths shown site-relative
    values: dict[str, Any] = {}
    for name in recorded or PARAMETER_TYPES:
        if name == "site" or name not in PARAMETER_TYPES:
            continue
        if name in passed:
            values[name] = passed[name]
        elif name in recorded:
            values[name] = _from_record(name, recorded[name], root)
    interactive = bool(run.get("interactive", values.get("interactive", True)))
    earlier = [str(a) for a in values.get("approve") or []] if not interactive else []
    values.update(
        site=str(root.root),
        interactive=False,
        operator="",
        incident_id=str(run["incident_id"]),
        resume_from=str(run["run_id"]),
        approve=list(dict.fromkeys([*earlier, *approvals])),  # the failed run's first, each once
    )
    if why := overtaken(IncidentJournal(root.records_dir, str(run["incident_id"])).entries(), str(run["run_id"])):
        raise ParameterError(
            f"{path}: run {run['run_id']} is not the one to resume: {why} (a resumed run's record is beside this "
            f"one, named *{RESUMED}*.ipynb); {LIST_HINT}. Nothing was run."
        )
    return values


def _site(path: Path, run: dict[str, Any], given: Any) -> Site:
    """The site the resumed run runs on; refuses one that is not the record's (by name, and by journal)."""
    try:
        site = load_site(given if given else None)
    except SiteError as exc:
        if given is None or given == "":
            raise
        raise SiteError(f"{path}: the site to resume on cannot be used: {exc}") from exc
    if run.get("site") and run["site"] != site.name:
        raise ParameterError(
            f"{path}: a record of site {run['site']!r}, not of {site.name!r} ({site.root}): pass --site with the "
            "directory of the site the failed run ran on. Nothing was run."
        )
    try:
        find_run(site, str(run["run_id"]), str(run["incident_id"]))  # its journal must be on this site
    except ParameterError as exc:
        raise ParameterError(
            f"{path}: run {run['run_id']} is not in the journals of site {site.root} ({exc}) Pass --site with the "
            "directory of the site the failed run ran on. Nothing was run."
        ) from exc
    return site


def _from_record(name: str, value: Any, site: Site) -> Any:
    """A parameter as the run record shows it, as the resumed run needs it. The record shows paths
    inside the site relative to it and others by their name only: an ``identity`` file that is not
    found that way is left to its default ($RECOVERY_AGE_IDENTITY), never guessed."""
    if name != "identity" or not value:
        return value
    candidate = site.root / str(value)
    return str(candidate) if candidate.is_file() else ""


def resumed_record_path(record_path: str | Path, at: datetime) -> Path:
    """``<stem>-resumed-<UTC time>.ipynb`` beside the record; resuming a resumed run's record does not
    stack suffixes (``02_B-resumed-<t1>`` resumed gives ``02_B-resumed-<t2>``)."""
    path = Path(record_path)
    stem = _RESUMED_SUFFIX.sub("", path.stem)
    return path.with_name(f"{stem}{RESUMED}{at:%Y%m%dT%H%M%SZ}.ipynb")
