"""What a person sees: static summaries for widgets, offline HTML records, readable results."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from recovery_lib.rendering import WIDGET_VIEW, Findings, LiveWidget, export_html, frame_html, static_widgets
from recovery_lib.runbook.approval import ApprovalGate
from recovery_lib.site.process import ProcessAction


def test_an_approval_widget_carries_the_decision_as_static_text() -> None:
    gate = ApprovalGate(interactive=True, approvals=[], operator="alice")
    shown = gate.request("restore", "Restore plan: replace config/config.toml")
    assert isinstance(shown, LiveWidget)
    waiting = shown.bundle()
    assert WIDGET_VIEW in waiting and "not given" in waiting["text/plain"] and "not given" in waiting["text/html"]
    approve = shown.widget.children[1].children[0]
    approve.click()
    decided = shown.bundle()
    assert "APPROVED by alice" in decided["text/plain"] and "APPROVED by alice" in decided["text/html"]
    assert decided[WIDGET_VIEW] == waiting[WIDGET_VIEW]  # the same live widget in JupyterLab
    assert gate.require("restore").approved


def test_an_aborted_approval_says_so() -> None:
    gate = ApprovalGate(interactive=True, approvals=[], operator="bob")
    shown = gate.request("restore", "plan")
    shown.widget.children[1].children[1].click()
    assert "ABORTED by bob" in shown.bundle()["text/plain"]


def _notebook_with_widget(tmp_path: Path) -> Path:
    gate = ApprovalGate(interactive=True, approvals=[], operator="carol")
    shown = gate.request("restore", "plan")
    shown.widget.children[1].children[0].click()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("steps.approval(run, plan)")
    cell.outputs = [nbformat.v4.new_output("display_data", data=shown.bundle())]
    table = nbformat.v4.new_code_cell("frame")
    table.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": frame_html(pd.DataFrame({"check": ["config"]}))})
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("# Procedure A"), cell, table]
    path = tmp_path / "record.ipynb"
    nbformat.write(notebook, path)
    return path


def test_the_html_record_shows_the_decision_and_needs_no_network(tmp_path: Path) -> None:
    body = export_html(_notebook_with_widget(tmp_path))
    assert "APPROVED by carol" in body
    assert WIDGET_VIEW not in body  # no empty widget placeholder
    assert not re.findall(r"""<script[^>]+src=["']?https?:""", body), "a script comes from the network"
    assert not re.findall(r"""<link[^>]+href=["']?https?:""", body)
    assert "cdnjs" not in body and "unpkg" not in body and "jsdelivr" not in body
    assert "Procedure A" in body


def test_static_widgets_keeps_outputs_without_a_fallback_untouched() -> None:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "m"}})]
    notebook.cells = [cell]
    static_widgets(notebook)
    assert WIDGET_VIEW in cell.outputs[0]["data"]  # nothing to show instead: left for a widget-aware viewer


def test_tables_have_no_index_column_and_no_truncated_cells() -> None:
    long = "Restored config from 20261126T000744Z-full-68e555: 1 files, 422 bytes written and verified"
    rendered = frame_html(pd.DataFrame({"criterion": ["Config file restored"], "evidence": [long]}))
    assert long in rendered and "..." not in rendered
    assert "<th>0</th>" not in rendered and "<th></th>" not in rendered


def test_a_process_action_reads_as_a_sentence() -> None:
    action = ProcessAction("stop", True, False, "stop command exited 0; system stopped")
    assert action.summary() == "✅ Stop the trading system: stop command exited 0; system stopped (now not running)."
    assert "ProcessAction(" not in action._repr_html_()


@pytest.mark.parametrize(("ok", "icon"), [(True, "✅"), (False, "❌")])
def test_findings_are_a_dict_for_code_and_a_table_for_people(ok: bool, icon: str) -> None:
    findings = Findings("Configuration check", {"ok": ok, "file": "config/config.toml", "problems": []})
    assert findings["file"] == "config/config.toml" and dict(findings)["ok"] is ok  # still plain data
    rendered = findings._repr_html_()
    assert f"{icon} Configuration check" in rendered and "config/config.toml" in rendered and "none" in rendered


def test_an_html_record_is_titled_after_its_procedure(tmp_path: Path) -> None:
    body = export_html(_notebook_with_widget(tmp_path))
    assert "<title>Procedure A</title>" in body
