"""Procedure A (config recovery) walked through in JupyterLab in Chromium, as the on-call engineer would.

The site: a sandbox with its trading process running, one good backup, then the config corrupted.
JupyterLab runs with ``RECOVERY_SITE`` pointing at it. The walk-through (one module-scoped fixture)
opens ``A_config_recovery.ipynb``, runs the cells one by one (select, Shift+Enter, wait for the
execution count), and whenever a cell stops with the approval gate's message it clicks the Approve
button above it and runs the cell again, as a person would. Every rendered output is kept (text,
tables, screenshots) and the tests below assert on what was rendered and on the site on disk.

A second test does "Run All Cells" with no clicks on a fresh site and server, and checks nothing
in the site changed and the notebook says what to approve.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab import (
    APPROVAL_STOPPED,
    APPROVAL_WAITING,
    RAW_REPR,
    WIDGET_BROKEN,
    CellRun,
    NotebookPage,
    Transcript,
    journal,
    site_snapshot,
)

if TYPE_CHECKING:
    from browser_sites import BrokenSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser

NOTEBOOK = "A_config_recovery.ipynb"
# The order an engineer runs Procedure A's code cells in (their tags in the notebook).
STEPS = (
    "parameters",
    "validate",
    "step:stop_system",
    "step:backups",
    "step:select_backup",
    "step:dry_run",
    "step:restore",
    "step:verify_config",
    "step:health",
    "step:restart",
    "step:success_criteria",
    "step:escalation",
)


@dataclass
class Walkthrough:
    """The whole interactive run of Procedure A: every cell run, every click, what the browser asked for."""

    site: BrokenSite
    transcript: Transcript = field(default_factory=Transcript)
    config_before_approval: bytes = b""
    blocked_requests: list[str] = field(default_factory=list)
    widget_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def runs(self) -> list[CellRun]:
        return self.transcript.runs

    @property
    def approved(self) -> list[str]:
        """The actions approved by clicking, in order."""
        return self.transcript.approved()

    def first(self, tag: str) -> CellRun:
        return next(run for run in self.runs if run.tag == tag)

    def last(self, tag: str) -> CellRun:
        return [run for run in self.runs if run.tag == tag][-1]


@pytest.fixture(scope="module")
def walkthrough(
    broken_sites: Callable[[str], BrokenSite],
    lab_servers: Callable[[Path], LabServer],
    offline_contexts: Callable[[], OfflineContext],
    screenshot_dirs: Callable[[str], Screenshots],
) -> Iterator[Walkthrough]:
    """Procedure A run cell by cell in JupyterLab; an approval request is answered by clicking Approve."""
    site = broken_sites("walkthrough")
    assert site.trading_pid() is not None, "the trading process should be running when the engineer arrives"
    server = lab_servers(site.root)
    offline = offline_contexts()
    page = offline.new_page()
    shots = screenshot_dirs("test_procedure_a_walkthrough")
    record = Walkthrough(site=site)
    notebook = NotebookPage(page, server, NOTEBOOK, shots, transcript=record.transcript)
    began = time.monotonic()
    notebook.open()
    shots.take(page, "notebook-open-kernel-idle")
    for tag in STEPS:
        if tag == "step:restore":
            record.config_before_approval = site.config.read_bytes()
        notebook.run_approving(tag)
    for run in record.runs:
        if WIDGET_BROKEN.search(run.text):
            record.widget_problems.append(f"{run.tag}: {WIDGET_BROKEN.search(run.text).group()}")
    record.blocked_requests = list(offline.blocked)
    record.seconds = time.monotonic() - began
    record.transcript.write(shots.directory / "rendered-outputs.txt")
    yield record


# --- what the engineer sees -------------------------------------------------------------------


def test_backup_overview_lists_backups_with_age_and_verification(walkthrough: Walkthrough) -> None:
    run = walkthrough.first("step:backups")
    assert not run.errors, run.errors
    assert run.tables, f"no table rendered for the backup overview: {run.text[:500]}"
    table = run.tables[-1]
    header = [name for row in table["header"] for name in row]
    for column in ("backup", "age", "status", "verification"):
        assert column in header, f"column {column!r} missing from the backup overview: {header}"
    assert "" not in header[:1], f"an index column is shown: {header}"
    rows = [dict(zip(header[-len(row) :], row, strict=True)) for row in table["rows"]]
    good = [row for row in rows if row["backup"] == walkthrough.site.backup_id]
    assert good, f"backup {walkthrough.site.backup_id} not listed: {rows}"
    assert good[0]["status"] == "success"
    assert good[0]["verification"].startswith("✅ verifies"), good[0]["verification"]
    assert re.fullmatch(r"\d+ min", good[0]["age"]), good[0]["age"]  # taken minutes ago, said in words


def test_restore_before_approval_says_what_to_click(walkthrough: Walkthrough) -> None:
    first = walkthrough.first("step:restore")
    assert first.attempt == 1
    # What to click is said once, in a live display above the error...
    waiting = [line for line in first.text.splitlines() if line.startswith(APPROVAL_WAITING)]
    assert len(waiting) == 1, first.text
    message = waiting[0]
    assert "restore is not approved yet, nothing was changed" in message
    assert "click 'Approve'" in message and "run this cell again" in message
    assert len(message) < 300, f"not a one-line message:\n{message}"
    # ...and the error itself is one line, not a traceback.
    assert [error.strip() for error in first.errors] == [APPROVAL_STOPPED], first.errors
    assert "Traceback" not in first.text and "---------" not in first.text
    # The gate failed closed: the config was still the corrupted one.
    assert walkthrough.config_before_approval != walkthrough.site.good_config


def test_the_waiting_message_turns_green_when_approve_is_clicked(walkthrough: Walkthrough) -> None:
    """After the click, no stale "not approved yet" is left under the cell: it says approved, run it again."""
    clicks = {click.action: click for click in walkthrough.transcript.clicks}
    assert set(clicks) == {"stop_system", "restore", "start_system"}, clicks
    for action, click in clicks.items():
        assert f"✅ Approval for {action}: APPROVED by " in click.waiting_text, click.waiting_text
        assert "Run this cell again to go on." in click.waiting_text
        assert APPROVAL_WAITING not in click.waiting_text, click.waiting_text
    assert "Now run the cell 5. Perform actual restore" in clicks["restore"].widget_text, clicks["restore"].widget_text


def test_the_plan_and_its_approve_button_render(walkthrough: Walkthrough) -> None:
    dry_run = walkthrough.first("step:dry_run")
    assert not dry_run.errors, dry_run.errors
    assert "Restore plan: backup " + walkthrough.site.backup_id in dry_run.text
    assert "replace" in dry_run.text and "config/config.toml" in dry_run.text
    assert dry_run.widgets > 0 and dry_run.buttons == ["Approve", "Abort"], (dry_run.widgets, dry_run.buttons)
    assert "Waiting for approval" in dry_run.text
    assert not walkthrough.widget_problems, walkthrough.widget_problems
    picker = walkthrough.first("step:select_backup")
    assert "Selected backup " + walkthrough.site.backup_id in picker.text
    assert picker.widgets > 0, "the backup picker (a Dropdown widget) did not render"


def test_approve_then_rerun_restores_the_config(walkthrough: Walkthrough) -> None:
    site = walkthrough.site
    assert "restore" in walkthrough.approved
    final = walkthrough.last("step:restore")
    assert final.attempt == 2 and not final.errors, final.errors
    assert f"Restored config from {site.backup_id}" in final.text, final.text
    assert site.config.read_bytes() == site.backup_copy("config/config.toml") == site.good_config
    assert walkthrough.last("step:verify_config").errors == []


def test_stop_and_restart_each_needed_a_click(walkthrough: Walkthrough) -> None:
    """The trading process ran, so the gate asked before stopping it and before starting it again."""
    assert walkthrough.approved == ["stop_system", "restore", "start_system"]
    assert "system stopped" in walkthrough.last("step:stop_system").text
    assert "system running" in walkthrough.last("step:restart").text
    assert walkthrough.site.trading_pid() is not None, "the trading system should run again after the procedure"


def test_success_criteria_all_green(walkthrough: Walkthrough) -> None:
    run = walkthrough.last("step:success_criteria")
    assert not run.errors, run.errors
    assert run.tables, run.text
    rows = run.tables[-1]["rows"]
    marks = [cell for row in rows for cell in row if re.fullmatch(r"✅ pass|❌ FAIL|⚪ not checked", cell)]
    assert len(marks) == 4, rows
    assert all(mark.startswith("✅") for mark in marks), rows
    assert "❌" not in run.text and "FAIL" not in run.text
    assert not walkthrough.last("step:escalation").errors


def test_no_cell_ended_in_a_traceback(walkthrough: Walkthrough) -> None:
    tracebacks = [run.tag for run in walkthrough.runs if "Traceback" in run.text or "most recent call last" in run.text]
    assert not tracebacks, tracebacks


def test_jupyterlab_needed_no_network(walkthrough: Walkthrough) -> None:
    assert walkthrough.blocked_requests == []


def test_outputs_show_no_raw_python_reprs(walkthrough: Walkthrough) -> None:
    raw = {
        f"{run.tag}#{run.attempt}": RAW_REPR.search(run.text).group()
        for run in walkthrough.runs
        if RAW_REPR.search(run.text)
    }
    assert not raw, f"raw reprs a person has to decode: {raw}"


def test_tables_have_no_index_column(walkthrough: Walkthrough) -> None:
    indexed = sorted({run.tag for run in walkthrough.runs for table in run.tables if table["indexColumn"]})
    assert not indexed, f"tables with a 0, 1, 2... index column: {indexed}"


# --- Run All with nobody clicking ----------------------------------------------------------------


def test_run_all_without_clicks_changes_nothing(
    broken_sites: Callable[[str], BrokenSite],
    lab_servers: Callable[[Path], LabServer],
    offline_context: OfflineContext,
    screenshots: Screenshots,
) -> None:
    site = broken_sites("run-all")
    pid = site.trading_pid()
    assert pid is not None
    server = lab_servers(site.root)
    page = offline_context.new_page()
    notebook = NotebookPage(page, server, NOTEBOOK, screenshots)
    # The incident journal (incidents/) is written as the notebook runs, by design; nothing else may change.
    before = site_snapshot(site.root, skip=("incidents",))
    notebook.open()
    screenshots.take(page, "notebook-open")
    ran = notebook.run_all()
    stopped_at = ran[-1]
    later = {tag: notebook.prompt(tag) for tag in STEPS[STEPS.index("step:stop_system") + 1 :]}
    page.evaluate("window.scrollTo(0, 0)")
    screenshots.take(page, "after-run-all", full_page=False)

    assert stopped_at.tag == "step:stop_system", [run.tag for run in ran]
    assert stopped_at.waits_for_approval, stopped_at.text
    assert [error.strip() for error in stopped_at.errors] == [APPROVAL_STOPPED], stopped_at.errors
    assert "stop_system is not approved yet" in stopped_at.text and "click 'Approve'" in stopped_at.text
    assert stopped_at.buttons == ["Approve", "Abort"], "the stop step's Approve button did not render"
    assert "Traceback" not in stopped_at.text
    assert all(not re.search(r"\d", prompt) for prompt in later.values()), f"cells ran after the gate: {later}"
    assert site_snapshot(site.root, skip=("incidents",)) == before, "Run All without approval changed the site"
    (entries,) = journal(site.root).values()
    assert not [e for e in entries if e["kind"] == "decision"], "a decision was journaled without a click"
    assert {e["name"] for e in entries if e["kind"] == "record"} <= {"run"}, entries
    assert site.config.read_bytes() != site.good_config, "the corrupted config was replaced without approval"
    assert site.trading_pid() == pid, "the trading process was stopped without approval"
    assert offline_context.blocked == []
