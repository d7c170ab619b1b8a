"""A fresh kernel's globals after a procedure notebook's parameters cell, for runs started from tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recovery_lib.runbook.parameters import PARAMETER_TYPES


def notebook_globals(site: Path, **values: Any) -> dict[str, Any]:
    """The globals of an unattended incident run on ``site`` (no approvals), with ``values`` set over them;
    the parameters it sets are annotated with the library's types (what start() validates values against)."""
    defaults: dict[str, Any] = {
        "site": str(site),
        "interactive": False,
        "approve": [],
        "operator": "alice",
        "incident_id": "",
        "kind": "incident",
        "drill": {},
        "backup_id": "latest",
        "remedy": "least_loss",
    }
    namespace: dict[str, Any] = {"__annotations__": {name: PARAMETER_TYPES[name] for name in defaults}}
    namespace.update(defaults)
    namespace.update(values)
    return namespace
