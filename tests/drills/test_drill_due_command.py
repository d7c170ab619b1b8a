"""``recovery drill due`` and ``recovery drill run --due``: the schedule against the records, by command.

Records are written as drills write them (drill_records.py) with a start of "now", which lies in or
after every scenario's slot whatever the day; one real catch-up drill runs through ``drill run --due``.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from drill_records import write_drill

from recovery_lib.catalog import DRILLS
from recovery_lib.cli import main as cli
from recovery_lib.drills.due import DUE, OVERDUE, slot_of
from recovery_lib.drills.history import SCHEDULE, load_records


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def expected_state(scenario: str) -> str:
    """DUE while the scenario's week lasts, OVERDUE after (today decides which)."""
    today = datetime.now(UTC).date()
    week = next(w for w, s in SCHEDULE.items() if s == scenario)
    return DUE if today <= slot_of(scenario, week, today).last else OVERDUE


def line_of(text: str, scenario: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith(scenario + " "))


def test_every_scenario_drilled_in_its_slot_exits_0(tmp_path: Path) -> None:
    ids = {scenario: write_drill(tmp_path, scenario, datetime.now(UTC)) for scenario in DRILLS}
    code, text = run_cli("drill", "due", "--outputs", str(tmp_path))
    assert code == 0, text
    assert f"Drill records: {tmp_path}" in text
    for scenario in DRILLS:
        fields = line_of(text, scenario)
        assert fields[-2:] == ["recovered", "ok"], fields
    assert text.rstrip().endswith("Every scenario was drilled in its slot.")
    assert len(ids) == 4


def test_a_scenario_never_drilled_or_failed_is_named_and_exits_1(tmp_path: Path) -> None:
    write_drill(tmp_path, "data", datetime.now(UTC))
    write_drill(tmp_path, "full", datetime.now(UTC))
    write_drill(tmp_path, "backup", datetime.now(UTC) - timedelta(minutes=1), recovered=False)
    code, text = run_cli("drill", "due", "--outputs", str(tmp_path))
    assert code == 1, text
    config, backup = line_of(text, "config"), line_of(text, "backup")
    assert config[3:] == ["never", expected_state("config")]
    assert backup[-3:] == ["not", "recovered", expected_state("backup")]
    assert line_of(text, "data")[-1] == "ok"
    assert (
        f"Not drilled in their slot: config, backup. Run them with: recovery drill run --due --outputs {tmp_path}"
        in text
    )


def test_json_gives_every_scenario_and_what_is_due(tmp_path: Path) -> None:
    drilled = write_drill(tmp_path, "config", datetime.now(UTC))
    code, text = run_cli("drill", "due", "--outputs", str(tmp_path), "--json")
    result = json.loads(text)
    assert code == 1
    assert result["records"] == str(tmp_path) and result["due"] == ["data", "full", "backup"]
    config = result["drills"][0]
    assert (config["scenario"], config["state"], config["due"], config["drilled_by"]) == (
        "config",
        "ok",
        False,
        drilled,
    )
    assert config["last_outcome"] == "recovered" and config["slot_first"] <= result["today"]
    assert [d["last_started_at"] for d in result["drills"][1:]] == [None, None, None]


