"""``recovery drill ...``: the runbook's Testing & Drills, by machine (schedules: cli/schedule.py)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from recovery_lib.catalog import DRILLS, notebook, schedule_text
from recovery_lib.cli.logs import LogTarget, default_target
from recovery_lib.cli.operations import Report, drill_outputs, reporting, tell_drills
from recovery_lib.clock import now
from recovery_lib.drills.due import drills_due, due_report
from recovery_lib.drills.history import load_records
from recovery_lib.drills.injectors import ESCALATION_VARIANTS, VARIANTS, chosen_variant
from recovery_lib.drills.midway import MIDWAY_FAULTS, chosen_midway
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, InvalidArgumentError, RecoveryError
from recovery_lib.site.config import CONFIG_NAME, SITE_ENV, Site, load_site, require_sandbox

# `--scenario all`: one drill per scenario, the seed choosing each fault, and then the host lost with its
# local backups (scenario 3 with only the replica to recover from: the drill the 3-2-1 rule needs). It
# destroys the site, so a drill on --site leaves it out.
ALL_EXTRAS = (("full", "host_lost"),)

B_NOTEBOOK = notebook("B")  # the help's example of a resumed drill's records


def add_commands(commands: Any, site_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``drill`` (run, due, report)."""
    drill = commands.add_parser(
        "drill",
        help="break a sandbox on purpose and recover it with the notebooks",
        description="Drills: inject a runbook scenario into a sandbox site, run triage, "
        "the procedure, verification and post-recovery headless, keep the notebooks.",
    )
    sub = drill.add_subparsers(dest="drill_command", metavar="SUBCOMMAND", required=True)
    run = sub.add_parser(
        "run",
        help="run drills and write their records to --outputs",
        description="Each drill: a fresh sandbox (or --site), a scheduled backup pushed to the sandbox's "
        "replica, a second of trading, the fault, then the notebooks. --scenario all runs every scenario "
        "and then full/host_lost (the host gone with its local backups; recovered from the replica into a "
        "new host). Exits 0 only if every scenario recovered.",
        epilog="Example: recovery drill run --scenario all --outputs outputs",
    )
    run.add_argument(
        "--scenario", choices=[*DRILLS, "all"], help="which scenario (default all; not with --due, which picks them)"
    )
    run.add_argument(
        "--due",
        action="store_true",
        help="run the scenarios `recovery drill due` names from the records in --outputs (none due: exit 0)",
    )
    run.add_argument(
        "--outputs",
        type=Path,
        help="records directory (default: the --for-site site's [drills] records directory, else outputs)",
    )
    run.add_argument(
        "--for-site",
        metavar="DIR",
        help="the production site this drill is for: its [alerts] are pinged (ping_drill) and told of each drill "
        "that did not recover, its [metrics] written, and its [drills] records directory is the default "
        "--outputs. The drill still runs on a fresh sandbox (or --site), never on DIR",
    )
    run.add_argument(
        "--site", help="drill on this sandbox site (from `recovery sandbox create`) instead of a fresh one"
    )
    run.add_argument("--seed", type=int, default=0, help="chooses each scenario's fault variant")
    run.add_argument(
        "--variant",
        help="the fault to inject (needs one --scenario), e.g. duplicated_rows; default: chosen by --seed. "
        + "; ".join(
            f"{scenario}: {', '.join((*VARIANTS[scenario], *ESCALATION_VARIANTS.get(scenario, ())))}"
            for scenario in VARIANTS
        ),
    )
    run.add_argument(
        "--midway",
        nargs="?",
        const=True,
        default=False,
        choices=MIDWAY_FAULTS,
        metavar="FAULT",
        help="drill a resume: the procedure first runs without the approval of its main change (A, C: restore; "
        "B: restore and repair; D: backup), as if it had been refused by mistake, so it halts midway (after "
        "stopping trading and its pre-recovery backup); then it is resumed from that run (resume_from) with "
        "every approval, and the drill recovers only if the resumed run does. Both runs are kept "
        f"(02_{B_NOTEBOOK}, 03_{B_NOTEBOOK.removesuffix('.ipynb')}-resumed.ipynb). FAULT: approval_refused (only the "
        "approval is missing), trading_restarted (A, B: the trading process is also started again between "
        "the runs, so the resumed run finds its stop stale and stops it again); default: chosen by --seed "
        "among those that apply",
    )
    run.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="drills at once (each on its own sandbox; 2 halves the suite's time on 2 cores)",
    )
    run.set_defaults(handler=cmd_drill_run, log_target=drill_log_target)
    due = sub.add_parser(
        "due",
        help="which scenarios were not drilled in their slot of the monthly schedule (exit 1 if any)",
        description=schedule_text().capitalize()  # Week 1 config, week 2 data, ...
        + " (days 1-7, 8-14, 15-21, 22 to the end of the month, UTC). A scenario's slot is its week this "
        "month once that week has started, else its week last month; it was drilled in its slot when a "
        "drill of it started in or after that week and recovered. Reads the records in --outputs, else "
        "the site's [drills] records directory (--site, $RECOVERY_SITE, or the current directory when it "
        "holds recovery.toml). Exits 1 when any scenario is due, 0 when none is.",
        epilog="Example: recovery drill due --site /srv/peak-trade  (then: recovery drill run --due --outputs DIR)",
    )
    due.add_argument("--outputs", type=Path, help="drill records directory (default: the site's [drills] records)")
    site_option(due)
    due.add_argument("--json", action="store_true", help="print the result as JSON")
    due.set_defaults(handler=cmd_drill_due)
    report = sub.add_parser("report", help="rebuild outputs/index.html from the records")
    report.add_argument("--outputs", type=Path, default=Path("outputs"), help="records directory (default outputs)")
    report.set_defaults(handler=cmd_drill_report)


