"""Shared fixtures: one generated sandbox per session, copied afresh for every test that breaks it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recovery_lib.sandbox import SandboxSpec, create_sandbox

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
    root = tmp_path / "site"
    shutil.copytree(sandbox_template, root, symlinks=True)
    return root
