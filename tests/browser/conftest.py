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

The sites are built in ``browser_sites.py`` and the servers started and stopped in ``lab_server.py``;
driving the notebooks (open, run a cell, Run All, Approve / Abort, reload, restart the kernel) and
reading the incident journal is in ``lab.py``.

Screenshots go to ``outputs/browser/<test name>/NN-<moment>.png`` under the repository root; the
directories are listed at the end of the run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser_sites import (
    BrokenSite,
    DataLossSite,
    FailedSite,
    make_broken_site,
    make_data_loss_site,
    make_failed_site,
    stop_trading,
)
from lab_server import LabServer, start_lab, stop_lab
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, Route, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
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
