"""Real stores for the replica tests: moto's S3 server and Debian's OpenSSH sshd on free loopback ports.

Both are started by fixtures (tests/replica/conftest.py) and always stopped, on failure too. Nothing
here is a mock: the transports talk HTTP and SSH to real servers.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from recovery_lib.site.replicas import ReplicaSpec

SSHD = Path("/usr/sbin/sshd")
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, alive: Any, timeout_s: float = 15.0) -> None:
    """Return once 127.0.0.1:``port`` accepts; fail early if ``alive()`` says the server died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server on port {port} exited before it listened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


# --- S3 (moto) ------------------------------------------------------------------------------------


@dataclass
class S3Server:
    """moto in server mode; buckets get unique names so one server serves the whole session."""

    endpoint_url: str

    def client(self) -> Any:
        """A raw boto3 client with the fake credentials (the tests' "attacker" and inspector)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_bucket(self, *, object_lock: bool = False) -> str:
        """A new empty bucket; with ``object_lock`` it is versioned with Object Lock enabled."""
        name = f"replica-{uuid.uuid4().hex[:16]}"
        params = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        self.client().create_bucket(Bucket=name, **params)
        return name

    def create_locked_bucket(self) -> str:
        """A new bucket with Object Lock (hence versioning) enabled."""
        return self.create_bucket(object_lock=True)


@contextlib.contextmanager
def running_moto() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on a free loopback port, stopped on exit."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port, lambda: True)
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


# --- SFTP (OpenSSH) -------------------------------------------------------------------------------


@dataclass
class SshServer:
    """A running sshd serving only SFTP, and the files a client needs to reach it."""

    host: str
    port: int
    user: str
    identity_file: Path
    known_hosts: Path
    host_key_pub: Path
    log: Path


@dataclass
class SftpServer:
    """The session's sshd plus a fresh remote directory for one test (``root``: it does not exist yet)."""

    host: str
    port: int
    user: str
    identity_file: Path
    known_hosts: Path
    root: Path
    ssh: SshServer


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _start_sshd(workdir: Path, host_key: Path) -> tuple[subprocess.Popen[bytes], int]:
    """sshd listening on a free port; tries again on another port if one was taken meanwhile."""
    for _attempt in range(3):
        port = free_port()
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    "ForceCommand internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        log = workdir / "sshd.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log_file, stderr=log_file)
        try:
            wait_for_port(port, lambda p=process: p.poll() is None)
        except RuntimeError:
            if process.poll() is None:
                process.kill()
            process.wait()
            continue
        return process, port
    raise RuntimeError(f"sshd did not start; see {workdir / 'sshd.log'}")


@contextlib.contextmanager
def running_sshd(workdir: Path) -> Iterator[SshServer]:
    """Debian's sshd on a free loopback port with generated keys, ``ForceCommand internal-sftp``; always stopped."""
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, user_key = workdir / "host_ed25519", workdir / "user_ed25519"
    _keygen(host_key)
    _keygen(user_key)
    shutil.copyfile(user_key.with_suffix(".pub"), workdir / "authorized_keys")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    process, port = _start_sshd(workdir, host_key)
    try:
        known_hosts = workdir / "known_hosts"
        key_type, key_data = host_key.with_suffix(".pub").read_text().split()[:2]
        known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
        yield SshServer(
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            identity_file=user_key,
            known_hosts=known_hosts,
            host_key_pub=host_key.with_suffix(".pub"),
            log=workdir / "sshd.log",
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- specs ----------------------------------------------------------------------------------------


def spec_for(
    kind: str,
    *,
    s3: S3Server | None = None,
    bucket: str | None = None,
    sftp: SftpServer | None = None,
    directory: Path | None = None,
    name: str = "offsite",
    **changes: Any,
) -> ReplicaSpec:
    """A ReplicaSpec for ``kind`` (``file``, ``sftp`` or ``s3``) pointing at the given test store."""
    if kind == "file":
        assert directory is not None
        fields: dict[str, Any] = {"url": f"file://{directory}", "scheme": "file", "location": str(directory)}
    elif kind == "sftp":
        assert sftp is not None
        fields = {
            "url": f"sftp://{sftp.user}@{sftp.host}:{sftp.port}{sftp.root}",
            "scheme": "sftp",
            "host": sftp.host,
            "port": sftp.port,
            "user": sftp.user,
            "location": str(sftp.root),
            "identity_file": str(sftp.identity_file),
            "known_hosts": str(sftp.known_hosts),
        }
    elif kind == "s3":
        assert s3 is not None and bucket is not None
        fields = {
            "url": f"s3://{bucket}/prod",
            "scheme": "s3",
            "host": bucket,
            "location": "prod",
            "endpoint_url": s3.endpoint_url,
            "region": "us-east-1",
        }
    else:
        raise ValueError(f"unknown replica kind {kind!r}")
    fields.update(changes)
    return ReplicaSpec(name=name, **fields)
