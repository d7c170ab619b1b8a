"""Notebook kernels, quietly: each kernel start prints a TCP warning to stderr that tells a person
nothing; it goes to a temp file, which callers show when a kernel fails."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def quiet_kernels() -> Iterator[IO[str]]:
    """Send stderr (which kernels inherit) to a temp file while the block runs; yields the file."""
    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
