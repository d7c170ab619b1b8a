"""The reliability suite: reports how many failure points, kills and hostile cases it tried."""

from __future__ import annotations

import pytest
from site_state import TALLY

import recovery_lib.backup.create as create_module


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written milliseconds ago count as unchanged, so backups hard-link them from their parent."""
    monkeypatch.setattr(create_module, "RACY_WINDOW_NS", 0)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        terminalreporter.section("reliability suite")
        for what, count in sorted(TALLY.items()):
            terminalreporter.write_line(f"{count:6d}  {what}")
