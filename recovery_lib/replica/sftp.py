"""A replica on an SSH server (``sftp://backup@dr-host:22/srv/peak-trade``), with paramiko.

The host key must already be trusted (``known_hosts``): an unknown or changed key is refused, never
added. Authentication uses ``identity_file`` or else the SSH agent and ``~/.ssh``'s default keys; a
password is never asked for or sent. Each object is uploaded under a hidden temporary name and renamed
onto its key (``posix-rename``, an atomic replace), then left read-only.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import io
import logging
import os
import secrets
import stat as stat_mode
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from recovery_lib.errors import ReplicaDamaged, ReplicaError, ReplicaUnreachable
from recovery_lib.replica.fs import (
    copy_limited,
    download,
    open_source,
    read_all,
    refuse_oversize,
    send_all,
)
from recovery_lib.replica.transport import StoredObject, check_key
from recovery_lib.site.replicas import ReplicaSpec

try:  # an optional extra: recovery_lib[sftp]
    import paramiko
except ImportError:  # pragma: no cover - exercised only without the extra
    paramiko = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0


class _Refuse:
    """paramiko's missing-host-key policy: refuse, saying how to check and trust the key."""

    def __init__(self, description: str, port: int, known_hosts: str) -> None:
        self.description, self.port, self.known_hosts = description, port, known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        host = hostname.split("]")[0].lstrip("[")
        raise ReplicaUnreachable(
            f"{self.description}: the server's host key ({key.get_name()} {key.fingerprint}) is not in "
            f"{self.known_hosts}, so it is not trusted. Run `ssh-keyscan -p {self.port} {host} >> {self.known_hosts}`, "
            "then compare the fingerprint with the one the server's administrator reads from "
            "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` before using the replica."
        )


class _LocalFailed(Exception):
    """Reading the local file failed: told apart from the server's failures, it propagates unchanged."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Local:
    """Wraps a local file's ``read`` so its errors become :class:`_LocalFailed`."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def read(self, size: int) -> bytes:
        try:
            return self.reader.read(size)
        except OSError as exc:
            raise _LocalFailed(exc) from exc


