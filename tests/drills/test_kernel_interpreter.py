"""A drill's notebooks run in the Python that runs the drill, so they import the same recovery_lib.

Installed from a wheel, `recovery drill run` must not execute its notebooks against a checkout (or
nothing): a ``python3`` kernelspec elsewhere on the Jupyter path must not choose the interpreter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from recovery_lib.drills.kernels import SocketKernelManager, papermill_kernel_options, quiet_kernels


@pytest.fixture
def foreign_python3_kernelspec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``python3`` kernelspec first on the Jupyter path, naming an interpreter that does not exist."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [str(tmp_path / "elsewhere" / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Elsewhere", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return spec


def test_the_kernel_spec_names_this_interpreter(foreign_python3_kernelspec: Path) -> None:
    manager = SocketKernelManager(kernel_name="python3")
    assert manager.kernel_spec.argv[0] == sys.executable
    assert manager.kernel_spec.argv[1:3] == ["-m", "ipykernel_launcher"]
    assert manager.kernel_spec.language == "python"


def test_a_notebook_runs_in_this_interpreter(foreign_python3_kernelspec: Path, tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    code = "import sys, recovery_lib\nprint(sys.executable, recovery_lib.__file__)"
    notebook.cells = [nbformat.v4.new_code_cell(code)]
    source = tmp_path / "in.ipynb"
    nbformat.write(notebook, source)
    with quiet_kernels():
        executed = papermill.execute_notebook(
            str(source), str(tmp_path / "out.ipynb"), progress_bar=False, **papermill_kernel_options()
        )
    executable, package = executed.cells[0].outputs[0]["text"].split()
    assert executable == sys.executable
    assert Path(package).resolve() == Path(sys.modules["recovery_lib"].__file__).resolve()
