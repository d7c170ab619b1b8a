"""Open the store of a ``[[replicas]]`` entry: a directory, an SFTP server or an S3 bucket."""

from __future__ import annotations

from recovery_lib.errors import ReplicaError
from recovery_lib.replica.fs import FileTransport
from recovery_lib.replica.s3 import S3Transport
from recovery_lib.replica.sftp import SftpTransport
from recovery_lib.replica.transport import Transport
from recovery_lib.site.replicas import ReplicaSpec


def open_transport(spec: ReplicaSpec) -> Transport:
    """The transport for ``spec.scheme`` (connections open lazily on first use; call ``close()`` when done).

    ReplicaError when the scheme's optional dependency (boto3, paramiko) is not installed.
    """
    if spec.scheme == "file":
        return FileTransport(spec)
    if spec.scheme == "sftp":
        return SftpTransport(spec)
    if spec.scheme == "s3":
        return S3Transport(spec)
    raise ReplicaError(f"{spec}: unknown scheme {spec.scheme!r}; use s3://, sftp:// or file://.")
