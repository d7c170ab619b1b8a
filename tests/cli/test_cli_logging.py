"""The CLI's logging: a rotating trail for unattended runs, -v/-q on stderr, a log dir that is never a backup."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from recovery_lib.cli import logs
from recovery_lib.cli.drill import drill_log_target
from recovery_lib.cli.main import build_parser, main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def log_of(site: Path) -> Path:
    return site / "backups" / ".logs" / "recovery.log"


def test_backup_create_leaves_a_trail_with_the_backup_id_and_its_decisions(sandbox: Path) -> None:
    code, text = run("backup", "create", "--site", str(sandbox), "--tag", "daily")
    assert code == 0
    backup_id = text.split()[1]
    trail = log_of(sandbox).read_text()
    assert "backup create: config, state, data (none named: all)" in trail  # what it decided to back up
    assert f"backup {backup_id}: unchanged files are linked to none" in trail  # the first: nothing to link
    assert f"backup {backup_id}: stored in {sandbox.resolve() / 'backups'} as success" in trail
    assert "exit 0" in trail
    code, text = run("backup", "create", "--site", str(sandbox), "--config")
    second = text.split()[1]
    trail = log_of(sandbox).read_text()
    assert backup_id in trail and f"backup {second}: unchanged files are linked to {backup_id}" in trail
    assert trail.count("exit 0") == 2  # appended, not replaced


def test_the_log_rotates(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 1500)
    monkeypatch.setattr(logs, "BACKUP_COUNT", 2)
    for _ in range(4):
        assert run("backup", "create", "--site", str(sandbox), "--config")[0] == 0
    names = sorted(p.name for p in log_of(sandbox).parent.iterdir())
    assert names == ["recovery.log", "recovery.log.1", "recovery.log.2"]


def test_log_file_none_writes_no_log(sandbox: Path) -> None:
    assert run("--log-file", "none", "backup", "create", "--site", str(sandbox))[0] == 0
    assert not log_of(sandbox).parent.exists()


def test_an_explicit_log_file_for_any_command(sandbox: Path, tmp_path: Path) -> None:
    target = tmp_path / "cron.log"
    assert run("--log-file", str(target), "backup", "list", "--site", str(sandbox))[0] == 0
    assert "backup(s) listed in" in target.read_text()
    assert not log_of(sandbox).parent.exists()  # only backup create logs to the backup directory by default


def test_a_log_file_in_a_missing_directory_is_bad_input(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "x.log"
    before = sorted((sandbox / "backups").rglob("*"))
    assert run("--log-file", str(missing), "backup", "create", "--site", str(sandbox))[0] == 2
    err = capsys.readouterr().err
    assert "--log-file" in err and str(missing.parent) in err and "does not exist" in err
    assert sorted((sandbox / "backups").rglob("*")) == before  # refused before anything was written


def test_a_refused_backup_leaves_no_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("-v", "backup", "create", "--site", str(empty))[0] == 2
    assert list(empty.iterdir()) == []
    assert "nothing to back up" in capsys.readouterr().err


def test_verbose_shows_decisions_and_quiet_silences_them(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    run("-v", "backup", "create", "--site", str(sandbox))
    loud = capsys.readouterr().err
    assert "recovery: info: backup create: config, state, data" in loud
    run("backup", "create", "--site", str(sandbox))
    assert "info:" not in capsys.readouterr().err  # default: warnings and errors only
    code, text = run("-q", "backup", "create", "--site", str(sandbox))
    assert code == 0 and text.startswith("Backup ")  # the result is still printed
    assert capsys.readouterr().err == ""
    assert log_of(sandbox).read_text().count("backup create: config, state, data") == 3  # -q never quiets the trail


def test_quiet_silences_warnings_but_not_errors(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, text = run("backup", "create", "--site", str(sandbox))
    backup_id = text.split()[1]
    damaged = sandbox / "backups" / backup_id / "data" / "positions.csv"
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes().replace(b"BTC", b"XXX", 1))
    capsys.readouterr()
    assert run("backup", "verify", backup_id, "--read-data", "--site", str(sandbox))[0] == 1
    assert "recovery: warning: backup" in capsys.readouterr().err  # the library's warning, by default
    assert run("-q", "backup", "verify", backup_id, "--read-data", "--site", str(sandbox))[0] == 1
    assert capsys.readouterr().err == ""
    assert run("-q", "backup", "verify", "no-such-backup", "--site", str(sandbox))[0] == 2
    assert "recovery: error: " in capsys.readouterr().err  # errors are never silenced


def test_verbose_and_quiet_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["-v", "-q", "drill", "due"])
    assert caught.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_the_log_dir_is_never_a_backup(sandbox: Path) -> None:
    """list, verify all, prune, and the backups health check all skip backups/.logs."""
    first = run("backup", "create", "--site", str(sandbox))[1].split()[1]
    second = run("backup", "create", "--site", str(sandbox))[1].split()[1]
    assert log_of(sandbox).is_file()
    listing = json.loads(run("backup", "list", "--json", "--site", str(sandbox))[1])
    assert [b["backup_id"] for b in listing["backups"]] == [second, first]
    assert listing["unreadable"] == []
    code, text = run("backup", "verify", "all", "--site", str(sandbox))
    assert code == 0 and ".logs" not in text and text.count("✅") == 2
    code, text = run("backup", "prune", "--keep-last", "1", "--site", str(sandbox))
    assert code == 0 and "keep 1, remove 1" in text and ".logs" not in text
    assert log_of(sandbox).is_file()  # pruning never touches the trail
    code, text = run("health", "--check", "backups", "--json", "--site", str(sandbox))
    assert json.loads(text)["checks"]["backups"]["healthy"] is True, text
    code, text = run("restore", "latest", "--all", "--dry-run", "--site", str(sandbox))
    assert code == 0 and second in text


def test_drill_run_logs_to_its_outputs(tmp_path: Path) -> None:
    """The default target of `drill run` (a drill takes a minute; its wiring is checked here)."""
    args = build_parser().parse_args(["drill", "run", "--outputs", str(tmp_path / "outs")])
    target = drill_log_target(args)
    assert target.path == tmp_path / "outs" / ".logs" / "recovery.log" and target.anchor == tmp_path / "outs"
