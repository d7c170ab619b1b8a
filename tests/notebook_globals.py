"""A fresh kernel's globals after a procedure notebook's parameters cell, for runs started from tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The parameters cell's annotations, as a kernel holds them (what start() validates values against).
ANNOTATIONS = {
    "site": str,
    "interactive": bool,
    "approve": list[str],
    "operator": str,
    "incident_id": str,
    "kind": str,
    "drill": dict,
    "backup_id": str,
    "remedy": str,
}


def notebook_globals(site: Path, **values: Any) -> dict[str, Any]:
    """The globals of an unattended incident run on ``site`` (no approvals), with ``values`` set over them."""
    namespace: dict[str, Any] = {"__annotations__": dict(ANNOTATIONS)}
    namespace.update(
        site=str(site),
        interactive=False,
        approve=[],
        operator="alice",
        incident_id="",
        kind="incident",
        drill={},
        backup_id="latest",
        remedy="least_loss",
    )
    namespace.update(values)
    return namespace
