"""A drill whose HTML export fails: the failure reaches the caller, once everything is stopped.

The HTML of each notebook is written in a worker thread while the next notebook runs; the drill
returns only when every export has ended, and an export that failed is raised from ``run_drill``
(after the trading process and the kernels are stopped and the sandbox is removed), never dropped.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from drill_helpers import pid_alive
from test_drill_runs import Watcher, processes_in

from recovery_lib.drills import runner
from recovery_lib.drills.history import drill_row


def test_a_failed_html_export_is_raised_after_the_drill_has_stopped_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_html = runner._html  # noqa: SLF001
    exported: list[str] = []

    def html(notebook: Path) -> None:
        if "_V_" in notebook.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(notebook.with_suffix(".html")))
        real_html(notebook)
        exported.append(notebook.name)

    monkeypatch.setattr(runner, "_html", html)
    watcher = Watcher()
    with pytest.raises(OSError) as raised:
        runner.run_drill("config", tmp_path / "out", say=watcher, variant="section_renamed")
    assert raised.value.errno == errno.ENOSPC
    assert any("_V_verification.html failed" in note for note in raised.value.__notes__)

    (run_dir,) = (tmp_path / "out").iterdir()
    notebooks = sorted(run_dir.glob("*.ipynb"))
    assert [p.name for p in notebooks] == [
        "01_00_detect_and_triage.ipynb",
        "02_A_config_recovery.ipynb",
        "03_V_verification.ipynb",
        "04_P_post_recovery.ipynb",
    ]
    assert exported == [p.name for p in notebooks if "_V_" not in p.name]  # the others were all written
    for notebook in notebooks:
        page = notebook.with_suffix(".html")
        assert page.exists() == ("_V_" not in notebook.name)
        if page.exists():
            assert page.read_text(encoding="utf-8").rstrip().endswith("</html>"), page
    assert (drill_row(run_dir) or {}).get("outcome") == "recovered"  # the record itself is complete

    assert watcher.seen, "the trading process was never seen running"
    assert not [pid for pid in watcher.seen if pid_alive(pid)]
    for site_root in set(watcher.seen.values()):
        assert processes_in(Path(site_root)) == []  # no kernel and no trading process left in the site
        assert not Path(site_root).parent.exists(), "the drill's sandbox was not removed"
