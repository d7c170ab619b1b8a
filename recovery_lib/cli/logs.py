"""Logging for the ``recovery`` command: set up once per run, torn down when it ends.

The library only logs (to ``logging.getLogger("recovery_lib")`` and its children); the CLI decides
where records go:

- the console (stderr): WARNING and above by default, ``-v`` INFO, ``-vv`` DEBUG, ``-q`` ERROR only.
  Tracebacks are shown only with ``-v`` (a person reads one line; the log file keeps the rest).
- a rotating log file (``--log-file PATH``; on by default for ``backup create``, under the backup
  directory, and ``drill run``, under ``--outputs``): INFO and above (DEBUG with ``-vv``), whatever
  ``-q`` says, so a cron run leaves a trail of what it did and decided.

A default log file lives in a dot-directory (``.logs/``) of the backup or records directory: dot-names
are never backups (listing, verification, retention and quarantine skip them) nor drill records. It
is created only once that directory exists: a refused command (bad input, an empty site) writes
nothing anywhere, not even a log.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from recovery_lib.errors import RecoveryError

LIBRARY_LOGGER = "recovery_lib"
LOG_DIR_NAME = ".logs"  # a dot-name: never read as a backup or a drill record
LOG_FILE_NAME = "recovery.log"
MAX_BYTES = 5 * 1024 * 1024  # a few MB per file ...
BACKUP_COUNT = 5  # ... times a few files: months of nightly backups, bounded
OFF_VALUES = ("none", "off")
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)-7s %(name)s: %(message)s"
NOT_ON_CONSOLE = {"console": False}  # ``extra=`` for a record the CLI already printed in its own words

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogTarget:
    """Where a log file goes: ``path``, written only once ``anchor`` (the directory it serves) exists."""

    path: Path
    anchor: Path


def default_target(directory: Path) -> LogTarget:
    """The default log file of a backup or records directory: ``<directory>/.logs/recovery.log``."""
    return LogTarget(directory / LOG_DIR_NAME / LOG_FILE_NAME, directory)


def explicit_target(value: str) -> LogTarget | None:
    """``--log-file VALUE``: ``none``/``off`` turns logging to a file off; otherwise a file to append to.

    Checked before the command runs: its directory must exist (bad input otherwise, exit 2).
    """
    if value.strip().lower() in OFF_VALUES:
        return None
    path = Path(value).expanduser()
    if not value.strip() or path.is_dir():
        what = "is empty" if not value.strip() else f"{path} is a directory"
        raise RecoveryError(f"--log-file {what}; pass the path of a file to append to, or --log-file none.")
    if not path.parent.is_dir():
        problem = "is not a directory" if path.parent.exists() else "does not exist"
        raise RecoveryError(
            f"--log-file {path}: its directory {path.parent} {problem}; create it first, choose another path "
            "or pass --log-file none."
        )
    return LogTarget(path, path.parent)


class _ConsoleFormatter(logging.Formatter):
    """``recovery: warning: message``, one line; the traceback only when asked for (``-v``)."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        line = f"recovery: {record.levelname.lower()}: {record.getMessage()}"
        if self.tracebacks and record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _for_console(record: logging.LogRecord) -> bool:
    return getattr(record, "console", True)


class DeferredRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that holds its records in memory until ``anchor`` is a directory.

    Then it creates the file's directory, writes what it held and goes on writing. At :meth:`close`,
    records still held are dropped if ``anchor`` never appeared (the command was refused before it
    made it): a log must not be the one thing a refused command leaves behind. A file that cannot be
    written costs one line on stderr, never the command.
    """

    def __init__(self, target: LogTarget, level: int) -> None:
        super().__init__(target.path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", delay=True)
        self.target = target
        self.setLevel(level)
        self.setFormatter(logging.Formatter(FILE_FORMAT))
        self.held: list[logging.LogRecord] = []
        self.broken: str | None = None

    @property
    def written(self) -> bool:
        """True once the file is open (records reach it)."""
        return self.stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if self.broken is not None:
            return
        if self.stream is None:
            self.held.append(record)
            self._open_when_ready()
            return
        super().emit(record)

    def _open_when_ready(self) -> None:
        if not self.target.anchor.is_dir():
            return
        try:
            self.target.path.parent.mkdir(exist_ok=True)
            self.stream = self._open()
        except OSError as exc:
            self.broken = f"cannot write the log file {self.target.path} ({exc.strerror or exc})"
            self.held.clear()
            sys.stderr.write(f"recovery: warning: {self.broken}; going on without it.\n")
            return
        held, self.held = self.held, []
        for record in held:
            super().emit(record)

    def flush(self) -> None:
        if self.stream is None and self.held and self.broken is None:
            self._open_when_ready()
        super().flush()

    def close(self) -> None:
        self.flush()
        self.held.clear()  # the anchor never appeared: nothing to keep them in
        super().close()


class LogSetup:
    """The run's logging: console and optional file handlers on the library logger, removed on exit.

    ``verbosity``: -1 (``-q``), 0 (default), 1 (``-v``), 2 or more (``-vv``).
    """

    def __init__(self, verbosity: int, stream: object | None = None) -> None:
        self.verbosity = verbosity
        self.logger = logging.getLogger(LIBRARY_LOGGER)
        levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
        self.console = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
        self.console.setLevel(levels.get(max(verbosity, -1), logging.DEBUG))
        self.console.setFormatter(_ConsoleFormatter(tracebacks=verbosity >= 1))
        self.console.addFilter(_for_console)
        self.file: DeferredRotatingFileHandler | None = None
        self._saved_level = self.logger.level

    @property
    def tracebacks(self) -> bool:
        """Whether the console shows tracebacks (``-v``)."""
        return self.verbosity >= 1

    def __enter__(self) -> Self:
        self.logger.addHandler(self.console)
        self._set_level()
        return self

    def attach_file(self, target: LogTarget | None) -> None:
        """Add the rotating log file (``None``: no file)."""
        if target is None:
            return
        self.file = DeferredRotatingFileHandler(target, logging.DEBUG if self.verbosity >= 2 else logging.INFO)
        self.logger.addHandler(self.file)
        self._set_level()
        log.debug("log file %s (written once %s exists)", target.path, target.anchor)

    def log_file_written(self) -> Path | None:
        """The log file's path if records reached it (after flushing what it held)."""
        if self.file is None:
            return None
        self.file.flush()
        return self.file.target.path if self.file.written else None

    def _set_level(self) -> None:
        handlers = [h for h in (self.console, self.file) if h is not None]
        self.logger.setLevel(min(h.level for h in handlers))

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        for handler in (self.console, self.file):
            if handler is not None:
                self.logger.removeHandler(handler)
                handler.close()
        self.logger.setLevel(self._saved_level)
