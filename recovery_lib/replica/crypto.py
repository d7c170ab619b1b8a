"""age encryption of what leaves the host: public keys to write, a private key (never on the site) to read.

The trading host holds only recipients (``age1...``), so it can push backups but cannot read old
ones back; a stolen host or leaked bucket credentials expose nothing. The identity for a restore or
a ``verify --read-data`` comes from ``--identity FILE`` or ``$RECOVERY_AGE_IDENTITY`` (a path).
Objects are standard age files: ``age -d -i key.txt`` decrypts any of them by hand.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from recovery_lib.errors import IdentityRequired, ReplicaDamaged, ReplicaError

try:  # an optional extra: only s3:// and sftp:// replicas (and encrypted file:// ones) need it
    import pyrage
    from pyrage import x25519
except ImportError:  # pragma: no cover - exercised only without the extra
    pyrage = None
    x25519 = None

log = logging.getLogger(__name__)

IDENTITY_ENV = "RECOVERY_AGE_IDENTITY"
CHUNK = 1024 * 1024


def _need_pyrage(why: str) -> None:
    if pyrage is None:
        raise ReplicaError(f"{why} needs age encryption (pyrage): pip install 'recovery_lib[s3]' or '[sftp]'")


class _Hashing(io.RawIOBase):
    """A reader (or writer) that hashes what passes through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            view = memoryview(buffer)[:count]
            self.digest.update(view)
            self.size += count
        return count or 0

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.inner.write(data)


class Sealer:
    """Encrypts to ``recipients`` (age X25519), or passes through unchanged when there are none."""

    def __init__(self, recipients: Sequence[str], replica: str) -> None:
        self.replica = replica
        self.encrypted = bool(recipients)
        self._recipients: list[Any] = []
        if self.encrypted:
            _need_pyrage(f"replica {replica!r}")
            try:
                self._recipients = [x25519.Recipient.from_str(r) for r in recipients]
            except pyrage.RecipientError as exc:
                raise ReplicaError(f"replica {replica!r}: an age_recipients key is not valid ({exc})") from exc

    def seal_file(self, source: Path, target: Path) -> tuple[str, int, str]:
        """Encrypt ``source`` into ``target``, streaming. Returns the SHA-256 and size of the plaintext as
        read (so a damaged local backup is never sent as good) and the SHA-256 of what was written."""
        with open(source, "rb", buffering=0) as raw, open(target, "wb") as out:
            reader = _Hashing(raw)  # type: ignore[arg-type]
            writer = _Hashing(out)  # type: ignore[arg-type]
            pyrage.encrypt_io(io.BufferedReader(reader, CHUNK), writer, self._recipients)
            out.flush()
        return reader.digest.hexdigest(), reader.size, writer.digest.hexdigest()

    def seal_bytes(self, data: bytes) -> bytes:
        """``data`` encrypted when recipients are set, else unchanged."""
        return pyrage.encrypt(data, self._recipients) if self.encrypted else data


def load_identities(given: str | os.PathLike[str] | None) -> list[Any]:
    """The age identities in ``given`` or ``$RECOVERY_AGE_IDENTITY`` ([] when neither is set)."""
    path = given if given is not None else os.environ.get(IDENTITY_ENV) or None
    if path is None:
        return []
    _need_pyrage("reading an encrypted replica")
    where = Path(path).expanduser()
    try:
        lines = where.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IdentityRequired(
            f"cannot read the age identity {where}: {exc.strerror or exc}. Pass --identity FILE or set "
            f"{IDENTITY_ENV} to the private key file (AGE-SECRET-KEY-...)."
        ) from exc
    keys = [line.strip() for line in lines if line.strip().startswith("AGE-SECRET-KEY-")]
    if not keys:
        raise IdentityRequired(f"{where} holds no age identity (a line AGE-SECRET-KEY-...); is it the public key?")
    try:
        return [x25519.Identity.from_str(key) for key in keys]
    except pyrage.IdentityError as exc:
        raise IdentityRequired(f"{where}: an AGE-SECRET-KEY line is not a valid identity ({exc})") from exc


class Opener:
    """Decrypts what a replica stores (``encrypted``), or passes plain objects through."""

    def __init__(self, encrypted: bool, identities: list[Any], replica: str) -> None:
        self.encrypted = encrypted
        self.identities = identities
        self.replica = replica

    def require(self) -> None:
        """Refuse early (before anything is downloaded) when the key to read this replica is missing."""
        if self.encrypted and not self.identities:
            raise IdentityRequired(
                f"replica {self.replica!r} is encrypted with age: reading it needs the private key. Pass "
                f"--identity FILE or set {IDENTITY_ENV}=FILE (the key is kept off the trading host)."
            )

    def open_bytes(self, data: bytes, where: str) -> bytes:
        """The plaintext of ``data``; ReplicaDamaged naming ``where`` when it does not decrypt."""
        if not self.encrypted:
            return data
        self.require()
        try:
            return pyrage.decrypt(data, self.identities)
        except pyrage.DecryptError as exc:
            raise ReplicaDamaged(
                f"{where} does not decrypt with the given identity ({exc}): a wrong key, or the object was "
                "damaged or replaced; refusing it"
            ) from exc

    def open_file(self, source: Path, target: Path, where: str) -> tuple[str, int]:
        """Write the plaintext of ``source`` into ``target``; returns its SHA-256 and size."""
        with open(source, "rb") as raw, open(target, "wb") as out:
            writer = _Hashing(out)  # type: ignore[arg-type]
            if self.encrypted:
                self.require()
                try:
                    pyrage.decrypt_io(raw, writer, self.identities)
                except (pyrage.DecryptError, OSError) as exc:
                    # pyrage's streaming reports a bad ciphertext as an OSError without errno; a real
                    # disk error (ENOSPC, EIO) has one and is raised as it is.
                    if isinstance(exc, OSError) and not isinstance(exc, pyrage.DecryptError) and exc.errno:
                        raise
                    raise ReplicaDamaged(
                        f"{where} does not decrypt with the given identity ({exc}): a wrong key, or the object "
                        "was damaged, truncated or replaced; refusing it"
                    ) from exc
            else:
                shutil.copyfileobj(raw, writer, CHUNK)  # type: ignore[misc]
            out.flush()  # not fsynced here: the pull syncs the filesystem once before it commits
        return writer.digest.hexdigest(), writer.size
