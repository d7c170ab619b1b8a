"""Procedure D's schedule step and criterion read what is really installed, not recovery.toml alone."""

from __future__ import annotations

import json
from pathlib import Path

from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import Run, begin
from recovery_lib.runbook.steps.verdict import criteria_d
from recovery_lib.schedule import install


def open_d(site: Path) -> Run:
    return begin("D", site=str(site), operator="schedule-test", kind="drill", interactive=False)


def schedule_row(run: Run) -> dict[str, object]:
    checklist = criteria_d(run, {"writable": True, "message": "ok"}, None, "backup-id")
    return next(row for row in checklist.rows if row["criterion"] == "Automated backup schedule confirmed")


def test_a_sandbox_has_its_schedule_installed_and_d_confirms_it(sandbox: Path) -> None:
    run = open_d(sandbox)
    text = steps.backup_schedule(run)
    assert text.startswith("✅ Automated backups installed (systemd; read systemd units in ../site-units"), text
    record = run.recorder.values["backup_schedule"]
    assert record["configured"] is True and record["installed"] is True and record["active"] is None
    assert record["entries"] == ["*-*-* 02:00", "Sun *-*-* 03:00"] and record["problems"] == []
    assert str(sandbox) not in json.dumps(record) + text, "records name no host path of the site"
    assert schedule_row(run)["passed"] is True


def test_declared_but_not_installed_fails_the_criterion_naming_the_command(sandbox: Path) -> None:
    for unit in (sandbox.parent / "site-units").iterdir():
        unit.unlink()  # declared in recovery.toml, installed nowhere: the machine with no crontab at all
    run = open_d(sandbox)
    text = steps.backup_schedule(run)
    assert text.startswith("❌ Automated backup schedule NOT confirmed: not installed: backup '*-*-* 02:00'")
    assert "recovery schedule install --systemd --site ." in text
    record = run.recorder.values["backup_schedule"]
    assert record["configured"] is True and record["installed"] is False and record["scheduler"] is None
    row = schedule_row(run)
    assert row["passed"] is False and "not installed" in str(row["evidence"])
    install(run.site, "systemd")  # the fix the message names
    assert schedule_row(open_d(sandbox))["passed"] is True


def test_nothing_declared_fails_as_before(sandbox: Path) -> None:
    toml = sandbox / "recovery.toml"
    toml.write_text(toml.read_text().replace('schedule = ["*-*-* 02:00", "Sun *-*-* 03:00"]\n', ""))
    run = open_d(sandbox)
    text = steps.backup_schedule(run)
    assert text.startswith("❌") and "no [backups] schedule is declared" in text
    record = run.recorder.values["backup_schedule"]
    assert record["configured"] is False and record["scheduler"] is None
    assert schedule_row(run)["passed"] is False
