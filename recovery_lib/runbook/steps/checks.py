"""Procedure steps that check without changing anything: the config, the data, the exchange."""

from __future__ import annotations

from typing import Any

from recovery_lib.checks.default import health_check
from recovery_lib.checks.gate import reconciliation_check
from recovery_lib.rendering import Findings, frame_html, frame_text
from recovery_lib.runbook.record_types import (
    ConfigCheckRecord,
    DataCheckRecord,
    ExchangeCheckRecord,
    ReconciliationRecord,
)
from recovery_lib.runbook.run import Run
from recovery_lib.runbook.steps.base import GO_ON, Halted, step
from recovery_lib.site.integrity import check_config_file, check_data


@step(on_halt=GO_ON)  # it only reads: the record shows the site as it is after a halt too
def verify_config(run: Run) -> Findings:
    """The config exists, is valid TOML and has the required sections (runbook A step 6, V step 3)."""
    report = check_config_file(
        run.site.path(run.site.config_file), run.site.required_sections, shown_as=run.site.config_file
    )
    result = ConfigCheckRecord(ok=report.ok, file=run.site.config_file, problems=report.problems, **report.facts)
    run.record("config_check", result)
    return Findings("Configuration check", result)


@step(on_halt=GO_ON)  # it only reads: the record shows the site as it is after a halt too
def verify_data(run: Run) -> Any:
    """Row counts of the critical CSVs and the data consistency check (runbook B step 7, V step 2)."""
    import pandas as pd

    report = check_data(run.site)
    rows = []
    for relative in (run.site.positions_file, run.site.trades_file):
        try:
            frame = pd.read_csv(run.site.path(relative))
            rows.append({"": "✅ read", "file": relative, "rows": str(len(frame)), "note": ""})
        except Exception as exc:  # shown to the engineer as a failed row, exactly like the runbook's loop
            rows.append({"": "❌ unreadable", "file": relative, "rows": "-", "note": f"{type(exc).__name__}: {exc}"})
    consistent = "✅ consistent" if report.ok else "❌ INCONSISTENT"
    rows.append({"": consistent, "file": "data check", "rows": "", "note": report.summary()})
    run.record(
        "data_check",
        DataCheckRecord(
            ok=report.ok, problems=report.problems, more_problems=report.more_problems, files=rows, **report.facts
        ),
    )
    return pd.DataFrame(rows, columns=["", "file", "rows", "note"])


@step(on_halt=GO_ON)  # it only reads: the record shows the site as it is after a halt too
def check_exchange(run: Run) -> Findings:
    """External connectivity: a ticker from the exchange (runbook V step 4)."""
    result = health_check.run("exchange", run.site)
    outcome = ExchangeCheckRecord(ok=result.healthy, message=result.message)
    run.record("exchange_check", outcome)
    return Findings("Exchange connectivity", outcome)


class ReconciliationShown:
    """A reconciliation for people: the verdict in words, then the table of every market."""

    def __init__(self, ok: bool | None, summary: str, frame: Any) -> None:
        self.ok = ok
        self.summary = summary
        self.frame = frame

    def _repr_html_(self) -> str:
        import html

        mark = {True: "✅", False: "❌", None: "⚪"}[self.ok]
        table = frame_html(self.frame) if self.frame is not None else ""
        return f"<p><b>{mark} {html.escape(self.summary)}</b></p>{table}"

    def __repr__(self) -> str:
        mark = {True: "✅", False: "❌", None: "⚪"}[self.ok]
        return f"{mark} {self.summary}" + (f"\n{frame_text(self.frame)}" if self.frame is not None else "")


@step(on_halt=GO_ON)
def reconcile(run: Run) -> ReconciliationShown | Halted:
    """Positions against the exchange's balances (runbook B step 8), exact to each instrument's precision.
    It only reads, so it runs after a halt or an abort too: the record shows the site as it is."""
    check, result = reconciliation_check(run.site)
    if result is None:
        run.record("reconciliation", ReconciliationRecord(ok=check.ok, error=check.detail))
        if check.ok is False:
            run.facts.external_systems_affected = True
        return ReconciliationShown(check.ok, check.detail, None)
    run.record(
        "reconciliation",
        ReconciliationRecord(
            ok=result.ok, markets=len(result.rows), discrepancies=result.discrepancies, error=result.error
        ),
    )
    if result.error:
        run.facts.external_systems_affected = True
    return ReconciliationShown(result.ok, result.summary(), result.frame().reset_index() if result.rows else None)
