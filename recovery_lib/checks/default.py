"""``health_check``: the registry the runbook's snippets use, holding the built-in checks.

A site adds its own with ``health_check.register(name, fn)``; a new built-in check is a function in
``checks/builtin.py`` plus one line in its ``BUILTIN_CHECKS`` table.
"""

from __future__ import annotations

from recovery_lib.checks.builtin import BUILTIN_CHECKS
from recovery_lib.checks.registry import HealthCheckRegistry
from recovery_lib.checks.replicas import check_replicas


def default_registry() -> HealthCheckRegistry:
    """A new registry holding every built-in check (tests use one to register checks of their own)."""
    registry = HealthCheckRegistry()
    for name, fn in BUILTIN_CHECKS.items():
        registry.register(name, fn)
    registry.register("replicas", check_replicas)  # the copies off the host (checks/replicas.py)
    return registry


health_check = default_registry()
