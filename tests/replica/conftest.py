"""Fixtures of the replica tests: real S3 (moto server), real SFTP (OpenSSH), a second directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import FAKE_CREDENTIALS, SSHD, S3Server, SftpServer, SshServer, running_moto, running_sshd


@pytest.fixture(scope="session")
def _moto() -> Iterator[S3Server]:
    with running_moto() as server:
        yield server


@pytest.fixture
def s3_server(_moto: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The session's moto server, with fake credentials in the environment for this test only."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    # Only the environment's credentials: never the machine's ~/.aws, never the EC2 metadata service.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return _moto


@pytest.fixture(scope="session")
def _sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if not SSHD.exists():
        pytest.skip("needs Debian's OpenSSH server: sudo apt-get install openssh-server (.ci/run does)")
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sftp_server(_sshd: SshServer, tmp_path: Path) -> SftpServer:
    """The session's sshd and a remote directory of this test's own (its parent exists, it does not yet)."""
    remote_parent = tmp_path / "sftp-remote"
    remote_parent.mkdir()
    return SftpServer(
        host=_sshd.host,
        port=_sshd.port,
        user=_sshd.user,
        identity_file=_sshd.identity_file,
        known_hosts=_sshd.known_hosts,
        root=remote_parent / "peak-trade",
        ssh=_sshd,
    )


@pytest.fixture
def file_replica_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replica directory on "another disk": outside any site; its parent exists, it does not yet."""
    return tmp_path_factory.mktemp("backupdisk") / "peak-trade"
