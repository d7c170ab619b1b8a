"""The committed notebooks are the source of the procedures: the conventions every one keeps.

An engineer edits a notebook in JupyterLab (docs/notebooks.md); these tests are what keeps every
notebook runnable by papermill, recordable and reviewable, without running a kernel:

- the title: a markdown cell ``# <the runbook's heading>`` with a paragraph saying what it does;
- the ``parameters`` cell first, one ``name: type = value  # help`` line each, literal defaults that
  pass validation, a parameter shared by notebooks declared by the same line in each;
- in procedures A-D, the ``resume`` cell next: the "Resume from record" picker, one call
  (``resume_picker(globals(), procedure=<its catalog key>)``) that only displays;
- the ``validate`` cell next, passing ``globals()`` to the validator before anything else happens
  (``start(globals(), procedure=<its catalog key>)``);
- every later code cell one runbook step: one ``step:<name>`` tag, a ``## title`` and its purpose above;
- no outputs, no execution counts, no editor metadata (``tools/clean_notebooks.py`` is a no-op), the
  file written as JupyterLab writes it;
- every import and every ``steps.<name>`` a cell uses exists in the library;
- the cells' code lints: ruff reads notebooks, with the project's rules.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

from recovery_lib import catalog
from recovery_lib.runbook.notebook import validate_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
CLEANER = ROOT / "tools" / "clean_notebooks.py"
ALL_NOTEBOOKS = (
    "00_detect_and_triage.ipynb",
    "A_config_recovery.ipynb",
    "B_data_recovery.ipynb",
    "C_full_system_recovery.ipynb",
    "D_backup_system_recovery.ipynb",
    "V_verification.ipynb",
    "P_post_recovery.ipynb",
    "R_drill_report.ipynb",
)
REPORT_NOTEBOOK = "R_drill_report.ipynb"
PROCEDURES = {
    "A": "A_config_recovery.ipynb",
    "B": "B_data_recovery.ipynb",
    "C": "C_full_system_recovery.ipynb",
    "D": "D_backup_system_recovery.ipynb",
}
COMMON_PARAMETERS = {"site", "interactive", "approve", "operator", "incident_id", "kind"}
CLEAN_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
PARAMETER_LINE = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*): (?P<type>[^=]+?) = (?P<value>.+?)  # (?P<help>\S.*)$")
STEP_NAME = re.compile(r"[a-z0-9_]+")


def load_cleaner() -> ModuleType:
    """tools/clean_notebooks.py (what `make notebooks-clean` runs), loaded here: one import of nbformat."""
    spec = importlib.util.spec_from_file_location("clean_notebooks", CLEANER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cleaner = load_cleaner()


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def entry(name: str) -> catalog.Procedure:
    """The catalog's row for a notebook file."""
    (row,) = [p for p in catalog.PROCEDURES if p.notebook == name]
    return row


def paragraphs(markdown: str) -> list[str]:
    return [part for part in markdown.split("\n\n") if part.strip()]


