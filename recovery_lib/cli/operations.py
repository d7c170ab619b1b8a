"""What the scheduled commands report when they end: notifications, pings and metrics.

``backup create``, ``backup verify``, ``backup prune``, ``replica push`` and ``drill run`` wrap their
work in :func:`reporting`; the command fills in the :class:`Report` (what it did, the library's result
objects), and on the way out, success or failure, the site's ``[alerts]`` are told and its
``[metrics]`` written. Nothing here ever changes a command's exit status: a notification or metric
that cannot be delivered is logged and the command's own outcome stands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recovery_lib.alerts.events import Outcome
from recovery_lib.alerts.notify import notify, ping
from recovery_lib.clock import now
from recovery_lib.errors import RecoveryError
from recovery_lib.metrics.textfile import write_metrics
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)


@dataclass
class Report:
    """Filled in by the command while it runs; becomes the :class:`Outcome` when it ends."""

    ok: bool = True
    status: str = "SUCCESS"
    summary: str = ""
    subject: str = ""
    record: Path | None = None
    problems: list[str] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)


@contextmanager
def reporting(kind: str, site: Site | None, pinged: str | None = None) -> Iterator[Report]:
    """Run the body as one ``kind`` run of ``site``: ping ``/start`` (for ``pinged`` runs), then notify,
    ping and write metrics with how it ended. An exception from the body is reported, then re-raised."""
    report = Report()
    started = now()
    if site is None:  # no site to report to (a drill with no production site): nothing to tell
        yield report
        return
    if pinged:
        ping(site, pinged, "start")
    try:
        yield report
    except BaseException as exc:
        report.ok = False
        report.status = "INTERRUPTED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        report.problems.append(_one_line(exc))
        report.summary = report.summary or f"{kind} failed: {_one_line(exc)}"
        _finish(kind, site, report, started, pinged)
        raise
    _finish(kind, site, report, started, pinged)


def _finish(kind: str, site: Site, report: Report, started: Any, pinged: str | None) -> None:
    outcome = Outcome(
        kind=kind,
        site=site.name,
        site_root=site.root,
        ok=report.ok,
        status=report.status,
        summary=report.summary or f"{kind} {'succeeded' if report.ok else 'failed'}",
        started=started,
        finished=now(),
        subject=report.subject,
        record=report.record,
        problems=tuple(report.problems),
        results=tuple(report.results),
    )
    if pinged:
        ping(site, pinged, "success" if outcome.ok else "fail", outcome)
    if not outcome.ok:
        notify(site, outcome)
    try:
        write_metrics(site, outcome)
    except (OSError, RecoveryError) as exc:  # metrics are a view: never the reason a backup "failed"
        log.warning("metrics for %s not written: %s", kind, exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


__all__ = ["Report", "reporting"]
