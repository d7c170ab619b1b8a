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

import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from conftest import BrokenSite, LabServer, OfflineContext, Screenshots

pytestmark = pytest.mark.browser

NOTEBOOK = "A_config_recovery.ipynb"
CELL_TIMEOUT_MS = 60_000
KERNEL_TIMEOUT_MS = 60_000
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
APPROVAL_NEEDED = "is not approved yet, nothing was changed"
# What a raw Python repr looks like in an output: ``ProcessAction(action='stop', ...)`` or ``{'ok': True, ...}``.
RAW_REPR = re.compile(r"\b[A-Z][A-Za-z]+\(\w+=|^\{'\w+': ", re.MULTILINE)
# Written by the running trading process (recovery_lib/sandbox/live_ops.py), not by the notebook.
TRADING_PROCESS_WRITES = ("data/trades.csv", "data/positions.csv", "state/session.json", "exchange/", "run/")
# ...and the temp files of its atomic writes (atomic_write_text: ``.<name>.<random>.tmp`` beside the file).
TRADING_PROCESS_TEMP = re.compile(r"^(data|state)/\.(trades\.csv|positions\.csv|session\.json)\.[^/]+\.tmp$")
WIDGET_BROKEN = re.compile(r"Loading widget|Error displaying widget|model not found|Could not create", re.IGNORECASE)

# Collects everything rendered in one output area: its text, its tables, widgets and error outputs.
OUTPUT_JS = """
(cell) => {
  const area = cell.querySelector('.jp-OutputArea');
  if (!area) return {text: '', html: '', tables: [], errors: [], widgets: 0, buttons: []};
  const tables = [...area.querySelectorAll('table')].map(t => ({
    header: [...t.querySelectorAll('thead tr')].map(r => [...r.children].map(c => c.innerText.trim())),
    rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.children].map(c => c.innerText.trim())),
    // pandas' default RangeIndex rendered as a first column of row headers 0, 1, 2, ...
    indexColumn: [...t.querySelectorAll('tbody tr')].length > 0 && [...t.querySelectorAll('tbody tr')].every(
      (r, i) => r.firstElementChild?.tagName === 'TH' && r.firstElementChild.innerText.trim() === String(i)),
  }));
  const errors = [...area.querySelectorAll(
    '[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"]'
  )].map(e => e.innerText);
  return {
    text: area.innerText,
    html: area.innerHTML,
    tables,
    errors,
    widgets: area.querySelectorAll('.jupyter-widgets').length,
    buttons: [...area.querySelectorAll('button.jupyter-button')].map(b => b.innerText.trim()),
  };
}
"""


@dataclass
class CellRun:
    """What one execution of a cell rendered."""

    tag: str
    attempt: int
    execution_count: int
    seconds: float
    text: str
    html: str
    tables: list[dict[str, Any]]
    errors: list[str]
    widgets: int
    buttons: list[str]
    screenshot: Path


@dataclass
class Walkthrough:
    """The whole interactive run of Procedure A: every cell run, every click, what the browser asked for."""

    site: BrokenSite
    runs: list[CellRun] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)  # actions approved by clicking, in order
    config_before_approval: bytes = b""
    blocked_requests: list[str] = field(default_factory=list)
    widget_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def first(self, tag: str) -> CellRun:
        return next(run for run in self.runs if run.tag == tag)

    def last(self, tag: str) -> CellRun:
        return [run for run in self.runs if run.tag == tag][-1]