def parameter_lines(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Each parameter's name and its whole line in the parameters cell."""
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    return {PARAMETER_LINE.match(line)["name"]: line for line in cell.source.splitlines()}


def check_conventions(notebook: nbformat.NotebookNode, name: str) -> None:
    """Every convention of one notebook's cells (read as the kernel would see them)."""
    nbformat.validate(notebook)  # the v4 schema, a unique id for every cell
    code = [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for _, c in code), "committed with outputs"
    assert notebook.metadata == CLEAN_METADATA, f"{name}: metadata {dict(notebook.metadata)}: run make notebooks-clean"
    for index, cell in enumerate(notebook.cells):
        assert set(cell.metadata) <= {"tags"}, f"{name} cell {index}: editor metadata {dict(cell.metadata)}"
        assert cell.source and cell.source == cell.source.strip(), f"{name} cell {index}: empty or blank-padded"

    # The title: the runbook's heading and what the notebook does.
    title = notebook.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# "), f"{name}: no # title first"
    assert entry(name).heading in title.source.splitlines()[0]
    assert len(paragraphs(title.source)) >= 2, f"{name}: title without what the notebook does"

    (p_index, parameters), *code = code
    resume = code.pop(0) if name in PROCEDURES.values() else None
    (v_index, validate), *steps = code
    assert parameters.metadata.get("tags") == ["parameters"]
    assert all(c.cell_type == "markdown" for c in notebook.cells[:p_index]), "code before the parameters cell"
    names = []
    for line in parameters.source.splitlines():
        match = PARAMETER_LINE.match(line)
        assert match, f"not `name: type = value  # help`: {line!r}"
        (statement,) = ast.parse(line).body
        assert isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
        ast.literal_eval(statement.value)
        names.append(match["name"])
    assert len(names) == len(set(names))
    if name != REPORT_NOTEBOOK:  # the records page takes only its outputs directory
        assert set(names) >= COMMON_PARAMETERS
        assert "**How to run.**" in title.source, f"{name}: the title cell does not say how to run it"
    if name in PROCEDURES.values() and name != PROCEDURES["D"]:
        assert 'backup_id: str = "latest"' in parameters.source
    defaults: dict[str, Any] = {}
    exec(compile(parameters.source, name, "exec", dont_inherit=True), defaults)  # the defaults pass validation
    assert set(validate_parameters(defaults, hidden=set())) == set(names)

    if resume is not None:
        r_index, cell = resume
        assert cell.metadata.get("tags") == ["resume"], f"{name}: no resume cell after the parameters cell"
        check_resume_cell(cell.source, name)
        above = notebook.cells[r_index - 1]
        assert above.cell_type == "markdown" and above.source.startswith("### Resume from record"), name
    assert validate.metadata.get("tags") == ["validate"]
    between = [c for c in notebook.cells[p_index + 1 : v_index] if resume is None or c is not resume[1]]
    assert all(c.cell_type == "markdown" for c in between), f"{name}: code between parameters and validation"
    check_validation_cell(validate.source, name)

    step_names = []
    for index, cell in steps:
        tags = cell.metadata.get("tags", [])
        step = [tag for tag in tags if tag.startswith("step:")]
        assert len(step) == 1, f"cell {index} has step tags {tags}"
        step_names.append(step[0].split(":", 1)[1])
        above = notebook.cells[index - 1]
        assert above.cell_type == "markdown" and above.source.startswith("## "), f"cell {index}: no title above"
        assert len(paragraphs(above.source)) >= 2, "title without purpose"
    assert step_names and all(STEP_NAME.fullmatch(s) for s in step_names)
    assert len(step_names) == len(set(step_names)), f"duplicate step names: {step_names}"


def check_validation_cell(source: str, name: str) -> None:
    """Imports, then the call that validates ``globals()``: nothing is read or written before it."""
    statements = ast.parse(source).body
    first = next(s for s in statements if not isinstance(s, ast.Import | ast.ImportFrom))
    call = first.value if isinstance(first, ast.Assign | ast.Expr) else None
    assert isinstance(call, ast.Call) and call.args, f"{name}: the validation cell does not start by validating"
    passed = call.args[0]
    assert isinstance(passed, ast.Call) and isinstance(passed.func, ast.Name) and passed.func.id == "globals"
    if name != REPORT_NOTEBOOK:
        assert isinstance(call.func, ast.Name) and call.func.id == "start", f"{name}: not start(globals(), ...)"
        assert isinstance(first, ast.Assign) and [t.id for t in first.targets if isinstance(t, ast.Name)] == ["run"]
        keywords = {k.arg: k.value for k in call.keywords}
        procedure = keywords.get("procedure")
        assert isinstance(procedure, ast.Constant), f"{name}: start() without procedure="
        assert procedure.value == entry(name).key, f"{name} runs as procedure {procedure.value!r}"


def check_resume_cell(source: str, name: str) -> None:
    """Imports, then one expression: ``resume_picker(globals(), procedure=<key>)``, displayed. Assigned,
    its result would be a name the validation cell refuses as an unknown parameter."""
    statements = ast.parse(source).body
    rest = [s for s in statements if not isinstance(s, ast.Import | ast.ImportFrom)]
    assert len(rest) == 1 and isinstance(rest[0], ast.Expr), f"{name}: the resume cell is not one call, displayed"
    call = rest[0].value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "resume_picker", name
    passed = call.args[0] if call.args else None
    assert isinstance(passed, ast.Call) and isinstance(passed.func, ast.Name) and passed.func.id == "globals"
    procedure = {k.arg: k.value for k in call.keywords}.get("procedure")
    assert isinstance(procedure, ast.Constant) and procedure.value == entry(name).key, f"{name}: resume_picker()"


def imported_modules(tree: ast.AST) -> dict[str, ModuleType]:
    """Every name a cell binds to a module by import, resolved; fails on an import that does not exist."""
    modules: dict[str, ModuleType] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module = importlib.import_module(alias.name)
                if alias.asname:
                    modules[alias.asname] = module
                else:  # `import a.b` binds `a`
                    modules[alias.name.split(".")[0]] = importlib.import_module(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "a relative import in a notebook"
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):  # a submodule not imported by its package
                    importlib.import_module(f"{node.module}.{alias.name}")
                value = getattr(module, alias.name)
                if isinstance(value, ModuleType):
                    modules[alias.asname or alias.name] = value
    return modules


# --- the committed notebooks --------------------------------------------------------------------


def test_every_notebook_is_committed() -> None:
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(ALL_NOTEBOOKS)
    assert sorted(p.notebook for p in catalog.PROCEDURES) == sorted(ALL_NOTEBOOKS)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebook_conventions(name: str) -> None:
    check_conventions(read(name), name)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_file_is_clean_and_as_jupyterlab_writes_it(name: str) -> None:
    """JupyterLab, nbconvert and the cleaner all write this text, so a save shows only what changed."""
    path = NOTEBOOK_DIR / name
    text = path.read_text(encoding="utf-8")
    assert text == nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"
    assert cleaner.main(["--check", str(path)]) == 0


def test_a_parameter_is_declared_alike_in_every_notebook() -> None:
    """`site`, `approve`, ... mean one thing: the same type, default and help wherever they appear."""
    declared: dict[str, set[str]] = {}
    for name in ALL_NOTEBOOKS:
        for parameter, line in parameter_lines(read(name)).items():
            declared.setdefault(parameter, set()).add(line)
    assert set(declared) >= COMMON_PARAMETERS
    differing = {parameter: lines for parameter, lines in declared.items() if len(lines) > 1}
    assert differing == {}


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_what_the_cells_use_exists_in_the_library(name: str) -> None:
    """Every import resolves and every ``steps.x``/``report.x`` exists: a renamed step fails here, not
    in a drill. (Runs no kernel; names a cell defines itself are not module attributes and are skipped.)"""
    tree = ast.parse("\n".join(c.source for c in read(name).cells if c.cell_type == "code"))
    modules = imported_modules(tree)
    assert any(m.__name__.startswith("recovery_lib.") for m in modules.values()), f"{name} uses no library module"
    missing = [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
        and not hasattr(modules[node.value.id], node.attr)
    ]
    assert missing == []


def test_the_runbook_notebooks_use_the_layered_modules() -> None:
    for name in ALL_NOTEBOOKS:
        source = read(name).cells
        validate = next(c for c in source if "validate" in c.metadata.get("tags", []))
        if name == REPORT_NOTEBOOK:
            assert "from recovery_lib.drills import report" in validate.source
        else:
            assert "from recovery_lib.runbook import procedures as steps" in validate.source
            assert "from recovery_lib.runbook.notebook import start" in validate.source


# --- lint: ruff reads the cells -----------------------------------------------------------------


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=cwd, capture_output=True, text=True)


