"""The reliability suite: the bad-input ``world``, and a report of how many failure points, kills and
hostile cases it tried."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_helpers import World
from site_state import TALLY, make_tiny_site


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A fresh :class:`World`; the current directory is an empty directory inside it."""
    site = make_tiny_site(tmp_path / "site")
    bare = make_tiny_site(tmp_path / "bare")
    file = tmp_path / "afile"
    file.write_text("not a directory\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return World(tmp=tmp_path, site=site, bare=bare, file=file, missing=tmp_path / "missing")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        terminalreporter.section("reliability suite")
        for what, count in sorted(TALLY.items()):
            terminalreporter.write_line(f"{count:6d}  {what}")
