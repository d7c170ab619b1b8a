"""The HTML of a drill's notebooks, written in a worker thread while the next notebook runs.

Exporting a notebook takes a fraction of a second of the drill's own process, which has nothing else
to do while a kernel runs the next notebook; the judgment of the drill reads the notebooks, never
their HTML. :meth:`BackgroundExports.finish` waits for every export, so the HTML exists and is
complete when the drill returns, and hands back the exports that failed (the caller reports them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


class BackgroundExports:
    """``write(notebook)`` for each notebook submitted, one at a time, in a thread of its own."""

    def __init__(self, write: Callable[[Path], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drill-html")
        self._futures: dict[Path, Future[None]] = {}

    def submit(self, notebook: Path) -> None:
        """Export ``notebook`` (an executed notebook, complete on disk) once the ones before are done."""
        if notebook not in self._futures:
            self._futures[notebook] = self._pool.submit(self._write, notebook)

    def finish(self, notebooks: Iterable[Path] = ()) -> list[tuple[Path, BaseException]]:
        """Export those of ``notebooks`` that exist and were not submitted, wait for every export, and
        return the ones that failed, with their exceptions, in the order they were submitted."""
        try:
            for notebook in notebooks:
                if notebook.exists():
                    self.submit(notebook)
        finally:
            self._pool.shutdown(wait=True)
        return [(path, error) for path, future in self._futures.items() if (error := future.exception()) is not None]
