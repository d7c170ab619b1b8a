"""The drill records page and the incident records, opened in Chromium from file:// with the network blocked.

One ``recovery drill run --scenario config`` per session writes ``outputs/index.html`` and the
drill's executed notebooks as HTML. The tests open them as a person opening the archive would,
with every non-file:// request aborted and recorded: the drill table, the time-to-recover plot and
the "last drilled" table must render, every link must open its record, nothing may need the network.

The approval in an archived record: a drill approves by parameter, so its Procedure A record shows
text. An interactive run leaves ipywidgets (Approve / Abort, the backup picker) in the notebook;
their HTML must show a static summary of the decision where the widgets were, not a dead widget.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import papermill
import pytest
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from browser_sites import BrokenSite
    from conftest import DrillRecords, OfflineContext, Screenshots

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TITLES = {
    "00_detect_and_triage": "00 Detect and triage",
    "A_config_recovery": "Procedure A: Config Recovery",
    "V_verification": "Verification",
    "P_post_recovery": "Post-Recovery Actions",
}
SCENARIOS = ["config", "data", "full", "backup"]
DEAD_WIDGET = re.compile(
    r"Loading widget|Error displaying widget|VBox\(|HBox\(|Button\(|Dropdown\(|widget-view\+json", re.IGNORECASE
)


def open_file(page: Page, path: Path) -> None:
    """Open a local HTML file and wait until it and its images have loaded."""
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=30_000)


def section(page: Page, step: str) -> Locator:
    """The rendered outputs of the code cell tagged ``step:<step>`` (nbconvert keeps tags as ``celltag_`` classes)."""
    return page.locator(f'div.jp-CodeCell[class~="celltag_step:{step}"] .jp-Cell-outputWrapper')


def table_rows(table: Locator) -> list[list[str]]:
    return table.evaluate(
        "t => [...t.querySelectorAll('tbody tr')].map(r => [...r.children].map(c => c.innerText.trim()))"
    )


def table_header(table: Locator) -> list[str]:
    return table.evaluate("t => [...t.querySelectorAll('thead th')].map(c => c.innerText.trim())")


def test_the_drill_recovered(config_drill: DrillRecords) -> None:
    assert config_drill.returncode == 0, config_drill.stdout
    assert re.search(r"^config\s+\S+\s+A\s+recovered", config_drill.stdout, re.MULTILINE), config_drill.stdout
    assert config_drill.seconds < 90


def test_index_renders_drill_table_plot_and_schedule(
    config_drill: DrillRecords, offline_context: OfflineContext, screenshots: Screenshots
) -> None:
    page = offline_context.new_page()
    open_file(page, config_drill.outputs / "index.html")
    screenshots.take(page, "index", full_page=True)
    expect(page.locator("h1").first).to_contain_text("Drill records")

    drills = page.locator("table.drills")
    expect(drills).to_have_count(1)
    header, rows = table_header(drills), table_rows(drills)
    assert len(rows) == 1, rows
    row = dict(zip(header, rows[0], strict=True))
    assert row["drill"] == config_drill.run_dir.name
    assert row["scenario"] == "config" and row["procedure"] == "A"
    assert row["outcome"] == "✅ recovered", row
    assert re.fullmatch(r"\d+(\.\d)?", row["recover (s)"]), row

    plot = page.locator("xpath=//h2[starts-with(normalize-space(.), 'Time to recover')]/following::img[1]")
    expect(plot).to_have_count(1)
    plot.scroll_into_view_if_needed()
    size = plot.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size[0] and size[1] > 0 and size[2] > 0, f"the time-to-recover plot did not load: {size}"

    schedule = page.locator("xpath=//h2[starts-with(normalize-space(.), 'Last drilled')]/following::table[1]")
    expect(schedule).to_have_count(1)
    header, rows = table_header(schedule), table_rows(schedule)
    assert "scenario" in header and "last drilled" in header, header
    by_scenario = {r[header.index("scenario")]: dict(zip(header, r, strict=True)) for r in rows}
    assert list(by_scenario) == SCENARIOS, rows
    assert by_scenario["config"]["last drilled"] != "never"
    assert all(by_scenario[s]["last drilled"] == "never" for s in SCENARIOS[1:])
    screenshots.take(page, "index-schedule")


def test_every_link_opens_its_record(
    config_drill: DrillRecords, offline_context: OfflineContext, screenshots: Screenshots
) -> None:
    page = offline_context.new_page()
    index = config_drill.outputs / "index.html"
    open_file(page, index)
    links = page.locator("table.drills a")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert len(hrefs) == 4, hrefs
    opened = []
    for number, href in enumerate(hrefs):
        link = page.locator(f'table.drills a[href="{href}"]')
        with page.expect_navigation(wait_until="load"):
            link.click()
        record = Path(page.url.removeprefix("file://"))
        assert record == (config_drill.outputs / href).resolve(), page.url
        name = record.stem.split("_", 1)[1]
        expect(page.locator("h1").first).to_contain_text(TITLES[name])
        expect(page.locator(".jp-Cell").first).to_be_visible()
        screenshots.take(page, f"record-{number + 1}-{name}")
        opened.append(name)
        page.go_back(wait_until="load")
    assert opened == list(TITLES)


def test_pages_need_no_network(config_drill: DrillRecords, offline_context: OfflineContext) -> None:
    """Every request the records page and the records make must be file:// (or data:)."""
    page = offline_context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    pages = [config_drill.outputs / "index.html", *sorted(config_drill.run_dir.glob("*.html"))]
    for path in pages:
        open_file(page, path)
        page.wait_for_timeout(300)  # late script/font loads
    assert len(requests) >= len(pages)
    remote = [url for url in requests if not url.startswith(("file://", "data:", "blob:", "about:"))]
    assert remote == [], f"the records need the network: {remote}"
    assert offline_context.blocked == []


