"""A wheel of the project is a whole install: built, installed into a fresh venv outside the
checkout, `recovery drill run --scenario config` recovers there, from the notebooks the wheel carries.

The fresh venv gets the wheel only (``--no-deps``): installing every dependency from PyPI would take
minutes. It sees the project venv's third-party packages through a ``.pth`` file naming that
site-packages directory; ``.pth`` files found there are not processed, so the checkout's editable
install (its own ``.pth`` or import hook) cannot come in with them. The tests check that nothing of
the checkout is imported, by the CLI or by the notebooks' kernels. Building the wheel fetches the
build backend (hatchling) from the package index, as `pip install .` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.drills.history import load_records

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = (ROOT / "recovery_lib", ROOT / "notebooks")  # what must not be imported or run
# Variables that would point the fresh venv back at the checkout or at another environment.
DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "RECOVERY_SITE", "JUPYTER_PATH")


@dataclass(frozen=True)
class Install:
    """The wheel, the fresh venv it is installed in, and a directory outside the checkout to run in."""

    wheel: Path
    venv: Path
    cwd: Path  # outside the checkout
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command of the fresh venv outside the checkout; fails the test on a non-zero exit."""
        done = subprocess.run(
            [str(a) for a in args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done


def _run(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    work = tmp_path_factory.mktemp("wheel")
    assert not work.resolve().is_relative_to(ROOT)
    dist, venv, elsewhere = work / "dist", work / "venv", work / "elsewhere"
    elsewhere.mkdir()
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input")
    # The wheel as `pip install .` builds it: the build backend in an isolated environment.
    _run(*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, ROOT, cwd=elsewhere)
    (wheel,) = dist.glob("recovery_lib-*.whl")

    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=elsewhere)
    python = venv / "bin" / "python"
    # Installed before the venv sees the project's packages, and with --ignore-installed: pip must
    # neither find nor uninstall the project's own (editable) recovery_lib.
    _run(
        *pip,
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        "--ignore-installed",
        "--quiet",
        wheel,
        cwd=elsewhere,
    )
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            cwd=elsewhere,
            env={"PATH": os.defpath},
        ).stdout.strip()
    )
    assert site_packages.is_relative_to(venv) and (site_packages / "recovery_lib" / "__init__.py").is_file()
    project = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "zz_project_venv.pth").write_text("".join(f"{path}\n" for path in sorted(project)))

    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    # The third-party packages' data files too (nbconvert's HTML templates): a full install would
    # have put them in the fresh venv's own share/jupyter.
    env["JUPYTER_PATH"] = str(Path(sysconfig.get_paths()["data"]) / "share" / "jupyter")
    return Install(wheel=wheel, venv=venv, cwd=elsewhere, env=env)


def test_the_wheel_carries_the_notebooks_in_the_package(install: Install) -> None:
    with zipfile.ZipFile(install.wheel) as wheel:
        packaged = {
            Path(name).name: wheel.read(name)
            for name in wheel.namelist()
            if name.startswith("recovery_lib/notebooks/") and name.endswith(".ipynb")
        }
        names = wheel.namelist()
    assert packaged == {p.name: p.read_bytes() for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert "recovery_lib/templates/recovery_offline/index.html.j2" in names  # the HTML records' template
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "tools/")) or "__pycache__" in n]


# Run by the fresh venv's Python (argv: the checkout's directories): what it imports, and what a
# notebook kernel it starts the way a drill does imports.
PROBE = """
import json, sys


def seen(checkout):
    import recovery_lib, recovery_lib.cli.main
    from recovery_lib.drills.runner import NOTEBOOK_DIR

    modules = list(sys.modules.items())
    loaded = sorted(n for n, m in modules if (getattr(m, "__file__", None) or "").startswith(tuple(checkout)))
    package = recovery_lib.__file__
    return {"executable": sys.executable, "package": package, "notebooks": str(NOTEBOOK_DIR), "from_checkout": loaded}


if __name__ == "__main__":
    import nbformat, papermill
    from recovery_lib.drills.kernels import papermill_kernel_options, quiet_kernels

    notebook = nbformat.v4.new_notebook()
    code = f"import json, probe\\nprint(json.dumps(probe.seen({sys.argv[1:]!r})))"
    notebook.cells = [nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, "probe.ipynb")
    with quiet_kernels():
        out = papermill.execute_notebook("probe.ipynb", "out.ipynb", progress_bar=False, **papermill_kernel_options())
    kernel = json.loads(out.cells[0].outputs[0]["text"])
    print(json.dumps({"process": seen(sys.argv[1:]), "kernel": kernel}))
"""


@pytest.fixture(scope="module")
def imported(install: Install) -> dict[str, dict[str, Any]]:
    """What the installed CLI's Python and its notebook kernels import (one run of :data:`PROBE`)."""
    (install.cwd / "probe.py").write_text(PROBE)
    return json.loads(install.run(install.python, "probe.py", *map(str, CHECKOUT)).stdout)


@pytest.mark.parametrize("where", ["process", "kernel"])
def test_the_installed_package_is_imported_not_the_checkout(
    install: Install, imported: dict[str, dict[str, Any]], where: str
) -> None:
    seen = imported[where]
    assert Path(seen["executable"]) == install.python
    assert Path(seen["package"]).is_relative_to(install.venv / "lib"), seen
    assert Path(seen["notebooks"]) == Path(seen["package"]).parent / "notebooks"  # the wheel's copy
    assert seen["from_checkout"] == []


def test_a_drill_recovers_from_the_installed_wheel(install: Install) -> None:
    outputs = install.cwd / "outputs"
    done = install.run(install.venv / "bin" / "recovery", "drill", "run", "--scenario", "config", "--outputs", outputs)
    assert "NOT RECOVERED" not in done.stdout
    records = load_records(outputs)
    assert list(records["scenario"]) == ["config"]
    assert list(records["outcome"]) == ["recovered"], done.stdout
    assert (outputs / "index.html").is_file()
    # The notebooks it ran were the wheel's (papermill notes each one's input path).
    (run_id,) = records["run_id"]
    executed = [json.loads(path.read_text()) for path in sorted((outputs / run_id).glob("*.ipynb"))]
    inputs = {Path(nb["metadata"]["papermill"]["input_path"]) for nb in executed}
    assert len(inputs) >= 4, inputs  # triage, A, verification, post-recovery
    assert all(path.is_relative_to(install.venv / "lib") for path in inputs), inputs
