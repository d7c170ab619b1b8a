"""JupyterLab servers for the browser tests.

Each server is a subprocess on a free loopback port with a random token and private, offline
Jupyter/IPython directories, serving a private copy of notebooks/.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 15.0
# JupyterLab plugins that would reach the internet: the news/announcements feed and update check.
OFFLINE_DISABLED_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)


def free_port() -> int:
    """A free loopback port (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    """One JupyterLab server subprocess serving a private copy of notebooks/."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    notebook_dir: Path
    site: Path
    log: Path
    kernel_pids: set[int] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` on this server with the token."""
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, timeout: float = 5.0) -> object:
        """GET ``/api/<path>`` as JSON."""
        with urllib.request.urlopen(self.url(f"api/{path}"), timeout=timeout) as response:
            return json.loads(response.read())

    def children(self) -> set[int]:
        """Pids of the kernels (and their children) the server started. jupyter_client starts each
        kernel in a session of its own, as a direct child of the server; a trading process a notebook
        starts detaches into yet another session and is not counted."""
        found = set()
        try:
            server = psutil.Process(self.process.pid)
            descendants = server.children(recursive=True)
            kernels = {child.pid for child in server.children()}
        except psutil.NoSuchProcess:
            return found
        for child in descendants:
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                if child.pid in kernels or os.getsid(child.pid) in kernels | {self.process.pid}:
                    found.add(child.pid)
        return found

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _offline_jupyter_dirs(home: Path) -> dict[str, str]:
    """Private Jupyter/IPython directories, with the network-reaching lab plugins disabled."""
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "IPYTHONDIR": home / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": dict.fromkeys(OFFLINE_DISABLED_PLUGINS, True)})
    )
    settings = home / "user-settings"
    # No news toast, no windowed notebook (every cell stays in the DOM), no autosave surprises.
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False})
    )
    return {name: str(path) for name, path in dirs.items()}


def start_lab(site: Path, home: Path) -> LabServer:
    """Start JupyterLab on a free port over a copy of notebooks/, with ``RECOVERY_SITE=site``."""
    notebook_dir = home / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, notebook_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    port = free_port()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        **_offline_jupyter_dirs(home),
        "RECOVERY_SITE": str(site),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("JUPYTER_PATH", None)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebook_dir}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        "--MappingKernelManager.default_kernel_name=python3",
    ]
    if os.getuid() == 0:
        command.append("--allow-root")
    log = home / "jupyterlab.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, cwd=notebook_dir, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(process=process, port=port, token=token, notebook_dir=notebook_dir, site=site, log=log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
        try:
            server.api("status", timeout=2)
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                stop_lab(server)
                raise RuntimeError(
                    f"JupyterLab did not answer in {SERVER_START_TIMEOUT_S:g} s:\n{server.log_tail()}"
                ) from None
            time.sleep(0.25)


def stop_lab(server: LabServer) -> list[str]:
    """Terminate, wait, kill; returns the processes (server or kernels) that had to be killed or survived."""
    server.kernel_pids |= server.children()
    problems = []
    if server.process.poll() is None:
        server.process.terminate()  # SIGTERM: jupyter_server shuts its kernels down, then exits
        try:
            server.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
            problems.append(f"JupyterLab server pid {server.process.pid} ignored SIGTERM and was killed")
    deadline = time.monotonic() + 5
    alive = [pid for pid in server.kernel_pids if psutil.pid_exists(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:
        problems.append(f"kernel process {pid} outlived the server; killed")
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    return problems


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
