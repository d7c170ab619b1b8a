"""``recovery resume``: go on with a recovery procedure (A-D) that stopped halfway, from the step that failed.

``recovery resume RECORD.ipynb`` reads the failed run's record, shows the resume plan (what is
replayed from that run, what runs again) before anything runs, then executes the same procedure
notebook headless with papermill, with ``resume_from`` set, and writes its record (and HTML) beside
the failed one. ``recovery resume --list`` names the failed runs a person may resume.

Refused (exit 2, nothing run): a file that is not the record of a failed run of A-D, a run that
recovered or was resumed since, an unknown approval, a record of another site. Recovered: exit 0.
Not recovered: exit 1, naming the new record, the step it stopped at and what to do next.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from recovery_lib import catalog
from recovery_lib.catalog import RECOVERY_PROCEDURES
from recovery_lib.cli.common import SiteOption
from recovery_lib.cli.logs import NOT_ON_CONSOLE
from recovery_lib.clock import now
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, InvalidArgumentError, ParameterError
from recovery_lib.manager import RecoveryManager
from recovery_lib.rendering import export_html
from recovery_lib.runbook.failed_runs import FailedRun, failed_runs
from recovery_lib.runbook.parameters import APPROVAL_ACTIONS
from recovery_lib.runbook.records import read_notebook
from recovery_lib.runbook.resume import Resume, plan_resume
from recovery_lib.runbook.resume_request import resume_parameters, resumed_record_path
from recovery_lib.site.config import Site, load_site

log = logging.getLogger(__name__)

DESCRIPTION = """\
Resume the failed run recorded in RECORD.ipynb (the executed notebook of a procedure A-D that did
not recover). First the plan: which steps are replayed from that run without acting again, which run
again. Then the same procedure notebook runs headless with the same parameters and decisions, in the
same incident, with the failed run's approvals plus every --approve; the checks judge the site as it
is now. The record is written beside RECORD as <stem>-resumed-<UTC time>.ipynb (and .html).
Exit 0 recovered, 1 not recovered, 2 refused (nothing run).
"""
EXAMPLE = f"""\
Examples:
  recovery resume --list --site /srv/peak-trade
  recovery resume outputs/20260101T020000Z-data-1a2b/02_{catalog.notebook("B")} --approve restore --approve start_system
"""


def add_commands(commands: Any, site_option: SiteOption) -> None:
    """Register ``resume``."""
    resume = commands.add_parser(
        "resume",
        help="go on with a recovery procedure (A-D) that stopped halfway, from the step that failed",
        description=DESCRIPTION,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resume.add_argument(
        "record", nargs="?", metavar="RECORD.ipynb", help="the executed notebook of the failed run (not with --list)"
    )
    resume.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="ACTION",
        help=f"approve ACTION for the resumed run (repeatable): one of {', '.join(APPROVAL_ACTIONS)}",
    )
    site_option(resume)
    resume.add_argument(
        "--output", type=Path, metavar="PATH", help="where the resumed run's notebook goes (default: beside RECORD)"
    )
    resume.add_argument(
        "--list", action="store_true", help="list the failed runs of the site that may be resumed, newest first"
    )
    resume.add_argument("--procedure", choices=RECOVERY_PROCEDURES, help="with --list: only the runs of this procedure")
    resume.set_defaults(handler=cmd_resume)


def cmd_resume(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery resume``: list the failed runs, or resume one (see the module docstring)."""
    if args.list:
        if args.record or args.approve or args.output:
            raise InvalidArgumentError(
                "--list takes only --site and --procedure: leave RECORD, --approve, --output out"
            )
        return _list(load_site(args.site), args.procedure, out)
    if args.procedure:
        raise InvalidArgumentError("--procedure goes with --list; a RECORD names its procedure itself")
    if not args.record:
        raise InvalidArgumentError(
            "give RECORD.ipynb, the executed notebook of the failed run, or --list to see the failed runs"
        )
    return _resume(args, out)


