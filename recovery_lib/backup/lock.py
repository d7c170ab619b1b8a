"""One writer at a time per backup directory.

An ``flock`` on ``<backup_dir>/.lock``; the file also records who holds it (operation, pid, host,
time) so whoever has to wait is told by whom. The stale rule is the kernel's: a lock whose holder
died (even by SIGKILL) is released with the process, and the recorded holder is then ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

from recovery_lib.clock import now_iso
from recovery_lib.errors import LockedError, LockFileError, RecoveryError
from recovery_lib.fsops.flock import flock_within

LOCK_NAME = ".lock"

log = logging.getLogger(__name__)


class _ReentrantFlock:
    """An exclusive ``flock`` on one open file, re-entrant within its holder object.

    Subclasses say what to open, what to do once the lock is taken or about to be dropped, and what
    to tell a caller who cannot have it.
    """

    def __init__(self, timeout_s: float = 0.0) -> None:
        self.timeout_s = timeout_s
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        """True while this object holds the lock (inside an operation)."""
        return self._fd is not None

    def _open(self) -> int:
        raise NotImplementedError

    def _busy(self) -> RecoveryError:
        raise NotImplementedError

    def _taken(self, fd: int) -> None:
        """Called with the flock just taken; an exception here gives it up again."""

    def _dropping(self, fd: int) -> None:
        """Called just before the flock is released."""

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting up to ``timeout_s``; False only when ``blocking`` is False and it is held."""
        if self._fd is not None:
            self._depth += 1
            return True
        fd = self._open()
        if not flock_within(fd, fcntl.LOCK_EX, self.timeout_s if blocking else 0.0, poll_s=0.05):
            os.close(fd)
            if not blocking:
                return False
            busy = self._busy()
            log.info("refused: %s", busy)  # raised: the caller reports it (no second warning)
            raise busy
        try:
            self._taken(fd)
        except BaseException:
            os.close(fd)  # closing releases the flock
            raise
        self._fd, self._depth = fd, 1
        return True

    def release(self) -> None:
        """Release one level of the lock."""
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth:
            return
        fd, self._fd = self._fd, None
        log.debug("released %s", type(self).__name__)
        try:
            self._dropping(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


class BackupLock(_ReentrantFlock):
    """Exclusive lock on a backup directory; the lock file stays (removing it would race other lockers)."""

    def __init__(self, backup_dir: Path, operation: str, timeout_s: float = 0.0) -> None:
        super().__init__(timeout_s)
        self.path = backup_dir / LOCK_NAME
        self.operation = operation

    def holder(self) -> dict[str, object]:
        """Who the lock file says holds (or last held) the lock."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def _open(self) -> int:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise LockFileError(
                f"the backup directory {self.path.parent} is a file, not a directory: nothing can be backed up "
                "there. Move the file aside (Procedure D does it) or set [backups] dir in recovery.toml."
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._unusable(exc) from exc

    def _busy(self) -> LockedError:
        held = self.holder()
        return LockedError(
            f"backup directory {self.path.parent} is busy: {held.get('operation', 'an operation')} "
            f"by pid {held.get('pid', '?')} on {held.get('host', '?')} since {held.get('since', '?')}. "
            "Wait for it to finish and try again (a lock of a dead process is released automatically)."
        )

    def _taken(self, fd: int) -> None:
        record = {
            "operation": self.operation,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": now_iso(),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except OSError as exc:
            raise self._unusable(exc) from exc
        log.info("locked %s for %s", self.path.parent, self.operation)

    def _dropping(self, fd: int) -> None:
        # Clearing the holder record is a courtesy: a waiter only reads it while the flock is held,
        # so a failure here (full or failing disk) must not turn a finished operation into an error.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)

    def _unusable(self, exc: OSError) -> LockFileError:
        return LockFileError(
            f"cannot take the lock {self.path}: {exc.strerror or exc}. Nothing was changed; make "
            f"{self.path.parent} writable and check the disk has space, then try again."
        )


class SiteRestoreLock(_ReentrantFlock):
    """Exclusive ``flock`` on the site directory itself, held by a restore from start to finish.

    The backup-directory lock is not enough: a manager with another backup directory (an off-site
    copy) must not mistake a running restore's journal for an interrupted one. Locking the directory
    writes nothing into the site.
    """

    def __init__(self, site_root: Path, timeout_s: float = 0.0) -> None:
        super().__init__(timeout_s)
        self.site_root = site_root

    def _open(self) -> int:
        return os.open(self.site_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _busy(self) -> LockedError:
        return LockedError(
            f"a restore is running in site {self.site_root} (another process holds it). Wait for it to "
            "finish and try again (the lock of a dead process is released automatically)."
        )
