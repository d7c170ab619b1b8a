"""Shared fixtures: one generated sandbox per session, copied afresh for every test that breaks it."""

from __future__ import annotations

import importlib.util
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from site_copies import copy_site

import recovery_lib.backup.create as create_module
from recovery_lib.sandbox import SandboxSpec, create_sandbox

LONG_ENV = "RECOVERY_TESTS_LONG"

# tests/browser needs the `browser` extra (Playwright), which `make test-browser` installs and
# `make test` does not: without it, do not even import that directory.
collect_ignore = [] if importlib.util.find_spec("playwright") else ["browser"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="reliability suite: run its loops (failure points, kills, hypothesis examples) for longer",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Bounded by default so `make test` stays a few minutes on 2 cores; `make soak` passes --long.
    # Reliability tests size their loops with ``scaled()`` (tests/reliability/site_state.py), which
    # reads this variable: hypothesis decorators are evaluated before any fixture exists.
    long_run = bool(config.getoption("--long"))
    os.environ[LONG_ENV] = "1" if long_run else ""
    # Derandomized by default so CI is reproducible; the long run explores new examples every time.
    settings.register_profile("default", deadline=None, derandomize=True)
    settings.register_profile("long", deadline=None, max_examples=1000)
    settings.load_profile("long" if long_run else "default")


SANDBOX_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SANDBOX_SPEC = SandboxSpec(trades=500, reports=3, report_rows=20, seed=11, now=SANDBOX_NOW)


@pytest.fixture(autouse=True)
def _no_site_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the caller's $RECOVERY_SITE."""
    monkeypatch.delenv("RECOVERY_SITE", raising=False)


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox generated once per session; never modify it, use ``sandbox`` instead."""
    root = tmp_path_factory.mktemp("template") / "site"
    create_sandbox(root, SANDBOX_SPEC)
    return root


@pytest.fixture
def sandbox(sandbox_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template sandbox that a test may break freely."""
    return copy_site(sandbox_template, tmp_path / "site")


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written milliseconds ago count as unchanged, so backups hard-link them from their parent
    (the sandbox copy is only milliseconds old)."""
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)
