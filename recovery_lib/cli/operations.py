"""What the scheduled commands report when they end: notifications, pings and metrics.

``backup create``, ``backup verify``, ``backup prune``, ``replica push``, ``replica prune`` and
``drill run`` wrap their work in :func:`reporting`; the command fills in the :class:`Report` (what it
did, the library's result objects), and on the way out, success or failure, the site's ``[alerts]``
are told (failures only) and its ``[metrics]`` written (always). ``backup create`` and ``drill run``
also ping ``[alerts] ping_backup`` / ``ping_drill`` (``/start``, then success or ``/fail``).

Nothing here ever changes a command's exit status: a notification, ping or metric that cannot be
delivered is logged and the command's own outcome stands. The Python API (``RecoveryManager``) does
not notify: notifications sit at these edges, the commands a schedule runs.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from recovery_lib.alerts.events import Outcome
from recovery_lib.alerts.notify import notify
from recovery_lib.alerts.pings import ping
from recovery_lib.cli.logs import default_target, explicit_target
from recovery_lib.clock import now
from recovery_lib.errors import RecoveryError
from recovery_lib.metrics.textfile import write_metrics
from recovery_lib.replica.push import PushReport
from recovery_lib.replica.status import PushRecord, status_path
from recovery_lib.site.config import Site, load_site

log = logging.getLogger(__name__)


@dataclass
class Report:
    """Filled in by the command while it runs; becomes the :class:`Outcome` when it ends."""

    ok: bool = True
    status: str = ""  # empty: SUCCESS or FAILED, from ``ok``
    summary: str = ""
    subject: str = ""
    record: Path | None = None
    problems: list[str] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    advice: str = ""  # what to do next; empty: the notifier's default for the kind
    told: bool = False  # each failure was already notified on its own (drills): no summary notification

    def failed(self, summary: str, problems: Sequence[str] = (), status: str = "FAILED") -> None:
        """Mark the run failed with ``summary`` (one line) and its ``problems``."""
        self.ok = False
        self.status = status
        self.summary = summary
        self.problems.extend(problems)


@contextmanager
def reporting(kind: str, site: Site | None, pinged: str | None = None) -> Iterator[Report]:
    """Run the body as one ``kind`` run of ``site``: ping ``/start`` (for ``pinged`` runs: backup,
    drill), then ping, notify and write metrics with how it ended. An exception from the body is
    reported as a failure, then re-raised unchanged."""
    report = Report()
    started = now()
    if site is None:  # no site to report to (a drill with no --for-site): nothing to tell
        yield report
        return
    if pinged:
        ping(site, pinged, "start")
    try:
        yield report
    except BaseException as exc:
        report.ok = False
        if isinstance(exc, KeyboardInterrupt):
            report.status = "INTERRUPTED"
        elif report.status in ("", "SUCCESS"):
            report.status = "FAILED"
        if not report.problems:  # the command may have named them already (a PARTIAL backup's files)
            report.problems.append(_one_line(exc))
        report.summary = report.summary or f"{kind} failed: {_one_line(exc)}"
        report.told = False  # whatever was told, this failure was not
        finish(kind, site, report, started, pinged)
        raise
    finish(kind, site, report, started, pinged)


def finish(kind: str, site: Site, report: Report, started: datetime, pinged: str | None = None) -> Outcome:
    """Turn ``report`` into the :class:`Outcome` of a ``kind`` run: ping (``pinged``), notify when it
    failed, write metrics. Never raises for any of them."""
    outcome = Outcome(
        kind=kind,
        site=site.name,
        site_root=site.root,
        ok=report.ok,
        status=report.status or ("SUCCESS" if report.ok else "FAILED"),
        summary=report.summary or f"{kind} {'succeeded' if report.ok else 'failed'}",
        started=started,
        finished=now(),
        subject=report.subject,
        record=report.record,
        problems=tuple(report.problems),
        results=tuple(report.results),
        advice=report.advice,
    )
    if pinged:
        ping(site, pinged, "success" if outcome.ok else "fail", outcome)
    if not outcome.ok and not report.told:
        tell(site, outcome)
    try:
        write_metrics(site, outcome)
    except (OSError, RecoveryError) as exc:  # metrics are a view: never the reason a backup "failed"
        log.warning("metrics for %s not written: %s", kind, exc)
    return outcome


def tell(site: Site, outcome: Outcome) -> list[str]:
    """Notify the site's ``[alerts] urls`` of ``outcome``; the delivery problems (already logged). Never raises."""
    return notify(site, outcome)


