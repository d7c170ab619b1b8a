"""The backup picker (issue 12, finding 5): each option says what the backup is, the backups of a broken
state come last and are marked, and the "Selected backup" text follows the picker.

Real backups of a sandbox, a real run from ``start()`` and real ipywidgets: the picker's value is set the
way JupyterLab sets it (``widget.value = ...``), which fires the same observers a click does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.rendering import WIDGET_VIEW, human_size
from recovery_lib.runbook import procedures as steps
from recovery_lib.runbook.notebook import Run, start
from recovery_lib.runbook.records import MIME_TYPE

CONFIG = "config/config.toml"


def make_run(site: Path, interactive: bool, backup_id: str = "latest") -> Run:
    """A procedure A run as its validation cell starts it (no kernel: the library called directly)."""
    namespace: dict[str, Any] = {
        "__annotations__": {
            "site": str,
            "interactive": bool,
            "approve": list[str],
            "operator": str,
            "kind": str,
            "backup_id": str,
        },
        "site": str(site),
        "interactive": interactive,
        "approve": [],
        "operator": "picker-test",
        "kind": "drill",
        "backup_id": backup_id,
    }
    return start(namespace, procedure="A")


def break_config(site: Path) -> None:
    """A bad edit: the config no longer parses (an unterminated table header)."""
    text = (site / CONFIG).read_text()
    (site / CONFIG).write_text(text.replace("[trading]", "[trading", 1))


@pytest.fixture
def history(sandbox: Path) -> dict[str, str]:
    """Oldest first: a good daily backup, a pre-recovery snapshot (of a state that passes the checks),
    then the bad edit and the nightly backup of it (verifies, cannot fix the config)."""
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup(description="Scheduled daily backup", tags=["daily"])
    pre = manager.create_backup(description="Pre-recovery current state", tags=[PRE_RECOVERY_TAG, "emergency"])
    break_config(sandbox)
    nightly = manager.create_backup(description="nightly", tags=["daily"])
    return {"good": good, "pre": pre, "nightly": nightly}


def labels(choice: steps.BackupChoice) -> dict[str, str]:
    return {value: label for label, value in choice.widget.widget.options}


def test_the_picker_lists_what_each_backup_is_good_candidates_first(sandbox: Path, history: dict[str, str]) -> None:
    choice = steps.choose_backup(make_run(sandbox, interactive=True), "latest", needs=("config",))

    picker = choice.widget.widget
    assert picker.value == history["good"]  # the default stays the chosen backup
    # Good candidates first; then the broken-state backups, newest first.
    assert [value for _, value in picker.options] == [history["good"], history["nightly"], history["pre"]]
    manager = RecoveryManager(site=sandbox)
    for backup_id, label in labels(choice).items():
        metadata = manager.get_backup(backup_id)
        assert backup_id in label and " old" in label and human_size(metadata.size_bytes) in label
        assert ", ".join(metadata.tags) in label
        assert "verifies (every byte hashed)" in label  # the manager's check, within the health budget
    good, nightly, pre = (labels(choice)[history[name]] for name in ("good", "nightly", "pre"))
    assert good.startswith("✅ ") and good.endswith("passes the config check")
    assert nightly.startswith("❌ ")
    assert "cannot fix: holds a config that fails the config check: config/config.toml is not valid TOML" in nightly
    assert pre.startswith("⚠ ") and "pre-recovery: the state at the time of an incident" in pre


def test_the_selected_text_follows_the_picker_and_the_pick_is_recorded(sandbox: Path, history: dict[str, str]) -> None:
    run = make_run(sandbox, interactive=True)
    choice = steps.choose_backup(run, "latest", needs=("config",))
    before = choice.bundle()
    assert before["text/plain"].startswith(f"Selected backup {history['good']},")
    assert choice.unfit() == [] and run.recorder.values["backup_selection"]["via"] == "parameter"

    choice.widget.widget.value = history["nightly"]  # what a click in JupyterLab does

    assert choice.backup_id == history["nightly"]
    shown = choice.bundle()
    for text in (shown["text/plain"], shown["text/html"]):
        assert history["nightly"] in text and history["good"] in text  # picked, instead of the chosen one
        assert "Restoring it will not fix the fault: holds a config that fails the config check" in text
    assert shown["text/plain"].startswith(f"Selected backup {history['nightly']},")
    # The picker's own static text (what an archived record shows where the widget was) follows too.
    static = choice.widget.bundle()
    assert history["nightly"] in static["text/plain"] and history["nightly"] in static["text/html"]
    assert WIDGET_VIEW in static
    [problem] = choice.unfit()
    assert problem.startswith(f"backup {history['nightly']} holds a config that fails the config check")
    recorded = run.recorder.values["backup_selection"]
    assert recorded["backup_id"] == history["nightly"] and recorded["via"] == "picker"
    assert recorded["unfit"] == [problem] and recorded["requested"] == "latest"
    # The display carries the pick's record, so the archived notebook holds the last pick.
    assert shown[MIME_TYPE]["name"] == "backup_selection" and shown[MIME_TYPE]["value"] == recorded

    choice.widget.widget.value = history["pre"]

    assert choice.unfit() == []  # a pre-recovery snapshot that passes the checks is marked, not refused
    assert "⚠ A pre-recovery backup" in choice.bundle()["text/plain"]
    assert run.recorder.values["backup_selection"]["pre_recovery"] is True


def test_a_damaged_or_config_only_backup_is_listed_last_as_unable_to_fix(sandbox: Path) -> None:
    manager = RecoveryManager(site=sandbox)
    good = manager.create_backup(description="good", tags=["daily"])
    config_only = manager.create_backup(include_state=False, include_data=False, tags=["pre-deploy"])
    damaged = manager.create_backup(tags=["daily"])
    victim = manager._get_backup_dir(damaged) / "data/positions.csv"
    os.chmod(victim.parent, stat.S_IMODE(victim.parent.stat().st_mode) | stat.S_IWUSR)
    victim.unlink()

    choice = steps.choose_backup(make_run(sandbox, interactive=True), "latest", needs=("data",))

    assert choice.backup_id == good
    assert [value for _, value in choice.widget.widget.options] == [good, damaged, config_only]
    assert "❌ damaged" in labels(choice)[damaged]
    assert "cannot fix: does not verify: data/positions.csv: missing" in labels(choice)[damaged]
    assert "cannot fix: holds config, not data" in labels(choice)[config_only]
    choice.widget.widget.value = damaged
    assert choice.unfit() and all(p.startswith("does not verify: data/positions.csv") for p in choice.unfit())


def test_headless_there_is_no_picker_and_the_text_names_the_backup(sandbox: Path, history: dict[str, str]) -> None:
    choice = steps.choose_backup(make_run(sandbox, interactive=False), "latest", needs=("config",))

    assert choice.widget is None and choice.backup_id == history["good"] and choice.unfit() == []
    text = repr(choice)
    assert text.startswith(f"Selected backup {history['good']},") and "tags: daily" in text
    assert f"passed over: skipped backup {history['nightly']}" in text


def test_the_plan_refuses_a_pick_that_cannot_fix_the_fault(sandbox: Path, history: dict[str, str]) -> None:
    run = make_run(sandbox, interactive=True)
    choice = steps.choose_backup(run, "latest", needs=("config",))
    choice.widget.widget.value = history["nightly"]
    with pytest.raises(steps.UnfitPick, match=rf"backup {history['nightly']} .* cannot fix the fault: .*pick a backup"):
        steps.plan(run, choice, config=True)
    assert "restore_plan" not in run.recorder.values and not run.halted  # nothing planned; pick again
    choice.widget.widget.value = history["good"]
    plan = steps.plan(run, choice, config=True)
    assert plan.backup_id == history["good"] and run.recorder.values["restore_plan"]["backup_id"] == history["good"]
