"""Waiting for an ``flock`` with a deadline (the kernel releases it when its holder dies)."""

from __future__ import annotations

import fcntl
import logging
import time

log = logging.getLogger(__name__)


def flock_within(fd: int, operation: int, timeout_s: float, poll_s: float = 0.02) -> bool:
    """Take ``operation`` (LOCK_EX or LOCK_SH) on ``fd``, retrying until ``timeout_s``; False if still held."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                log.debug("flock still held by another process after %.1f s", timeout_s)
                return False
            time.sleep(poll_s)
