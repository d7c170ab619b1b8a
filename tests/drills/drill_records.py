"""Drill records written the way a drill writes them, without running one: a procedure notebook and the
verification notebook per drill directory, each holding its records in the recorder's MIME type, so
``load_records`` reads them back as it reads a real drill's (what ``drill due`` is built on)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recovery_lib.catalog import by_drill
from recovery_lib.clock import iso
from recovery_lib.runbook.records import MIME_TYPE, to_plain


def _notebook(path: Path, records: dict[str, Any], at: str) -> None:
    outputs = [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {MIME_TYPE: {"name": n, "value": to_plain(v), "at": at}},
        }
        for n, v in records.items()
    ]
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {"tags": ["step:all"]},
        "source": "",
        "outputs": outputs,
    }
    path.write_text(json.dumps({"cells": [cell], "metadata": {}}), encoding="utf-8")


def write_drill(outputs: Path, scenario: str, started: datetime, recovered: bool = True, kind: str = "drill") -> str:
    """One drill directory under ``outputs``: ``scenario`` started at ``started``; returns its run id."""
    procedure = by_drill(scenario).procedure
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{scenario}"
    run_dir = outputs / run_id
    run_dir.mkdir(parents=True)
    fault, done = started + timedelta(seconds=5), started + timedelta(seconds=40)
    run = {"run_id": run_id, "kind": kind, "procedure": procedure, "started_at": iso(started)}
    _notebook(
        run_dir / f"01_{procedure}.ipynb",
        {
            "run": run,
            "drill": {"run_id": run_id, "scenario": scenario, "fault_at": iso(fault)},
            "outcome": {"success": recovered, "failed_criteria": [] if recovered else ["health green"]},
        },
        iso(started),
    )
    _notebook(
        run_dir / "02_V.ipynb",
        {
            "run": {**run, "procedure": "V"},
            "verification": {"ok": recovered, "failing": [] if recovered else ["data"]},
            "outcome": {"success": recovered, "finished_at": iso(done)},
        },
        iso(done),
    )
    return run_id


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)
