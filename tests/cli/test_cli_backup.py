"""`recovery backup ...` and `recovery restore`: exit codes, output, and that refusals change nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from recovery_lib.cli.main import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith("backups/")
    }


def test_backup_create_list_verify(sandbox: Path) -> None:
    code, text = run("backup", "create", "--site", str(sandbox), "-m", "nightly", "--tag", "daily")
    assert code == 0 and text.startswith("Backup ") and "(full)" in text
    backup_id = text.split()[1]
    code, text = run("backup", "create", "--site", str(sandbox), "--config")
    assert code == 0 and "(config)" in text
    code, text = run("backup", "list", "--site", str(sandbox), "--json")
    listing = json.loads(text)
    assert [b["backup_type"] for b in listing["backups"]] == ["config", "full"]
    assert listing["backups"][1]["backup_id"] == backup_id and listing["backups"][1]["tags"] == ["daily"]
    code, text = run("backup", "list", "--site", str(sandbox), "--tag", "daily")
    assert code == 0 and backup_id in text and "nightly" in text and "config-" not in text
    code, text = run("backup", "verify", backup_id, "--read-data", "--site", str(sandbox))
    assert code == 0 and text.startswith("✅") and "contents hashed" in text


def test_verify_reports_damage_and_exits_1(sandbox: Path) -> None:
    _, text = run("backup", "create", "--site", str(sandbox))
    backup_id = text.split()[1]
    damaged = sandbox / "backups" / backup_id / "data" / "positions.csv"
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes().replace(b"BTC", b"XXX", 1))
    code, text = run("backup", "verify", backup_id, "--read-data", "--json", "--site", str(sandbox))
    report = json.loads(text)[0]
    assert code == 1 and not report["ok"]
    assert report["problems"] == [
        {"path": "data/positions.csv", "kind": "hash", "detail": "contents differ from the manifest (corrupted)"}
    ]


def test_restore_dry_run_then_yes(sandbox: Path) -> None:
    run("backup", "create", "--site", str(sandbox))
    config = sandbox / "config" / "config.toml"
    good = config.read_bytes()
    config.write_text("[trading\n")
    before = tree(sandbox)
    code, text = run("restore", "latest", "--config", "--dry-run", "--site", str(sandbox))
    assert code == 0 and "replace   config/config.toml" in text and "Dry run: nothing was changed." in text
    assert tree(sandbox) == before
    code, text = run("restore", "latest", "--config", "--yes", "--site", str(sandbox))
    assert code == 0 and "Restored config from" in text and "Pre-recovery backup:" in text
    assert config.read_bytes() == good


def test_restore_needs_yes_when_not_on_a_terminal(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run("backup", "create", "--site", str(sandbox))
    (sandbox / "config" / "config.toml").write_text("broken")
    before = tree(sandbox)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _ = run("restore", "latest", "--config", "--site", str(sandbox))
    assert code == 2 and "pass --yes" in capsys.readouterr().err
    assert tree(sandbox) == before


def test_restore_without_a_category_or_backup(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("restore", "latest", "--site", str(sandbox))
    assert code == 2 and "--config, --state, --data or --all" in capsys.readouterr().err
    code, _ = run("restore", "latest", "--all", "--site", str(sandbox))
    assert code == 2 and "no SUCCESS backup" in capsys.readouterr().err
    code, _ = run("restore", "20990101T000000Z-full-abcdef", "--all", "--yes", "--site", str(sandbox))
    assert code == 2 and "no backup '20990101T000000Z-full-abcdef'" in capsys.readouterr().err


def test_prune_dry_run_then_for_real(sandbox: Path) -> None:
    ids = [run("backup", "create", "--site", str(sandbox))[1].split()[1] for _ in range(3)]
    code, text = run("backup", "prune", "--keep-last", "1", "--dry-run", "--site", str(sandbox))
    assert code == 0 and "keep 1, remove 2" in text
    assert sorted(p.name for p in (sandbox / "backups").iterdir() if not p.name.startswith(".")) == sorted(ids)
    code, text = run("backup", "prune", "--keep-last", "1", "--site", str(sandbox))
    assert code == 0 and text.startswith("Pruned: keep 1, remove 2")
    assert [p.name for p in (sandbox / "backups").iterdir() if not p.name.startswith(".")] == [ids[-1]]


def test_prune_refuses_an_empty_policy(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("backup", "create", "--site", str(sandbox))
    code, _ = run("backup", "prune", "--site", str(sandbox))
    assert code == 2 and "empty retention policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["backup", "prune", "--keep-within", "soon"], ["backup", "prune", "--keep-daily", "x"]]
)
def test_prune_bad_values_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and "usage: recovery backup prune" in capsys.readouterr().err


def test_partial_backup_exits_1_and_names_the_file(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import recovery_lib.backup.create as create

    real = create.copy_and_hash

    def unreadable(source: Path, target: Path, mode: int):  # noqa: ANN202
        if Path(source).name == "trades.csv":
            raise PermissionError(13, "Permission denied", str(source))
        return real(source, target, mode)

    monkeypatch.setattr(create, "copy_and_hash", unreadable)
    code, _ = run("backup", "create", "--site", str(sandbox))
    err = capsys.readouterr().err
    assert code == 1 and "PARTIAL" in err and "data/trades.csv: cannot be read (Permission denied)" in err
    # Verify finds it intact as stored, and still says it is PARTIAL: never a plain "✅ OK".
    code, text = run("backup", "verify", "all", "--site", str(sandbox))
    (line,) = [line for line in text.splitlines() if "PARTIAL" in line]
    assert code == 0 and line.startswith("⚠️ ") and "OK as stored, but PARTIAL: 1 file(s) were never captured" in line


def test_help_of_backup_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        (["backup"], "prune"),
        (["backup", "create"], "--tag"),
        (["backup", "verify"], "--read-data"),
        (["backup", "prune"], "--keep-within"),
        (["restore"], "--dry-run"),
    ]:
        with pytest.raises(SystemExit) as caught:
            main([*argv, "--help"])
        assert caught.value.code == 0
        assert expected in capsys.readouterr().out


def test_latest_is_the_newest_backup_holding_the_asked_category(sandbox: Path) -> None:
    _, text = run("backup", "create", "--site", str(sandbox))
    full_id = text.split()[1]
    run("backup", "create", "--site", str(sandbox), "--config", "--tag", "pre-deploy")  # newer, config only
    (sandbox / "data" / "trades.csv").unlink()
    code, text = run("restore", "latest", "--data", "--dry-run", "--site", str(sandbox))
    assert code == 0 and f"backup {full_id}" in text and "create    data/trades.csv" in text


def test_refusal_while_running_says_where_to_run_the_stop_command(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    run("backup", "create", "--site", str(sandbox))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "live_ops"])
    try:
        (sandbox / "run" / "live_ops.pid").write_text(f"{process.pid}\n")
        code, _ = run("restore", "latest", "--config", "--yes", "--site", str(sandbox))
        err = capsys.readouterr().err
        assert code == 2 and f"stop it with: cd {sandbox.resolve()} && " in err
        assert "running (running" not in err
    finally:
        process.kill()
        process.wait()


def test_declining_the_restore_at_the_prompt_exits_non_zero(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a new user: answering 'n' exited 0, which a script would read as 'restored'."""
    import recovery_lib.cli.restore as cli_restore

    assert run("backup", "create", "--site", str(sandbox))[0] == 0
    (sandbox / "config" / "config.toml").write_text("broken = \n")
    before = tree(sandbox)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(cli_restore, "_confirm", lambda prompt: False)
    code, out = run("restore", "latest", "--config", "--site", str(sandbox))
    assert code == 1 and "Not applied; nothing was changed." in out
    assert tree(sandbox) == before


