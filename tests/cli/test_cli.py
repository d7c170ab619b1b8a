"""The `recovery` command line: exit codes, output for people and machines, and help."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from recovery_lib.cli.main import build_parser, main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_health_unhealthy_sandbox_exits_1_and_names_failures(sandbox: Path) -> None:
    code, text = run("health", "--site", str(sandbox))
    assert code == 1
    assert "✅ CONFIG" in text and "❌ BACKUPS" in text
    assert "🔴 System unhealthy: backups, process" in text


def test_health_selected_healthy_checks_exit_0(sandbox: Path) -> None:
    code, text = run("health", "--site", str(sandbox), "--check", "config", "--check", "data")
    assert code == 0
    assert "🟢 System healthy" in text
    assert "BACKUPS" not in text


def test_health_json_is_machine_readable(sandbox: Path, tmp_path: Path) -> None:
    report_file = tmp_path / "health.json"
    code, text = run("health", "--site", str(sandbox), "--json", "--json-file", str(report_file))
    payload = json.loads(text)
    assert code == 1
    assert payload["healthy"] is False
    assert set(payload["checks"]) == {
        "config",
        "data",
        "backups",
        "disk",
        "process",
        "exchange",
        "reconciliation",
        "replicas",
    }
    assert payload["checks"]["config"]["healthy"] is True
    assert payload["checks"]["backups"]["message"].startswith("no successful backups")
    assert json.loads(report_file.read_text()) == payload


def test_health_reports_broken_config_with_line(sandbox: Path) -> None:
    (sandbox / "config" / "config.toml").write_text("[trading]\nsymbols = [\n[risk]\n")
    code, text = run("health", "--site", str(sandbox), "--check", "config")
    assert code == 1
    assert "❌ CONFIG" in text and "line" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["health", "--site", "/nonexistent/site"], "does not exist"),
        (["health", "--check", "nosuch"], "unknown check(s) nosuch"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str], message: str, sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sandbox)
    code, _ = run(*argv)
    assert code == 2
    assert message in capsys.readouterr().err


def test_malformed_recovery_toml_exits_2_naming_file_line_key(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sandbox / "recovery.toml").write_text('[backups]\nmax_age_hours = "soon"\n')
    code, _ = run("health", "--site", str(sandbox))
    err = capsys.readouterr().err
    assert code == 2
    assert f"{sandbox / 'recovery.toml'}:2: [backups.max_age_hours]" in err


@pytest.mark.parametrize(
    "argv", [["health", "--json=yes"], ["sandbox"], [], ["sandbox", "create", "x", "--trades", "-1"]]
)
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: recovery" in capsys.readouterr().err


def test_sandbox_create_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "site"
    code, text = run("sandbox", "create", str(target), "--trades", "300", "--reports", "2", "--quiet")
    assert code == 0 and f"Sandbox site created at {target}" in text
    trades = (target / "data" / "trades.csv").read_text().splitlines()
    assert len(trades) == 301
    code, _ = run("sandbox", "create", str(target), "--quiet")
    assert code == 2 and "--force" in capsys.readouterr().err
    assert (target / "data" / "trades.csv").read_text().splitlines() == trades  # refused: nothing changed
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    code, _ = run("sandbox", "create", str(precious), "--force", "--quiet")
    assert code == 2 and "not a sandbox" in capsys.readouterr().err
    assert (precious / "keep.txt").read_text() == "mine"


def test_site_command_shows_resolved_settings(sandbox: Path) -> None:
    code, text = run("site", "--site", str(sandbox))
    settings = json.loads(text)
    assert code == 0
    assert settings["is_sandbox"] is True
    assert settings["process"]["pidfile"] == "run/live_ops.pid"
    assert settings["backup_dir"] == str(sandbox.resolve() / "backups")


def test_internal_errors_are_not_reported_as_unhealthy(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: object, out: object) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr("recovery_lib.cli.site.cmd_site", boom)
    code, _ = run("site", "--site", str(sandbox))
    assert code == 3
    assert "internal error" in capsys.readouterr().err


def test_every_subcommand_has_useful_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        ([], "Exit status"),
        (["health"], "--json-file"),
        (["site"], "recovery.toml"),
        (["sandbox"], "create"),
        (["sandbox", "create"], "--size"),
    ]:
        with pytest.raises(SystemExit) as caught:
            build_parser().parse_args([*argv, "--help"])
        assert caught.value.code == 0
        assert expected in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "recovery"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "health" in done.stdout and "sandbox" in done.stdout


def test_drill_run_rejects_parallel_jobs_on_one_site(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(
        "drill", "run", "--scenario", "all", "--site", str(sandbox), "--jobs", "2", "--outputs", str(tmp_path / "out")
    )
    assert code == 2 and "cannot share" in capsys.readouterr().err
    code, _ = run("drill", "run", "--jobs", "0", "--outputs", str(tmp_path / "out"))
    assert code == 2 and "--jobs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was created, outputs included
