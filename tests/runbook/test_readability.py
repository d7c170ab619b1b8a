"""What a person reads (issue 12, findings 5 and 6): plans show what is lost first, every message names
the problems it counts, no Python repr reaches a person, and the escalation says whom to call first.

Real sites, backups and restores; the step outputs are rendered the way a notebook shows them
(text/plain and text/html) without a kernel.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from IPython.core.formatters import HTMLFormatter, PlainTextFormatter

from recovery_lib.backup.verify import Problem, VerifyReport
from recovery_lib.manager import RecoveryManager
from recovery_lib.rendering import frame_html, frame_text, register_formatters
from recovery_lib.restore.plan import Action, FileAction, RestorePlan, RestoreResult
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.escalation import Facts, assess
from recovery_lib.runbook.notebook import Run, start
from recovery_lib.runbook.steps.backups import BackupVerification
from recovery_lib.site.config import load_site
from recovery_lib.site.integrity import check_data

TRADES = "data/trades.csv"
POSITIONS = "data/positions.csv"
# A dict or list shown raw, a backup id in repr quotes, an object's default repr.
RAW_REPR = re.compile(r"\{'|\['|'\d{8}T\d{6}Z-[^']*'|<[\w.]+ object at 0x")


def assert_readable(*texts: str) -> None:
    for text in texts:
        found = RAW_REPR.search(text)
        assert found is None, f"raw repr {found.group(0)!r} in: {text[max(0, found.start() - 80) : found.end() + 80]}"


def make_run(site: Path, interactive: bool) -> Run:
    """A procedure A run as its validation cell starts it (no kernel)."""
    namespace: dict[str, Any] = {
        "__annotations__": {"site": str, "interactive": bool, "approve": list[str], "operator": str, "kind": str},
        "site": str(site),
        "interactive": interactive,
        "approve": [],
        "operator": "reader",
        "kind": "drill",
    }
    return start(namespace, procedure="A")


def writable(path: Path) -> None:
    for target in (path.parent, path):
        if target.exists():
            target.chmod(stat.S_IMODE(target.stat().st_mode) | stat.S_IWUSR)


def lines_of(path: Path) -> int:
    return path.read_bytes().count(b"\n")


# --- finding 3: a plan shows what it loses first ------------------------------------------------


@pytest.fixture
def newer_site(sandbox: Path) -> tuple[RecoveryManager, str]:
    """After the backup: 402 trades appended, three reports written, two reports lost, positions edited
    (same rows, an older mtime: replaced, but nothing newer is lost)."""
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup(description="Scheduled daily backup", tags=["daily"])
    last = (sandbox / TRADES).read_text().splitlines()[-1].split(",")
    with (sandbox / TRADES).open("a") as handle:
        for n in range(402):
            handle.write(f"{900000 + n},{last[1]},{last[2]},buy,1.0000,{last[5]}\n")
    for report in sorted((sandbox / "data/reports").rglob("*.csv"))[:2]:
        report.unlink()
    for n in range(3):
        (sandbox / f"data/reports/late_{n}.csv").write_text("fill_id\n1\n2\n")
    positions = sandbox / POSITIONS
    positions.write_text(positions.read_text().replace("\n", " \n", 1))  # the same rows, one byte more
    os.utime(positions, ns=(10**18, 10**18))  # 2001: older than the backup's copy
    return manager, backup_id


def test_the_plan_lists_what_it_would_discard_first_and_never_folds_it(
    sandbox: Path, newer_site: tuple[RecoveryManager, str]
) -> None:
    manager, backup_id = newer_site
    plan = manager.plan_restore(backup_id, restore_config=False, restore_data=True)

    lines = plan.summary(limit=1).splitlines()

    heading = next(i for i, line in enumerate(lines) if "WOULD DISCARD NEWER CONTENT" in line)
    assert heading == 2, lines  # right after the counts
    now, then = lines_of(sandbox / TRADES), lines_of(manager._get_backup_dir(backup_id) / TRADES)
    assert now - then == 402
    losses = lines[heading + 1 : heading + 5]
    assert losses[0] == (
        f"  replace   {TRADES}: 402 row(s) newer than the backup ({now:,} line(s) in the site's copy, "
        f"{then:,} in the backup's)"
    )
    for n, line in enumerate(losses[1:]):
        assert line == f"  delete    data/reports/late_{n}.csv: not in the backup; written after it (12 bytes)"
    # The other changes: the first `limit`, the rest counted by kind; no loss is among them.
    size = next(a.size for a in plan.actions if a.path == POSITIONS)
    warnings = [line for line in lines if line.startswith("  WARNING")]
    assert lines[heading + 5 :] == [
        "  Other changes:",
        f"  replace   {POSITIONS} ({size:,} bytes)",
        "  ... and 2 more: 2 create",
        *warnings,
    ]
    assert {item["path"]: item["what"] for item in plan.to_dict()["loses"]} == {
        TRADES: losses[0].split(": ", 1)[1],
        **{f"data/reports/late_{n}.csv": "not in the backup; written after it (12 bytes)" for n in range(3)},
    }
    assert_readable(plan.summary(), plan._repr_html_())


def test_a_plan_of_fifty_thousand_unchanged_files_reads_in_a_screen(tmp_path: Path) -> None:
    unchanged = tuple(FileAction(f"data/reports/r{n:05}.csv", Action.UNCHANGED, 10, "data") for n in range(50_000))
    replaced = tuple(FileAction(f"data/old/o{n:02}.csv", Action.REPLACE, 10, "data") for n in range(25))
    deleted = tuple(FileAction(f"data/extra/e{n:02}.csv", Action.DELETE, 10, "data") for n in range(7))
    lost = (FileAction(TRADES, Action.REPLACE, 10, "data", "402 row(s) newer than the backup"),)
    plan = RestorePlan(
        "b", "2026-11-20T12:00:00Z", ("data",), {"data": ("data",)}, unchanged + lost + replaced + deleted,
        tmp_path, "f",
    )  # fmt: skip

    lines = plan.summary().splitlines()

    assert len(lines) == 2 + 2 + 1 + 20 + 1
    assert lines[3] == f"  replace   {TRADES}: 402 row(s) newer than the backup"
    assert lines[-1] == "  ... and 12 more: 5 replace, 7 delete"


def test_a_restore_result_says_what_it_saved_or_that_there_was_nothing(
    sandbox: Path, newer_site: tuple[RecoveryManager, str]
) -> None:
    manager, backup_id = newer_site
    plan = manager.plan_restore(backup_id, restore_config=False, restore_data=True)
    result = manager.apply_restore(plan)
    assert result.ok and result.pre_recovery_backup_id
    assert f"Previous state saved in backup {result.pre_recovery_backup_id}." in result.summary()

    empty = RestoreResult(plan=plan, ok=True, pre_recovery_backup_id=None)
    assert "Nothing was left to save before the restore (the site was empty)." in empty.summary()
    assert "nothing to save)" not in empty.summary()
    reused = RestoreResult(plan=plan, ok=True, pre_recovery_backup_id="X", pre_recovery_reused=True)
    assert "Previous state already saved in backup X (taken earlier in this incident)." in reused.summary()
    failed = RestoreResult(plan=plan, ok=False, problems=[f"data/r{n}.csv: missing after restore" for n in range(12)])
    assert "data/r9.csv: missing after restore; and 2 more" in failed.summary()
    assert_readable(result.summary(), empty.summary(), failed.summary())


# --- finding 4: every message names the problems it counts ---------------------------------------


def test_the_data_check_names_every_problem_or_counts_the_rest_by_kind(sandbox: Path) -> None:
    trades = sandbox / TRADES
    first_bad = lines_of(trades) + 1
    with trades.open("a") as handle:
        for n in range(25):
            handle.write(f"{800000 + n},2026-11-20T12:00:00Z,BTC/USD,hold,1.0000,43000.0000\n")

    summary = check_data(load_site(sandbox)).summary()

    named = [f"{TRADES} line {first_bad + n}: incomplete or invalid trade row" for n in range(10)]
    assert summary == "; ".join(named) + "; and 15 more: 15 invalid trade row(s)"
    assert "(+" not in summary


def test_a_few_problems_are_all_named(sandbox: Path) -> None:
    for name in ("positions.csv", "trades.csv"):
        (sandbox / "data" / name).unlink()
    summary = check_data(load_site(sandbox)).summary()
    assert summary == f"{POSITIONS} is missing; {TRADES} is missing"


def test_a_backup_verification_names_its_problems_and_counts_the_rest_by_kind() -> None:
    problems = [Problem(f"data/f{n:02}.csv", "hash", "contents differ") for n in range(11)]
    problems += [Problem("data/g.csv", "missing", "data/g.csv is missing")] * 2
    report = VerifyReport("b1", read_data=True, problems=problems)
    summary = report.summary()
    assert summary.startswith("b1: 13 problem(s): data/f00.csv: hash: contents differ; ")
    assert "data/f09.csv: hash: contents differ; and 3 more: 1 hash problem(s), 2 missing problem(s)" in summary


# --- finding 5: no raw Python repr reaches a person ----------------------------------------------


def test_the_step_outputs_hold_no_raw_reprs(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup(description="Scheduled daily backup", tags=["daily"])
    damaged = manager.create_backup(tags=["daily"])
    victim = manager._get_backup_dir(damaged) / POSITIONS
    writable(victim)
    victim.unlink()
    run = make_run(sandbox, interactive=True)

    overview = steps.backups_overview(run)
    choice = steps.choose_backup(run, "latest", needs=("data",))
    choice.widget.widget.value = damaged
    emergency = good  # a backup id, as create_backup returns it
    checklist = steps.criteria_d(run, {"writable": True, "message": "writable"}, BackupVerification(), emergency)
    escalation = assess(Facts(restore_failed=True, no_backup=True), run.site)

    verification = overview.set_index("backup").at[damaged, "verification"]
    assert verification == f"❌ DAMAGED: {POSITIONS}: missing: listed in the manifest, absent from the backup"
    assert (
        dict(zip(checklist.frame()["criterion"], checklist.frame()["evidence"], strict=True))["Can create new backups"]
        == good
    )  # the id itself, not 'its repr'
    assert_readable(
        frame_text(overview),
        frame_html(overview),
        repr(choice),
        choice._repr_html_(),
        choice.widget.bundle()["text/plain"],
        frame_text(checklist.frame()),
        escalation.summary(),
        escalation._repr_html_(),
        check_data(run.site).summary(),
    )


def test_a_string_a_step_returns_is_shown_as_its_text() -> None:
    formatters = {"text/plain": PlainTextFormatter(), "text/html": HTMLFormatter()}
    register_formatters(formatters)
    assert formatters["text/plain"]("20261203T052146Z-full-42715a") == "20261203T052146Z-full-42715a"
    assert formatters["text/plain"]("Nothing left in the site to save.") == "Nothing left in the site to save."
    assert formatters["text/plain"](["a", 1]) == "['a', 1]"  # inside a container, as before


# --- finding 6: the escalation names whom to call first, with the address ------------------------


def test_the_escalation_says_whom_to_call_first(tmp_path: Path) -> None:
    (tmp_path / "recovery.toml").write_text('[escalation.level2]\nname = "Dana"\ncontact = "slack:@dana"\n')
    escalation = assess(Facts(restore_failed=True, no_backup=True), load_site(tmp_path))

    lines = escalation.summary().splitlines()

    assert lines[0] == "Level 2 (Team Lead): call Dana at slack:@dana now."
    assert lines[1] == "Because: recovery procedure failed; no usable backup available."
    assert lines[2] == "Next:" and lines[3].startswith("  1. Call Dana at slack:@dana with this record")
    html = escalation._repr_html_()
    assert html.index("Level 2 (Team Lead): call Dana at slack:@dana now.") < html.index("Because")


def test_an_escalation_without_a_configured_address_says_where_to_set_it(tmp_path: Path) -> None:
    escalation = assess(Facts(criteria_failed=["Config file is valid"]), load_site(tmp_path))
    assert escalation.summary().splitlines()[0] == (
        "Level 2 (Team Lead): call the Team Lead now "
        "(no address configured: set [escalation.level2] contact in recovery.toml)."
    )
    calm = assess(Facts(), load_site(tmp_path)).summary().splitlines()
    assert calm[0].startswith("Level 1 (Self-Service): no one to call now")
