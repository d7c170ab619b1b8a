"""STUB (being written): Apprise notifications and healthchecks pings."""

from __future__ import annotations

from recovery_lib.alerts.events import Outcome
from recovery_lib.site.config import Site


def notify(site: Site, outcome: Outcome) -> list[str]:
    """Tell the site's [alerts] urls about ``outcome``; returns the delivery problems (logged)."""
    return []


def ping(site: Site, run: str, phase: str, outcome: Outcome | None = None) -> None:
    """Ping ``[alerts] ping_<run>`` with ``phase`` (start, success, fail); failures are logged."""
