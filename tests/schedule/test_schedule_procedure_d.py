"""Procedure D's schedule step and criterion read what is really installed, not recovery.toml alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from schedule_helpers import user_crontab  # noqa: F401 - a fixture

from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import Run, begin
from recovery_lib.runbook.steps.verdict import criteria_d
from recovery_lib.schedule import install, schedule_status
from recovery_lib.schedule.cron import read_crontab, write_crontab
from recovery_lib.site.config import load_site


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


# --- installed, but not what the install writes: the units can never run a backup (on-call C1) -----------------


def backup_units(sandbox: Path) -> tuple[Path, Path]:
    (service,) = (sandbox.parent / "site-units").glob("recovery-*-backup.service")
    return service, service.with_suffix(".timer")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def exec_start_at_a_moved_venv(sandbox: Path) -> None:
    service, _ = backup_units(sandbox)
    program = next(line for line in service.read_text().splitlines() if line.startswith("ExecStart=")).split()[0]
    edit(service, program, "ExecStart=/nonexistent/bin/recovery")


def exec_start_pre_that_fails(sandbox: Path) -> None:
    service, _ = backup_units(sandbox)
    edit(service, "ExecStart=", "ExecStartPre=/bin/false\nExecStart=")


def timer_starting_another_unit(sandbox: Path) -> None:
    _, timer = backup_units(sandbox)
    edit(timer, "Unit=recovery-", "Unit=something-else-")


TAMPERING = {
    "ExecStart=/nonexistent": (exec_start_at_a_moved_venv, ["/nonexistent/bin/recovery", "does not exist"]),
    "ExecStartPre=/bin/false": (exec_start_pre_that_fails, ["'ExecStartPre=/bin/false' where it writes"]),
    "Unit= another unit": (timer_starting_another_unit, ["'Unit=something-else-"]),
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_a_unit_that_differs_from_the_install_is_not_confirmed(sandbox: Path, tampering: str) -> None:
    assert schedule_row(open_d(sandbox))["passed"] is True, "the sandbox starts confirmed"
    change, said = TAMPERING[tampering]
    change(sandbox)
    run = open_d(sandbox)
    text = steps.backup_schedule(run)
    assert text.startswith("❌ Automated backup schedule NOT confirmed: "), text
    for words in said:
        assert words in text, text
    assert "re-run `recovery schedule install --systemd --site .`" in text
    record = run.recorder.values["backup_schedule"]
    assert record["installed"] is True, "the times and the site still match: only the comparison catches it"
    assert record["problems"] and str(sandbox) + "/" not in json.dumps(record)
    row = schedule_row(run)
    assert row["passed"] is False and "recovery schedule install" in str(row["evidence"])
    install(run.site, "systemd")  # the fix the message names
    assert schedule_row(open_d(sandbox))["passed"] is True


@pytest.mark.usefixtures("user_crontab")
@pytest.mark.skipif(shutil.which("crontab") is None, reason="no crontab here (Debian: apt-get install cron)")
def test_an_edited_crontab_line_is_not_confirmed(sandbox: Path) -> None:
    for unit in (sandbox.parent / "site-units").iterdir():
        unit.unlink()  # the schedule lives in the crontab only
    site = load_site(sandbox)
    install(site, "cron")
    status = schedule_status(site)
    assert [e.installed for e in status.declared("backup")] == [True, True] and status.drifted() == []
    # Edited by hand: still `backup create` for this site at the same times, but config only.
    crontab = read_crontab()
    write_crontab(crontab.replace("backup create --site", "backup create --config --site", 1))
    status = schedule_status(site)
    assert [e.installed for e in status.declared("backup")] == [True, True]
    (problem,) = status.drifted("backup")
    assert "differs from what `recovery schedule install` writes" in problem and "--config" in problem
    assert not status.confirmed("backup") and problem in status.problems("backup")
    row = schedule_row(open_d(sandbox))
    assert row["passed"] is False and "backup create --config" in str(row["evidence"])
    write_crontab(crontab)
    assert schedule_status(site).drifted() == []
