"""Issue 15 part 5: `recovery health` in a directory that is not a site says so, once, and how to point
at one, instead of listing every check as missing. From Python, ``health_check`` does the same for a
directory; a :class:`Site` given by a procedure is checked as it is (mid-incident it may be wiped).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_capture import run
from snapshots import tree

from recovery_lib.checks.default import health_check
from recovery_lib.cli.main import main
from recovery_lib.errors import NotASiteError
from recovery_lib.site.config import Site

RECOVERY_SCRIPT = Path(sys.executable).with_name("recovery")


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory people do run commands in by mistake: a home with notes and a notebooks folder."""
    home = tmp_path / "home"
    (home / "notebooks").mkdir(parents=True)
    (home / "notes.txt").write_text("call the broker\n")
    return home


@pytest.mark.parametrize("how", ["--site", "cwd", "env"])
def test_health_outside_a_site_says_so_once(
    elsewhere: Path, how: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["health", "--json"]
    if how == "--site":
        argv += ["--site", str(elsewhere)]
    elif how == "cwd":
        monkeypatch.chdir(elsewhere)
    else:
        monkeypatch.setenv("RECOVERY_SITE", str(elsewhere))
    before = tree(elsewhere)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""  # no table of checks, no JSON claiming anything about a site that is not one
    expected = (
        f"recovery: error: {elsewhere} is not a site (no recovery.toml and none of config/, state/, data/, "
        "backups/ in it): pass --site DIR or set $RECOVERY_SITE"
    )
    assert err.startswith(expected), err
    assert err.count("\n") == 1  # one line, not one per check
    assert tree(elsewhere) == before  # nothing written into the wrong directory


def test_health_json_file_is_not_written_outside_a_site(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = elsewhere / "health.json"
    code, _, _ = run(capsys, "health", "--site", str(elsewhere), "--json-file", str(report))
    assert code == 2 and not report.exists()


def test_a_site_in_the_middle_of_an_incident_is_still_checked(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Everything lost but the backups: a site with problems, reported check by check (exit 1)."""
    assert main(["backup", "create", "--no-push", "--site", str(sandbox)], out=io.StringIO()) == 0
    for top in ("config", "state", "data"):
        shutil.rmtree(sandbox / top)
    (sandbox / "recovery.toml").unlink()
    code, out, _ = run(capsys, "health", "--json", "--site", str(sandbox))
    assert code == 1
    checks = json.loads(out)["checks"]
    assert checks["config"]["healthy"] is False and checks["data"]["healthy"] is False


def test_health_check_from_python_refuses_a_directory_that_is_not_a_site(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotASiteError, match="is not a site"):
        health_check.run_all(elsewhere)
    with pytest.raises(NotASiteError):
        health_check.run("config", str(elsewhere))
    monkeypatch.chdir(elsewhere)  # the runbook's snippet: health_check.run_all() in the current directory
    with pytest.raises(NotASiteError) as raised:
        health_check.is_system_healthy()
    # In a notebook the error shows as one line, not a traceback (RecoveryError._render_traceback_).
    assert raised.value._render_traceback_() == [f"⛔ NotASiteError: {raised.value}"]


def test_a_site_object_is_checked_as_it_is(elsewhere: Path) -> None:
    """A procedure passes its Site: a site wiped mid-incident is unhealthy, never "not a site"."""
    results = health_check.run_all(Site(root=elsewhere))
    assert not results["config"].healthy and not results["data"].healthy


def test_the_console_script_says_it_without_a_traceback(elsewhere: Path) -> None:
    done = subprocess.run(
        [str(RECOVERY_SCRIPT), "health"], cwd=elsewhere, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{elsewhere} is not a site" in done.stderr and "--site DIR" in done.stderr
