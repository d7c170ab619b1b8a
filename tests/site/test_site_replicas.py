"""``[[replicas]]`` in recovery.toml: the issue's example reads as written; every mistake is refused
with the file, the line and the key, and credentials never come from the site's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyrage import x25519

from recovery_lib.errors import SiteConfigError
from recovery_lib.site.config import load_site

RECIPIENT = str(x25519.Identity.generate().to_public())


def _site(tmp_path: Path, text: str):
    (tmp_path / "recovery.toml").write_text(text)
    return load_site(tmp_path)


def test_the_three_kinds_read_as_written(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        f"""
[[replicas]]
name = "offsite"
url = "s3://peak-trade-backups/prod"
endpoint_url = "http://127.0.0.1:9000"
object_lock_days = 30
push = "after-backup"
age_recipients = ["{RECIPIENT}"]

[[replicas]]
name = "dr-host"
url = "sftp://backup@dr-host:2222/srv/peak-trade"
identity_file = "~/.ssh/id_ed25519"
known_hosts = "/etc/recovery/known_hosts"
age_recipients = ["{RECIPIENT}"]
push = "manual"

[[replicas]]
name = "usb"
url = "file:///mnt/backupdisk/peak-trade"
max_age_hours = 48
""",
    )
    s3, sftp, usb = site.replicas
    assert (s3.scheme, s3.host, s3.location, s3.object_lock_days, s3.encrypted) == (
        "s3",
        "peak-trade-backups",
        "prod",
        30,
        True,
    )
    assert s3.pushes_after_backup and s3.endpoint_url == "http://127.0.0.1:9000"
    assert (sftp.user, sftp.host, sftp.port, sftp.location, sftp.push) == (
        "backup",
        "dr-host",
        2222,
        "/srv/peak-trade",
        "manual",
    )
    assert (usb.scheme, usb.location, usb.encrypted, usb.max_age_hours) == (
        "file",
        "/mnt/backupdisk/peak-trade",
        False,
        48.0,
    )


def test_no_replicas_is_an_empty_tuple(tmp_path: Path) -> None:
    assert _site(tmp_path, '[site]\nname = "x"\n').replicas == ()
    assert load_site(tmp_path / "..").replicas == ()  # no recovery.toml at all


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('url = "file:///x"', "name", "is missing"),
        ('name = "a"', "url", "is missing"),
        ('name = "A B"\nurl = "file:///x"', "name", "lower-case"),
        ('name = "a"\nurl = "ftp://h/x"', "url", "s3://, sftp:// or file://"),
        ('name = "a"\nurl = "sftp://u:hunter2@h/x"\nencryption = "none"', "url", "holds a password"),
        ('name = "a"\nurl = "s3://bucket/p"', "age_recipients", "must be encrypted"),
        ('name = "a"\nurl = "sftp://u@h/srv"', "age_recipients", "must be encrypted"),
        ('name = "a"\nurl = "s3://bucket/p"\nage_recipients = ["age1nope"]', "age_recipients", "not an age"),
        ('name = "a"\nurl = "file://relative/x"', "url", "three slashes"),
        ('name = "a"\nurl = "file:///"', "url", "absolute"),
        ('name = "a"\nurl = "file:///a/../b"', "url", "absolute"),
        ('name = "a"\nurl = "file:///x"\nobject_lock_days = 3', "object_lock_days", "s3:// replicas only"),
        ('name = "a"\nurl = "file:///x"\nidentity_file = "/k"', "identity_file", "sftp:// replicas only"),
        (
            'name = "a"\nurl = "sftp://u@h/x"\nencryption = "none"\nidentity_file = "k"',
            "identity_file",
            "absolute",
        ),
        ('name = "a"\nurl = "sftp://u@h:99999/x"\nencryption = "none"', "url", "port"),
        ('name = "a"\nurl = "file:///x"\npush = "hourly"', "push", "after-backup"),
        ('name = "a"\nurl = "file:///x"\nobject_lock_days = 0', "object_lock_days", "positive"),
        ('name = "a"\nurl = "file:///x"\nbucket = "b"', "bucket", "unknown key"),
        (
            f'name = "a"\nurl = "file:///x"\nencryption = "none"\nage_recipients = ["{RECIPIENT}"]',
            "encryption",
            "contradicts",
        ),
        ('name = "a"\nurl = "s3://b/p"\nencryption = "age"', "age_recipients", "needs age_recipients"),
    ],
)
def test_a_mistake_is_refused_naming_the_line_and_key(tmp_path: Path, body: str, key: str, words: str) -> None:
    with pytest.raises(SiteConfigError) as caught:
        _site(tmp_path, f'[site]\nname = "x"\n\n[[replicas]]\n{body}\n')
    error = caught.value
    assert error.key == f"replicas.{key}" or (error.key == "replicas" and key == "replicas"), error
    assert words in error.problem, error.problem
    assert str(tmp_path / "recovery.toml") in str(error)


def test_two_replicas_with_one_name_are_refused(tmp_path: Path) -> None:
    text = '[[replicas]]\nname = "a"\nurl = "file:///x"\n\n[[replicas]]\nname = "a"\nurl = "file:///y"\n'
    with pytest.raises(SiteConfigError, match="names two replicas"):
        _site(tmp_path, text)


def test_replicas_written_as_a_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError, match=r"\[\[replicas\]\]"):
        _site(tmp_path, '[replicas]\nname = "a"\nurl = "file:///x"\n')
