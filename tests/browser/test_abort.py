"""Abort at the restore: the engineer clicks Abort under Procedure B's plan, then runs every cell below.

The site lost its ledger and positions (as in test_procedure_b). The engineer runs B cell by cell,
approves the stop and the pre-recovery backup, and at the plan (repair or restore) clicks **Abort**.
Then every remaining cell is run one by one, as a person who wants to see where things stand would,
and the post-recovery notebook is run (Run All).

What must hold: no cell shows a traceback; every writing step below the plan says it was skipped
because of the abort and did nothing; the read-only checks still show the site's true state; the
restart cell says trading stays STOPPED and either how to start it by hand or why not to; the
criteria fail, the escalation is level 2 or more and names the abort; the outcome is a one-line
ProcedureFailed; the site is exactly as it was when Abort was clicked; the journal has the abort and
the failed outcome; P says NOT recovered, takes no verification backup, and the incident stays open.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lab import NotebookPage, Transcript, only_journal, records, site_snapshot

from recovery_lib.checks.gate import trading_gate
from recovery_lib.site.config import load_site
from recovery_lib.site.integrity import check_data

if TYPE_CHECKING:
    from browser_sites import DataLossSite
    from conftest import OfflineContext, Screenshots
    from lab_server import LabServer

pytestmark = pytest.mark.browser

BEFORE_THE_PLAN = (
    "parameters",
    "validate",
    "step:assess",
    "step:select_backup",
    "step:data_loss_window",
    "step:stop_system",
    "step:pre_recovery_backup",
)
AFTER_THE_PLAN = (
    "step:restore",
    "step:replay",
    "step:verify_data",
    "step:reconcile",
    "step:restart",
    "step:success_criteria",
    "step:escalation",
    "step:outcome",
)
WRITING_STEPS = ("step:restore", "step:replay")
# The action named is checked in test_the_abort_names_the_option_that_was_aborted; here any option.
# "restore", or a choice aborted as a whole: "repair or restore".
ACTION = r"(\w+(?: or \w+)*)"
SKIPPED = re.compile(
    r"⏭ Skipped because the procedure was aborted \(aborted by (\S+) at ([0-9: -]+Z): "
    + ACTION
    + r" was not approved\)\. Nothing was done by this step\."
)
ABORTED_BECAUSE = re.compile(
    r"the procedure was aborted: aborted by \S+ at [0-9: -]+Z: " + ACTION + r" was not approved"
)


@dataclass
class Aborted:
    site: DataLossSite
    transcript: Transcript
    at_abort: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    after: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    pid_at_abort: int | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    journals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gate_failing: list[str] = field(default_factory=list)
    data_ok: bool | None = None
    data_summary: str = ""
    reconciled: bool | None = None
    reconciliation: str = ""
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def aborted(
    data_loss_sites: Callable[..., DataLossSite],
    lab_servers: Callable[[Path], LabServer],
    offline_contexts: Callable[[], OfflineContext],
    screenshot_dirs: Callable[[str], Screenshots],
) -> Iterator[Aborted]:
    site = data_loss_sites("abort")
    server = lab_servers(site.root)
    offline = offline_contexts()
    page = offline.new_page()
    shots = screenshot_dirs("test_abort_at_the_restore")
    record = Aborted(site=site, transcript=Transcript())
    procedure = NotebookPage(page, server, "B_data_recovery.ipynb", shots, "B", record.transcript)
    procedure.open()
    procedure.run_through(BEFORE_THE_PLAN)
    procedure.run("step:dry_run")
    # Trading is stopped (step 4): from here on nothing in the site may change but the journal.
    record.pid_at_abort = site.trading_pid()
    record.at_abort = site_snapshot(site.root, skip=("incidents",), everything=True)
    procedure.click_button("step:dry_run", "Abort")
    for tag in AFTER_THE_PLAN:
        procedure.run(tag)
    post = NotebookPage(page, server, "P_post_recovery.ipynb", shots, "P", record.transcript)
    post.open()
    post.run_all_approving()
    record.after = site_snapshot(site.root, skip=("incidents",), everything=True)
    gate = trading_gate(load_site(site.root))  # the site's true state, read by the library directly
    record.gate_failing = [check.name for check in gate.failing]
    data = check_data(load_site(site.root))
    record.data_ok, record.data_summary = data.ok, data.summary()
    (reconciliation,) = [check for check in gate.checks if check.name == "reconciliation"]
    record.reconciled, record.reconciliation = reconciliation.ok, reconciliation.detail
    record.journals, _, record.entries = only_journal(site.root)
    record.blocked = list(offline.blocked)
    record.transcript.write(shots.directory / "rendered-outputs.txt")
    yield record


def test_the_abort_click_is_shown_under_the_plan(aborted: Aborted) -> None:
    (click,) = [c for c in aborted.transcript.clicks if c.label == "Abort"]
    assert click.tag == "step:dry_run" and "ABORTED by " in click.widget_text, click.widget_text
    assert "Nothing was changed by this step; the procedure stops here" in click.widget_text
    assert aborted.transcript.approved() == ["stop_system", "backup"], aborted.transcript.clicks


def test_no_cell_shows_a_traceback(aborted: Aborted) -> None:
    bad = [f"{run.notebook} {run.tag}" for run in aborted.transcript.runs if run.traceback]
    assert not bad, bad
    waiting = [
        f"{run.notebook} {run.tag}" for run in aborted.transcript.runs[-len(AFTER_THE_PLAN) :] if run.waits_for_approval
    ]
    assert not waiting, f"cells asked for approval after the abort: {waiting}"
    assert aborted.blocked == []


def test_every_writing_step_says_it_was_skipped_because_of_the_abort(aborted: Aborted) -> None:
    for tag in WRITING_STEPS:
        run = aborted.transcript.last("B", tag)
        found = SKIPPED.search(run.text)
        assert found, f"{tag}:\n{run.text}"
        assert not run.errors, run.errors


def test_the_abort_names_the_option_that_was_aborted(aborted: Aborted) -> None:
    """The plan recommended (and the radio button had selected) the restore; Abort was clicked on it.
    Every message and the journal name the restore (alone, or the choice as a whole: "repair or
    restore"), never only the other option."""
    plan = aborted.transcript.last("B", "step:dry_run").text
    assert "→ recommended: Restore the data from backup" in plan, plan
    named = {tag: SKIPPED.search(aborted.transcript.last("B", tag).text) for tag in WRITING_STEPS}
    named["step:restart"] = ABORTED_BECAUSE.search(aborted.transcript.last("B", "step:restart").text)
    actions = {tag: found.groups()[-1] if found else None for tag, found in named.items()}
    assert all(action and "restore" in action.split(" or ") for action in actions.values()), actions
    (abort,) = records(aborted.entries, "B", "aborted")
    assert "restore" in abort["value"]["action"].split(" or "), abort["value"]
    (halted,) = records(aborted.entries, "B", "halted")
    assert re.search(r"(^| or )restore( or \w+)* was not approved$", halted["value"]["reason"]), halted["value"]


def test_read_only_checks_still_show_the_true_state(aborted: Aborted) -> None:
    """Verify data and reconcile change nothing: after an abort they still say where the site stands."""
    assert aborted.data_ok is False, "the data was never recovered, so the data check must fail"
    verify = aborted.transcript.last("B", "step:verify_data")
    assert "Skipped" not in verify.text and verify.tables, verify.text
    (check,) = [row for row in verify.table() if row["file"] == "data check"]
    assert check[""] == "❌ INCONSISTENT" and check["note"] == aborted.data_summary, (check, aborted.data_summary)
    reconcile = aborted.transcript.last("B", "step:reconcile")
    assert "Skipped" not in reconcile.text, f"reconcile is read-only, yet it was skipped:\n{reconcile.text}"
    mark = {True: "✅", False: "❌", None: "⚪"}[aborted.reconciled]
    assert f"{mark} {aborted.reconciliation}" in reconcile.text, (reconcile.text, aborted.reconciliation)


def test_the_restart_cell_says_trading_stays_stopped_and_what_to_do(aborted: Aborted) -> None:
    text = aborted.transcript.last("B", "step:restart").text
    assert "⛔ Trading NOT restarted. It stays STOPPED. Because:" in text, text
    assert ABORTED_BECAUSE.search(text), text
    if aborted.gate_failing:
        assert "Do not start it by hand: the site fails " in text, text
        assert "data check" in text.split("Do not start it by hand", 1)[1], text
    else:
        assert "start it with `cd " in text and "live_ops --site ." in text, text
    assert aborted.site.trading_pid() is None, "trading was started after the abort"
    assert aborted.pid_at_abort is None, "trading ran when Abort was clicked (step 4 should have stopped it)"


def test_criteria_fail_escalation_names_the_abort_and_the_outcome_is_one_line(aborted: Aborted) -> None:
    criteria = aborted.transcript.last("B", "step:success_criteria")
    marks = {row["criterion"]: row[""] for row in criteria.table()}
    assert marks["Data files restored"] == "❌ FAIL" and marks["Trading can safely resume"] == "❌ FAIL", marks
    escalation = aborted.transcript.last("B", "step:escalation").text
    level = re.search(r"Level (\d) \(", escalation)
    assert level and int(level.group(1)) >= 2, escalation
    assert "the recovery procedure was aborted" in escalation, escalation
    outcome = aborted.transcript.last("B", "step:outcome")
    assert len(outcome.errors) == 1, outcome.errors
    (line,) = outcome.errors[0].strip().splitlines()
    assert line.startswith("⛔ ProcedureFailed: Procedure B did NOT recover the system"), line
    assert "aborted by " in line and "Trading is STOPPED" in line, line


def test_the_site_is_exactly_as_it_was_when_abort_was_clicked(aborted: Aborted) -> None:
    changed = sorted(
        key
        for key in aborted.at_abort.keys() | aborted.after.keys()
        if aborted.at_abort.get(key) != aborted.after.get(key)
    )
    assert not changed, f"changed after the abort: {changed}"
    assert len(aborted.site.backups_tagged("pre-recovery")) == 1
    assert not aborted.site.backups_tagged("verified"), "a broken state was backed up as verified"


def test_the_journal_has_the_abort_and_the_failed_outcome(aborted: Aborted) -> None:
    assert len(aborted.journals) == 1, aborted.journals.keys()
    entries = aborted.entries
    names = [entry["name"] for entry in records(entries, "B")]
    for name in ("aborted", "halted", "success_criteria", "escalation", "outcome"):
        assert name in names, f"{name} not in the journal: {names}"
    (abort,) = records(entries, "B", "aborted")
    assert set(abort["value"]["action"].split(" or ")) <= {"restore", "repair"} and abort["value"]["by"], abort
    (halted,) = records(entries, "B", "halted")
    assert halted["value"]["reason"].startswith("aborted by "), halted
    (outcome,) = records(entries, "B", "outcome")
    assert outcome["value"]["success"] is False and outcome["value"]["trading_running"] is False
    refused = [e for e in entries if e["kind"] == "decision" and e["name"] in ("restore", "repair")]
    assert refused and all(e["value"]["approved"] is False and e["value"]["via"] == "widget" for e in refused)
    assert (escalation := records(entries, "B", "escalation")[-1]["value"])["level"] >= 2, escalation
    assert "restore_result" not in names and "remedy" not in names and "restart_system" in names
    assert not [e for e in entries if e["kind"] == "closed"], "an incident that was not recovered was closed"


def test_post_recovery_says_not_recovered_and_keeps_the_incident_open(aborted: Aborted) -> None:
    assert not aborted.transcript.approved("P"), "P asked for approval of a backup of a broken state"
    summary = aborted.transcript.last("P", "step:incident_summary").pairs()
    recovered = summary["Recovered"]
    assert recovered.startswith("❌ NO"), summary
    assert "aborted" in recovered or "B: " in recovered, recovered
    assert summary["Procedures"].startswith("B FAILED"), summary
    assert "B (journal)" in summary["Read from"], summary
    backup = aborted.transcript.last("P", "step:verification_backup").text
    assert "Not taken" in backup, backup
    notification = aborted.transcript.last("P", "step:notification").text
    assert "NOT recovered" in notification and "stays OPEN" in notification, notification
    level = re.search(r"Level (\d) \(", aborted.transcript.last("P", "step:escalation").text)
    assert level and int(level.group(1)) >= 2
