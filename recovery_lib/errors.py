"""Exceptions that carry a message a person can act on.

Every error raised on purpose by ``recovery_lib`` derives from :class:`RecoveryError`, so the CLI
and the notebooks can show its message instead of a traceback.
"""

from __future__ import annotations


class RecoveryError(Exception):
    """Base class: the message names the file, backup or parameter and says what to do next."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the message is what a person needs.
        return [f"⛔ {type(self).__name__}: {self}"]


class SiteError(RecoveryError):
    """The site directory cannot be used (missing, not a directory, not a sandbox, ...)."""


class SiteConfigError(SiteError):
    """``recovery.toml`` is malformed: the message names the file, the line and the key."""

    def __init__(self, path: str, line: int | None, key: str | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.problem = problem
        where = f"{path}:{line}" if line else path
        what = f" [{key}]" if key else ""
        super().__init__(f"{where}:{what} {problem}")


class ExchangeError(RecoveryError):
    """The exchange client cannot be built or reached."""