def _list(site: Site, procedure: str | None, out: TextIO) -> int:
    runs = failed_runs(site, procedure)
    which = f"procedure {procedure}" if procedure else "the recovery procedures"
    if not runs:
        out.write(f"No failed run of {which} on site {site.name} ({site.root}) to resume.\n")
        return EXIT_OK
    for run in runs:
        out.write(run.label() + "\n")
    return EXIT_OK


def _resume(args: argparse.Namespace, out: TextIO) -> int:
    record = Path(args.record)
    parameters = resume_parameters(record, args.approve, site=args.site)
    site = load_site(parameters["site"])
    run = read_notebook(record)["run"]
    procedure, run_id = str(run["procedure"]), str(run["run_id"])
    try:  # the plan, read-only, before anything runs: the same the notebook makes when it starts
        plan = plan_resume(site, RecoveryManager(site=site), procedure, run_id, parameters["incident_id"])
    except ParameterError as exc:
        raise ParameterError(f"{record}: {exc}") from exc
    target = _output(record, args.output)
    notebook = catalog.notebook(procedure)
    _show_plan(out, record, plan, parameters["approve"])
    out.write(f"Running {notebook} headless on site {site.root}; its record goes to {target}\n")
    out.flush()
    error = _execute(notebook, target, parameters, site.root)
    if not isinstance(error, _KernelDied):
        _write_html(target, out)
    return _report(out, record, target, site, procedure, error)


def _show_plan(out: TextIO, record: Path, plan: Resume, approve: list[str]) -> None:
    out.write(f"Resume plan for {record}:\n  {plan.summary()}\n")
    kept = plan.kept()
    out.write(f"  replayed (not repeated): {', '.join(kept) if kept else 'nothing'}\n")
    again = plan.again()
    if again:
        out.write(f"  run again although they succeeded then: {', '.join(again)}\n")
    out.write(f"  then: {plan.failed_step or 'the step it stopped at'} and every step after it run\n")
    out.write(f"  approvals: {', '.join(approve) if approve else 'none (a step that needs one halts)'}\n")


def _output(record: Path, given: Path | None) -> Path:
    """Where the resumed run's notebook goes: a new file, never over a record."""
    target = (given or resumed_record_path(record, now())).expanduser().absolute()
    if target.suffix != ".ipynb":
        raise InvalidArgumentError(f"--output {given}: must end in .ipynb (the notebook); its HTML goes beside it")
    if target.exists():
        raise InvalidArgumentError(f"{target} exists: a record is never overwritten; pass another --output")
    if not target.parent.is_dir():
        raise InvalidArgumentError(f"--output {given}: directory {target.parent} does not exist; create it first")
    return target


class _KernelDied(str):
    """The kernel itself failed (not a cell): what its log said."""


def _execute(notebook: str, target: Path, parameters: dict[str, Any], cwd: Path) -> str | None:
    """Run the procedure notebook as the drills do (a kernel of its own in the site, stderr kept aside);
    returns None when every cell ran, the error of the cell that raised, or a :class:`_KernelDied`."""
    import papermill

    from recovery_lib.drills.kernels import execute_in, quiet_kernels, start_kernel
    from recovery_lib.drills.runner import NOTEBOOK_DIR  # the drills' notebooks: the wheel's, else the checkout's

    source = NOTEBOOK_DIR / notebook
    if not source.is_file():
        raise FileNotFoundError(f"procedure notebook {source} not found: is recovery_lib installed completely?")
    with quiet_kernels() as quiet:
        kernel = start_kernel(cwd)
        try:
            execute_in(kernel, source, target, parameters)
        except papermill.PapermillExecutionError as exc:  # a cell raised: the record says which, and why
            return f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        except Exception as exc:  # noqa: BLE001 - the kernel died or could not start: reported as a failure
            log.exception("the kernel running %s failed", notebook, extra=NOT_ON_CONSOLE)
            quiet.seek(0)
            said = (kernel.tail() + quiet.read())[-2000:]
            return _KernelDied(f"{type(exc).__name__}: {exc}\n{said}")
        finally:
            kernel.stop()
    return None