def remove_metadata(backup: Path) -> None:
    """Delete a backup's metadata.json (backups are read-only: open the directory first)."""
    backup.chmod(0o755)
    (backup / "metadata.json").unlink()


def test_verify_all_lists_a_backup_without_metadata_as_failing(sandbox: Path) -> None:
    """Found in issue 11: with metadata.json gone, `verify all` exited 0 and left the backup out."""
    good = run("backup", "create", "--site", str(sandbox))[1].split()[1]
    broken = run("backup", "create", "--site", str(sandbox))[1].split()[1]
    remove_metadata(sandbox / "backups" / broken)

    code, text = run("backup", "verify", "all", "--site", str(sandbox))
    assert code == 1
    assert f"✅ {good}: OK" in text
    assert f"❌ {broken}: unreadable: {broken}/metadata.json is missing" in text

    code, text = run("backup", "verify", "all", "--json", "--site", str(sandbox))
    entries = {entry["backup_id"]: entry for entry in json.loads(text)}
    assert code == 1 and set(entries) == {good, broken}
    assert entries[good]["ok"] is True and entries[good]["unreadable"] is False
    assert entries[broken] == {
        "backup_id": broken,
        "ok": False,
        "unreadable": True,
        "read_data": False,
        "problems": [
            {
                "path": "metadata.json",
                "kind": "metadata",
                "detail": f"{broken}/metadata.json is missing; the backup is incomplete and cannot be used",
            }
        ],
    }
    assert (sandbox / "backups" / broken / "manifest.json").is_file()  # reported, not touched


def test_verify_all_with_only_unreadable_backups_fails_and_names_them(sandbox: Path) -> None:
    broken = run("backup", "create", "--site", str(sandbox))[1].split()[1]
    remove_metadata(sandbox / "backups" / broken)
    code, text = run("backup", "verify", "all", "--read-data", "--site", str(sandbox))
    assert code == 1 and text.startswith(f"❌ {broken}: unreadable: ")


def flip_byte_in_place(path: Path, offset: int = 100) -> None:
    path.parent.chmod(0o755)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_dry_run_refuses_a_damaged_backup_exactly_as_the_real_run_does(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: `--dry-run` showed a clean plan for a damaged backup that `--yes` then refused."""
    backup_id = run("backup", "create", "--site", str(sandbox))[1].split()[1]
    flip_byte_in_place(sandbox / "backups" / backup_id / "data" / "trades.csv")  # not even a restored category
    (sandbox / "config" / "config.toml").write_text("[trading\n")  # the fault a config restore would fix
    before = tree(sandbox)
    backups_before = sorted(p.name for p in (sandbox / "backups").iterdir())

    dry_code, dry_out = run("restore", backup_id, "--config", "--dry-run", "--site", str(sandbox))
    dry_err = capsys.readouterr().err
    real_code, real_out = run("restore", backup_id, "--config", "--yes", "--site", str(sandbox))
    real_err = capsys.readouterr().err

    assert dry_code == real_code == 2
    assert dry_err == real_err
    assert f"backup {backup_id} fails verification, restore refused and the site was not changed" in dry_err
    assert "data/trades.csv: hash: contents differ from the manifest (corrupted)" in dry_err
    assert "Dry run" not in dry_out and dry_out == real_out == ""
    assert tree(sandbox) == before  # nothing restored
    assert sorted(p.name for p in (sandbox / "backups").iterdir()) == backups_before  # no pre-recovery backup
