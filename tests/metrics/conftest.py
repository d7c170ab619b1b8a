"""Fixtures of the metrics tests: a textfile-collector directory and a sandbox site writing to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from metrics_helpers import metrics_site

from recovery_lib.site.config import Site


@pytest.fixture
def textfiles(tmp_path: Path) -> Path:
    """node_exporter's textfile-collector directory, empty."""
    directory = tmp_path / "textfile_collector"
    directory.mkdir()
    return directory


@pytest.fixture
def site(sandbox: Path, textfiles: Path) -> Site:
    """A sandbox site whose [metrics] textfile_dir is ``textfiles``."""
    return metrics_site(sandbox, textfiles)