def test_procedure_a_record_shows_the_approval_decision(
    config_drill: DrillRecords, offline_context: OfflineContext, screenshots: Screenshots
) -> None:
    """A drill approves by parameter: the record says so in text where JupyterLab would show buttons."""
    page = offline_context.new_page()
    open_file(page, config_drill.run_dir / "02_A_config_recovery.html")
    dry_run = section(page, "dry_run")
    dry_run.scroll_into_view_if_needed()
    screenshots.take(page, "a-record-dry-run")
    text = dry_run.inner_text()
    # Who, when (UTC) and what: the approval as the post-mortem reader sees it.
    assert re.search(
        r"Approval for restore: APPROVED by drill-runner at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(by parameter\)", text
    ), text
    assert "What: Restore config from backup" in text
    assert not DEAD_WIDGET.search(page.locator("body").inner_text())
    restore = section(page, "restore").inner_text()
    assert "Restored config from" in restore, restore


@pytest.fixture(scope="module")
def interactive_record(broken_sites: Callable[[str], BrokenSite], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Procedure A run with ``interactive=True`` and nobody clicking, exported as the drill runner exports
    records. The trading process is stopped first, so the run gets as far as the restore gate."""
    from recovery_lib.drills.runner import _html
    from recovery_lib.site.config import load_site
    from recovery_lib.site.process import stop_system

    site = broken_sites("interactive-record")
    assert stop_system(load_site(site.root)).ok
    out = tmp_path_factory.mktemp("interactive") / "02_A_config_recovery.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "A_config_recovery.ipynb"),
            str(out),
            parameters={"site": str(site.root), "interactive": True, "operator": "alice"},
            kernel_name="python3",
            cwd=str(out.parent),
            progress_bar=False,
        )
    assert raised.value.ename == "ApprovalRequired"
    _html(out)
    return out.with_suffix(".html")


def test_interactive_record_shows_a_static_decision_where_the_widgets_were(
    interactive_record: Path, offline_context: OfflineContext, screenshots: Screenshots
) -> None:
    page = offline_context.new_page()
    open_file(page, interactive_record)
    page.wait_for_timeout(500)
    dry_run = section(page, "dry_run")
    dry_run.scroll_into_view_if_needed()
    screenshots.take(page, "interactive-record-dry-run")
    picker = section(page, "select_backup").inner_text()
    text = dry_run.inner_text()
    body = page.locator("body").inner_text()
    assert not DEAD_WIDGET.search(body), f"a dead widget in the record: {DEAD_WIDGET.search(body).group()}"
    assert re.search(r"Approval for restore: .*not", text, re.IGNORECASE), f"no decision shown:\n{text}"
    assert "Selected backup" in picker
    assert offline_context.blocked == []
