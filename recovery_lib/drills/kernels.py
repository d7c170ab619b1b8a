"""Notebook kernels, quietly, without a port to race for, and started ahead of the notebook.

Each kernel start prints warnings to stderr that tell a person nothing; they go to a temp file,
which callers show when a kernel fails. Kernels talk over Unix sockets in a private directory
(:class:`SocketKernelManager`) rather than TCP, and run the Python that runs the drill.

A drill runs its notebooks one after the other, each in a kernel of its own. Starting a kernel and
importing the library in it takes a second or more of a notebook's time, so :class:`KernelPool`
starts the next notebook's kernel while the current one runs (the first while the drill sets up):
a fresh process per notebook, as before, that has already imported the library (``WARM_IMPORTS``,
without binding a name in the notebook's namespace), and that papermill shuts down as it shuts down
a kernel it started itself (:func:`execute_in`). Its client does not wait out 0.2 s of IOPub silence
once the kernel is ready (:class:`ReadyKernelClient`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import IO, Any

from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from traitlets import Type, Unicode, default

# What every procedure notebook's first cells import (the validation cell, the display formatters):
# imported while the kernel waits for its notebook, so the notebook does not wait for them.
WARM_IMPORTS = ("pandas", "recovery_lib.runbook.notebook", "recovery_lib.runbook.procedures")
# ``exec`` in a dict of its own: the modules are loaded, yet the notebook's namespace gains no name
# (the parameter validation refuses names it does not know).
WARM_LINE = f"exec({'import ' + ', '.join(WARM_IMPORTS)!r}, {{}})"
# What nbclient adds when it starts a kernel itself: no IPython history file for a headless run.
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]
ENGINE = "recovery-started-kernel"


class ReadyKernelClient(AsyncKernelClient):
    """jupyter_client's kernel client, minus the 0.2 s of IOPub silence it waits for once the kernel is ready.

    jupyter_client's ``wait_for_ready`` ends by reading IOPub until nothing comes for 0.2 s, to drop
    the status messages of its kernel_info requests; nbclient reads only the messages of its own
    requests (by their parent's id) and ignores those, so waiting them out cost each notebook 0.2 s."""

    async def _ready(self, timeout: float | None = None) -> None:
        """Ready, as jupyter_client decides it: the kernel answered kernel_info and IOPub is connected
        (a message came on it). Raises RuntimeError when the kernel died or ``timeout`` passed."""
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # IOPub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    wait_for_ready = _ready


class SocketKernelManager(AsyncKernelManager):
    """A kernel on Unix sockets in a directory of its own, removed when the kernel shuts down.

    Over TCP, jupyter_client picks free ports and the kernel binds them a moment later: two drills
    at once (``--jobs 2``) raced for the same port and a kernel died with "Address already in use".
    Sockets in a private directory cannot collide, and need no unencrypted TCP on the loopback."""

    transport = Unicode("ipc")
    client_factory = Type(ReadyKernelClient, klass=AsyncKernelClient)
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

    # jupyter_client binds ``cleanup_resources`` to its own coroutine, which nbclient calls (without a
    # shutdown) for a kernel that died: without this, a dead kernel's socket directory stayed behind.
    cleanup_resources = _async_cleanup_resources


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


@dataclass
class Kernel:
    """A started kernel: its manager, the directory it runs in and the file its stderr goes to."""

    manager: SocketKernelManager
    cwd: Path
    log: IO[str]

    def tail(self, size: int = 2000) -> str:
        """The end of what the kernel wrote to stderr (why it died, when it did)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-size:]

    def shutdown(self) -> None:
        """Shut the kernel down if it still runs, and remove its sockets (again, harmlessly, after
        papermill did); the log stays open."""
        try:
            if self.manager.has_kernel and run_sync(self.manager.is_alive)():
                run_sync(self.manager.shutdown_kernel)(now=True)
        finally:
            run_sync(self.manager.cleanup_resources)()

    def stop(self) -> None:
        """:meth:`shutdown`, and close the log."""
        try:
            self.shutdown()
        finally:
            self.log.close()


def start_kernel(cwd: Path, warm: bool = True) -> Kernel:
    """Start a kernel in ``cwd`` and return at once: it starts up (and imports ``WARM_IMPORTS``) in its
    own process while the caller goes on; the notebook that takes it waits for it to be ready."""
    manager = SocketKernelManager(kernel_name="python3")
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - the kernel writes it until Kernel.stop closes it
    arguments = [*KERNEL_ARGUMENTS, *([f"--IPKernelApp.exec_lines={WARM_LINE}"] if warm else [])]
    try:
        run_sync(manager.start_kernel)(extra_arguments=arguments, cwd=str(cwd), stderr=log)
    except BaseException:
        run_sync(manager.cleanup_resources)()
        log.close()
        raise
    return Kernel(manager, cwd, log)


class KernelPool:
    """At most one spare kernel, started for the notebook after the one that runs now.

    :meth:`take` hands out the spare (or starts a kernel, if there is none for that directory): each
    kernel runs one notebook, and the notebook that took it shuts it down. :meth:`close` stops the
    spare nobody took."""

    def __init__(self, warm: bool = True) -> None:
        self.warm = warm
        self._spare: Kernel | None = None

    def prepare(self, cwd: Path) -> None:
        """Have a spare kernel starting in ``cwd`` (one in another directory is stopped)."""
        if self._spare is not None and self._spare.cwd != cwd:
            self.close()
        if self._spare is None:
            self._spare = start_kernel(cwd, self.warm)

    def take(self, cwd: Path) -> Kernel:
        """The spare kernel for ``cwd``, started now when there is none; the caller owns it."""
        self.prepare(cwd)
        kernel, self._spare = self._spare, None
        assert kernel is not None
        return kernel

    def close(self) -> None:
        """Stop the spare kernel, if any."""
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.stop()


def execute_in(kernel: Kernel, notebook: Path, out: Path, parameters: dict[str, Any]) -> None:
    """``papermill.execute_notebook`` of ``notebook`` into ``out`` in the started ``kernel``, in its
    directory: the same parameters cell, the same errors (a failing cell raises
    ``PapermillExecutionError``, a kernel that died another exception). The kernel is shut down and
    its sockets removed when the notebook ends, however it ends; its log stays open for the caller."""
    import papermill

    try:
        papermill.execute_notebook(
            str(notebook),
            str(out),
            parameters=parameters,
            engine_name=_started_kernel_engine(),
            kernel_name="python3",
            km=kernel.manager,
            cwd=str(kernel.cwd),
            progress_bar=False,
            log_output=False,
        )
    finally:
        kernel.shutdown()  # papermill did, unless it failed before it got that far


@functools.cache
def _started_kernel_engine() -> str:
    """Register (once) papermill's nbclient engine for a kernel started beforehand, and name it.

    Given a kernel manager, nbclient uses its kernel but leaves it running and its client connected
    (it did not start them); this engine asks it to clean up as it does after a kernel of its own."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class StartedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: float | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs.pop("input_path", None)
            client = PapermillNotebookClient(
                nb_man,
                km=kwargs.pop("km"),
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            )
            return client.execute(cleanup_kc=True)

    papermill_engines.register(ENGINE, StartedKernelEngine)
    return ENGINE