def _write_html(target: Path, out: TextIO) -> None:
    """The record's HTML beside it, as a drill writes it; a failure is said loudly, the notebook stays."""
    html = target.with_suffix(".html")
    try:
        html.write_text(export_html(target), encoding="utf-8")
    except (OSError, ValueError) as exc:  # the .ipynb is the record; the page is a convenience
        log.warning("writing %s failed: %s", html, exc, extra=NOT_ON_CONSOLE)
        sys.stderr.write(
            f"recovery: WARNING: writing {html} failed ({type(exc).__name__}: {exc}); the record is {target}\n"
        )
        return
    out.write(f"Wrote {html}\n")


def _report(out: TextIO, record: Path, target: Path, site: Site, procedure: str, error: str | None) -> int:
    """The outcome: recovered (0), or not (1) with the record, where it stopped and what to do next."""
    if isinstance(error, _KernelDied):
        sys.stderr.write(
            f"recovery: the kernel running procedure {procedure} failed, so the resumed run did not finish: "
            f"{error}\nThe failed run's record is {record}; what the resumed run wrote is in {target} (if it "
            f"exists) and in the incident journal. Resume again: recovery resume {record}\n"
        )
        return EXIT_FAILED
    resumed = read_notebook(target)
    new_run = resumed.get("run") or {}
    if not new_run.get("run_id"):  # refused in its validation cell: nothing was read or changed
        raise ParameterError(
            f"{record}: the resumed run of procedure {procedure} refused to start ({error}); its notebook is "
            f"{target}. Nothing was changed: fix what it says and resume again."
        )
    outcome = resumed.get("outcome") or {}
    if outcome.get("success") and error is None:
        out.write(
            f"RECOVERED: procedure {procedure} recovered (run {new_run['run_id']}, resuming run "
            f"{new_run.get('resumed_from')}). Record: {target}\nNext: run V (verification) and P (post-recovery).\n"
        )
        return EXIT_OK
    mine = next((f for f in failed_runs(site, procedure) if f.run_id == new_run["run_id"]), None)
    out.write(_not_recovered(procedure, new_run, target, mine, outcome, error, resumed.get("escalation")))
    return EXIT_FAILED


def _not_recovered(
    procedure: str,
    run: dict[str, Any],
    target: Path,
    failed: FailedRun | None,
    outcome: dict[str, Any],
    error: str | None,
    escalation: Any,
) -> str:
    """What a person reads when the resumed run did not recover: where, why, and the two ways on."""
    step = failed.failed_step if failed and failed.failed_step else "before its outcome"
    why = (failed.halted if failed else None) or outcome.get("halted") or error or "the success criteria failed"
    lines = [
        f"NOT RECOVERED: procedure {procedure}, run {run['run_id']}, stopped at {step}: {why}",
        f"Record: {target}",
    ]
    if outcome.get("failed_criteria"):
        lines.append(f"Failed criteria: {', '.join(outcome['failed_criteria'])}")
    # An approval the run asked for and did not have halts it: say which --approve goes on from there.
    refused = [a.get("action") for a in outcome.get("approvals") or [] if not a.get("approved")]
    needed = [a for a in dict.fromkeys(refused) if a in APPROVAL_ACTIONS]
    if needed:
        flags = " ".join(f"--approve {a}" for a in needed)
        lines.append(f"Next: if you approve it, resume again with the approval: recovery resume {target} {flags}")
    else:
        lines.append(f"Next: fix the cause, then resume again: recovery resume {target} [--approve ACTION ...]")
    if isinstance(escalation, dict) and escalation.get("name"):
        lines.append(
            f"Or follow the escalation in the record: level {escalation.get('level')}, {escalation['name']} "
            f"({escalation.get('contact')})."
        )
    return "\n".join(lines) + "\n"
