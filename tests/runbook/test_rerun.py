"""Run All, Approve, Run All (issue 12, finding 3): the notebook's own cells, executed in order in one
namespace as a kernel would, pass after pass; between passes the Approve button that is waiting is
clicked (a real ipywidgets click). Nothing is asked twice, nothing is done twice, and the procedure
ends recovered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets
import nbformat
import pytest
from ipywidgets.widgets.widget import _instances  # every live widget (Widget.widgets is deprecated)

from recovery_lib.checks.default import health_check
from recovery_lib.drills.injectors import inject
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.runbook.approval import ApprovalRequired
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MAX_PASSES = 8


def cells(name: str) -> list[tuple[str, str]]:
    """(tag, source) of every code cell of a committed notebook."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [((c.metadata.get("tags") or [""])[0], c.source) for c in notebook.cells if c.cell_type == "code"]


def waiting_approve_button() -> Any:
    """The newest enabled Approve button (what a person clicks under the request that is waiting)."""
    buttons = [
        w for w in list(_instances.values())
        if isinstance(w, ipywidgets.Button) and w.description == "Approve" and not w.disabled
    ]  # fmt: skip
    assert buttons, "a cell waits for approval but no Approve button is enabled"
    return buttons[-1]


def run_all(namespace: dict[str, Any], code: list[tuple[str, str]], site: Path) -> tuple[str | None, str | None]:
    """One "Run All": every cell in order until one raises; (tag of that cell, its error type) or (None, None)."""
    for tag, source in code:
        if tag == "parameters":
            source += f"\nsite = {str(site)!r}\noperator = 'alice'"  # what the person typed once
        try:
            exec(compile(source, tag, "exec", dont_inherit=True), namespace)  # no __future__ of ours
        except Exception as exc:  # noqa: BLE001 - the test reports which cell stopped the pass, and why
            return tag, type(exc).__name__
    return None, None


@pytest.fixture
def data_loss(sandbox: Path) -> Any:
    site = load_site(sandbox)
    assert start_system(site, timeout_s=15).ok
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    inject(site, "data", variant="files_deleted", seed=4)
    yield site
    stop_system(site, timeout_s=15)


def test_run_all_approve_run_all_finishes_with_one_of_everything(data_loss: Any) -> None:
    namespace: dict[str, Any] = {}
    code = cells("B_data_recovery.ipynb")
    stops: list[tuple[str | None, str | None]] = []
    clicks = 0
    for _ in range(MAX_PASSES):
        stopped = run_all(namespace, code, data_loss.root)
        stops.append(stopped)
        if stopped == (None, None) or stopped[1] != ApprovalRequired.__name__:
            break
        waiting_approve_button().click()
        clicks += 1
    assert stops[-1] == (None, None), f"the passes stopped at: {stops}"
    # Each gate stopped exactly one pass: stop, pre-recovery backup, the remedy, the restart.
    assert [tag for tag, _ in stops[:-1]] == [
        "step:stop_system",
        "step:pre_recovery_backup",
        "step:restore",
        "step:restart",
    ]
    assert clicks == 4
    run = namespace["run"]
    assert run.reruns == len(stops) - 1, "the validation cell kept the same run on every pass"
    outcome = run.recorder.values["outcome"]
    assert outcome["success"] is True and outcome["trading_running"] is True
    pre = [m.backup_id for m in RecoveryManager(site=data_loss).list_backups() if PRE_RECOVERY_TAG in m.tags]
    assert len(pre) == 1, f"one pre-recovery backup for the incident, got {pre}"
    if "restore_result" in run.recorder.values:  # the restore took no pre-recovery backup of its own
        assert run.recorder.values["restore_result"]["pre_recovery_backup_id"] == pre[0]
    assert health_check.run("data", data_loss).healthy and process_status(data_loss).running
    approvals = [d["action"] for d in outcome["approvals"]]
    assert sorted(approvals) == sorted(set(approvals)), f"an approval was asked twice: {approvals}"
    # One more Run All after the recovery: nothing is asked, nothing stopped, nothing done twice.
    pid = process_status(data_loss).pid
    assert run_all(namespace, code, data_loss.root) == (None, None)
    assert process_status(data_loss).pid == pid, "a rerun stopped (and restarted) the recovered trading system"
    assert "Already done" in repr(namespace["result"])


def waiting_button(label: str) -> Any:
    """The newest enabled button with this label."""
    buttons = [w for w in list(_instances.values()) if isinstance(w, ipywidgets.Button) and w.description == label]
    enabled = [b for b in buttons if not b.disabled]
    assert enabled, f"no enabled {label} button"
    return enabled[-1]


def data_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "data").rglob("*") if p.is_file()}


def test_abort_at_the_remedy_halts_cleanly_and_every_later_cell_says_why(data_loss: Any) -> None:
    """Cell by cell as a person runs them; Approve until the remedy, Abort there, then every cell below."""
    namespace: dict[str, Any] = {}
    errors: dict[str, str] = {}
    data_at_abort: dict[str, bytes] = {}
    for tag, source in cells("B_data_recovery.ipynb"):
        if tag == "parameters":
            source += f"\nsite = {str(data_loss.root)!r}\noperator = 'alice'"
        for _ in range(2):
            try:
                exec(compile(source, tag, "exec", dont_inherit=True), namespace)
                break
            except ApprovalRequired:
                if tag == "step:restore":  # trading is stopped by now: nothing else writes the data
                    data_at_abort.update(data_files(data_loss.root))
                waiting_button("Abort" if tag == "step:restore" else "Approve").click()
            except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
                errors[tag] = f"{type(exc).__name__}: {exc}"
                break
    assert list(errors) == ["step:outcome"], errors  # only the verdict fails, on purpose: no NameError
    assert errors["step:outcome"].startswith("ProcedureFailed: Procedure B did NOT recover")
    run = namespace["run"]
    assert run.aborted is not None and run.aborted["by"] == "alice"
    offered = run.recorder.values["remedy_plan"]["options"]
    viable = [o["action"] for o in offered if o["viable"]]
    assert run.aborted["action"] == " or ".join(viable)  # the whole choice was aborted, not one option
    for variable in ("result",):
        assert "Skipped because the procedure was aborted" in repr(namespace[variable])
    restart = namespace["restart_action"]
    assert "It stays STOPPED" in restart.summary() and not process_status(data_loss).running
    assert "start it with" in restart.summary() or "Do not start it by hand" in restart.summary()
    criteria = run.recorder.values["success_criteria"]
    assert criteria["all_passed"] is False
    escalation = run.recorder.values["escalation"]
    assert escalation["level"] >= 2 and any("aborted" in reason for reason in escalation["reasons"])
    assert run.recorder.values["outcome"]["halted"].startswith("aborted by alice")
    # The abort changed nothing: the data is as it was when Abort was clicked.
    assert data_at_abort and data_files(data_loss.root) == data_at_abort
    names = {e["name"] for e in run.journal.entries() if e["kind"] == "record"}
    assert {"aborted", "halted", "success_criteria", "escalation", "outcome"} <= names
