"""Drills: the command line's small commands (``drill due``, ``schedule``, ``drill run`` refusals)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recovery_lib.cli import main as cli
from recovery_lib.drills.history import due_scenario, week_of_month

# --- 6. the command line ----------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_cli_drill_due_names_this_weeks_drill() -> None:
    before = datetime.now(UTC).date()
    code, text = run_cli("drill", "due")
    after = datetime.now(UTC).date()
    assert code == 0
    assert any(
        f"Week {week_of_month(day)} of the month: the {due_scenario(day)} drill is due" in text
        for day in (before, after)
    ), text
    assert "recovery drill run --due" in text


def test_cli_schedule_prints_crontab_lines(sandbox: Path) -> None:
    code, text = run_cli("schedule", "--site", str(sandbox))
    assert code == 0
    assert "CRON_TZ=UTC" in text.splitlines()  # the runbook's times are UTC
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", "CRON_TZ="))]
    assert len(lines) == 3, text
    daily, weekly, drill = (line.split() for line in lines)
    assert daily[:5] == ["0", "2", "*", "*", "*"] and daily[6:8] == ["backup", "create"]
    assert "daily" in daily and str(sandbox.resolve()) in lines[0]
    assert weekly[:5] == ["0", "3", "*", "*", "0"] and weekly[6:8] == ["backup", "create"]
    assert "weekly" in weekly and str(sandbox.resolve()) in lines[1]
    assert drill[2:4] == ["*", "*"] and drill[4] in {str(d) for d in range(7)}, "a weekly drill"
    assert drill[6:9] == ["drill", "run", "--due"]
    assert "--outputs" in drill
    for fields in (daily, weekly, drill):
        assert Path(fields[5]).name == "recovery", "cron must call the recovery command by full path"


def test_cli_drill_run_help_documents_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--scenario", "--due", "--outputs", "--site", "--seed"):
        assert option in text, option
    assert "{config,data,full,backup,all}" in text
    assert "Exits 0 only if every scenario recovered" in " ".join(text.split())


def test_cli_drill_run_rejects_an_unknown_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["drill", "run", "--scenario", "meteor", "--outputs", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "invalid choice: 'meteor'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