def test_the_cells_pass_lint_and_format() -> None:
    checked = ruff("check", "--no-cache", "notebooks")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = ruff("format", "--check", "--no-cache", "notebooks")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_ruff_checks_the_code_in_cells_with_the_project_rules(tmp_path: Path) -> None:
    """The lint above can fail: a notebook with an unused import and a misformatted step is refused."""
    copy = tmp_path / "notebooks" / "A_config_recovery.ipynb"
    copy.parent.mkdir()
    shutil.copy(NOTEBOOK_DIR / copy.name, copy)
    notebook = json.loads(copy.read_text())
    step = next(c for c in notebook["cells"] if "step:stop_system" in c["metadata"].get("tags", []))
    step["source"] = ["import os\n", "steps.stop( run )"]
    copy.write_text(json.dumps(notebook, indent=1))
    config = str(ROOT / "pyproject.toml")
    checked = ruff("check", "--no-cache", "--config", config, "notebooks", cwd=tmp_path)
    assert checked.returncode == 1 and "F401" in checked.stdout and copy.name in checked.stdout, checked.stdout
    formatted = ruff("format", "--check", "--no-cache", "--config", config, "notebooks", cwd=tmp_path)
    assert formatted.returncode == 1 and copy.name in formatted.stdout, formatted.stdout


