"""A site file whose name cannot be stored safely is left out of the backup by name, not by reading its
problem's text back: a name that holds ": " or a quote is left out as surely as a plain one."""

from __future__ import annotations

from pathlib import Path

import pytest
from backup_helpers import assert_backup_sound

from recovery_lib.backup import BackupStatus
from recovery_lib.manager import BackupIncomplete, RecoveryManager


@pytest.mark.parametrize(
    "name",
    [
        "plain\nname.csv",  # a newline: SHA256SUMS is one file per line
        "odd: name\nline.csv",  # the problem's text is "'data/odd: name...': ..." and splits at the wrong colon
        "it's\nquoted.csv",  # repr() quotes it with ", not '
    ],
)
def test_an_unsafe_name_is_left_out_and_the_backup_stays_readable(sandbox: Path, name: str) -> None:
    (sandbox / "data" / name).write_text("not to be stored\n")
    manager = RecoveryManager(site=sandbox)
    with pytest.raises(BackupIncomplete) as caught:
        manager.create_backup()
    metadata = caught.value.metadata
    assert metadata.status is BackupStatus.PARTIAL
    assert any(repr(f"data/{name}") in problem for problem in metadata.problems), metadata.problems
    stored = manager._manifest(metadata.backup_id).by_path()  # it parses: no unsafe path went in
    assert f"data/{name}" not in stored
    assert "data/trades.csv" in stored  # everything else was taken
    assert_backup_sound(manager, metadata.backup_id)
