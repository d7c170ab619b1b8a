"""The "Resume from record" cell of the procedure notebooks (issue 17), without a kernel: the committed
cells of B executed in order in one namespace as a kernel would (tests/runbook/test_rerun.py), the picker
a real ipywidgets Dropdown whose value is set as a person's pick sets it.

A first, unattended run of B halts at the restore (``approve`` lacks "restore" and "repair"); in a new
"kernel" the picker offers it, a pick sets what resuming it needs, and the cells below resume it and
recover. "(start from the top)" puts the parameters back; headless the cell only says what the run does.
"""

from __future__ import annotations

import ast
import copy
import html
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_rerun import waiting_approve_button

import recovery_lib.runbook.resume_picker as picker_module
from recovery_lib.checks.default import health_check
from recovery_lib.drills.injectors import inject
from recovery_lib.manager import RecoveryManager
from recovery_lib.rendering import WIDGET_VIEW
from recovery_lib.runbook.approval import ApprovalRequired
from recovery_lib.runbook.failed_runs import FailedRun, failed_runs
from recovery_lib.runbook.resume_picker import TOP_LABEL, ResumePicker
from recovery_lib.site.config import Site, load_site
from recovery_lib.site.process import process_status, start_system, stop_system

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MAX_PASSES = 8
# Everything B asks for but the remedies: the unattended run stops the system, backs up, and halts there.
WITHOUT_REMEDY = ["stop_system", "backup", "start_system"]


def cells(name: str) -> list[tuple[str, str]]:
    """(tag, source) of every code cell of a committed notebook."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [((c.metadata.get("tags") or [""])[0], c.source) for c in notebook.cells if c.cell_type == "code"]


def run_cell(source: str, namespace: dict[str, Any], tag: str) -> Any:
    """Execute a cell as a kernel does; returns the value of its last expression (what it displays)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, tag, "exec", dont_inherit=True), namespace)  # no __future__ of ours
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), tag, "eval", dont_inherit=True), namespace)


def parameters(site: Path, **values: Any) -> str:
    """What the person typed under the parameters cell."""
    return "".join(
        f"\n{name} = {value!r}" for name, value in {"site": str(site), "operator": "alice", **values}.items()
    )


def run_all(namespace: dict[str, Any], site: Path, **values: Any) -> tuple[str | None, str | None, Any]:
    """One "Run All" of B: every cell in order until one raises; (its tag, its error type, the resume cell's
    display), or (None, None, display)."""
    shown = None
    for tag, source in cells("B_data_recovery.ipynb"):
        if tag == "parameters":
            source += parameters(site, **values)
        try:
            value = run_cell(source, namespace, tag)
        except Exception as exc:  # noqa: BLE001 - the test reports which cell stopped the pass, and why
            return tag, type(exc).__name__, shown
        if tag == "resume":
            shown = value
    return None, None, shown


@pytest.fixture
def failed_b(sandbox: Path) -> Any:
    """A site after a data loss and an unattended run of B that halted at the restore (not approved)."""
    site = load_site(sandbox)
    assert start_system(site, timeout_s=15).ok
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    inject(site, "data", variant="files_deleted", seed=4)
    stopped = run_all({}, sandbox, interactive=False, approve=WITHOUT_REMEDY)
    assert stopped[:2] == ("step:outcome", "ProcedureFailed"), stopped
    yield site
    stop_system(site, timeout_s=15)


def the_failed_run(site: Site) -> FailedRun:
    (failed,) = failed_runs(site, "B")
    assert failed.failed_step == "restore" or failed.halted, failed
    return failed


def interactive_namespace(site: Path) -> dict[str, Any]:
    """A new kernel's globals after the parameters cell, in JupyterLab."""
    namespace: dict[str, Any] = {}
    (source,) = [s for tag, s in cells("B_data_recovery.ipynb") if tag == "parameters"]
    run_cell(source + parameters(site), namespace, "parameters")
    return namespace


def resume_cell(namespace: dict[str, Any]) -> ResumePicker:
    """The notebook's own resume cell, run; returns what it displays."""
    (source,) = [s for tag, s in cells("B_data_recovery.ipynb") if tag == "resume"]
    shown = run_cell(source, namespace, "resume")
    assert isinstance(shown, ResumePicker)
    return shown


