"""STUB (being written): Prometheus textfile metrics."""

from __future__ import annotations

from pathlib import Path

from recovery_lib.alerts.events import Outcome
from recovery_lib.site.config import Site


def write_metrics(site: Site, outcome: Outcome) -> Path | None:
    """Write the metrics ``outcome`` changes to ``[metrics] textfile_dir``; None when not configured."""
    return None