def report_pushes(site: Site, backup_dir: Path, pushes: Sequence[PushReport | PushRecord], started: datetime) -> None:
    """Each push ``backup create`` made, as its own ``push`` outcome: a failed one notifies, all write
    metrics. The backup's exit status is not theirs to change."""
    for push in pushes:
        report = Report(subject=push.replica, record=status_path(backup_dir, push.replica), results=[push])
        if isinstance(push, PushReport) and push.ok:
            report.summary = push.summary()
        else:
            why = (push.error if isinstance(push, PushRecord) else None) or "; ".join(
                f"{backup_id}: {reason}" for backup_id, reason in push.failed.items()
            )
            report.failed(f"push to replica {push.replica} after the backup failed (the backup itself is fine)", [why])
        finish("push", site, report, started)


def push_outcome(report: Report, push: PushReport, backup_dir: Path) -> None:
    """Fill ``report`` from ``replica push``'s :class:`PushReport`."""
    report.subject = push.replica
    report.record = status_path(backup_dir, push.replica)
    report.results.append(push)
    if push.ok:
        report.summary = push.summary()
    else:
        report.failed(
            f"push to replica {push.replica}: {len(push.failed)} backup(s) not pushed",
            [f"{backup_id}: {why}" for backup_id, why in push.failed.items()],
        )


def drill_outputs(args: argparse.Namespace) -> Path:
    """``drill run``'s records directory: ``--outputs``, else the ``--for-site`` site's ``[drills] records``
    (never inside it), else ``outputs``."""
    if args.outputs is not None:
        return Path(args.outputs)
    if getattr(args, "for_site", None):
        site = load_site(args.for_site)
        return site.ops.drill_records_dir(site.root)
    return Path("outputs")


def tell_drills(site: Site | None, report: Report, results: Sequence[Any], outputs: Path) -> None:
    """One notification per drill that did not recover (its scenario, its record directory), and the
    drill run's ``report`` filled in for the metrics (DrillResult objects, then ``outputs``). No
    ``site`` (no --for-site): nobody to tell."""
    report.results.extend([*results, outputs])
    report.record = outputs
    failed = [result for result in results if not result.recovered]
    report.summary = f"{len(results) - len(failed)} of {len(results)} drill(s) recovered; records in {outputs}"
    if not failed or site is None:
        return
    report.failed(report.summary, [f"{r.scenario}: {r.outcome}: {r.failure or 'see its notebooks'}" for r in failed])
    for result in failed:
        notebooks = ", ".join(path.name for path in result.notebooks) or "none executed"
        tell(
            site,
            Outcome(
                kind="drill",
                site=site.name,
                site_root=site.root,
                ok=False,
                status=result.outcome.upper().replace("_", " "),
                summary=f"drill {result.run_id} ({result.scenario}) did not recover; notebooks: {notebooks}",
                started=now() - timedelta(seconds=result.seconds),
                finished=now(),
                subject=result.scenario,
                record=result.run_dir,
                problems=(result.failure or f"outcome {result.outcome}",),
            ),
        )
    report.told = True


def log_record(args: argparse.Namespace, directory: Path) -> Path | None:
    """The log file a command writes (``--log-file``, else ``directory``'s default): a notification's
    record. None with ``--log-file none``."""
    if args.log_file is None:
        return default_target(directory).path
    target = explicit_target(args.log_file)
    return target.path if target is not None else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


__all__ = [
    "Report",
    "drill_outputs",
    "finish",
    "log_record",
    "push_outcome",
    "report_pushes",
    "reporting",
    "tell",
    "tell_drills",
]
