"""Fixtures for the end-to-end browser tests: Chromium, JupyterLab servers, sandbox sites, screenshots.

Everything runs offline on loopback: Chromium is Debian's ``/usr/bin/chromium`` driven by
``playwright.sync_api`` (no pytest-playwright, no downloaded browser), and each JupyterLab server is a
subprocess on a free port with a random token and private Jupyter/IPython directories, so neither the
user's configuration nor the network is touched. Every browser context aborts requests that leave
loopback or ``file://`` and records them, so a test can assert that nothing needed the network.

Sandbox sites are in the state the on-call engineer finds (all with SMALL_SPEC, built in about a
second): ``broken_sites`` the trading process running, one good scheduled backup, then the config
corrupted (Procedure A); ``data_loss_sites`` the same, trading going on after the backup, then the
ledger and positions deleted (Procedure B); ``failed_sites`` a complete failure: trading killed,
config, data and state destroyed (Procedure C). Teardown stops every trading process and every
JupyterLab server and fails if any process (trading system, server, kernel) is left.

Driving the notebooks (open, run a cell, Run All, Approve / Abort, reload, restart the kernel) and
reading the incident journal is in ``lab.py``.

Screenshots go to ``outputs/browser/<test name>/NN-<moment>.png`` under the repository root; the
directories are listed at the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, Route, sync_playwright

from recovery_lib.backup import BackupMetadata
from recovery_lib.drills.injectors import Fault, inject
from recovery_lib.manager import RecoveryManager
from recovery_lib.sandbox import SandboxSpec, create_sandbox
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
SCREENSHOT_ROOT = ROOT / "outputs" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
# Small, like tests/conftest.py's SANDBOX_SPEC, so a site is built in well under a second.
SMALL_SPEC = SandboxSpec(trades=500, reports=3, report_rows=20, seed=11)
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 15.0
# JupyterLab plugins that would reach the internet: the news/announcements feed and update check.
OFFLINE_DISABLED_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)

_screenshot_dirs: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``browser`` marker (the browser suite is excluded from the default run)."""
    config.addinivalue_line("markers", "browser: end-to-end tests in Chromium (JupyterLab, HTML records)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List where the screenshots of this run are."""
    if _screenshot_dirs:
        terminalreporter.write_sep("-", "browser screenshots")
        for directory in _screenshot_dirs:
            count = len(list(directory.glob("*.png")))
            terminalreporter.write_line(f"{directory.relative_to(ROOT)}/  ({count} screenshots)")


# --- screenshots -------------------------------------------------------------------------------


class Screenshots:
    """Numbered screenshots of one test: ``outputs/browser/<test>/NN-<moment>.png``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.paths: list[Path] = []

    def take(self, page: Page, moment: str, full_page: bool = False) -> Path:
        """Screenshot the page now; returns the file written."""
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", moment.lower()).strip("-")
        path = self.directory / f"{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=full_page, timeout=15_000)
        self.paths.append(path)
        return path


def screenshot_dir(name: str) -> Screenshots:
    """A fresh ``outputs/browser/<name>/`` (old screenshots of the same name are replaced)."""
    directory = SCREENSHOT_ROOT / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    if directory not in _screenshot_dirs:
        _screenshot_dirs.append(directory)
    return Screenshots(directory)


@pytest.fixture(scope="session")
def screenshot_dirs() -> Callable[[str], Screenshots]:
    """``screenshot_dirs(name)``: screenshots for a module-scoped walk-through, in ``outputs/browser/<name>/``."""
    return screenshot_dir


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Iterator[Screenshots]:
    """The screenshots of this test, in ``outputs/browser/<test name>/``."""
    shots = screenshot_dir(request.node.name)
    yield shots
    print(f"\nscreenshots: {shots.directory}")


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    """The Playwright driver for the session."""
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, with everything that phones home switched off."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    launched = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
    yield launched
    launched.close()


@dataclass
class OfflineContext:
    """A browser context that aborts every request leaving loopback or ``file://``; ``blocked`` lists them."""

    context: BrowserContext
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(20_000)
        page.on("requestfailed", lambda request: self.failed.append(f"{request.url} ({request.failure})"))
        return page


def _is_local(url: str) -> bool:
    return url.startswith(("file://", "data:", "blob:", "about:")) or bool(
        re.match(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/", url)
    )


def open_offline_context(browser: Browser) -> OfflineContext:
    """A new context where any non-local request is aborted and recorded in ``.blocked``."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=False)
    context.set_default_timeout(20_000)
    offline = OfflineContext(context)

    def guard(route: Route, request: Request) -> None:
        if _is_local(request.url):
            route.continue_()
        else:
            offline.blocked.append(request.url)
            route.abort("internetdisconnected")

    context.route("**/*", guard)
    return offline


@pytest.fixture(scope="module")
def offline_contexts(browser: Browser) -> Iterator[Callable[[], OfflineContext]]:
    """``offline_contexts()`` opens an offline context that lives until the end of the module."""
    opened: list[OfflineContext] = []

    def open_one() -> OfflineContext:
        opened.append(open_offline_context(browser))
        return opened[-1]

    yield open_one
    for offline in opened:
        offline.context.close()


@pytest.fixture
def offline_context(browser: Browser) -> Iterator[OfflineContext]:
    """A fresh offline context per test (see :func:`open_offline_context`)."""
    offline = open_offline_context(browser)
    yield offline
    offline.context.close()


# --- sandbox sites -----------------------------------------------------------------------------


@dataclass
class BrokenSite:
    """A sandbox with its trading process running, one good backup, then the config corrupted."""

    root: Path
    backup_id: str
    good_config: bytes
    fault: Fault

    @property
    def config(self) -> Path:
        return self.root / "config" / "config.toml"

    def backup_copy(self, relative: str) -> bytes:
        """The bytes the good backup holds for a site file."""
        return (self.root / "backups" / self.backup_id / relative).read_bytes()

    def trading_pid(self) -> int | None:
        """The running trading process's pid, or None."""
        return trading_pid(self.root)


def trading_pid(root: Path) -> int | None:
    """The running trading process's pid of the site at ``root``, or None."""
    status = process_status(load_site(root))
    return status.pid if status.running else None


def highest_trade_id(path: Path) -> int:
    """The highest trade id in a trades file (0 when it is missing or has no row)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return 0
    ids = [int(line.split(",", 1)[0]) for line in lines if line[:1].isdigit()]
    return max(ids, default=0)


def wait_for_trades(root: Path, above: int, count: int, timeout_s: float = 30.0) -> int:
    """Wait until the running trading process has made ``count`` trades with ids above ``above`` (it
    logs every fill on the exchange first); returns the highest id the exchange knows."""
    fills = root / "exchange" / "my_trades.csv"
    deadline = time.monotonic() + timeout_s
    while (highest := highest_trade_id(fills)) < above + count:
        assert time.monotonic() < deadline, f"the trading process made no {count} trades in {timeout_s:g} s"
        assert trading_pid(root) is not None, "the trading process died"
        time.sleep(0.05)
    return highest


def make_broken_site(parent: Path) -> BrokenSite:
    """Build the site the on-call engineer finds (see :class:`BrokenSite`)."""
    root = parent / "site"
    create_sandbox(root, SMALL_SPEC)
    site = load_site(root)
    started = start_system(site, timeout_s=15)
    assert started.ok, f"the sandbox's trading process did not start: {started.message}"
    good_config = site.path(site.config_file).read_bytes()
    backup_id = RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
    fault = inject(site, "config", variant="unparseable", seed=3)
    assert site.path(site.config_file).read_bytes() != good_config
    return BrokenSite(root=root, backup_id=backup_id, good_config=good_config, fault=fault)


@dataclass
class DataLossSite:
    """A sandbox whose trading process ran, was backed up, kept trading, and then lost data.

    ``trades_after_backup``: trades the process made after the backup and before the fault: a restore
    from the backup alone would lose them; the exchange knows them and gives them back."""

    root: Path
    backup_id: str
    backup_highest_id: int
    trades_after_backup: int
    fault: Fault
    config: bytes

    def trading_pid(self) -> int | None:
        return trading_pid(self.root)

    def backups(self) -> list[BackupMetadata]:
        """Every backup of the site, newest first."""
        return RecoveryManager(site=load_site(self.root)).list_backups()

    def backups_tagged(self, tag: str) -> list[BackupMetadata]:
        return [metadata for metadata in self.backups() if tag in metadata.tags]


def make_data_loss_site(parent: Path, variant: str = "files_deleted", trades_after_backup: int = 5) -> DataLossSite:
    """Trading runs, the daily backup is taken, trading goes on for ``trades_after_backup`` trades, then
    ``inject(site, "data", variant)``: with ``files_deleted`` the ledger and positions are gone (the
    still-running process starts a new ledger without a header), so a repair in place would lose
    every trade before the fault and only a restore plus the exchange's fills loses none."""
    root = parent / "site"
    create_sandbox(root, SMALL_SPEC)
    site = load_site(root)
    started = start_system(site, timeout_s=15)
    assert started.ok, f"the sandbox's trading process did not start: {started.message}"
    backup_id = RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
    backup_highest = highest_trade_id(site.backup_dir / backup_id / site.trades_file)
    wait_for_trades(root, backup_highest, trades_after_backup)
    fault = inject(site, "data", variant=variant, seed=5)
    return DataLossSite(
        root=root,
        backup_id=backup_id,
        backup_highest_id=backup_highest,
        trades_after_backup=trades_after_backup,
        fault=fault,
        config=site.path(site.config_file).read_bytes(),
    )


@dataclass
class FailedSite:
    """A sandbox after a complete system failure: trading killed, config, data and state destroyed."""

    root: Path
    backup_id: str
    fault: Fault

    def trading_pid(self) -> int | None:
        return trading_pid(self.root)

    def backups_tagged(self, tag: str) -> list[BackupMetadata]:
        return [m for m in RecoveryManager(site=load_site(self.root)).list_backups() if tag in m.tags]


def make_failed_site(parent: Path, trades_after_backup: int = 3) -> FailedSite:
    """Trading runs, the daily backup is taken, trading goes on, then ``inject(site, "full", "everything")``."""
    root = parent / "site"
    create_sandbox(root, SMALL_SPEC)
    site = load_site(root)
    started = start_system(site, timeout_s=15)
    assert started.ok, f"the sandbox's trading process did not start: {started.message}"
    backup_id = RecoveryManager(site=site).create_backup(description="Scheduled daily backup", tags=["daily"])
    wait_for_trades(root, highest_trade_id(site.backup_dir / backup_id / site.trades_file), trades_after_backup)
    fault = inject(site, "full", variant="everything", seed=7)
    assert trading_pid(root) is None
    return FailedSite(root=root, backup_id=backup_id, fault=fault)


def stop_trading(roots: list[Path]) -> list[str]:
    """Stop the trading process of every site; returns the ones that would not stop (killed)."""
    left = []
    for root in roots:
        pid = trading_pid(root)
        action = stop_system(load_site(root), timeout_s=15)
        if pid is not None and psutil.pid_exists(pid):
            try:
                psutil.Process(pid).wait(timeout=5)
            except psutil.TimeoutExpired:
                psutil.Process(pid).kill()
                left.append(f"{root}: pid {pid} ({action.message})")
            except psutil.NoSuchProcess:
                pass
    return left


def _sites(tmp_path_factory: pytest.TempPathFactory, maker: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``make(name, **options)`` builds a site with ``maker`` in a fresh directory; at teardown every
    trading process of those sites is stopped, and the fixture fails if one is left."""
    made: list[Any] = []

    def make(name: str, **options: Any) -> Any:
        site = maker(tmp_path_factory.mktemp(name), **options)
        made.append(site)
        return site

    yield make
    left = stop_trading([site.root for site in made])
    assert not left, f"trading processes still running after stop_system: {left}"


@pytest.fixture(scope="module")
def broken_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], BrokenSite]]:
    """``broken_sites(name)`` builds a site with a corrupted config (:func:`make_broken_site`)."""
    yield from _sites(tmp_path_factory, make_broken_site)


@pytest.fixture(scope="module")
def data_loss_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., DataLossSite]]:
    """``data_loss_sites(name, variant=...)`` builds a site that lost data (:func:`make_data_loss_site`);
    the notebooks restart its trading process, which teardown stops."""
    yield from _sites(tmp_path_factory, make_data_loss_site)


@pytest.fixture(scope="module")
def failed_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], FailedSite]]:
    """``failed_sites(name)`` builds a site after a complete failure (:func:`make_failed_site`)."""
    yield from _sites(tmp_path_factory, make_failed_site)


# --- JupyterLab servers ------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def lab_servers() -> Iterator[Callable[[Path], LabServer]]:
    """``lab_servers(site)`` starts a JupyterLab for that site; teardown stops all and checks no kernel is left."""
    started: list[LabServer] = []
    homes: list[Path] = []

    def start(site: Path) -> LabServer:
        home = Path(tempfile.mkdtemp(prefix="lab-"))
        homes.append(home)
        server = start_lab(site, home)
        started.append(server)
        return server

    yield start
    problems = []
    for server in started:
        problems += stop_lab(server)
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)
    assert not problems, "processes left behind: " + "; ".join(problems)


# --- a drill's records -------------------------------------------------------------------------


@dataclass
class DrillRecords:
    """The outputs directory of one ``recovery drill run --scenario config``."""

    outputs: Path
    run_dir: Path
    seconds: float
    returncode: int
    stdout: str


@pytest.fixture(scope="session")
def config_drill(tmp_path_factory: pytest.TempPathFactory) -> DrillRecords:
    """Run ``recovery drill run --scenario config`` once per session (about 15 s) into a temp outputs/.

    Whether the drill recovered is a test of its own; the records it wrote are rendered either way."""
    outputs = tmp_path_factory.mktemp("drill") / "outputs"
    recovery = Path(sys.executable).with_name("recovery")
    env = {key: value for key, value in os.environ.items() if key != "RECOVERY_SITE"}
    began = time.monotonic()
    done = subprocess.run(
        [str(recovery), "drill", "run", "--scenario", "config", "--outputs", str(outputs)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - began
    runs = [path for path in outputs.iterdir() if path.is_dir() and not path.name.startswith(".")]
    assert len(runs) == 1, f"expected one drill record directory in {outputs}, found {runs}:\n{done.stdout}"
    assert (outputs / "index.html").is_file(), f"no records page written:\n{done.stdout}\n{done.stderr}"
    return DrillRecords(
        outputs=outputs,
        run_dir=runs[0],
        seconds=seconds,
        returncode=done.returncode,
        stdout=done.stdout + done.stderr,
    )
