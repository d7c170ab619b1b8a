"""Driving a notebook in JupyterLab like a person does, and reading what it rendered.

:class:`NotebookPage` opens a notebook in a running JupyterLab (first by URL, later ones from the file
browser, as a person opens the next notebook of an incident), runs cells with Shift+Enter or
Run > Run All Cells, clicks Approve / Abort, reloads the page without saving, restarts the kernel
from the Kernel menu, and collects what each cell rendered (:class:`CellRun`: text, tables, error
outputs, widgets, buttons) with a numbered screenshot. Every wait is on a DOM condition or on the
kernel's execution count, never on a fixed sleep.

:func:`journal` reads the incident journals of a site (``<site>/incidents/<incident id>.jsonl``);
:func:`site_snapshot` is every file of a site but what the running trading process itself writes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from playwright.sync_api import Dialog, Locator, Page, expect
from snapshots import tree

if TYPE_CHECKING:
    from conftest import Screenshots
    from lab_server import LabServer

CELL_TIMEOUT_MS = 60_000
KERNEL_TIMEOUT_MS = 60_000
WIDGET_TIMEOUT_MS = 15_000
# What a cell shows while it waits for approval (recovery_lib/runbook/approval.py): a live display saying what
# to click, and under it a one-line error (ApprovalRequired) instead of a traceback.
APPROVAL_WAITING = "⛔ Not approved yet."
APPROVAL_NEEDED = "is not approved yet, nothing was changed"
APPROVAL_STOPPED = "⏸ Stopped here until approved; nothing was changed (see above)."
TRACEBACK = re.compile(r"Traceback|most recent call last|-{20,}")
# What a raw Python repr looks like in an output: ``ProcessAction(action='stop', ...)``, ``{'ok': True, ...}``
# or ``<built-in method title of str object at 0x7f...>``.
RAW_REPR = re.compile(r"\b[A-Z][A-Za-z]+\(\w+=|^\{'\w+': |<[\w.-]+ [^<>]*\bat 0x[0-9a-f]+>", re.MULTILINE)
WIDGET_BROKEN = re.compile(r"Loading widget|Error displaying widget|model not found|Could not create", re.IGNORECASE)
# Written by the running trading process (recovery_lib/sandbox/live_ops.py), not by the notebook.
TRADING_PROCESS_WRITES = ("data/trades.csv", "data/positions.csv", "state/session.json", "exchange/", "run/")
# ...and the temp files of its atomic writes (atomic_write_text: ``.<name>.<random>.tmp`` beside the file).
TRADING_PROCESS_TEMP = re.compile(r"^(data|state)/\.(trades\.csv|positions\.csv|session\.json)\.[^/]+\.tmp$")

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
# True once no widget view in the cell is still loading.
WIDGETS_LOADED_JS = "(cell) => !/Loading widget/i.test(cell.querySelector('.jp-OutputArea')?.innerText || '')"
# The notebook is done with a Run All: nothing queued or running.
NOTHING_QUEUED_JS = """
(panel) => [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].every(p => !p.innerText.includes('*'))
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
    notebook: str = ""

    @property
    def waits_for_approval(self) -> bool:
        """The cell stopped at the approval gate: the live "not approved yet" message and the one-line error
        (or, as the gate said it before, the whole message as the error: a person clicks Approve either way)."""
        shown = APPROVAL_WAITING in self.text and any(APPROVAL_STOPPED in error for error in self.errors)
        return shown or any(APPROVAL_NEEDED in error for error in self.errors)

    @property
    def traceback(self) -> bool:
        return bool(TRACEBACK.search(self.text))

    def table(self, index: int = -1) -> list[dict[str, str]]:
        """A rendered table as rows of ``{column: cell}``."""
        table = self.tables[index]
        header = [name for row in table["header"] for name in row]
        return [dict(zip(header[-len(row) :], row, strict=True)) for row in table["rows"]]

    def pairs(self, index: int = -1) -> dict[str, str]:
        """A two-column table (``""``, ``value``) as a dict (P's summary)."""
        return {row[0]: row[-1] for row in self.tables[index]["rows"] if row}


