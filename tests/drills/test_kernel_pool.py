"""Kernels started ahead of their notebook (``KernelPool``), and the HTML written beside the drill.

A drill starts each notebook's kernel while the notebook before it runs, and that kernel has already
imported the library. These tests hold it to what a kernel papermill starts itself gives a notebook:
a process of its own, a namespace with nothing in it but IPython's names (the parameter validation
refuses names it does not know), the working directory asked for. A kernel that dies, before its
notebook or in the middle of it, fails the notebook as it did; every kernel, used or spare, is
stopped and its socket directory removed. An HTML export that fails is handed back, never dropped.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from drill_helpers import pid_alive
from jupyter_core.utils import run_sync

from recovery_lib.drills import runner
from recovery_lib.drills.exports import BackgroundExports
from recovery_lib.drills.kernels import (
    WARM_IMPORTS,
    Kernel,
    KernelPool,
    ReadyKernelClient,
    SocketKernelManager,
    execute_in,
    papermill_kernel_options,
    quiet_kernels,
)

# What the notebook sees, printed by a cell that binds no name of its own (so the names are the kernel's
# and the parameters'); parameters are injected after the "parameters" cell.
PROBE = """\
print(__import__("json").dumps({
    "pid": __import__("os").getpid(),
    "cwd": __import__("os").getcwd(),
    "names": sorted(name for name in get_ipython().user_ns if not name.startswith("_")),
    "hidden": sorted(get_ipython().user_ns_hidden),
    "warm": [module for module in WARM if module in __import__("sys").modules],
    "count": get_ipython().execution_count,
}))
""".replace("WARM", repr(WARM_IMPORTS))


def notebook(tmp_path: Path, *cells: str, name: str = "probe.ipynb") -> Path:
    """A notebook with a parameters cell (``marker: int = 0``), then ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    parameters = nbformat.v4.new_code_cell("marker: int = 0")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(cell) for cell in cells)]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def seen(executed: Path, cell: int = 2) -> dict[str, Any]:
    """What the probe cell printed (cell 0 is the parameters cell, cell 1 the injected one)."""
    outputs = nbformat.read(executed, as_version=4).cells[cell].outputs
    return json.loads("".join(o["text"] for o in outputs if o.get("name") == "stdout"))


def kernel_pid(kernel: Kernel) -> int:
    return kernel.manager.provisioner.process.pid


def wait_gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def test_a_warm_kernel_gives_the_notebook_what_a_kernel_of_papermills_gives(tmp_path: Path) -> None:
    """Same names, same hidden names, same execution count: only sys.modules differs (already imported)."""
    source = notebook(tmp_path, PROBE)
    with quiet_kernels():
        papermill.execute_notebook(
            str(source),
            str(tmp_path / "cold.ipynb"),
            parameters={"marker": 1},
            cwd=str(tmp_path),
            progress_bar=False,
            **papermill_kernel_options(),
        )
    kernel = KernelPool().take(tmp_path)
    try:
        execute_in(kernel, source, tmp_path / "warm.ipynb", {"marker": 1})
    finally:
        kernel.stop()
    cold, warm = seen(tmp_path / "cold.ipynb"), seen(tmp_path / "warm.ipynb")
    assert warm["names"] == cold["names"] == ["In", "Out", "exit", "get_ipython", "marker", "open", "quit"]
    assert warm["hidden"] == cold["hidden"] and "pandas" not in warm["hidden"]
    assert warm["count"] == cold["count"]  # no cell ran before the notebook's own (the warm-up is not one)
    assert warm["cwd"] == cold["cwd"] == str(tmp_path)
    assert warm["warm"] == list(WARM_IMPORTS) and cold["warm"] == []


def test_notebooks_in_a_row_each_get_a_fresh_kernel_with_a_clean_namespace(tmp_path: Path) -> None:
    source = notebook(tmp_path, PROBE, "leftover = marker\nimport collections")
    pool = KernelPool()
    pool.prepare(tmp_path)
    pids = []
    try:
        for number in (1, 2, 3):
            kernel = pool.take(tmp_path)
            pool.prepare(tmp_path)  # the next one starts while this one runs, as in a drill
            pids.append(kernel_pid(kernel))
            try:
                execute_in(kernel, source, tmp_path / f"out-{number}.ipynb", {"marker": number})
            finally:
                kernel.stop()
            assert wait_gone(pids[-1]), "the kernel outlived its notebook"
            names = seen(tmp_path / f"out-{number}.ipynb")["names"]
            assert "leftover" not in names and "collections" not in names and "marker" in names
            assert seen(tmp_path / f"out-{number}.ipynb")["pid"] == pids[-1]
        spare = kernel_pid(pool._spare)  # noqa: SLF001 - the one a fourth notebook would take
    finally:
        pool.close()
    assert len(set(pids)) == 3
    assert wait_gone(spare), "close() left the spare kernel running"


def test_the_kernels_clients_are_the_ones_that_do_not_wait_out_iopub() -> None:
    manager = SocketKernelManager(kernel_name="python3")
    try:
        assert isinstance(manager.client(), ReadyKernelClient)
    finally:
        run_sync(manager.cleanup_resources)()  # the client made the manager create its socket directory
    assert not Path(manager._socket_dir).exists()  # noqa: SLF001


