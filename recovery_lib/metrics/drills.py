"""The samples of the drill file: the last drill of each scenario, read from the drill records, against
the site's targets.

The records are the drill directories ``recovery drill run`` writes (read back by
:func:`recovery_lib.drills.history.drill_row`): the ``--outputs`` of the run that just ended, else the
site's ``[drills] records`` (always the latter for a run of another kind, which writes this file when
it is missing, without the ``drill run`` verdict it knows nothing of). A scenario with no record is
reported as last drilled at 0 (never), so the overdue alert fires for it. The targets are the
production site's ``[targets]`` of the scenario's procedure, not the sandbox's the drill ran on: they
are what the site promises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from recovery_lib.alerts.events import Outcome
from recovery_lib.catalog import DRILLS, by_drill
from recovery_lib.clock import parse
from recovery_lib.drills.history import drill_row
from recovery_lib.drills.result import DrillResult
from recovery_lib.metrics.families import DRILL, Sample
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)


def records_dir(site: Site, outcome: Outcome) -> Path:
    """Where the run's drill records are: the outputs directory it names, else its drills' parent
    directory, else the site's ``[drills] records`` (for an outcome of another kind, always the latter)."""
    if outcome.kind != DRILL:
        return site.drill_records_dir
    for result in outcome.results:
        if isinstance(result, Path):
            return result
    for result in outcome.results:
        if isinstance(result, DrillResult):
            return result.run_dir.parent
    return site.drill_records_dir


def _rows(directory: Path) -> Iterator[dict[str, Any]]:
    """The record of every drill directory under ``directory`` (as ``drills.history.load_records`` reads
    them); one that cannot be read (a notebook cut short) is skipped with a warning, not the others."""
    for run_dir in sorted(directory.iterdir()) if directory.is_dir() else []:
        if not run_dir.is_dir() or run_dir.name.startswith(("sandbox", ".")):
            continue
        try:
            row = drill_row(run_dir)
        except (OSError, ValueError) as exc:
            log.warning("drill record %s is unreadable (%s); the drill metrics leave it out", run_dir, exc)
            continue
        if row is not None:
            yield row


def last_drills(directory: Path) -> dict[str, tuple[datetime, dict[str, Any]]]:
    """Per scenario: when its newest drill injected its fault (or started), and that drill's record."""
    newest: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for row in _rows(directory):
        at = parse(row["fault_at"] or row["started_at"])
        scenario = row["scenario"]
        if at is None or scenario not in DRILLS:
            continue  # a record that cannot be placed in time says nothing about "the last drill"
        if scenario not in newest or at >= newest[scenario][0]:
            newest[scenario] = (at, row)
    return newest


def drill_samples(site: Site, outcome: Outcome) -> list[Sample]:
    """The drill file: each scenario's targets and its last drill; the last ``drill run``'s verdict (only
    from a ``drill run`` outcome)."""
    newest = last_drills(records_dir(site, outcome))
    samples = []
    for scenario in DRILLS:
        labels = {"scenario": scenario}
        target = site.targets.get(by_drill(scenario).procedure)
        if target is not None:
            samples.append(Sample("recovery_drill_rto_seconds", target.rto_minutes * 60, labels))
            samples.append(Sample("recovery_drill_rpo_seconds", target.rpo_hours * 3600, labels))
        found = newest.get(scenario)
        samples.append(Sample("recovery_drill_last_timestamp_seconds", found[0].timestamp() if found else 0.0, labels))
        if found is None:
            continue
        row = found[1]
        samples.append(Sample("recovery_drill_last_recovered", 1.0 if row["outcome"] == "recovered" else 0.0, labels))
        if row["time_to_recover_s"] is not None:
            samples.append(Sample("recovery_drill_time_to_recover_seconds", float(row["time_to_recover_s"]), labels))
        if row["data_loss_window_s"] is not None:
            loss = float(row["data_loss_window_s"])
            samples.append(Sample("recovery_drill_data_loss_window_seconds", loss, labels))
    if outcome.kind != DRILL:
        return samples
    drills = [r for r in outcome.results if isinstance(r, DrillResult)]
    succeeded = outcome.ok and all(d.recovered for d in drills)
    samples.append(Sample("recovery_drill_last_run_timestamp_seconds", outcome.finished.timestamp()))
    samples.append(Sample("recovery_drill_last_run_success", 1.0 if succeeded else 0.0))
    return samples


__all__ = ["drill_samples", "last_drills", "records_dir"]
