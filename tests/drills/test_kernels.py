"""Kernels started at the same time never collide (two drills at once, ``make drill --jobs 2``)."""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path

import nbformat
import papermill

from recovery_lib.drills.kernels import papermill_kernel_options, quiet_kernels


def _run(args: tuple[str, str]) -> str:
    source, out = args
    with quiet_kernels():
        executed = papermill.execute_notebook(source, out, progress_bar=False, **papermill_kernel_options())
    return executed.cells[0].outputs[0]["text"]


def _socket_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("rk-*"))


def test_notebooks_started_at_once_in_two_processes_all_run_and_leave_no_sockets(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import os; print('ran in', os.getpid())")]
    source = tmp_path / "in.ipynb"
    nbformat.write(notebook, source)
    before = _socket_dirs()
    jobs = [(str(source), str(tmp_path / f"out-{i}.ipynb")) for i in range(4)]
    # spawn: fresh interpreters, as the drill CLI's process pool gives each drill its own kernels
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        said = pool.map(_run, jobs)
    assert all(text.startswith("ran in ") for text in said), said
    assert len(set(said)) == 4  # four kernels, four processes
    assert _socket_dirs() == before  # each kernel removed its socket directory
