"""`recovery replica ...`, `restore --from-replica` and the push after `backup create`, through the CLI.

Against real stores: directories (plain and age-encrypted ``file://`` replicas), moto's S3 server and
OpenSSH's SFTP server. Failure paths check the exit status, that the message names the replica, the
object or the option to use, and that nothing was lost (local backups, the site, the replica).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
from pathlib import Path

import pytest
from pyrage import x25519
from servers import S3Server, SftpServer

from recovery_lib.cli.main import build_parser, main
from recovery_lib.replica.layout import ReplicaConfig, object_key

CATEGORY_DIRS = ("config", "state", "data")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def configure(site: Path, replicas: str) -> str:
    """Replace the sandbox's own ``[[replicas]]`` (the last tables of its recovery.toml) with ``replicas``."""
    toml = site / "recovery.toml"
    text = toml.read_text()
    if "[[replicas]]" in text:
        text = text[: text.index("[[replicas]]")]
    text = text.rstrip("\n") + "\n\n" + replicas
    toml.write_text(text)
    return text


def file_replica(directory: Path, name: str = "offsite", **keys: object) -> str:
    lines = [f'name = "{name}"', f'url = "file://{directory}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "[[replicas]]\n" + "\n".join(lines) + "\n"


def age_key(directory: Path) -> tuple[Path, str]:
    """A fresh age identity in a file outside any site, and its public key (the recipient)."""
    identity = x25519.Identity.generate()
    key_file = directory / "dr-key.txt"
    key_file.write_text(f"# off the trading host\n{identity}\n")
    return key_file, str(identity.to_public())


def tree(root: Path) -> dict[str, bytes]:
    """The files of the site's three categories, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for top in CATEGORY_DIRS
        for p in sorted((root / top).rglob("*"))
        if p.is_file()
    }


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def create(site: Path, *extra: str) -> tuple[str, str]:
    """``backup create``; (the new backup id, the whole output)."""
    code, text = run("backup", "create", "--site", str(site), *extra)
    assert code == 0, text
    return text.split()[1], text


def listing(site: Path, *extra: str) -> tuple[int, list[dict[str, object]]]:
    code, text = run("replica", "list", "--json", "--site", str(site), *extra)
    return code, json.loads(text)


def remote_ids(site: Path, name: str = "offsite") -> list[str]:
    _, entries = listing(site, "--replica", name)
    return [row["backup_id"] for row in entries[0]["backups"]]  # type: ignore[index]


def object_path(replica_dir: Path, content: bytes) -> tuple[str, Path]:
    """The key and file of the object that stores ``content`` in a file:// replica."""
    config = ReplicaConfig.parse((replica_dir / "config.json").read_bytes(), "test")
    key = object_key(config.object_name(hashlib.sha256(content).hexdigest()))
    return key, replica_dir / key


def spoil(path: Path, *, truncate: bool = False) -> None:
    """Change one byte of a replica's object (or cut it short); the store wrote it read-only."""
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = path.read_bytes()
    path.write_bytes(data[:-10] if truncate else data[:-1] + bytes([data[-1] ^ 0xFF]))


def new_host(tmp_path: Path, toml_text: str, name: str = "new-host") -> Path:
    """A brand-new site directory holding only recovery.toml."""
    root = tmp_path / name
    root.mkdir()
    (root / "recovery.toml").write_text(toml_text)
    return root


# --- file:// replicas: the whole flow -------------------------------------------------------------


def test_backup_create_pushes_then_list_shows_the_backup_and_the_push(sandbox: Path, tmp_path: Path) -> None:
    replica_dir = tmp_path / "disk" / "peak-trade"
    replica_dir.parent.mkdir()
    configure(sandbox, file_replica(replica_dir))
    backup_id, text = create(sandbox, "--tag", "nightly")
    assert "Pushed to replica offsite: 1 pushed" in text
    record = json.loads((sandbox / "backups" / ".replicas" / "offsite.json").read_text())
    assert record["ok"] is True and record["pushed"] == [backup_id]
    code, entries = listing(sandbox)
    assert code == 0 and len(entries) == 1
    entry = entries[0]
    assert (entry["kind"], entry["encryption"], entry["push"]) == ("file", "none", "after-backup")
    assert [(b["backup_id"], b["backup_type"], b["tags"]) for b in entry["backups"]] == [
        (backup_id, "full", ["nightly"])
    ]
    assert entry["backups"][0]["files_count"] == len(tree(sandbox)) + 1  # and recovery.toml, in every backup
    assert entry["incomplete"] == [] and entry["last_push"]["ok"] is True
    code, text = run("replica", "list", "--site", str(sandbox))
    assert code == 0
    assert f"offsite: file://{replica_dir}" in text and "kind file, encryption none, push after-backup" in text
    assert backup_id in text and "[nightly]" in text and ": ok (1 backup(s)" in text


def test_push_latest_all_and_one_id(sandbox: Path, tmp_path: Path) -> None:
    replica_dir = tmp_path / "peak-trade"
    configure(sandbox, file_replica(replica_dir, push="manual"))
    ids = []
    for number in range(3):
        (sandbox / "data" / "note.txt").write_text(f"change {number}\n")
        backup_id, text = create(sandbox)
        assert "Push" not in text  # push = "manual": backup create does not push
        ids.append(backup_id)
    assert not replica_dir.exists()
    code, text = run("replica", "push", ids[1], "--site", str(sandbox))
    assert code == 0 and text.startswith("✅ replica offsite: 1 pushed") and f"pushed  {ids[1]}" in text
    assert remote_ids(sandbox) == [ids[1]]
    code, text = run("replica", "push", "--site", str(sandbox))  # latest: the newest, and newer than the replica's
    assert code == 0 and f"pushed  {ids[2]}" in text and ids[0] not in text
    assert remote_ids(sandbox) == [ids[2], ids[1]]
    code, text = run("replica", "push", "all", "--site", str(sandbox))
    assert code == 0 and "1 pushed, 2 already there" in text and f"pushed  {ids[0]}" in text
    assert remote_ids(sandbox) == ids[::-1]
    # An unchanged file is stored once across all three backups.
    objects = [p for p in (replica_dir / "objects").rglob("*") if p.is_file()]
    assert len(objects) == len(tree(sandbox)) + 1 + 2  # recovery.toml; note.txt changed twice more


def test_an_interrupted_push_is_listed_and_the_next_push_completes_it(sandbox: Path, tmp_path: Path) -> None:
    replica_dir = tmp_path / "peak-trade"
    configure(sandbox, file_replica(replica_dir))
    first, _ = create(sandbox)
    (sandbox / "data" / "note.txt").write_text("new\n")
    second, _ = create(sandbox)
    marker_dir = replica_dir / "backups" / second
    marker_dir.chmod(0o755)
    (marker_dir / "metadata.json").unlink()  # as if the push was killed before its commit marker
    code, entries = listing(sandbox)
    assert code == 0 and entries[0]["incomplete"] == [second]
    assert [b["backup_id"] for b in entries[0]["backups"]] == [first]
    code, text = run("replica", "list", "--site", str(sandbox))
    assert f"interrupted push: {second}" in text
    code, text = run("replica", "verify", "--site", str(sandbox))
    assert code == 0 and f"{first}: OK" in text and f"note: interrupted push {second}" in text
    code, _ = run("replica", "verify", second, "--site", str(sandbox))
    assert code == 1
    code, text = run("replica", "push", "--site", str(sandbox))
    assert code == 0 and f"pushed  {second}" in text and "(0 object(s), 0 bytes up" in text  # nothing re-uploaded
    assert remote_ids(sandbox) == [second, first]


def test_push_of_an_unknown_or_malformed_id(sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure(sandbox, file_replica(tmp_path / "peak-trade", push="manual"))
    create(sandbox)
    code, _ = run("replica", "push", "yesterday", "--site", str(sandbox))
    assert code == 2 and "'yesterday' is not a backup id" in capsys.readouterr().err
    code, text = run("replica", "push", "20990101T000000Z-full-abcdef", "--site", str(sandbox))
    assert code == 1 and "FAILED  20990101T000000Z-full-abcdef" in text
    assert json.loads((sandbox / "backups" / ".replicas" / "offsite.json").read_text())["ok"] is False


def test_verify_plain_replica_and_a_corrupted_object_named(sandbox: Path, tmp_path: Path) -> None:
    replica_dir = tmp_path / "peak-trade"
    configure(sandbox, file_replica(replica_dir))
    first, _ = create(sandbox)
    (sandbox / "data" / "positions.csv").write_text("symbol,qty\nBTC,1\n")
    second, _ = create(sandbox)
    code, text = run("replica", "verify", "--site", str(sandbox))
    assert code == 0 and text.startswith(f"✅ offsite: {second}: OK") and first not in text
    code, text = run("replica", "verify", "all", "--read-data", "--site", str(sandbox))
    assert code == 0 and text.count("contents vs manifest") == 2 and "pass --identity" not in text
    trades = (sandbox / "data" / "trades.csv").read_bytes()
    key, path = object_path(replica_dir, trades)
    spoil(path)  # same size: only reading the data finds it
    code, text = run("replica", "verify", "all", "--site", str(sandbox))
    assert code == 0
    code, text = run("replica", "verify", "all", "--read-data", "--site", str(sandbox))
    assert code == 1 and text.count("❌") == 2 and f"\n   {key}" in text  # both backups share the object
    spoil(path, truncate=True)
    code, text = run("replica", "verify", first, "--site", str(sandbox))
    assert code == 1 and f"{key}: size" in text and "truncated" in text
    # Nothing was lost locally: both backups still verify byte for byte.
    code, text = run("backup", "verify", "all", "--read-data", "--site", str(sandbox))
    assert code == 0 and text.count("✅") == 2


def test_verify_of_an_id_not_on_the_replica(sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure(sandbox, file_replica(tmp_path / "peak-trade"))
    backup_id, _ = create(sandbox)
    code, _ = run("replica", "verify", "20990101T000000Z-full-abcdef", "--site", str(sandbox))
    err = capsys.readouterr().err
    assert code == 1 and "replica 'offsite' has no backup 20990101T000000Z-full-abcdef" in err and backup_id in err


def test_encrypted_replica_verify_with_and_without_identity(sandbox: Path, tmp_path: Path) -> None:
    replica_dir = tmp_path / "peak-trade"
    key_file, recipient = age_key(tmp_path)
    configure(sandbox, file_replica(replica_dir, age_recipients=[recipient]))
    backup_id, text = create(sandbox)
    assert "Pushed to replica offsite" in text
    trades = (sandbox / "data" / "trades.csv").read_bytes()
    stored = files_of(replica_dir)
    assert all(trades[:64] not in content for content in stored.values())  # nothing readable off the host
    code, text = run("replica", "verify", "--read-data", "--site", str(sandbox))
    assert code == 0 and "stored bytes" in text
    assert "contents checked as stored; pass --identity to check them against the manifest" in text
    code, text = run("replica", "verify", "--read-data", "--identity", str(key_file), "--site", str(sandbox))
    assert code == 0 and "contents vs manifest" in text and "pass --identity" not in text
    key, path = object_path(replica_dir, trades)
    spoil(path)
    for identity in ([], ["--identity", str(key_file)]):
        code, text = run("replica", "verify", backup_id, "--read-data", *identity, "--site", str(sandbox))
        assert code == 1 and f"\n   {key}" in text, text


def test_pull_brings_back_lost_local_backups(sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replica_dir = tmp_path / "peak-trade"
    key_file, recipient = age_key(tmp_path)
    configure(sandbox, file_replica(replica_dir, age_recipients=[recipient]))
    backup_id, _ = create(sandbox)
    local = sandbox / "backups" / backup_id
    kept = files_of(local)
    for path in [local, *local.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(local)
    code, _ = run("replica", "pull", "latest", "--site", str(sandbox))
    assert code == 2 and "--identity FILE" in capsys.readouterr().err and not local.exists()
    code, text = run("replica", "pull", "latest", "--identity", str(key_file), "--site", str(sandbox))
    assert code == 0 and f"pulled backup {backup_id} from replica offsite" in text
    assert files_of(local) == kept  # byte for byte what was pushed
    code, text = run("backup", "verify", backup_id, "--read-data", "--site", str(sandbox))
    assert code == 0
    code, text = run("replica", "pull", backup_id, "--identity", str(key_file), "--site", str(sandbox))
    assert code == 0 and "already in the local backup directory" in text


def test_prune_dry_run_then_for_real(sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replica_dir = tmp_path / "peak-trade"
    configure(sandbox, file_replica(replica_dir))
    ids = []
    for number in range(3):
        (sandbox / "data" / "note.txt").write_text(f"version {number}\n")
        ids.append(create(sandbox)[0])
    code, _ = run("replica", "prune", "--site", str(sandbox))
    assert code == 2 and "empty retention policy" in capsys.readouterr().err
    before = files_of(replica_dir)
    code, text = run("replica", "prune", "--keep-last", "1", "--dry-run", "--site", str(sandbox))
    assert code == 0 and text.startswith("Dry run, nothing removed: replica offsite:")
    assert f"would remove {ids[0]}" in text and f"would remove {ids[1]}" in text and f"keep   {ids[2]}" in text
    assert files_of(replica_dir) == before
    code, text = run("replica", "prune", "--keep-last", "1", "--site", str(sandbox))
    assert code == 0 and f"removed {ids[0]}" in text and "2 backup(s) and 2 object(s) removed" in text
    assert remote_ids(sandbox) == [ids[2]]
    code, text = run("replica", "verify", "--read-data", "--site", str(sandbox))
    assert code == 0  # what is kept still has every object
    assert sorted(p.name for p in (sandbox / "backups").iterdir() if not p.name.startswith(".")) == sorted(ids)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age"])
def test_restore_latest_from_replica_on_a_brand_new_host(sandbox: Path, tmp_path: Path, encrypted: bool) -> None:
    replica_dir = tmp_path / "disk" / "peak-trade"
    replica_dir.parent.mkdir()
    key_file, recipient = age_key(tmp_path)
    toml_text = configure(sandbox, file_replica(replica_dir, **({"age_recipients": [recipient]} if encrypted else {})))
    full_id, _ = create(sandbox)
    original = tree(sandbox)
    config_id, _ = create(sandbox, "--config", "-m", "before the deployment")  # the newest: config only
    identity = ["--identity", str(key_file)] if encrypted else []
    host = new_host(tmp_path, toml_text)
    code, text = run(
        "restore", "latest", "--all", "--from-replica", "offsite", "--dry-run", *identity, "--site", str(host)
    )
    assert code == 0 and f"pulled backup {full_id} from replica offsite" in text, text
    assert "create    data/trades.csv" in text and "nothing was changed" not in text  # the pull did write
    assert f"Dry run: pulled {full_id} into {host / 'backups'}; the site itself was not changed" in text
    assert sorted(p.name for p in host.iterdir()) == ["backups", "recovery.toml"]  # the site is unchanged
    code, text = run("restore", "latest", "--all", "--from-replica", "offsite", "--yes", *identity, "--site", str(host))
    assert code == 0 and f"Restored config, state, data from {full_id}" in text, text
    assert tree(host) == original
    # --config alone: the newest backup holding config is the config-only one.
    other = new_host(tmp_path, toml_text, "other-host")
    code, text = run(
        "restore", "latest", "--config", "--from-replica", "offsite", "--yes", *identity, "--site", str(other)
    )
    assert code == 0 and f"Restored config from {config_id}" in text
    assert tree(other) == {k: v for k, v in original.items() if k.startswith("config/")}


def test_restore_from_an_encrypted_replica_needs_the_identity(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECOVERY_AGE_IDENTITY", raising=False)
    _, recipient = age_key(tmp_path)
    toml_text = configure(sandbox, file_replica(tmp_path / "peak-trade", age_recipients=[recipient]))
    create(sandbox)
    host = new_host(tmp_path, toml_text)
    code, _ = run("restore", "latest", "--all", "--from-replica", "offsite", "--yes", "--site", str(host))
    err = capsys.readouterr().err
    assert code == 2 and "replica 'offsite' is encrypted" in err and "--identity FILE" in err
    assert not any((host / top).exists() for top in CATEGORY_DIRS)
    assert (host / "recovery.toml").read_text() == toml_text
    code, _ = run("restore", "latest", "--all", "--identity", "x", "--site", str(sandbox))
    assert code == 2 and "use it with --from-replica" in capsys.readouterr().err


def test_push_failure_after_backup_never_fails_the_backup(sandbox: Path, tmp_path: Path) -> None:
    unmounted = tmp_path / "not-mounted" / "peak-trade"  # its parent is missing: the disk is not there
    configure(sandbox, file_replica(unmounted))
    backup_id, text = create(sandbox)
    assert "Push to replica offsite FAILED:" in text and "is the disk mounted?" in text
    assert "recovery replica push --replica offsite" in text
    record = json.loads((sandbox / "backups" / ".replicas" / "offsite.json").read_text())
    assert record["ok"] is False and "does not exist" in record["error"]
    code, _ = run("backup", "verify", backup_id, "--read-data", "--site", str(sandbox))
    assert code == 0 and not unmounted.parent.exists()
    code, text = run("replica", "list", "--site", str(sandbox))
    assert code == 1 and "UNREACHABLE:" in text and "last push" in text and "FAILED" in text
    # --no-push: no line, and the record of the failed push stays as it was.
    _, text = create(sandbox, "--no-push")
    assert "Push" not in text
    assert json.loads((sandbox / "backups" / ".replicas" / "offsite.json").read_text()) == record


def test_two_replicas_one_unreachable_and_replica_required(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good"
    configure(sandbox, file_replica(good, "usb") + "\n" + file_replica(tmp_path / "gone" / "x", "nfs"))
    backup_id, text = create(sandbox)
    assert "Pushed to replica usb" in text and "Push to replica nfs FAILED" in text
    code, entries = listing(sandbox)
    assert code == 1
    by_name = {e["name"]: e for e in entries}
    assert by_name["nfs"]["reachable"] is False and "is the disk mounted?" in by_name["nfs"]["error"]
    assert [b["backup_id"] for b in by_name["usb"]["backups"]] == [backup_id]
    code, _ = run("replica", "verify", "--site", str(sandbox))
    assert code == 2 and "this site has 2 replicas: choose one with --replica (usb, nfs)" in capsys.readouterr().err
    code, _ = run("replica", "verify", "--replica", "tape", "--site", str(sandbox))
    assert code == 2 and "no replica 'tape' in recovery.toml" in capsys.readouterr().err
    code, text = run("replica", "verify", "--replica", "usb", "--site", str(sandbox))
    assert code == 0 and backup_id in text


def test_replica_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        (["replica"], "restore latest --all --from-replica offsite"),
        (["replica", "verify"], "--identity"),
        (["replica", "prune"], "--keep-within"),
        (["restore"], "--from-replica"),
        (["backup", "create"], "--no-push"),
    ]:
        with pytest.raises(SystemExit) as caught:
            build_parser().parse_args([*argv, "--help"])
        assert caught.value.code == 0
        assert expected in capsys.readouterr().out


# --- S3 and SFTP end to end -----------------------------------------------------------------------


def remote_replica(kind: str, request: pytest.FixtureRequest, recipient: str) -> str:
    """A ``[[replicas]]`` table for a real S3 bucket (moto) or SFTP server (OpenSSH), encrypted."""
    if kind == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        bucket = s3.create_bucket()
        keys = {"url": f"s3://{bucket}/prod", "endpoint_url": s3.endpoint_url, "region": "us-east-1"}
    else:
        sftp: SftpServer = request.getfixturevalue("sftp_server")
        keys = {
            "url": f"sftp://{sftp.user}@{sftp.host}:{sftp.port}{sftp.root}",
            "identity_file": str(sftp.identity_file),
            "known_hosts": str(sftp.known_hosts),
        }
    keys["age_recipients"] = [recipient]  # type: ignore[assignment]
    return '[[replicas]]\nname = "offsite"\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_end_to_end_on_a_real_server(
    kind: str, sandbox: Path, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file, recipient = age_key(tmp_path)
    toml_text = configure(sandbox, remote_replica(kind, request, recipient))
    first, text = create(sandbox)
    assert "Pushed to replica offsite: 1 pushed" in text
    (sandbox / "data" / "note.txt").write_text("second\n")
    second, text = create(sandbox)
    assert "Pushed to replica offsite: 1 pushed" in text and "reused" in text
    original = tree(sandbox)
    code, entries = listing(sandbox)
    assert code == 0 and [b["backup_id"] for b in entries[0]["backups"]] == [second, first]
    assert entries[0]["kind"] == kind and entries[0]["encryption"] == "age"
    code, text = run("replica", "verify", "all", "--read-data", "--identity", str(key_file), "--site", str(sandbox))
    assert code == 0 and text.count("contents vs manifest") == 2
    code, text = run("replica", "verify", "--read-data", "--site", str(sandbox))
    assert code == 0 and "pass --identity" in text
    host = new_host(tmp_path, toml_text)
    code, _ = run("restore", "latest", "--all", "--from-replica", "offsite", "--yes", "--site", str(host))
    assert code == 2 and "--identity" in capsys.readouterr().err
    argv = ["restore", "latest", "--all", "--from-replica", "offsite", "--yes", "--identity", str(key_file)]
    code, text = run(*argv, "--site", str(host))
    assert code == 0 and f"Restored config, state, data from {second}" in text
    assert tree(host) == original
    code, text = run("replica", "prune", "--keep-last", "1", "--site", str(sandbox))
    assert code == 0 and f"removed {first}" in text
    assert [b["backup_id"] for b in listing(sandbox)[1][0]["backups"]] == [second]


def test_object_lock_is_listed_and_prune_keeps_locked_backups(
    sandbox: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3_server.create_locked_bucket()
    configure(
        sandbox,
        '[[replicas]]\nname = "offsite"\n'
        f'url = "s3://{bucket}/prod"\nendpoint_url = "{s3_server.endpoint_url}"\nregion = "us-east-1"\n'
        'object_lock_days = 1\nencryption = "none"\n',
    )
    first, _ = create(sandbox)
    (sandbox / "data" / "note.txt").write_text("new\n")
    second, text = create(sandbox)
    assert "Pushed to replica offsite: 1 pushed" in text
    code, entries = listing(sandbox)
    assert code == 0 and entries[0]["object_lock_days"] == 1
    assert [b["backup_id"] for b in entries[0]["backups"]] == [second, first]
    assert all(b["retain_until"] for b in entries[0]["backups"])
    code, text = run("replica", "list", "--site", str(sandbox))
    assert "Object Lock 1 days" in text and text.count("locked until 2") == 2
    code, text = run("replica", "prune", "--keep-last", "1", "--site", str(sandbox))
    assert code == 0 and f"LOCKED {first}  (kept: Object Lock until" in text and "0 backup(s)" in text
    assert remote_ids(sandbox) == [second, first]
    code, text = run("replica", "verify", "all", "--read-data", "--site", str(sandbox))
    assert code == 0 and text.count("✅") == 2
