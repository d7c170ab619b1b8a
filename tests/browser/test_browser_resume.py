"""Resume from record in JupyterLab (issue 17): the engineer reopens B after a failed run and picks it.

The site lost its ledger and positions (as in test_procedure_b); an unattended run of B (the notebook's
own cells, headless, ``approve`` without "restore" or "repair") stopped trading, took the pre-recovery
backup and halted at the restore. The engineer opens ``B_data_recovery`` in JupyterLab, runs the
parameters cell and the "Resume from record" cell under it: the picker offers that failed run, the
engineer picks it in the dropdown, and the cell says in words which run is resumed; the validation
cell then joins the failed run's incident and records that it resumes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from lab import NotebookPage, only_journal, records
from playwright.sync_api import expect

from recovery_lib.runbook.failed_runs import failed_runs
from recovery_lib.site.config import load_site

if TYPE_CHECKING:
    from browser_sites import DataLossSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_TIMEOUT_MS = 15_000
WITHOUT_REMEDY = ["stop_system", "backup", "start_system"]  # B halts at the restore: not approved


def fail_b_unattended(site: Path) -> None:
    """B's committed cells, executed in order in one namespace as a headless kernel would, approving
    everything but the remedies: the run halts at the restore and its outcome cell fails."""
    notebook = nbformat.read(NOTEBOOKS / "B_data_recovery.ipynb", as_version=4)
    namespace: dict[str, Any] = {}
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        tag = (cell.metadata.get("tags") or [""])[0]
        source = cell.source
        if tag == "parameters":
            source += (
                f"\nsite = {str(site)!r}\ninteractive = False\napprove = ['stop_system', 'backup', 'start_system']"
            )
        try:
            exec(compile(source, tag, "exec", dont_inherit=True), namespace)  # no __future__ of ours
        except Exception as exc:  # noqa: BLE001 - only the verdict may fail, asserted below
            assert tag == "step:outcome" and type(exc).__name__ == "ProcedureFailed", f"{tag}: {exc!r}"


def test_the_resume_cell_offers_the_failed_run_and_names_the_pick(
    data_loss_sites: Callable[..., DataLossSite],
    lab_servers: Callable[[Path], LabServer],
    offline_context: OfflineContext,
    screenshots: Screenshots,
) -> None:
    site = data_loss_sites("resume")
    fail_b_unattended(site.root)
    (failed,) = failed_runs(load_site(site.root), "B")
    server = lab_servers(site.root)
    page = offline_context.new_page()
    notebook = NotebookPage(page, server, "B_data_recovery.ipynb", screenshots, "B")
    notebook.open()
    notebook.run("parameters")

    shown = notebook.run("resume")
    assert shown.widgets > 0 and not shown.errors and not shown.traceback, shown.text
    picker = notebook.cell("resume").locator("select")
    expect(picker).to_have_count(1, timeout=WIDGET_TIMEOUT_MS)
    # ipywidgets writes the options' spaces as no-break spaces
    offered = [option.replace("\xa0", " ").strip() for option in picker.locator("option").all_inner_texts()]
    assert offered == ["(start from the top)", failed.label()], offered
    assert "runs from the top" in notebook.output_text("resume")

    picker.select_option(index=1)  # the engineer's pick: the failed run
    output = notebook.cell("resume").locator(".jp-OutputArea")
    expect(output).to_contain_text("Resume from record: resumes ", timeout=WIDGET_TIMEOUT_MS)
    said = output.inner_text()
    assert failed.label() in said and f"resume_from={failed.run_id!r}" in said, said
    assert f"incident_id={failed.incident_id!r}" in said, said
    screenshots.take(page, "picked")

    validate = notebook.run("validate")
    assert not validate.errors and f"in incident {failed.incident_id}" in validate.text, validate.text
    _, incident_id, entries = only_journal(site.root)
    assert incident_id == failed.incident_id
    resumed = [e["value"] for e in records(entries, "B", "run") if e["run"] != failed.run_id]
    assert [run["resumed_from"] for run in resumed] == [failed.run_id], resumed
    (resume,) = [e["value"] for e in records(entries, "B", "resume")]
    assert resume["resumed_from"] == failed.run_id and resume["replay"], resume