def test_a_picked_failed_run_is_resumed_by_the_cells_below_and_recovers(failed_b: Site) -> None:
    failed = the_failed_run(failed_b)
    namespace = interactive_namespace(failed_b.root)
    picker = resume_cell(namespace)
    offered = ((TOP_LABEL, ""), (failed.label(), failed.run_id))
    assert picker.dropdown.options == offered, "from the top first, then the failed run"
    assert picker.dropdown.value == "" and "runs from the top" in picker.summary()

    picker.dropdown.value = failed.run_id  # the person's pick
    assert namespace["resume_from"] == failed.run_id
    assert namespace["incident_id"] == failed.incident_id
    assert (namespace["backup_id"], namespace["remedy"]) == (
        failed.parameters["backup_id"],
        failed.parameters["remedy"],
    )
    said = picker.summary()
    assert said.startswith("Resume from record: resumes ") and failed.label() in said
    bundle = picker.bundle()
    assert WIDGET_VIEW in bundle and html.escape(failed.label()) in bundle["text/html"]  # what an archive shows

    # Run All, Approve, Run All ...: the parameters cell runs again each pass; the pick stands.
    stops = []
    for _ in range(MAX_PASSES):
        tag, error, shown = run_all(namespace, failed_b.root)
        stops.append((tag, error))
        assert namespace["resume_from"] == failed.run_id, "a Run All dropped the pick"
        # The first pass offers the failed run; once the validation cell resumed it, it is not offered.
        assert (failed.label() if len(stops) == 1 else "the run in this kernel resumes it") in repr(shown)
        if error != ApprovalRequired.__name__:
            break
        waiting_approve_button().click()
    assert stops[-1] == (None, None), f"the passes stopped at: {stops}"
    run = namespace["run"]
    assert run.resume is not None and run.resume.from_run == failed.run_id and run.incident_id == failed.incident_id
    assert run.resume.replayed, "nothing was replayed from the failed run"
    assert run.reruns == len(stops) - 1, "every pass went on with the same resumed run"
    outcome = run.recorder.values["outcome"]
    assert outcome["success"] is True and outcome["trading_running"] is True
    assert health_check.run("data", failed_b).healthy and process_status(failed_b).running
    # Resumed, the run is not offered any more; a Run All now keeps the kernel's run, asks nothing.
    assert failed_runs(failed_b, "B") == []
    assert run_all(namespace, failed_b.root)[:2] == (None, None)
    assert namespace["run"] is run and "the run in this kernel resumes it" in repr(resume_cell(namespace))


def test_start_from_the_top_puts_the_parameters_back(failed_b: Site) -> None:
    failed = the_failed_run(failed_b)
    namespace = interactive_namespace(failed_b.root)
    before = {name: namespace[name] for name in ("resume_from", "backup_id", "remedy", "incident_id")}
    picker = resume_cell(namespace)
    picker.dropdown.value = failed.run_id
    assert namespace["incident_id"] == failed.incident_id != before["incident_id"]
    picker.dropdown.value = ""  # "(start from the top)"
    assert {name: namespace[name] for name in before} == before
    assert "runs from the top" in picker.summary()
    # ... and a Run All now starts a run from the top (its parameters are the parameters cell's).
    assert resume_cell(interactive_namespace(failed_b.root)).dropdown.value == ""
    (source,) = [s for tag, s in cells("B_data_recovery.ipynb") if tag == "validate"]
    run_cell(source, namespace, "validate")
    assert namespace["run"].resume is None


def test_headless_the_cell_says_what_the_run_does_and_changes_nothing(failed_b: Site) -> None:
    failed = the_failed_run(failed_b)
    for resume_from, expected in (("", "runs from the top"), (failed.run_id, f"resumes failed run {failed.run_id}")):
        namespace = interactive_namespace(failed_b.root)
        namespace.update(interactive=False, resume_from=resume_from)
        before = copy.deepcopy({k: v for k, v in namespace.items() if k != "__builtins__"})
        shown = resume_cell(namespace)
        assert shown.dropdown is None and WIDGET_VIEW not in shown.bundle()
        assert len(repr(shown).splitlines()) == 1 and expected in repr(shown), repr(shown)
        assert {k: v for k, v in namespace.items() if k not in ("__builtins__", "resume_picker")} == before


def test_no_failed_run_says_so(sandbox: Path) -> None:
    shown = resume_cell(interactive_namespace(sandbox))
    assert shown.dropdown is None
    assert repr(shown) == (
        f"Resume from record: no failed run of procedure B on site {load_site(sandbox).name} to resume: "
        "this run starts from the top."
    )


def test_a_site_that_cannot_be_read_is_said_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for site, why in ((tmp_path / "missing", "does not exist"), (tmp_path / "empty", "does not look like a site")):
        namespace = interactive_namespace(site)
        shown = resume_cell(namespace)  # does not raise: the validation cell reports the real error
        assert (
            len(repr(shown).splitlines()) == 1 and "the site cannot be read yet" in repr(shown) and why in repr(shown)
        )
        assert namespace["resume_from"] == ""


def test_any_other_failure_is_not_swallowed(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection at a real boundary: listing the failed runs fails with EACCES (a journal that cannot
    be read); the cell fails with it instead of saying there is nothing to resume."""

    def unreadable(site: Site, procedure: str | None = None) -> list[FailedRun]:
        raise PermissionError(13, "Permission denied", str(site.records_dir))

    monkeypatch.setattr(picker_module, "failed_runs", unreadable)
    with pytest.raises(PermissionError):
        resume_cell(interactive_namespace(sandbox))
