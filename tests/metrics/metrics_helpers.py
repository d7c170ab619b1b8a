"""Helpers of the metrics tests: a sandbox site that writes metrics, outcomes of real runs, the files
read back with prometheus_client's parser, drill records written by the runbook's own recorder."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from recovery_lib.alerts.events import Outcome
from recovery_lib.cli import main as cli
from recovery_lib.clock import iso, now
from recovery_lib.runbook.record_types import OutcomeRecord, RunRecord, VerificationRecord
from recovery_lib.runbook.records import MIME_TYPE, Recorder
from recovery_lib.runbook.restore_record_types import RestoreResultRecord
from recovery_lib.site.config import Site, load_site

SANDBOX_SCHEDULE = 'schedule = ["*-*-* 02:00", "Sun *-*-* 03:00"]'
Key = tuple[str, frozenset[tuple[str, str]]]


def metrics_site(root: Path, textfile_dir: Path, *, replica_max_age_hours: float = 36) -> Site:
    """The sandbox at ``root`` writing metrics to ``textfile_dir``: backups daily at 02:00 with 30 min grace,
    max age 48 h; its file:// replica allowed 36 h; procedure A's RTO 7 minutes (not the catalog's 10)."""
    config = root / "recovery.toml"
    text = config.read_text()
    assert SANDBOX_SCHEDULE in text, "the sandbox's recovery.toml should declare its backup schedule"
    text = text.replace(SANDBOX_SCHEDULE, 'schedule = ["*-*-* 02:00"]\ngrace_minutes = 30\nmax_age_hours = 48')
    text += f"max_age_hours = {replica_max_age_hours}\n"  # the last table is the [[replicas]] entry
    text += f'\n[targets.A]\nrto_minutes = 7\n\n[metrics]\ntextfile_dir = "{textfile_dir}"\n'
    config.write_text(text)
    return load_site(root)


def outcome(
    kind: str,
    site: Site,
    results: tuple[Any, ...] = (),
    *,
    ok: bool = True,
    subject: str = "",
    started: datetime | None = None,
    seconds: float = 2.5,
) -> Outcome:
    """An outcome as ``cli.operations.reporting`` builds it when a run of ``kind`` ends."""
    begun = started or now()
    return Outcome(
        kind=kind,
        site=site.name,
        site_root=site.root,
        ok=ok,
        status="SUCCESS" if ok else "FAILED",
        summary=f"{kind} {'succeeded' if ok else 'failed'}",
        started=begun,
        finished=begun + timedelta(seconds=seconds),
        subject=subject,
        results=results,
    )


def run_cli(*argv: str) -> int:
    """``recovery ARGV`` in-process, as a schedule runs it (its metrics go to the site's textfile_dir)."""
    return cli.main(list(argv), out=io.StringIO())


def flip_one_byte(path: Path) -> None:
    """Damage a backed-up file the way a bad disk does: same size, one byte different. Files are
    hard-linked between backups: the link is broken first, so only this copy is damaged."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))


def read_prom(path: Path) -> dict[Key, float]:
    """Every sample of a textfile, parsed by prometheus_client: (name, labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"{key} twice in {path}"
            samples[key] = sample.value
    return samples


def key(name: str, **labels: str) -> Key:
    """The key of one sample in :func:`read_prom`'s result."""
    return name, frozenset(labels.items())


def names_in(path: Path) -> set[str]:
    """The metric names in a textfile."""
    return {name for name, _ in read_prom(path)}


def _notebook(path: Path, records: dict[str, Any]) -> None:
    """An executed notebook holding ``records`` as the runbook's recorder displays them."""
    recorder = Recorder(site_root=None)
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {MIME_TYPE: {"name": n, "value": v, "at": "t"}}}
        for n, v in ((name, recorder.record(name, value)) for name, value in records.items())
    ]
    cell = {"cell_type": "code", "metadata": {"tags": ["step:all"]}, "source": "", "outputs": outputs}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}}), encoding="utf-8")


def write_drill(
    outputs: Path,
    scenario: str,
    procedure: str,
    fault_at: datetime,
    *,
    recovered: bool,
    recover_s: float = 300.0,
    restore_point: datetime | None = None,
) -> Path:
    """The records of one drill in ``outputs/<run id>/``: the procedure's notebook and verification's, as a
    drill leaves them (``drills.history.drill_row`` reads them back)."""
    run_id = f"{fault_at:%Y%m%dT%H%M%SZ}-{scenario}-0000"
    run_dir = outputs / run_id
    run_dir.mkdir(parents=True)
    drill = {"run_id": run_id, "scenario": scenario, "fault_at": iso(fault_at), "rto_target_s": 99999.0}
    finished = iso(fault_at + timedelta(seconds=recover_s))
    restored = iso(restore_point or fault_at - timedelta(hours=1))
    _notebook(
        run_dir / f"02_{procedure}.ipynb",
        {
            "drill": drill,
            "run": RunRecord(incident_id=run_id, run_id=f"{procedure}-1", kind="drill", procedure=procedure),
            "restore_result": RestoreResultRecord(ok=True, backup_id="b1", backup_created_at=restored),
            "outcome": OutcomeRecord(success=recovered, failed_criteria=[], finished_at=finished),
        },
    )
    _notebook(
        run_dir / "03_V.ipynb",
        {
            "drill": drill,
            "run": RunRecord(incident_id=run_id, run_id="V-1", kind="drill", procedure="V"),
            "verification": VerificationRecord(ok=True),
            "outcome": OutcomeRecord(success=True, failed_criteria=[], finished_at=finished),
        },
    )
    return run_dir
