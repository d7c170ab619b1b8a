"""Midway drills (issue 17): the procedure halts at a fault injected in the middle of it and is resumed
from the step that failed; the drill recovers only if the resumed run does.

The fault is real and works as root and headless: the first run's ``approve`` lacks the approval of the
procedure's main change (as if it had been refused by mistake), so the procedure halts at the step that
needs it; for ``trading_restarted`` the drill also starts the trading process again between the runs.

Each drill runs on the ``sandbox`` fixture's site (``--site``), so that what both runs did is still there
to count afterwards: nothing may have been done twice (one stop, one pre-recovery backup, one restore).
A drill costs 5-15 s; the module runs six of them (about a minute and a quarter on 2 cores).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.cli import main as cli
from recovery_lib.drills.history import JOURNAL_COPY, drill_row, load_records
from recovery_lib.drills.midway import WITHHELD, chosen_midway
from recovery_lib.drills.runner import DrillResult, run_drill
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.runbook.records import (
    NotebookRecords,
    drill_of,
    halted_of,
    outcome_of,
    read_notebook,
    resume_of,
    run_of,
)
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status

# scenario -> (its procedure, a fault whose procedure needs the withheld approval: restore for A-C)
DRILLS = {
    "config": ("A", "unparseable"),
    "data": ("B", "files_deleted"),
    "full": ("C", "everything"),
    "backup": ("D", "newest_corrupted"),
}
STOPS_TRADING = ("A", "B", "C")


def journal(result: DrillResult) -> list[dict[str, Any]]:
    """The incident journal the drill kept beside its notebooks (both runs of the procedure are in it)."""
    lines = (result.run_dir / JOURNAL_COPY).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def ok_records(entries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("kind") == "record" and e.get("name") == name and e["value"].get("ok")]


def records(result: DrillResult, suffix: str) -> NotebookRecords:
    (path,) = [p for p in result.notebooks if p.name.endswith(suffix)]
    return read_notebook(path)


def drill(scenario: str, site: Path, outputs: Path, midway: str) -> tuple[DrillResult, list[str]]:
    lines: list[str] = []
    variant = DRILLS[scenario][1]
    result = run_drill(scenario, outputs, site_dir=site, variant=variant, midway=midway, say=lines.append)
    assert result.recovered, f"{result.failure}\n" + "\n".join(lines)
    return result, lines


def check_halted_then_resumed(result: DrillResult, lines: list[str], fault: str) -> tuple[NotebookRecords, ...]:
    """The records both runs left, the drill record, the history row and the output lines."""
    letter = DRILLS[result.scenario][0]
    names = [p.name for p in result.notebooks]
    stem = Path(names[1]).stem.split("_", 1)[1]
    assert names[1] == f"02_{stem}.ipynb" and names[2] == f"03_{stem}-resumed.ipynb", names
    assert names[-2].endswith("_V_verification.ipynb") and names[-1].endswith("_P_post_recovery.ipynb")
    halted, resumed, post = (
        read_notebook(result.notebooks[1]),
        read_notebook(result.notebooks[2]),
        records(result, "_P_post_recovery.ipynb"),
    )
    # The halted run: not a success, halted at the approval it was refused.
    outcome = outcome_of(halted)
    assert outcome.get("success") is False
    refused = [a["action"] for a in outcome.get("approvals", []) if a.get("approved") is False]
    assert refused and set(refused) <= set(WITHHELD[letter]), refused
    assert refused[0] in halted_of(halted)["reason"] and refused[0] in outcome["halted"]  # it names it
    # The resumed run: the same procedure, from the halted run, in the same incident; it recovered.
    halted_run, resumed_run = run_of(halted), run_of(resumed)
    assert resumed_run["procedure"] == halted_run["procedure"] == letter
    assert resumed_run["resumed_from"] == halted_run["run_id"]
    assert resumed_run["incident_id"] == halted_run["incident_id"] == result.run_id
    resume = resume_of(resumed)
    assert resume["resumed_from"] == halted_run["run_id"] and resume["failed_step"]
    assert outcome_of(resumed).get("success") is True
    # The drill record names what was withheld, which run halted at which step, which run resumed it.
    midway = drill_of(post)["midway"]
    assert midway["fault"] == fault and midway["withheld"] == list(WITHHELD[letter])
    assert midway["halted_run"] == halted_run["run_id"] and midway["resumed_run"] == resumed_run["run_id"]
    assert midway["halted_step"] == resume["failed_step"] and midway["replayed"] == resume["replay"]
    assert drill_of(halted)["midway"]["withheld"] == list(WITHHELD[letter])  # recorded in the halted run too
    # The history counts the drill as recovered (the resumed run supersedes the halted one) and says so.
    row = drill_row(result.run_dir)
    assert row is not None and row["outcome"] == "recovered" and row["failed_step"] is None
    assert row["procedure"].split("+")[0] == letter and f"{letter}+{letter}" not in row["procedure"]
    assert row["resumed"] == f"{letter} at {resume['failed_step']} from run {halted_run['run_id']}"
    said = "\n".join(lines)
    assert f"midway fault {fault}: Procedure {letter}" in said and ", ".join(WITHHELD[letter]) in said
    assert f"resumed Procedure {letter} from run {halted_run['run_id']} as run {resumed_run['run_id']}" in said
    return halted, resumed, post


@pytest.mark.parametrize("scenario", list(DRILLS))
def test_a_drill_halted_midway_is_resumed_and_recovers_without_doing_anything_twice(
    scenario: str, sandbox: Path, tmp_path: Path
) -> None:
    result, lines = drill(scenario, sandbox, tmp_path / "outputs", "approval_refused")
    halted, resumed, _ = check_halted_then_resumed(result, lines, "approval_refused")
    letter = DRILLS[scenario][0]
    resume = resume_of(resumed)
    # Nothing changed between the runs. D replays nothing when it halts at its quarantine: verification and
    # quarantine always run again (D's verdict is about the backups as they are now).
    assert resume["stale"] is None and (resume["replay"] or letter == "D"), resume
    entries = journal(result)
    site = load_site(sandbox)
    backups = RecoveryManager(site=site).list_backups()
    if letter in STOPS_TRADING:
        assert "stop" in resume["replay"]
        stops = ok_records(entries, "stop_system")
        assert len(stops) == 1 and stops[0]["run"] == run_of(halted)["run_id"], stops
        restores = ok_records(entries, "restore_result")
        assert len(restores) == 1 and restores[0]["run"] == run_of(resumed)["run_id"], restores
        if letter in ("B", "C"):  # one pre-recovery backup for the incident, across both runs
            pre = [m.backup_id for m in backups if PRE_RECOVERY_TAG in m.tags]
            assert len(pre) == 1, pre
    else:  # D: the halted run asked for its backups and was refused; the resumed run took one
        emergency = ok_records(entries, "emergency_backup")
        assert len(emergency) == 1 and emergency[0]["run"] == run_of(resumed)["run_id"], emergency
        assert len([m for m in backups if "manual" in m.tags]) == 1
    assert not process_status(site).running  # the drill stopped what it started


def test_trading_restarted_between_the_runs_is_stopped_again_by_the_resumed_run(sandbox: Path, tmp_path: Path) -> None:
    """The trading process comes back after B halted (someone started it): what the halted run did before
    its change is stale, so the resumed run does it again and stops the process again (a stop of its own)
    before it changes anything. (A, whose stop comes first, is drilled through the CLI below.)"""
    result, lines = drill("data", sandbox, tmp_path / "outputs", "trading_restarted")
    halted, resumed, post = check_halted_then_resumed(result, lines, "trading_restarted")
    resume = resume_of(resumed)
    assert drill_of(post)["midway"]["restarted"] == "system running"  # what starting it said
    # B assessed the data before its stop: the restarted process wrote to it, so that is stale first.
    assert resume["stale"] and resume["stale"].split(":")[0] in resume["again"], resume
    assert "stop" in resume["again"] and "stop" not in resume["replay"], resume
    stops = [e for e in ok_records(journal(result), "stop_system") if e["run"] == run_of(resumed)["run_id"]]
    assert len(stops) == 1 and stops[0]["value"]["running_after"] is False, stops
    assert stops[0]["value"]["message"].endswith("system stopped"), stops  # it was running: not "already stopped"
    # The data changed after the halted run's pre-recovery backup: the resumed run took its own, of that state.
    pre = [m for m in RecoveryManager(site=load_site(sandbox)).list_backups() if PRE_RECOVERY_TAG in m.tags]
    assert len(pre) == 2, [m.backup_id for m in pre]


def test_cli_midway_chosen_by_the_seed_is_named_in_the_output_and_the_records_page(
    sandbox: Path, tmp_path: Path
) -> None:
    """``--midway`` without a fault: --seed 1 chooses trading_restarted; Procedure A stops it first, so its
    stop is the stale step. The summary and the records page say the procedure was resumed."""
    outputs = tmp_path / "outputs"
    out = io.StringIO()
    argv = ["drill", "run", "--scenario", "config", "--variant", "unparseable", "--site", str(sandbox)]
    code = cli.main([*argv, "--outputs", str(outputs), "--midway", "--seed", "1"], out=out)
    text = out.getvalue()
    assert code == 0, text
    (row,) = load_records(outputs).to_dict("records")
    assert row["outcome"] == "recovered" and row["resumed"].startswith("A at restore from run A-"), row
    assert "midway fault trading_restarted: Procedure A" in text and f"resumed: {row['resumed']}" in text
    resumed = read_notebook(outputs / row["run_id"] / "03_A_config_recovery-resumed.ipynb")
    assert resume_of(resumed)["stale"].startswith("stop: the trading process runs again"), resume_of(resumed)
    assert row["resumed"] in (outputs / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("drill_args", "why"),
    [
        (["--scenario", "backup", "--variant", "dir_deleted"], "Procedure D does not stop trading"),
        (["--scenario", "full", "--variant", "everything"], "Procedure C recovers a site lost whole"),
        (["--scenario", "data", "--variant", "state_deleted"], "cannot start on the site state_deleted leaves"),
        (["--scenario", "all"], "does not apply"),  # full and backup are among them
    ],
)
def test_cli_midway_refuses_a_fault_that_does_not_apply_before_running_anything(
    drill_args: list[str], why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trading can come back only under A and B, on a site it can run on; said before anything runs."""
    outputs = tmp_path / "outputs"
    argv = ["drill", "run", *drill_args, "--midway", "trading_restarted", "--outputs", str(outputs)]
    assert cli.main(argv, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "--midway: midway fault 'trading_restarted' does not apply to the" in err and why in err
    assert "choose from approval_refused" in err and "Nothing was run" in err
    assert not outputs.exists()


def test_midway_chosen_by_the_seed_is_one_that_applies() -> None:
    assert chosen_midway("data", "files_deleted", True, 0) == "approval_refused"
    assert chosen_midway("data", "files_deleted", True, 1) == "trading_restarted"
    assert chosen_midway("data", "state_deleted", True, 1) == "approval_refused"
    assert chosen_midway("full", "everything", True, 1) == chosen_midway("backup", "dir_deleted", True, 1)
    assert chosen_midway("config", "unparseable", False, 1) is None


def test_cli_midway_rejects_an_unknown_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--scenario", "data", "--midway", "meteor", "--outputs", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "invalid choice: 'meteor'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