class NotebookPage:
    """A notebook open in JupyterLab, driven with the mouse and keyboard like a person does."""

    def __init__(self, page: Page, server: LabServer, name: str, shots: Screenshots) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.shots = shots
        notebook = nbformat.read(server.notebook_dir / name, as_version=4)
        self.index = {
            tag: number for number, cell in enumerate(notebook.cells) for tag in cell.metadata.get("tags", [])
        }
        self.cell_count = len(notebook.cells)
        self.executions = 0

    def open(self) -> None:
        """Open the notebook and wait until every cell is rendered and the kernel is idle."""
        self.page.goto(self.server.url(f"lab/tree/{self.name}"))
        self.page.wait_for_function(
            "(n) => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length >= n",
            arg=self.cell_count,
            timeout=KERNEL_TIMEOUT_MS,
        )
        self.wait_idle()

    def wait_idle(self) -> None:
        """The kernel is started and idle (status bar and the notebook's execution indicator)."""
        expect(self.page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible(
            timeout=KERNEL_TIMEOUT_MS
        )
        expect(
            self.page.locator('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]')
        ).to_have_count(1, timeout=KERNEL_TIMEOUT_MS)

    def cell(self, tag: str) -> Locator:
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(self.index[tag])

    def prompt(self, tag: str) -> str:
        return self.cell(tag).locator(".jp-InputArea-prompt").inner_text().strip()

    def run(self, tag: str, attempt: int = 1) -> CellRun:
        """Select the cell, Shift+Enter, wait for its execution count and the kernel to go idle."""
        cell = self.cell(tag)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-prompt").click()
        started = time.monotonic()
        self.page.keyboard.press("Shift+Enter")
        self.executions += 1
        expect(cell.locator(".jp-InputArea-prompt")).to_have_text(f"[{self.executions}]:", timeout=CELL_TIMEOUT_MS)
        self.wait_idle()
        seconds = time.monotonic() - started
        self.wait_for_widgets(cell)
        return self.rendered(tag, attempt, seconds)

    def wait_for_widgets(self, cell: Locator, timeout_s: float = 10.0) -> None:
        """Give widget views time to render (they load after the output arrives)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and "Loading widget" in cell.locator(".jp-OutputArea").inner_text():
            time.sleep(0.1)

    def rendered(self, tag: str, attempt: int, seconds: float) -> CellRun:
        """What the cell's output area shows now, with a screenshot."""
        cell = self.cell(tag)
        data = cell.evaluate(OUTPUT_JS)
        cell.scroll_into_view_if_needed()
        moment = f"{tag.removeprefix('step:')}" + (f"-again-{attempt}" if attempt > 1 else "")
        shot = self.shots.take(self.page, moment)
        prompt = re.search(r"\d+", self.prompt(tag))
        return CellRun(
            tag=tag,
            attempt=attempt,
            execution_count=int(prompt.group()) if prompt else 0,
            seconds=seconds,
            screenshot=shot,
            **data,
        )

    def approve_button_above(self, tag: str) -> tuple[Locator, Locator]:
        """The nearest enabled Approve button in this cell or the cells above it (what a person looks
        for), and the cell it is in."""
        for number in range(self.index[tag], -1, -1):
            cell = self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(number)
            button = cell.locator("button.jupyter-button:not([disabled])", has_text="Approve")
            if button.count():
                return cell, button.last
        raise AssertionError(f"no enabled Approve button in or above the {tag} cell")


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
    notebook = NotebookPage(page, server, NOTEBOOK, shots)
    record = Walkthrough(site=site)
    began = time.monotonic()
    notebook.open()
    shots.take(page, "notebook-open-kernel-idle")
    for tag in STEPS:
        attempt = 1
        run = notebook.run(tag, attempt)
        record.runs.append(run)
        while any(APPROVAL_NEEDED in error for error in run.errors) and attempt < 3:
            if tag == "step:restore" and not record.config_before_approval:
                record.config_before_approval = site.config.read_bytes()
            action = re.search(r"(\w+) " + APPROVAL_NEEDED, "\n".join(run.errors))
            owner, button = notebook.approve_button_above(tag)
            button.scroll_into_view_if_needed()
            shots.take(page, f"{tag.removeprefix('step:')}-approve-button")
            button.click()
            expect(owner.locator(".jp-OutputArea")).to_contain_text("APPROVED by", timeout=10_000)
            record.approved.append(action.group(1) if action else tag)
            shots.take(page, f"{tag.removeprefix('step:')}-approved")
            attempt += 1
            run = notebook.run(tag, attempt)
            record.runs.append(run)
    for run in record.runs:
        if WIDGET_BROKEN.search(run.text):
            record.widget_problems.append(f"{run.tag}: {WIDGET_BROKEN.search(run.text).group()}")
    record.blocked_requests = list(offline.blocked)
    record.seconds = time.monotonic() - began
    write_transcript(shots.directory / "rendered-outputs.txt", record.runs)
    yield record


def write_transcript(path: Path, runs: list[CellRun]) -> None:
    """What every cell run rendered, as text, next to the screenshots (for reviewing without a browser)."""
    lines = []
    for run in runs:
        lines.append(f"=== {run.tag} (attempt {run.attempt}, [{run.execution_count}], {run.seconds:.2f} s)")
        lines.append(f"    screenshot: {run.screenshot.name}")
        lines.extend("    " + line for line in run.text.splitlines())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    assert len(first.errors) == 1, first.errors
    message = first.errors[0].strip()
    assert "restore is not approved yet, nothing was changed" in message
    assert "click 'Approve'" in message and "run this cell again" in message
    assert "Traceback" not in first.text and "---------" not in first.text
    assert len(message.splitlines()) == 1 and len(message) < 300, f"not a one-line message:\n{message}"
    # The gate failed closed: the config was still the corrupted one.
    assert walkthrough.config_before_approval != walkthrough.site.good_config


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


def site_snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under the site (symlinks not followed): kind, mode and bytes, without what the
    running trading process itself writes (trades, positions, session state, exchange, run/)."""
    found: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            key = path.relative_to(root).as_posix()
            if key.startswith(TRADING_PROCESS_WRITES) or key in ("exchange", "run") or TRADING_PROCESS_TEMP.match(key):
                continue
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("dir", mode)
            else:
                found[key] = ("file", mode, path.read_bytes())
    return found


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
    before = site_snapshot(site.root)
    notebook.open()
    screenshots.take(page, "notebook-open")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    stop_cell = notebook.cell("step:stop_system")
    expect(stop_cell.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=CELL_TIMEOUT_MS)
    notebook.wait_idle()
    notebook.wait_for_widgets(stop_cell)
    time.sleep(1.0)  # anything still queued would have started by now
    notebook.wait_idle()
    stopped_at = notebook.rendered("step:stop_system", 1, 0.0)
    later = {tag: notebook.prompt(tag) for tag in STEPS[STEPS.index("step:stop_system") + 1 :]}
    page.evaluate("window.scrollTo(0, 0)")
    screenshots.take(page, "after-run-all", full_page=False)

    assert any(APPROVAL_NEEDED in error for error in stopped_at.errors), stopped_at.text
    assert "stop_system is not approved yet" in stopped_at.text and "click 'Approve'" in stopped_at.text
    assert stopped_at.buttons == ["Approve", "Abort"], "the stop step's Approve button did not render"
    assert "Traceback" not in stopped_at.text
    assert all(not re.search(r"\d", prompt) for prompt in later.values()), f"cells ran after the gate: {later}"
    assert site_snapshot(site.root) == before, "Run All without approval changed the site"
    assert site.config.read_bytes() != site.good_config, "the corrupted config was replaced without approval"
    assert site.trading_pid() == pid, "the trading process was stopped without approval"
    assert offline_context.blocked == []