# --- the cleaner: what `make notebooks-clean` does to a notebook saved in JupyterLab ---------------


def saved_in_jupyterlab(name: str) -> dict[str, Any]:
    """A committed notebook as JupyterLab saves it after a run: outputs, counts, view state, kernel info."""
    notebook = json.loads((NOTEBOOK_DIR / name).read_text())
    for count, cell in enumerate(c for c in notebook["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = count + 1
        cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["ran\n"]}]
        cell["metadata"]["scrolled"] = True
        cell["metadata"]["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    notebook["cells"][0]["metadata"]["jp-MarkdownHeadingCollapsed"] = True
    notebook["cells"][-1]["source"][-1] += "\n"
    notebook["metadata"] = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11.2", "mimetype": "text/x-python"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
    }
    return notebook


@pytest.mark.parametrize("name", ["A_config_recovery.ipynb", REPORT_NOTEBOOK])
def test_the_cleaner_restores_a_notebook_saved_after_a_run(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(saved_in_jupyterlab(name), indent=2))
    with pytest.raises(AssertionError):  # the conventions refuse it as saved ...
        check_conventions(nbformat.read(path, as_version=4), name)
    assert cleaner.main(["--check", str(path)]) == 1
    said = capsys.readouterr().out
    assert "not clean" in said and name in said and "make notebooks-clean" in said
    assert path.read_text() != (NOTEBOOK_DIR / name).read_text()  # --check changed nothing

    assert cleaner.main([str(path)]) == 0
    check_conventions(nbformat.read(path, as_version=4), name)  # ... and accept it cleaned,
    assert path.read_text() == (NOTEBOOK_DIR / name).read_text()  # byte for byte the committed file


def test_the_cleaner_keeps_a_new_cell_and_its_tags(tmp_path: Path) -> None:
    """An engineer's new step survives cleaning: its id, tag, title and code; only its output goes."""
    notebook = read("D_backup_system_recovery.ipynb")
    title = nbformat.v4.new_markdown_cell("## 5. Check the disk\n\nFree space on the backup disk.")
    step = nbformat.v4.new_code_cell("steps.backup_dir_status(run)", metadata={"tags": ["step:disk"], "editable": True})
    step.outputs = [nbformat.v4.new_output("stream", text="ok\n")]
    step.execution_count = 7
    notebook.cells[-6:-6] = [title, step]  # before the closing criteria, escalation and outcome
    path = tmp_path / "D_backup_system_recovery.ipynb"
    nbformat.write(notebook, path)
    assert cleaner.main([str(path)]) == 0
    cleaned = nbformat.read(path, as_version=4)
    check_conventions(cleaned, path.name)
    kept = next(c for c in cleaned.cells if c.get("id") == step.id)
    assert kept.metadata == {"tags": ["step:disk"]} and kept.source == step.source and kept.outputs == []
    assert [c.source for c in cleaned.cells].count(title.source) == 1