class SftpTransport:
    """A replica in the absolute directory ``spec.location`` on ``spec.host``; connects on first use."""

    parallel = 1  # transfers at once (one SFTP channel: requests are not issued from several threads)

    def __init__(self, spec: ReplicaSpec) -> None:
        if paramiko is None:
            raise ReplicaError(f"{spec} needs paramiko: pip install 'recovery_lib[sftp]'")
        self.spec = spec
        self.user = spec.user or getpass.getuser()
        self.port = spec.port or 22
        self.root = PurePosixPath(spec.location)
        self.known_hosts = os.path.expanduser(spec.known_hosts or "~/.ssh/known_hosts")
        self.identity = os.path.expanduser(spec.identity_file) if spec.identity_file else None
        self.address = f"{self.user}@{spec.host}:{self.port}{self.root}"
        self.description = f"replica {spec.name!r} (sftp://{self.address})"
        self._client: Any = None
        self._sftp: Any = None
        self._dirs: set[str] = set()  # remote directories known to exist

    # --- connection -------------------------------------------------------------------------------

    def _connect(self) -> Any:
        """The SFTP session, opened on first use and reopened when the server dropped it."""
        if self._sftp is not None and self._client.get_transport() and self._client.get_transport().is_active():
            return self._sftp
        self.close()
        if not os.path.isfile(self.known_hosts):
            raise ReplicaUnreachable(
                f"{self.description}: no known_hosts file at {self.known_hosts}. Run "
                f"`ssh-keyscan -p {self.port} {self.spec.host} >> {self.known_hosts}` and compare the fingerprint "
                "with the server's."
            )
        if self.identity is not None and not os.path.isfile(self.identity):
            raise ReplicaUnreachable(
                f"{self.description}: the identity_file {self.identity} does not exist. Give the path of the private "
                "key whose public half is in the server's authorized_keys (or remove identity_file to use the agent)."
            )
        client = paramiko.SSHClient()
        try:
            client.get_host_keys().load(self.known_hosts)  # not load_host_keys: we never write the file
            client.set_missing_host_key_policy(_Refuse(self.description, self.port, self.known_hosts))
            client.connect(
                self.spec.host,
                port=self.port,
                username=self.user,
                key_filename=self.identity,
                allow_agent=self.identity is None,
                look_for_keys=self.identity is None,
                timeout=TIMEOUT_S,
                banner_timeout=TIMEOUT_S,
                auth_timeout=TIMEOUT_S,
                channel_timeout=TIMEOUT_S,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(TIMEOUT_S)
        except ReplicaError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise ReplicaUnreachable(
                f"{self.description}: the server's host key CHANGED ({exc.key.get_name()} {exc.key.fingerprint}, "
                f"expected {exc.expected_key.fingerprint} from {self.known_hosts}). This can be an attack: "
                "confirm with the server's administrator before replacing the line in known_hosts."
            ) from None
        except paramiko.PasswordRequiredException:
            client.close()
            raise ReplicaUnreachable(
                f"{self.description}: the identity file {self.identity} is protected by a passphrase. Load it "
                "into ssh-agent (`ssh-add`) and remove identity_file from recovery.toml; no password is ever asked."
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            using = f"the key {self.identity}" if self.identity else "the SSH agent and ~/.ssh's keys"
            raise ReplicaUnreachable(
                f"{self.description}: {self.user}@{self.spec.host} refused {using} ({exc}). Add the public key to "
                f"the server's authorized_keys for {self.user}, or set identity_file in recovery.toml."
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise self._unreachable("cannot connect", exc) from None
        self._client, self._sftp = client, sftp
        log.debug("%s: connected", self.description)
        return sftp

    def _unreachable(self, doing: str, exc: BaseException) -> ReplicaUnreachable:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
        return ReplicaUnreachable(
            f"{self.description}: {doing}: {detail}. Check that {self.spec.host}:{self.port} is up and reachable "
            f"(`sftp -P {self.port} {self.user}@{self.spec.host}`), then run the command again."
        )

    def _remote(self, key: str) -> str:
        return str(self.root / check_key(key, self.description))

    def _where(self, key: str) -> str:
        return f"{self.description}: {key}"

    @staticmethod
    def _absent(exc: OSError) -> bool:
        return exc.errno == errno.ENOENT or isinstance(exc, FileNotFoundError)

    # --- directories ------------------------------------------------------------------------------

    def _make_dirs(self, sftp: Any, remote: str) -> None:
        """mkdir -p the object's directory; the location itself only when its parent exists."""
        directory = PurePosixPath(remote).parent
        if str(directory) in self._dirs:
            return
        missing: list[PurePosixPath] = []
        current = directory
        while not self._is_dir(sftp, current):
            missing.append(current)
            if current == self.root:
                if not self._is_dir(sftp, self.root.parent):
                    raise ReplicaUnreachable(
                        f"{self.description}: {self.root.parent} does not exist on {self.spec.host}. Create it there "
                        "(or fix the url); nothing was written."
                    )
                break
            current = current.parent
        for new in reversed(missing):
            with contextlib.suppress(OSError):  # a concurrent push may have made it; the rename tells if not
                sftp.mkdir(str(new))
        self._dirs.add(str(directory))

    def _is_dir(self, sftp: Any, path: PurePosixPath) -> bool:
        """Whether ``path`` is a directory; False when absent; ReplicaDamaged when something else is there."""
        try:
            info = sftp.stat(str(path))
        except OSError as exc:
            if self._absent(exc):
                return False
            raise
        if not stat_mode.S_ISDIR(info.st_mode or 0):
            raise ReplicaDamaged(f"{self.description}: {path} is not a directory; this tool never makes one.")
        return True

    # --- the Transport protocol -------------------------------------------------------------------

    def stat(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None."""
        remote = self._remote(key)
        sftp = self._connect()
        try:
            info = sftp.lstat(remote)
        except OSError as exc:
            if self._absent(exc):
                return None
            raise self._unreachable(f"cannot stat {key}", exc) from None
        except (EOFError, paramiko.SSHException) as exc:
            raise self._unreachable(f"cannot stat {key}", exc) from None
        if stat_mode.S_ISDIR(info.st_mode or 0):
            return None  # a directory holds objects; it is not one (as a prefix in S3)
        self._refuse_irregular(key, info)
        return StoredObject(key=key, size=info.st_size or 0)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``; hidden temp names are skipped."""
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / check_key(base, self.description) if base else self.root
        sftp = self._connect()
        pending = [(str(start), base)]
        while pending:
            directory, relative = pending.pop()
            try:
                entries = sftp.listdir_attr(directory)
            except OSError as exc:
                if self._absent(exc) or exc.errno == errno.ENOTDIR:
                    continue
                raise self._unreachable(f"cannot list {directory}", exc) from None
            except (EOFError, paramiko.SSHException) as exc:
                raise self._unreachable(f"cannot list {directory}", exc) from None
            for entry in entries:
                name = entry.filename
                key = f"{relative}/{name}" if relative else name
                if name.startswith("."):
                    continue
                mode = entry.st_mode or 0
                if stat_mode.S_ISDIR(mode):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append((f"{directory}/{name}", key))
                    continue
                if not key.startswith(prefix):
                    continue
                try:
                    check_key(key, self.description)
                except ReplicaDamaged:
                    continue  # not a name this tool writes
                yield StoredObject(key=key, size=entry.st_size or 0)

    def put_file(self, key: str, source: Path, *, retain_until: datetime | None = None) -> None:
        """Upload ``source`` to ``key`` atomically; ``retain_until`` has no meaning over SFTP."""
        reader, size = open_source(source)
        with reader:
            self._put(key, reader, size)

    def put_bytes(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Upload ``data`` to ``key`` atomically."""
        self._put(key, io.BytesIO(data), len(data))

    def _put(self, key: str, reader: Any, size: int) -> None:
        remote = self._remote(key)
        sftp = self._connect()
        tmp = f"{PurePosixPath(remote).parent}/.tmp-{secrets.token_hex(8)}"
        try:
            self._make_dirs(sftp, remote)
            with sftp.open(tmp, "wb") as out:
                out.set_pipelined(True)
                send_all(_Local(reader), out.write, size, self._where(key))
            if sftp.stat(tmp).st_size != size:
                raise ReplicaUnreachable(
                    f"{self._where(key)}: the server stored a different size than the {size} bytes sent "
                    "(a full disk there?); nothing was replaced. Run the command again."
                )
            sftp.chmod(tmp, 0o444)  # read-only before it appears under its name
            sftp.posix_rename(tmp, remote)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                sftp.remove(tmp)
            if isinstance(exc, _LocalFailed):
                raise exc.cause from None
            if isinstance(exc, OSError | EOFError | paramiko.SSHException):
                raise self._unreachable(f"cannot store {key}", exc) from None
            raise
        log.debug("%s: stored %s", self.description, key)

    def get_file(self, key: str, target: Path, *, max_size: int) -> int:
        """Download ``key`` into ``target``; ReplicaDamaged when missing, not a regular file, or over ``max_size``."""
        return download(target, lambda out: self._get(key, out, max_size))

    def get_bytes(self, key: str, *, max_size: int) -> bytes:
        """The content of ``key`` (same refusals as :meth:`get_file`)."""
        return read_all(lambda out: self._get(key, out, max_size))

    def _get(self, key: str, out: Any, max_size: int) -> int:
        remote = self._remote(key)
        sftp = self._connect()
        try:
            info = sftp.lstat(remote)
            self._refuse_irregular(key, info)
            size = info.st_size or 0
            refuse_oversize(size, max_size, self._where(key))
            with sftp.open(remote, "rb") as reader:
                reader.prefetch(size)
                return copy_limited(reader.read, out, expected=size, max_size=max_size, where=self._where(key))
        except OSError as exc:
            if self._absent(exc):
                raise ReplicaDamaged(
                    f"{self._where(key)} is missing from the replica. Run `recovery replica verify`; "
                    "`recovery replica push` uploads what a backup lacks."
                ) from None
            raise self._unreachable(f"cannot read {key}", exc) from None
        except (EOFError, paramiko.SSHException) as exc:
            raise self._unreachable(f"cannot read {key}", exc) from None

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine) and the directories it leaves empty."""
        remote = self._remote(key)
        sftp = self._connect()
        try:
            sftp.remove(remote)
        except OSError as exc:
            if not self._absent(exc):
                raise self._unreachable(f"cannot delete {key}", exc) from None
            return
        except (EOFError, paramiko.SSHException) as exc:
            raise self._unreachable(f"cannot delete {key}", exc) from None
        self._dirs.clear()
        parent = PurePosixPath(remote).parent
        while parent != self.root:  # drop the directories the delete left empty (rmdir refuses others)
            try:
                sftp.rmdir(str(parent))
            except OSError:
                break
            parent = parent.parent

    def extend_retention(self, key: str, until: datetime) -> None:
        """Nothing to do: only S3 Object Lock keeps objects from being deleted."""
        check_key(key, self.description)

    def close(self) -> None:
        """Close the SFTP session and the SSH connection."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        self._client = self._sftp = None
        self._dirs.clear()

    def _refuse_irregular(self, key: str, info: Any) -> None:
        if not stat_mode.S_ISREG(info.st_mode or 0):
            raise ReplicaDamaged(
                f"{self._where(key)} is a symlink or not a regular file; this tool never writes one. "
                "Someone changed the replica: inspect it and remove that entry."
            )
