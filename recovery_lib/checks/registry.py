"""The health-check registry, compatible with the runbook's ``health_check`` object.

``health_check.run_all()`` returns ``{name: HealthResult}``; ``health_check.is_system_healthy()``
is True when every check is healthy; ``health_check.register(name, fn)`` adds a check. A check
that raises becomes an unhealthy result carrying the exception's message, never a crash.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recovery_lib.site.config import Site, load_site, require_site

log = logging.getLogger(__name__)

SiteArg = str | os.PathLike[str] | Site | None
CheckFn = Callable[..., Any]


@dataclass
class HealthResult:
    """One check's outcome. ``details`` holds machine-readable facts behind ``message``."""

    name: str
    healthy: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON and records."""
        return {
            "name": self.name,
            "healthy": self.healthy,
            "message": self.message,
            "details": self.details,
            "duration_s": round(self.duration_s, 4),
        }


def _wants_site(fn: CheckFn) -> bool:
    """Built-in checks take the site; a user's check may take nothing."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def _normalise(name: str, value: Any) -> HealthResult:
    if isinstance(value, HealthResult):
        value.name = name
        return value
    if isinstance(value, bool):
        return HealthResult(name, value, "healthy" if value else "unhealthy")
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return HealthResult(name, value[0], str(value[1]))
    return HealthResult(
        name, False, f"check returned {value!r}; a check must return HealthResult, bool or (bool, message)"
    )


def _site(site: SiteArg) -> Site:
    """A :class:`Site` given is used as it is (a procedure's site may be wiped mid-incident); a directory
    (argument, ``$RECOVERY_SITE``, the current one) must look like a site (site.config.require_site)."""
    return site if isinstance(site, Site) else require_site(load_site(site))


class HealthCheckRegistry:
    """Named checks run against a site (argument, ``$RECOVERY_SITE`` or the current directory)."""

    def __init__(self) -> None:
        self._checks: dict[str, CheckFn] = {}

    def register(self, name: str, fn: CheckFn) -> None:
        """Add or replace the check ``name``. ``fn(site)`` or ``fn()`` returns a result, a bool or (bool, message)."""
        if not name or not isinstance(name, str):
            raise ValueError("a health check needs a non-empty name")
        if not callable(fn):
            raise TypeError(f"health check {name!r}: {fn!r} is not callable")
        self._checks[name] = fn

    def unregister(self, name: str) -> None:
        """Remove the check ``name``."""
        if name not in self._checks:
            raise KeyError(f"no health check named {name!r}; registered: {', '.join(self._checks)}")
        del self._checks[name]

    @property
    def names(self) -> list[str]:
        """Registered check names, in registration order."""
        return list(self._checks)

    def run(self, name: str, site: SiteArg = None) -> HealthResult:
        """Run one check."""
        if name not in self._checks:
            raise KeyError(f"no health check named {name!r}; registered: {', '.join(self._checks)}")
        return self._run(name, self._checks[name], _site(site))

    def run_all(self, site: SiteArg = None) -> dict[str, HealthResult]:
        """Run every check against the site; returns ``{name: HealthResult}``. A directory with nothing of a
        site in it raises :class:`~recovery_lib.errors.NotASiteError` (it is the wrong one, not unhealthy)."""
        resolved = _site(site)
        return {name: self._run(name, fn, resolved) for name, fn in self._checks.items()}

    def is_system_healthy(self, site: SiteArg = None) -> bool:
        """True when every check is healthy."""
        return all(result.healthy for result in self.run_all(site).values())

    @staticmethod
    def _run(name: str, fn: CheckFn, site: Site) -> HealthResult:
        started = time.perf_counter()
        try:
            result = _normalise(name, fn(site) if _wants_site(fn) else fn())
        except Exception as exc:  # a failing check is a finding, not a crash
            log.warning("health check %s raised %s: %s", name, type(exc).__name__, exc, exc_info=True)
            result = HealthResult(
                name, False, f"check raised {type(exc).__name__}: {exc}", {"exception": type(exc).__name__}
            )
        result.duration_s = time.perf_counter() - started
        log.info("health %s: %s: %s", name, "healthy" if result.healthy else "UNHEALTHY", result.message)
        return result
