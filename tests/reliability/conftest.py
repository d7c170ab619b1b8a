"""The reliability suite: reports how many failure points, kills and hostile cases it tried."""

from __future__ import annotations

import pytest
from site_state import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        terminalreporter.section("reliability suite")
        for what, count in sorted(TALLY.items()):
            terminalreporter.write_line(f"{count:6d}  {what}")
