"""Notebook kernels, quietly and without a port to race for.

Each kernel start prints warnings to stderr that tell a person nothing; they go to a temp file,
which callers show when a kernel fails. Kernels talk over Unix sockets in a private directory
(:class:`SocketKernelManager`) rather than TCP, and run the Python that runs the drill.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode, default


class SocketKernelManager(AsyncKernelManager):
    """A kernel on Unix sockets in a directory of its own, removed when the kernel shuts down.

    Over TCP, jupyter_client picks free ports and the kernel binds them a moment later: two drills
    at once (``--jobs 2``) raced for the same port and a kernel died with "Address already in use".
    Sockets in a private directory cannot collide, and need no unencrypted TCP on the loopback."""

    transport = Unicode("ipc")
    _socket_dir: str | None = None

    @property
    def kernel_spec(self) -> KernelSpec:
        """ipykernel in this interpreter (``sys.executable``), whatever kernelspecs the Jupyter path holds.

        The notebooks must import the recovery_lib that runs the drill: a ``python3`` kernelspec in
        ``~/.local/share/jupyter`` or ``$JUPYTER_PATH`` naming another Python would run them against
        another copy (a checkout's instead of the installed wheel's) or none at all."""
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
        return self._kernel_spec

    @default("ip")
    def _private_socket_prefix(self) -> str:
        # Short (a socket path must fit in 107 bytes): /tmp/rk-XXXXXXXX/k-<port>.
        self._socket_dir = tempfile.mkdtemp(prefix="rk-")
        return os.path.join(self._socket_dir, "k")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


def papermill_kernel_options() -> dict[str, Any]:
    """The options every ``papermill.execute_notebook`` call of the library passes."""
    return {"kernel_name": "python3", "kernel_manager_class": SocketKernelManager}


@contextlib.contextmanager
def quiet_kernels() -> Iterator[IO[str]]:
    """Send stderr (which kernels inherit) to a temp file while the block runs; yields the file."""
    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