def drill_log_target(args: argparse.Namespace) -> LogTarget:
    """``drill run`` logs to its records directory (``--outputs``), next to the records it writes."""
    return default_target(drill_outputs(args))


def _notebooks_dir() -> Path:
    from recovery_lib.drills.runner import NOTEBOOK_DIR

    return NOTEBOOK_DIR


def cmd_drill_run(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery drill run``: run, summarise, write the records page. With ``--for-site``, that site's
    [alerts] are pinged and told of each drill that did not recover, and its [metrics] written."""
    args.outputs = drill_outputs(args)
    production = load_site(args.for_site) if args.for_site else None
    # With --for-site this is the site's scheduled drill: one that cannot even start (bad arguments in
    # the installed unit) is a failed drill, pinged /fail and told, not silence until the ping is missed.
    with reporting("drill", production, pinged="drill") as report:
        return _drill_run(args, out, report, production)


def _drill_run(args: argparse.Namespace, out: TextIO, report: Report, production: Site | None) -> int:
    from recovery_lib.drills.report import write_index
    from recovery_lib.drills.runner import run_drill

    site_dir = _check_drill_args(args)
    drills = _planned(args, out)
    _check_midway(args, drills)
    if not drills:  # --due, and every scenario was drilled in its slot: nothing to run
        report.summary = "no drill due: every scenario was drilled in its slot"
        return EXIT_OK
    _make_outputs(args.outputs)
    if args.jobs > 1 and len(drills) > 1:
        from concurrent.futures import ProcessPoolExecutor

        out.write(f"== drills: {', '.join(_name(*drill) for drill in drills)} ({args.jobs} at a time)\n")
        out.flush()
        # The longest first (full: C then D, and the host-lost drill), so no long one starts last alone.
        longest_first = sorted(range(len(drills)), key=lambda i: drills[i][0] != "full")
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                i: pool.submit(
                    run_drill, drills[i][0], args.outputs, None, args.seed, 1.0, print, drills[i][1], args.midway
                )
                for i in longest_first
            }
            results = [futures[i].result() for i in range(len(drills))]
    else:
        results = []
        for scenario, variant in drills:
            out.write(f"== drill: {_name(scenario, variant)}\n")
            out.flush()
            results.append(
                run_drill(
                    scenario,
                    args.outputs,
                    site_dir=site_dir,
                    seed=args.seed,
                    say=lambda line: (out.write(line + "\n"), out.flush()),
                    variant=variant,
                    midway=args.midway,
                )
            )
    tell_drills(production, report, results, args.outputs)
    records = load_records(args.outputs)
    order = {r.run_id: i for i, r in enumerate(results)}  # the order the scenarios were asked for
    mine = records[records["run_id"].isin(order)].sort_values("run_id", key=lambda ids: ids.map(order))
    out.write("\n" + _summary(mine) + "\n")
    index = write_index(args.outputs, _notebooks_dir())
    out.write(f"\nRecords: {index.resolve()}\n")
    failed = [r for r in results if not r.recovered]
    for result in failed:
        out.write(f"NOT RECOVERED: {result.scenario} ({result.run_id}): {result.failure}\n")
    return EXIT_FAILED if failed else EXIT_OK


def _planned(args: argparse.Namespace, out: TextIO) -> list[tuple[str, str | None]]:
    """The drills to run, in order: (scenario, variant or None for the seed's choice).

    ``--due``: every scenario not drilled in its slot by the records in ``--outputs`` (a timer that
    missed a week catches up), said first so the scheduler's log shows why they run."""
    if args.due:
        _check_outputs(args.outputs, must_exist=False)
        moment = now()
        dues = drills_due(load_records(args.outputs), moment)
        exists = args.outputs.is_dir()
        out.write(due_report(dues, str(args.outputs), moment.date(), exists, action="Running them now."))
        if not any(due.due for due in dues):
            out.write("No drill is due: nothing to run.\n")
        out.flush()
        return [(due.scenario, None) for due in dues if due.due]
    if args.scenario != "all":
        return [(args.scenario, args.variant)]
    return [(scenario, None) for scenario in DRILLS] + ([] if args.site else list(ALL_EXTRAS))


def _check_midway(args: argparse.Namespace, drills: list[tuple[str, str | None]]) -> None:
    """``--midway FAULT`` must apply to every drill planned (trading_restarted: only A and B, on a site the
    trading process can run on); checked before anything is run."""
    for scenario, variant in drills:
        try:
            chosen_midway(scenario, chosen_variant(scenario, variant, args.seed), args.midway, args.seed)
        except ValueError as exc:
            raise InvalidArgumentError(f"--midway: {exc}. Nothing was run.") from exc


def _name(scenario: str, variant: str | None) -> str:
    return f"{scenario}/{variant}" if variant else scenario


def _check_drill_args(args: argparse.Namespace) -> Path | None:
    """Every ``drill run`` argument, checked before anything is created; returns the --site root."""
    if args.jobs < 1:
        raise RecoveryError(f"--jobs must be at least 1 (drills at once), got {args.jobs}.")
    if args.due and (args.scenario is not None or args.variant is not None):
        given = "--scenario" if args.scenario is not None else "--variant"
        raise InvalidArgumentError(
            f"--due picks the scenarios itself (those `recovery drill due` names), so {given} cannot go with it: "
            f"drop {given} to run what is due, or drop --due to run that drill now."
        )
    args.scenario = args.scenario or "all"  # the default, once --due has been told apart from a given --scenario
    if args.variant is not None:
        if args.scenario == "all" or args.due:
            raise RecoveryError("--variant names one scenario's fault: pass --scenario too (not all, not --due).")
        known = (*VARIANTS[args.scenario], *ESCALATION_VARIANTS.get(args.scenario, ()))
        if args.variant not in known:
            raise RecoveryError(
                f"--variant {args.variant!r} is not a {args.scenario} fault; choose from {', '.join(known)}."
            )
    if args.site is not None and args.jobs > 1:
        raise RecoveryError("--site drills one sandbox, which parallel drills cannot share; drop --jobs.")
    _check_outputs(args.outputs, must_exist=False)
    for option, value in (("--site", args.site), ("--for-site", getattr(args, "for_site", None))):
        _outside_site(args.outputs, option, value)
    if args.site is None:
        return None
    site = load_site(args.site)
    require_sandbox(site)
    return site.root


def _outside_site(outputs: Path, option: str, site_dir: str | None) -> None:
    """Drill records never go inside a site: a restore or the next drill would overwrite or back them up."""
    if site_dir is None or not Path(site_dir).is_dir():
        return  # a missing site is refused by load_site, with its own message
    root, where = Path(site_dir).resolve(), outputs.resolve()
    if where == root or root in where.parents:
        raise RecoveryError(
            f"--outputs {outputs} is inside the site {root} ({option}): drill records never go inside a site (a "
            "restore would overwrite them, a backup would copy them). Pass --outputs DIR outside it, e.g. "
            f"{root.parent / (root.name + '-drill-records')}. Nothing was run."
        )


def _check_outputs(outputs: Path, must_exist: bool) -> None:
    """``--outputs`` must be a directory (or, for ``drill run``, a path it can create)."""
    if outputs.exists() and not outputs.is_dir():
        raise RecoveryError(f"--outputs {outputs} is not a directory; pass --outputs DIR, the drill records directory.")
    if must_exist and not outputs.exists():
        raise RecoveryError(
            f"--outputs {outputs} does not exist; pass the directory `recovery drill run --outputs DIR` wrote "
            "its records to."
        )


def _make_outputs(outputs: Path) -> None:
    try:
        outputs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecoveryError(
            f"--outputs {outputs}: cannot create the records directory ({exc.strerror}); choose another path."
        ) from exc


def _summary(records: Any) -> str:
    header = (
        f"{'scenario':<8} {'variant':<24} {'proc':<4} {'outcome':<14} {'recover s':>9} {'data lost s':>11} "
        f"{'trades lost':>11} {'replayed':>8} esc"
    )
    lines = [header, "-" * len(header)]
    for _, row in records.iterrows():

        def num(value: Any, digits: int = 1) -> str:
            return "-" if value is None or value != value else f"{float(value):.{digits}f}"

        lines.append(
            f"{row['scenario']:<8} {row['variant'] or '-':<24} {row['procedure'] or '-':<4} {row['outcome']:<14} "
            f"{num(row['time_to_recover_s']):>9} {num(row['data_loss_window_s']):>11} "
            f"{num(row['trades_lost'], 0):>11} {num(row['trades_replayed'], 0):>8} {num(row['escalation_level'], 0)}"
        )
        if isinstance(row.get("resumed"), str):  # halted midway and resumed: the verdict is the resumed run's
            lines.append(f"{'':<8} resumed: {row['resumed']}")
    return "\n".join(lines)


def cmd_drill_due(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery drill due``: each scenario against its slot in the records; exit 1 when any is due."""
    records_dir = _due_records_dir(args)
    moment = now()
    dues = drills_due(load_records(records_dir), moment)
    if args.json:
        json.dump(
            {
                "today": moment.date().isoformat(),
                "records": str(records_dir),
                "drills": [due.to_dict() for due in dues],
                "due": [due.scenario for due in dues if due.due],
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        out.write(due_report(dues, str(records_dir), moment.date(), exists=records_dir.is_dir()))
    # Exit 1 so a scheduler or a monitor can act on it without reading the text.
    return EXIT_FAILED if any(due.due for due in dues) else EXIT_OK


def _due_records_dir(args: argparse.Namespace) -> Path:
    """``drill due``'s records: --outputs (must exist: a typo would read as "never drilled"), else the
    site's ``[drills] records`` (which may not exist yet: then nothing was drilled)."""
    if args.outputs is not None:
        _check_outputs(args.outputs, must_exist=True)
        return args.outputs
    if args.site is not None or os.environ.get(SITE_ENV) or (Path.cwd() / CONFIG_NAME).is_file():
        return load_site(args.site).drill_records_dir
    raise RecoveryError(
        f"drill due: no records to read. Pass --outputs DIR (the directory `recovery drill run --outputs DIR` "
        f"wrote its records to), or --site DIR (or ${SITE_ENV}) for a site whose [drills] records say where "
        f"they are; {Path.cwd()} holds no {CONFIG_NAME}."
    )


def cmd_drill_report(args: argparse.Namespace, out: TextIO) -> int:
    """``recovery drill report``."""
    from recovery_lib.drills.report import write_index

    _check_outputs(args.outputs, must_exist=True)
    index = write_index(args.outputs, _notebooks_dir())
    out.write(f"Records: {index.resolve()}\n")
    return EXIT_OK