@dataclass
class Click:
    """One click on Approve or Abort: where, for what, and what the widget and the waiting cell said after."""

    notebook: str
    tag: str  # the cell that was run (the button may be in a cell above it)
    label: str  # "Approve" | "Abort"
    action: str  # what the gate asked for ("stop_system", "restore"...), from the waiting message
    widget_text: str  # the output of the cell with the button, after the click
    waiting_text: str = ""  # the output of the cell that waited, after the click (its message turns green)


@dataclass
class Transcript:
    """Every cell run of one or more notebooks, in order, and every click."""

    runs: list[CellRun] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)

    def approved(self, notebook: str | None = None) -> list[str]:
        """The actions approved by clicking, in order."""
        return [c.action for c in self.clicks if c.label == "Approve" and notebook in (None, c.notebook)]

    def text(self) -> str:
        """Everything every cell rendered."""
        return "\n".join(run.text for run in self.runs)

    def of(self, notebook: str, tag: str) -> list[CellRun]:
        return [run for run in self.runs if run.notebook == notebook and run.tag == tag]

    def first(self, notebook: str, tag: str) -> CellRun:
        found = self.of(notebook, tag)
        assert found, f"{notebook}: the cell {tag} never ran"
        return found[0]

    def last(self, notebook: str, tag: str) -> CellRun:
        found = self.of(notebook, tag)
        assert found, f"{notebook}: the cell {tag} never ran"
        return found[-1]

    def write(self, path: Path) -> None:
        """What every cell run rendered, as text, next to the screenshots (for reviewing without a browser)."""
        lines = []
        for run in self.runs:
            lines.append(
                f"=== {run.notebook} {run.tag} (attempt {run.attempt}, [{run.execution_count}], {run.seconds:.2f} s)"
            )
            lines.append(f"    screenshot: {run.screenshot.name}")
            lines.extend("    " + line for line in run.text.splitlines())
        for click in self.clicks:
            lines.append(f"--- clicked {click.label} ({click.action}) for {click.notebook} {click.tag}")
            lines.extend("    " + line for line in click.widget_text.splitlines())
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_transcript(path: Path, runs: list[CellRun]) -> None:
    """:meth:`Transcript.write` for a plain list of runs."""
    Transcript(runs=list(runs)).write(path)


