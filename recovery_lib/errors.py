"""Every exception ``recovery_lib`` raises on purpose, each with the exit status it maps to.

Every error raised on purpose derives from :class:`RecoveryError`, so the CLI and the notebooks can
show its message instead of a traceback. Each class carries ``exit_code``, the ``recovery`` command's
exit status when it stops a command; the CLI reads that attribute and nothing else (never the text).
Anything else that escapes (``ValueError``, ``KeyError``, ...) is a bug: exit :data:`EXIT_INTERNAL`.

This module is the bottom layer: it imports nothing from the package.
"""

from __future__ import annotations

from typing import Any, ClassVar

# The ``recovery`` command's exit statuses, defined once (the CLI and its --help read them here).
EXIT_OK = 0  # done, or healthy
EXIT_FAILED = 1  # ran, but did not achieve its aim: unhealthy, damaged backup, not recovered, partial
EXIT_USAGE = 2  # bad input or refused: the message says what to fix; nothing was changed
EXIT_INTERNAL = 3  # a bug in recovery_lib: the log (or -v) has the traceback
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class RecoveryError(Exception):
    """Base class: the message names the file, backup or parameter and says what to do next."""

    exit_code: ClassVar[int] = EXIT_USAGE

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the message is what a person needs.
        return [f"⛔ {type(self).__name__}: {self}"]


class InvalidArgumentError(RecoveryError, ValueError):
    """A value given to the library is out of range (a count, a size, a policy): bad input.

    Also a ``ValueError``, so callers that validate with ``except ValueError`` keep working.
    """


class CalendarError(InvalidArgumentError):
    """A schedule entry that is neither a supported systemd calendar nor a cron expression (or that
    cron cannot express); recovery.toml reports it as a SiteConfigError naming the line."""


# --- files and paths (fsops) ---------------------------------------------------------------------


class UnsafePathError(RecoveryError):
    """A path would escape its root or is not representable."""


class FileChangedError(RecoveryError):
    """The source changed while it was being copied."""


# --- the site ------------------------------------------------------------------------------------


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


class NotASiteError(SiteError):
    """The directory holds nothing of a site (no recovery.toml, none of config/, state/, data/, backups/):
    usually the command ran in the wrong directory; the message says how to point at the site."""


class ExchangeError(RecoveryError):
    """The exchange client cannot be built or reached."""


class LedgerError(RecoveryError):
    """The ledger cannot be read or written (the message names the file and what to do)."""


# --- backups -------------------------------------------------------------------------------------


class BackupError(RecoveryError):
    """A backup could not be created, read or used; the message names it and the cause."""


class NothingToBackUp(BackupError):
    """None of the declared paths exist: usually the wrong --site (or a site emptied by the fault)."""


class BackupIncomplete(BackupError):
    """The backup was stored but is PARTIAL: some files could not be captured (listed).

    ``shown`` is the problems as a person reads them (``rendering.name_all(metadata.problems)``).
    """

    exit_code: ClassVar[int] = EXIT_FAILED  # the backup ran and was kept, but is not one to restore from

    def __init__(self, metadata: Any, shown: str) -> None:
        self.metadata = metadata
        super().__init__(
            f"backup {metadata.backup_id} is PARTIAL, not SUCCESS: {len(metadata.problems)} file(s) could not be "
            f"captured: {shown}. It is kept for evidence but will never be restored from; "
            "fix the cause and back up again."
        )


class LockedError(RecoveryError):
    """Another backup, restore or prune holds the backup directory."""


class LockFileError(RecoveryError):
    """The lock file could not be created or written (permissions, a full or failing disk)."""


# --- replicas (copies off the host) -------------------------------------------------------------


class ReplicaError(RecoveryError):
    """A replica could not be used: the message names the replica, the object or backup, and what to do."""

    exit_code: ClassVar[int] = EXIT_FAILED


class ReplicaUnreachable(ReplicaError):
    """The replica's store did not answer (network, credentials, a missing bucket or directory)."""


class ReplicaDamaged(ReplicaError):
    """The replica holds a missing, wrong, truncated or hostile object or manifest: refused, nothing written."""


class ReplicaLocked(ReplicaError):
    """An object is under retention (S3 Object Lock) and cannot be deleted or replaced before its date."""


class IdentityRequired(ReplicaError):
    """An encrypted replica was read without the age identity (private key) that decrypts it."""

    exit_code: ClassVar[int] = EXIT_USAGE


# --- schedules (systemd timers, crontab) ---------------------------------------------------------


class ScheduleError(RecoveryError):
    """A schedule install was refused (nothing declared, cron cannot say an entry, units of another site)."""


class SchedulerFailed(ScheduleError):
    """Writing the units or the crontab, or asking systemd or crontab, failed: the message says what is in place."""

    exit_code: ClassVar[int] = EXIT_FAILED


# --- restores ------------------------------------------------------------------------------------


class RestoreError(RecoveryError):
    """A restore was refused or failed; the message says whether the site was changed."""


# --- the runbook (notebooks) ---------------------------------------------------------------------


class ParameterError(RecoveryError):
    """A notebook parameter is unknown, missing or of the wrong type; nothing was done."""


class StepNotRun(RecoveryError):
    """A cell needs the result of a step that has not run yet: nothing was done."""


class ApprovalRequired(RecoveryError):
    """A destructive step was reached without approval: nothing was changed."""

    shown = False  # the full message is already in a live display above the error line

    def _render_traceback_(self) -> list[str]:
        if self.shown:  # the live display says what to click and turns green when it is clicked
            return ["⏸ Stopped here until approved; nothing was changed (see above)."]
        return super()._render_traceback_()


class UnfitPick(RecoveryError):
    """The backup picked in JupyterLab cannot fix the fault: nothing is planned until another is picked."""


class JournalError(RecoveryError):
    """The incident journal cannot be written: the step that needed it did not go on."""


class ProcedureBusy(RecoveryError):
    """Another kernel runs a recovery procedure on this site: two at once would restore twice."""


class StaleReplay(RecoveryError):
    """A step a resumed run would replay no longer stands (trading runs again, a backup is gone, the site
    changed): it runs again instead. Caught by the step decorator; a person sees it in the ``resume`` record."""


class MidwayNotTaken(RecoveryError):
    """A midway drill's fault did not take hold (the procedure did not halt at the withheld approval), or the
    resumed run is not the halted run's resumption: the drill could not test a resume."""

    exit_code: ClassVar[int] = EXIT_FAILED


class ProcedureFailed(RecoveryError):
    """A procedure ended without meeting every success criterion (the record says which and why)."""

    exit_code: ClassVar[int] = EXIT_FAILED  # it ran to its verdict: not recovered, not bad input

    def __init__(self, procedure: str, failed: list[str], halted: str | None, trading: str) -> None:
        self.procedure = procedure
        self.failed = failed
        self.halted = halted
        why = ", ".join(failed) or "the success criteria were not evaluated"
        stopped = f" The run halted: {halted}." if halted else ""
        super().__init__(
            f"Procedure {procedure} did NOT recover the system: failed criteria: {why}.{stopped} {trading} "
            "Follow the escalation above."
        )
