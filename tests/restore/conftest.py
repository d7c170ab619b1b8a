"""Fixtures of the restore tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery_lib.manager import RecoveryManager


@pytest.fixture
def backed_up(sandbox: Path) -> tuple[RecoveryManager, str]:
    """A full SUCCESS backup of the pristine sandbox."""
    manager = RecoveryManager(site=sandbox)
    return manager, manager.create_backup(description="known good")