class NotebookPage:
    """A notebook open in JupyterLab, driven with the mouse and keyboard like a person does.

    ``executions`` follows the kernel's execution counter: a cell run is finished when its prompt
    shows the next count (and the kernel is idle), which is exact even when an earlier run left the
    same number in the prompt (after a kernel restart).
    """

    def __init__(
        self,
        page: Page,
        server: LabServer,
        name: str,
        shots: Screenshots,
        label: str = "",
        transcript: Transcript | None = None,
    ) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.shots = shots
        self.label = label  # prefix of screenshot names: "B-stop-system"
        self.transcript = transcript if transcript is not None else Transcript()
        notebook = nbformat.read(server.notebook_dir / name, as_version=4)
        self.index = {
            tag: number for number, cell in enumerate(notebook.cells) for tag in cell.metadata.get("tags", [])
        }
        self.code_tags = [
            next(iter(cell.metadata.get("tags", [])), f"cell-{number}")
            for number, cell in enumerate(notebook.cells)
            if cell.cell_type == "code"
        ]
        self.code_index = [number for number, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
        self.cell_count = len(notebook.cells)
        self.executions = 0
        self.attempts: dict[str, int] = {}
        self.panel_id = ""

    # --- the notebook's place in the page ---------------------------------------------------------

    @property
    def panel(self) -> Locator:
        return self.page.locator(f"#{self.panel_id}") if self.panel_id else self.page.locator(".jp-NotebookPanel")

    @property
    def tab(self) -> Locator:
        # The tab's tooltip starts "Name: <file>\nPath: ..."; ``\\a `` is a newline in a CSS string.
        return self.page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab[title^="Name: {self.name}\\a "]')

    def open(self) -> None:
        """Open the notebook (by URL in a fresh page, else from the file browser, as a person opens the
        next notebook), wait until every cell is rendered and the kernel is idle."""
        if "/lab" not in self.page.url:
            self.page.goto(self.server.url(f"lab/tree/{self.name}"))
        else:
            self.open_from_file_browser()
        expect(self.tab).to_have_count(1, timeout=KERNEL_TIMEOUT_MS)
        self.panel_id = self.tab.get_attribute("data-id") or ""
        assert self.panel_id, f"no tab for {self.name}"
        self.wait_rendered()

    def open_from_file_browser(self) -> None:
        """Double-click the notebook in JupyterLab's file browser."""
        browser = self.page.locator("#filebrowser")
        if not browser.is_visible():
            self.page.locator('.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]').click()
        item = browser.locator(".jp-DirListing-item", has_text=re.compile(rf"^{re.escape(self.name)}"))
        expect(item).to_have_count(1)
        item.dblclick()

    def wait_rendered(self) -> None:
        self.page.wait_for_function(
            "([id, n]) => document.querySelectorAll(`#${id} .jp-Notebook .jp-Cell`).length >= n",
            arg=[self.panel_id, self.cell_count],
            timeout=KERNEL_TIMEOUT_MS,
        )
        self.wait_idle()

    def activate(self) -> None:
        """Make this notebook the current tab (menu commands act on the current notebook)."""
        if "jp-mod-current" not in (self.tab.get_attribute("class") or ""):
            self.tab.click()
        expect(self.tab).to_have_class(re.compile(r"\bjp-mod-current\b"))

    def wait_idle(self) -> None:
        """The kernel is started and idle (status bar and the notebook's execution indicator)."""
        expect(self.page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible(
            timeout=KERNEL_TIMEOUT_MS
        )
        expect(self.panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_have_count(
            1, timeout=KERNEL_TIMEOUT_MS
        )

    def cell(self, tag: str) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(self.index[tag])

    def cell_at(self, number: int) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(number)

    def prompt(self, tag: str) -> str:
        return self.cell(tag).locator(".jp-InputArea-prompt").inner_text().strip()

    # --- running cells ------------------------------------------------------------------------------

    def run(self, tag: str) -> CellRun:
        """Select the cell, Shift+Enter, wait for its execution count and the kernel to go idle."""
        self.activate()
        cell = self.cell(tag)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-prompt").click()
        started = time.monotonic()
        self.page.keyboard.press("Shift+Enter")
        self.executions += 1
        expect(cell.locator(".jp-InputArea-prompt")).to_have_text(f"[{self.executions}]:", timeout=CELL_TIMEOUT_MS)
        self.wait_idle()
        seconds = time.monotonic() - started
        return self.rendered(tag, seconds)

    def run_all(self) -> list[CellRun]:
        """Run > Run All Cells, then wait until nothing is queued and the kernel is idle. Returns what
        every cell that ran in this pass rendered (Run All stops at the first cell that fails)."""
        self.activate()
        first = self.cell_at(self.code_index[0]).locator(".jp-InputArea-prompt")
        started = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        expect(first).to_have_text(f"[{self.executions + 1}]:", timeout=CELL_TIMEOUT_MS)
        self.page.wait_for_function(NOTHING_QUEUED_JS, arg=self.panel.element_handle(), timeout=CELL_TIMEOUT_MS * 5)
        self.wait_idle()
        seconds = time.monotonic() - started
        ran = []
        for number, tag in zip(self.code_index, self.code_tags, strict=True):
            prompt = self.cell_at(number).locator(".jp-InputArea-prompt").inner_text().strip()
            if prompt != f"[{self.executions + 1}]:":
                break
            self.executions += 1
            ran.append(tag)
        return [self.rendered(tag, seconds if n == 0 else 0.0) for n, tag in enumerate(ran)]

    def rendered(self, tag: str, seconds: float = 0.0, shot: bool = True) -> CellRun:
        """What the cell's output area shows now, with a screenshot."""
        cell = self.cell(tag)
        self.page.wait_for_function(WIDGETS_LOADED_JS, arg=cell.element_handle(), timeout=WIDGET_TIMEOUT_MS)
        data = cell.evaluate(OUTPUT_JS)
        attempt = self.attempts[tag] = self.attempts.get(tag, 0) + 1
        moment = f"{self.label}-" if self.label else ""
        moment += tag.removeprefix("step:") + (f"-again-{attempt}" if attempt > 1 else "")
        cell.scroll_into_view_if_needed()
        path = self.shots.take(self.page, moment) if shot else Path()
        prompt = re.search(r"\d+", self.prompt(tag))
        run = CellRun(
            tag=tag,
            attempt=attempt,
            execution_count=int(prompt.group()) if prompt else 0,
            seconds=seconds,
            screenshot=path,
            notebook=self.label or self.name,
            **data,
        )
        self.transcript.runs.append(run)
        return run

    def output_text(self, tag: str) -> str:
        return self.cell(tag).locator(".jp-OutputArea").inner_text()

    # --- buttons --------------------------------------------------------------------------------------

    def button_above(self, tag: str, label: str) -> tuple[Locator, Locator]:
        """The nearest enabled ``label`` button in this cell or the cells above it (what a person looks
        for), and the cell it is in."""
        for number in range(self.index[tag], -1, -1):
            cell = self.cell_at(number)
            button = cell.locator("button.jupyter-button:not([disabled])", has_text=label)
            if button.count():
                return cell, button.last
        raise AssertionError(f"{self.name}: no enabled {label} button in or above the {tag} cell")

    def approve_button_above(self, tag: str) -> tuple[Locator, Locator]:
        return self.button_above(tag, "Approve")

    def click_button(self, tag: str, label: str) -> Click:
        """Click Approve or Abort (in ``tag``'s cell or the nearest above it) and wait until the widget
        says the decision."""
        waiting = self.output_text(tag)
        asked = re.search(r"(\w+) " + APPROVAL_NEEDED, waiting) or re.search(r"approval of (\w+)", waiting, re.I)
        owner, button = self.button_above(tag, label)
        if asked is None:
            asked = re.search(r"approval of (\w+)", owner.locator(".jp-OutputArea").inner_text(), re.I)
        button.scroll_into_view_if_needed()
        moment = f"{self.label}-" if self.label else ""
        self.shots.take(self.page, f"{moment}{tag.removeprefix('step:')}-{label.lower()}-button")
        button.click()
        word = "APPROVED" if label == "Approve" else "ABORTED"
        decided = re.compile(rf"{word}( \w+)? by ")  # "APPROVED by root", "APPROVED restore by root"
        expect(owner.locator(".jp-OutputArea")).to_contain_text(decided, timeout=WIDGET_TIMEOUT_MS)
        self.shots.take(self.page, f"{moment}{tag.removeprefix('step:')}-{word.lower()}")
        click = Click(
            notebook=self.label or self.name,
            tag=tag,
            label=label,
            action=asked.group(1) if asked else "",
            widget_text=owner.locator(".jp-OutputArea").inner_text(),
        )
        if APPROVAL_WAITING in waiting:  # the cell's "not approved yet" turns into the decision
            after = "Run this cell again to go on." if label == "Approve" else "the procedure stops here"
            output = self.cell(tag).locator(".jp-OutputArea")
            expect(output).to_contain_text(after, timeout=WIDGET_TIMEOUT_MS)
            click.waiting_text = output.inner_text()
        self.transcript.clicks.append(click)
        return click

    def run_approving(self, tag: str, approve: bool = True, most: int = 3) -> list[CellRun]:
        """Run the cell; while it waits for approval, click Approve above it (and check that its "not
        approved yet" message turned into "approved: run this cell again") and run it again."""
        runs = [self.run(tag)]
        while approve and runs[-1].waits_for_approval and len(runs) < most:
            self.click_button(tag, "Approve")
            runs.append(self.run(tag))
        return runs

    def run_all_approving(self, passes: int = 8) -> list[list[CellRun]]:
        """Run All; when it stops at a cell waiting for approval, click Approve and Run All again, as a
        person would, at most ``passes`` times. Returns the cells each pass ran."""
        done: list[list[CellRun]] = []
        while len(done) < passes:
            ran = self.run_all()
            done.append(ran)
            if not ran or not ran[-1].waits_for_approval:
                break
            self.click_button(ran[-1].tag, "Approve")
        return done

    def run_through(self, tags: Iterable[str], approve: bool = True) -> list[CellRun]:
        """Run each cell in turn (see :meth:`run_approving`)."""
        return [run for tag in tags for run in self.run_approving(tag, approve)]

    # --- the page and the kernel --------------------------------------------------------------------

    def reload(self) -> None:
        """Reload the page WITHOUT saving: the browser's "leave page? changes you made may not be saved"
        is answered Leave. The notebook comes back from disk (no outputs) on the same kernel."""

        def leave(dialog: Dialog) -> None:
            dialog.accept()

        self.page.on("dialog", leave)
        try:
            self.page.reload(wait_until="load")
        finally:
            self.page.remove_listener("dialog", leave)
        expect(self.tab).to_have_count(1, timeout=KERNEL_TIMEOUT_MS)
        self.panel_id = self.tab.get_attribute("data-id") or ""
        self.activate()
        self.wait_rendered()

    def kernel_pids(self) -> set[int]:
        return self.server.children()

    def restart_kernel(self) -> None:
        """Kernel > Restart Kernel…, confirm, and wait for the new kernel to be idle."""
        self.activate()
        before = self.kernel_pids()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Restart Kernel…$")).click()
        dialog = self.page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Restart")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        expect(dialog).to_have_count(0)
        deadline = time.monotonic() + KERNEL_TIMEOUT_MS / 1000
        while not (self.kernel_pids() - before):  # the server started a new kernel process
            assert time.monotonic() < deadline, "the kernel did not restart"
            self.page.wait_for_timeout(100)
        self.wait_idle()
        self.executions = 0


def open_notebook(page: Page, server: Any, shots: Any, transcript: Transcript, name: str, label: str) -> NotebookPage:
    """Open ``name`` in JupyterLab (its runs go into ``transcript`` under ``label``)."""
    notebook = NotebookPage(page, server, name, shots, label, transcript)
    notebook.open()
    return notebook


def verify_and_summarise(page: Page, server: Any, shots: Any, transcript: Transcript) -> None:
    """What the engineer does after a procedure: V, then P, each with Run All (approving when asked)."""
    for name, label in (("V_verification.ipynb", "V"), ("P_post_recovery.ipynb", "P")):
        open_notebook(page, server, shots, transcript, name, label).run_all_approving()


# --- the site -----------------------------------------------------------------------------------


def journal(site: Path) -> dict[str, list[dict[str, Any]]]:
    """Every incident journal of the site: ``{incident id: [entry, ...]}`` in the order written."""
    found: dict[str, list[dict[str, Any]]] = {}
    directory = Path(site) / "incidents"
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entries.append(json.loads(line))
        found[path.name.removesuffix(".jsonl")] = entries
    return found


def only_journal(site: Path) -> tuple[dict[str, list[dict[str, Any]]], str, list[dict[str, Any]]]:
    """(every journal, the incident id, its entries) when the site holds exactly one incident's
    journal; with several, the id is "" and the entries are empty (the tests then say so)."""
    journals = journal(site)
    if len(journals) != 1:
        return journals, "", []
    ((incident_id, entries),) = journals.items()
    return journals, incident_id, entries


def records(entries: list[dict[str, Any]], procedure: str | None = None, name: str | None = None) -> list[Any]:
    """The record entries of a journal, optionally of one procedure and one name."""
    return [
        entry
        for entry in entries
        if entry["kind"] == "record"
        and (procedure is None or entry["procedure"] == procedure)
        and (name is None or entry["name"] == name)
    ]


def site_snapshot(root: Path, skip: tuple[str, ...] = (), everything: bool = False) -> dict[str, tuple[Any, ...]]:
    """Every entry under the site (symlinks not followed): kind, mode and bytes, without the top-level
    directories in ``skip`` and, unless ``everything`` (the trading process is stopped), without what
    the running trading process itself writes (trades, positions, session state, exchange, run/)."""

    def keep(key: str) -> bool:
        trading = key.startswith(TRADING_PROCESS_WRITES) or key in ("exchange", "run")
        return everything or not (trading or TRADING_PROCESS_TEMP.match(key))

    return tree(root, skip, keep=keep)
