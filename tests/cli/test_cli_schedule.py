"""``recovery schedule install|status`` through the command line: plan, then apply; exit statuses."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from schedule_helpers import crontab_bytes, make_site, user_crontab  # noqa: F401 - a fixture

from recovery_lib.cli import main as cli


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_dry_run_prints_the_plan_the_real_run_applies(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["*-*-* 02:00"], ["Mon *-*-* 04:00"])
    before = tree(tmp_path)
    code, planned = run_cli("schedule", "install", "--systemd", "--dry-run", "--site", str(site.root))
    assert code == 0 and planned.endswith("Dry run: nothing was written or run.\n")
    assert tree(tmp_path) == before and not (tmp_path / "units").exists()
    code, done = run_cli("schedule", "install", "--systemd", "--site", str(site.root))
    assert code == 0
    plan_text = planned.removesuffix("\nDry run: nothing was written or run.\n")
    assert done.startswith(plan_text), "the real run applies the very plan the dry run printed"
    for unit in (tmp_path / "units").iterdir():
        assert f"--- write {unit}\n{unit.read_text().rstrip()}" in plan_text  # full contents shown
        assert f"Done: wrote {unit}" in done
    assert "Written; " in done and "systemd does not read" in done  # said where it cannot be missed
    code, status = run_cli("schedule", "status", "--site", str(site.root))
    # Exit 0 as documented, but saying only what is known: nobody here can say whether it runs.
    cannot = f"whether anything runs it cannot be checked here: the unit directory {tmp_path / 'units'} is not"
    assert code == 0 and f"OK: every declared entry is installed; {cannot}" in status
    assert f"will run: installed; {cannot}" in status and "unknown" not in status


def test_status_json_and_exit_1_naming_what_to_run(tmp_path: Path) -> None:
    site = make_site(tmp_path / "prod", ["*-*-* 02:00", "Sun *-*-* 03:00"])
    code, text = run_cli("schedule", "status", "--json", "--site", str(site.root))
    payload = json.loads(text)
    assert code == 1 and payload["ok"] is False and payload["installed"] is False
    assert f"recovery schedule install --systemd --site {site.root}" in payload["problems"][0]
    run_cli("schedule", "install", "--systemd", "--site", str(site.root))
    code, text = run_cli("schedule", "status", "--json", "--site", str(site.root))
    payload = json.loads(text)
    assert code == 0 and payload["ok"] is True and payload["scheduler"] == "systemd" and payload["active"] is None
    assert [d["entry"] for d in payload["declared"] if d["installed"]] == ["*-*-* 02:00", "Sun *-*-* 03:00"]
    (tmp_path / "units" / "recovery-prod-one-backup.timer").unlink()  # half of it gone
    code, text = run_cli("schedule", "status", "--site", str(site.root))
    assert code == 1 and "NOT INSTALLED" in text and "PROBLEM: not installed" in text
    assert "recovery schedule install --systemd" in text


def _retime(units: Path) -> str:
    timer = units / "recovery-prod-one-backup.timer"
    timer.write_text(timer.read_text().replace("OnCalendar=*-*-* 02:00:00 UTC", "OnCalendar=*-*-* 05:00:00 UTC"))
    return f"no OnCalendar= in {timer} fires at these times"


def _other_site(units: Path) -> str:
    service = units / "recovery-prod-one-backup.service"
    other = units.parent / "other"
    service.write_text(service.read_text().replace(f"--site {units.parent / 'prod'}", f"--site {other}"))
    return f"{service} runs the backup of another site, {other}"


def _no_service(units: Path) -> str:
    (units / "recovery-prod-one-backup.service").unlink()
    return f"no unit file {units / 'recovery-prod-one-backup.service'}"


@pytest.mark.parametrize("change", [_retime, _other_site, _no_service])
def test_not_installed_says_why(tmp_path: Path, change: Callable[[Path], str]) -> None:
    site = make_site(tmp_path / "prod", ["*-*-* 02:00"])
    run_cli("schedule", "install", "--systemd", "--site", str(site.root))
    why = change(tmp_path / "units")
    code, text = run_cli("schedule", "status", "--site", str(site.root))
    assert code == 1 and f"backup '*-*-* 02:00': NOT INSTALLED ({why})" in text, text
    code, text = run_cli("schedule", "status", "--json", "--site", str(site.root))
    assert code == 1 and json.loads(text)["declared"][0]["why"] == why


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize("scheduler", ["--systemd", "--cron"])
def test_nothing_declared_is_refused_exit_2(
    tmp_path: Path, scheduler: str, dry_run: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path / "prod")
    before = tree(tmp_path)
    cron_before = crontab_bytes() if shutil.which("crontab") else None
    code, out = run_cli("schedule", "install", scheduler, *(["--dry-run"] if dry_run else []), "--site", str(site.root))
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert "declares no schedule" in err and "[backups] schedule" in err and "recovery.toml" in err
    assert tree(tmp_path) == before
    if shutil.which("crontab"):
        assert crontab_bytes() == cron_before


@pytest.mark.usefixtures("user_crontab")
@pytest.mark.skipif(shutil.which("crontab") is None, reason="no crontab here (Debian: apt-get install cron)")
@pytest.mark.parametrize("dry_run", [True, False])
def test_cron_refuses_what_it_cannot_express_in_dry_run_and_real_run(
    tmp_path: Path, dry_run: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path / "prod", ["Mon *-*-01..07 02:00"])
    code, out = run_cli("schedule", "install", "--cron", *(["--dry-run"] if dry_run else []), "--site", str(site.root))
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert "'Mon *-*-01..07 02:00'" in err and "--systemd" in err
    assert crontab_bytes() is None


def test_a_unit_directory_that_cannot_be_written_fails_exit_1_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "units").write_text("a file where the unit directory belongs")
    site = make_site(tmp_path / "prod", ["daily"])
    code, _ = run_cli("schedule", "install", "--systemd", "--site", str(site.root))
    err = capsys.readouterr().err
    assert code == 1 and "cannot write the units" in err and "nothing was written" in err
    assert (tmp_path / "units").read_text() == "a file where the unit directory belongs"


def test_help_names_both_schedulers_and_the_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["schedule", "install", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--systemd", "--cron", "--dry-run", "Persistent=true", "CRON_TZ=UTC"):
        assert words in text, words
