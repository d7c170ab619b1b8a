"""docs/replica-format.md's by-hand restore works: the page's own shell block, run with coreutils and
Debian's `age` against a real encrypted replica, rebuilds the backup byte for byte.

The block's two `aws s3 cp` lines are the only substitution (to `cp` / `cat` of the replica's
directory): everything else runs exactly as a person would paste it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pyrage import x25519
from servers import spec_for
from snapshots import files

from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.push import push_backups
from recovery_lib.replica.remote import Replica

DOC = Path(__file__).resolve().parents[2] / "docs" / "replica-format.md"


def _block() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Restoring one backup by hand") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(shutil.which("age") is None, reason="needs Debian's age: sudo apt-get install age (.ci/run does)")
def test_the_documented_restore_by_hand_rebuilds_the_backup(sandbox: Path, tmp_path: Path) -> None:
    key = x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"{key}\n")
    root = tmp_path / "disk" / "replica"
    root.parent.mkdir()
    spec = spec_for("file", directory=root, age_recipients=(str(key.to_public()),))
    manager = RecoveryManager(site=sandbox)
    backup_id = manager.create_backup()
    assert push_backups(Replica(spec, open_transport(spec)), manager.backup_dir, [backup_id]).ok

    script = _block()
    s3_lines = [line for line in script.splitlines() if "aws s3 cp" in line]
    assert len(s3_lines) == 2, "the by-hand restore changed shape; update this test with it"
    script = script.replace(s3_lines[0].strip(), f'cp -r "{root}/backups/$B/." .')
    script = re.sub(r'aws s3 cp "s3://[^"]*/objects/(\$\{obj:0:2\}/\$obj)" -', rf'cat "{root}/objects/\1"', script)
    script = script.replace("~/key.txt", str(key_file))
    script = re.sub(r"^B=.*$", f"B={backup_id}", script, flags=re.M)
    work = tmp_path / "by-hand"
    work.mkdir()
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"backup {backup_id} is complete and intact" in done.stdout
    rebuilt = work / "restore" / backup_id
    original = files(manager.backup_dir / backup_id)
    by_hand = files(rebuilt, exclude=())
    for name, content in original.items():
        assert by_hand.get(name) == content, name
