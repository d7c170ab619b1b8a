"""Packaging promises: environment.yml agrees with pyproject.toml; notebooks carry no outputs; a
checkout drills with its own notebooks (a wheel with the copy it carries: test_wheel.py)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from recovery_lib.drills.runner import NOTEBOOK_DIR

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_has_the_same_dependencies_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    expected = {_normalise(r) for r in project["dependencies"] + extras["lab"] + extras["s3"] + extras["sftp"]}
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(e for e in environment["dependencies"] if isinstance(e, dict))
    conda = {
        _normalise(entry)
        for entry in [*environment["dependencies"], *pip_section["pip"][1:]]
        if isinstance(entry, str) and _normalise(entry)[0] not in {"python", "pip"}
    }
    assert conda == expected
    python = next(e for e in environment["dependencies"] if isinstance(e, str) and e.startswith("python"))
    assert python.replace(" ", "") == "python" + project["requires-python"]
    assert pip_section["pip"][0] == "-e ."


def test_committed_notebooks_carry_no_outputs() -> None:
    for notebook in sorted((ROOT / "notebooks").glob("**/*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for cell in cells:
            assert not cell.get("outputs"), f"{notebook.name} has outputs; clear them before committing"
            assert not cell.get("execution_count"), f"{notebook.name} has execution counts"


def test_console_script_points_at_main() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"recovery": "recovery_lib.cli.main:main"}


def test_a_checkout_drills_with_its_own_notebooks() -> None:
    """Editable or source install: the notebook an engineer saved in JupyterLab is the one drills run."""
    assert NOTEBOOK_DIR == ROOT / "notebooks"
    assert not (ROOT / "recovery_lib" / "notebooks").exists()  # no second copy to fall out of date