def test_close_stops_the_spare_and_removes_its_sockets(tmp_path: Path) -> None:
    pool = KernelPool()
    pool.prepare(tmp_path)
    spare = pool._spare  # noqa: SLF001
    assert spare is not None
    sockets = Path(spare.manager._socket_dir)  # noqa: SLF001
    pid = kernel_pid(spare)
    assert sockets.is_dir()
    pool.close()
    assert wait_gone(pid) and not sockets.exists()
    pool.close()  # twice is harmless


def test_a_spare_for_another_directory_is_stopped_and_one_for_this_directory_started(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pool = KernelPool(warm=False)
    pool.prepare(tmp_path / "a")
    first = kernel_pid(pool._spare)  # noqa: SLF001
    kernel = pool.take(tmp_path / "b")
    try:
        assert kernel.cwd == tmp_path / "b" and kernel_pid(kernel) != first
        assert wait_gone(first)
    finally:
        kernel.stop()
        pool.close()


# --- a kernel that dies is the drill's failure, reported as before -----------------------------


@pytest.fixture
def notebooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The runner's notebook directory, pointed at a directory of this test's notebooks."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", folder)
    return folder


class RecordingPool(KernelPool):
    """A KernelPool that keeps the kernels it handed out (to look at them after the notebook)."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[tuple[Kernel, int, Path]] = []

    def take(self, cwd: Path) -> Kernel:
        kernel = super().take(cwd)
        self.taken.append((kernel, kernel_pid(kernel), Path(kernel.manager._socket_dir)))  # noqa: SLF001
        return kernel


def test_a_kernel_that_dies_mid_notebook_fails_the_drill_step(notebooks: Path, tmp_path: Path) -> None:
    notebook(notebooks, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", name="dies.ipynb")
    pool = RecordingPool()
    with pytest.raises(runner._DrillFailure) as failed:  # noqa: SLF001
        runner._execute(pool, "dies.ipynb", tmp_path / "out.ipynb", {}, tmp_path)  # noqa: SLF001
    assert str(failed.value).startswith("dies.ipynb: DeadKernelError: Kernel died")
    (_, pid, sockets) = pool.taken[0]
    assert wait_gone(pid) and not sockets.exists()
    spare = kernel_pid(pool._spare)  # noqa: SLF001 - started for the next notebook, which never comes
    pool.close()
    assert wait_gone(spare)


def test_a_kernel_that_died_before_its_notebook_fails_the_drill_step(notebooks: Path, tmp_path: Path) -> None:
    notebook(notebooks, "print('never')", name="never.ipynb")
    pool = RecordingPool()
    pool.prepare(tmp_path)
    os.kill(kernel_pid(pool._spare), signal.SIGKILL)  # noqa: SLF001
    with pytest.raises(runner._DrillFailure) as failed:  # noqa: SLF001
        runner._execute(pool, "never.ipynb", tmp_path / "out.ipynb", {}, tmp_path, then=False)  # noqa: SLF001
    assert str(failed.value).startswith("never.ipynb: RuntimeError: Kernel died before replying to kernel_info")
    (_, pid, sockets) = pool.taken[0]
    assert wait_gone(pid) and not sockets.exists(), "the dead kernel's socket directory stayed behind"
    assert pool._spare is None  # noqa: SLF001 - then=False: nothing follows, nothing was started


def test_a_failing_cell_is_the_notebooks_error_and_its_kernel_is_stopped(notebooks: Path, tmp_path: Path) -> None:
    notebook(notebooks, "raise ValueError('criterion failed')", name="fails.ipynb")
    pool = RecordingPool()
    path, error = runner._execute(pool, "fails.ipynb", tmp_path / "out.ipynb", {}, tmp_path, then=False)  # noqa: SLF001
    assert path == tmp_path / "out.ipynb" and path.is_file()
    assert error == "fails.ipynb: cell 2: ValueError: criterion failed"  # no parameters: none injected
    (_, pid, sockets) = pool.taken[0]
    assert wait_gone(pid) and not sockets.exists()


# --- HTML in the background ---------------------------------------------------------------------


def test_background_exports_write_every_notebook_and_hand_back_failures(tmp_path: Path) -> None:
    written: list[Path] = []

    def write(path: Path) -> None:
        if path.name == "bad.ipynb":
            raise OSError(28, "No space left on device")
        time.sleep(0.05)
        written.append(path)

    paths = [tmp_path / name for name in ("a.ipynb", "bad.ipynb", "c.ipynb", "d.ipynb")]
    for path in paths:
        path.write_text("{}")
    exports = BackgroundExports(write)
    exports.submit(paths[0])
    exports.submit(paths[1])
    exports.submit(paths[0])  # once only
    failed = exports.finish([*paths, tmp_path / "missing.ipynb"])
    assert written == [paths[0], paths[2], paths[3]]  # in order, the missing one skipped
    assert [(path, type(error)) for path, error in failed] == [(paths[1], OSError)]


def test_the_runner_writes_html_in_another_thread(tmp_path: Path) -> None:
    import threading

    threads: list[str] = []
    exports = BackgroundExports(lambda path: threads.append(threading.current_thread().name))
    exports.submit(tmp_path / "x.ipynb")
    assert exports.finish() == []
    assert threads and threads[0] != threading.current_thread().name