def test_the_records_of_the_site_are_read_without_outputs(
    sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    default = sandbox.parent / f"{sandbox.name}-drill-records"  # recovery.toml names none: beside the site
    for scenario in DRILLS:
        write_drill(default, scenario, datetime.now(UTC))
    code, text = run_cli("drill", "due", "--site", str(sandbox))
    assert code == 0 and f"Drill records: {default}" in text, text

    monkeypatch.setenv("RECOVERY_SITE", str(sandbox))
    assert run_cli("drill", "due")[0] == 0
    monkeypatch.delenv("RECOVERY_SITE")
    monkeypatch.chdir(sandbox)  # a site in the current directory (it holds recovery.toml)
    assert run_cli("drill", "due")[0] == 0

    elsewhere = tmp_path / "records-elsewhere"
    toml = sandbox / "recovery.toml"
    text = toml.read_text()
    # Under the sandbox's [drills] table if it has one, else in a new one.
    toml.write_text(
        text.replace("[drills]\n", f'[drills]\nrecords = "{elsewhere}"\n', 1)
        if "[drills]\n" in text
        else text + f'\n[drills]\nrecords = "{elsewhere}"\n'
    )
    code, text = run_cli("drill", "due", "--site", str(sandbox))
    assert code == 1 and f"Drill records: {elsewhere} (does not exist yet" in text
    assert all(line_of(text, s)[3] == "never" for s in DRILLS)
    assert not elsewhere.exists()  # reading made nothing

    monkeypatch.chdir(tmp_path)  # not a site, no --outputs: say what to pass
    assert cli.main(["drill", "due"]) == 2
    err = capsys.readouterr().err
    assert "Pass --outputs DIR" in err and "--site DIR" in err and f"{tmp_path} holds no recovery.toml" in err


def test_outputs_that_do_not_exist_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drill", "due", "--outputs", str(tmp_path / "typo")]) == 2
    assert f"--outputs {tmp_path / 'typo'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_run_due_with_nothing_due_runs_nothing_and_exits_0(tmp_path: Path) -> None:
    for scenario in DRILLS:
        write_drill(tmp_path, scenario, datetime.now(UTC))
    before = load_records(tmp_path)
    code, text = run_cli("drill", "run", "--due", "--outputs", str(tmp_path))
    assert code == 0, text
    assert "No drill is due: nothing to run." in text and "== drill" not in text
    assert load_records(tmp_path).equals(before)  # no drill ran
    assert not (tmp_path / "index.html").exists()  # and no page was rebuilt (the command's log is in .logs)


def test_run_due_runs_what_the_records_miss_and_then_nothing_is_due(tmp_path: Path) -> None:
    """Catch-up: a timer that missed the config week runs the config drill, and only that one."""
    outputs = tmp_path / "records"
    for scenario in ("data", "full", "backup"):
        write_drill(outputs, scenario, datetime.now(UTC))
    write_drill(outputs, "config", datetime.now(UTC) - timedelta(days=62))  # two months ago: not in its slot

    code, text = run_cli("drill", "run", "--due", "--outputs", str(outputs))

    assert code == 0, text
    assert "Not drilled in their slot: config. Running them now." in text
    assert [line for line in text.splitlines() if line.startswith("== drill")] == ["== drill: config"]
    records = load_records(outputs)
    assert len(records) == 5 and (outputs / "index.html").is_file()
    newest = records.sort_values("started_at").iloc[-1]
    assert (newest["scenario"], newest["outcome"]) == ("config", "recovered")
    code, text = run_cli("drill", "due", "--outputs", str(outputs))
    assert code == 0 and line_of(text, "config")[-1] == "ok", text


@pytest.mark.parametrize("given", [["--scenario", "config"], ["--scenario", "all"], ["--variant", "duplicated_rows"]])
def test_run_due_with_a_scenario_or_variant_is_refused(
    tmp_path: Path, given: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Promise: --due picks the scenarios itself; a --scenario or --variant with it is refused (exit 2)
    before anything runs, not silently ignored (every due drill would run: many CPU-minutes)."""
    write_drill(tmp_path, "config", datetime.now(UTC) - timedelta(days=62))  # something is due
    before = load_records(tmp_path)

    code, text = run_cli("drill", "run", "--due", *given, "--outputs", str(tmp_path))

    assert code == 2
    err = capsys.readouterr().err
    assert "--due picks the scenarios itself" in err and f"drop {given[0]}" in err
    assert "== drill" not in text
    assert load_records(tmp_path).equals(before)
    assert not (tmp_path / "index.html").exists()
