"""A push killed (SIGKILL) at random moments leaves the replica consistent, and the next push completes
it without uploading again what is already there.

After every kill: each backup the replica calls complete verifies with every byte decrypted and
checked against its manifest; every object present decrypts whole (puts are atomic); a backup without
its commit marker is invisible. Loops are bounded in `make test`, 20x longer with `make soak`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pyrage import x25519
from servers import spec_for

from recovery_lib.manager import RecoveryManager
from recovery_lib.replica.check import verify_remote
from recovery_lib.replica.layout import OBJECTS_PREFIX, object_key
from recovery_lib.replica.open import open_transport
from recovery_lib.replica.push import push_backups
from recovery_lib.replica.remote import Replica

LONG = bool(os.environ.get("RECOVERY_TESTS_LONG"))
KILLS = 60 if LONG else 6

CHILD = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path
    from recovery_lib.replica.open import open_transport
    from recovery_lib.replica.push import push_backups
    from recovery_lib.replica.remote import Replica
    from recovery_lib.site.replicas import ReplicaSpec

    root, recipient, backup_dir, *ids = sys.argv[1:]
    spec = ReplicaSpec(name="usb", url="file://" + root, scheme="file", location=root, age_recipients=(recipient,))
    replica = Replica(spec, open_transport(spec))
    print("ready", flush=True)
    started = time.monotonic()
    report = push_backups(replica, Path(backup_dir), ids)
    print(f"done {time.monotonic() - started:.3f}" if report.ok else report.failed, flush=True)
    """
)


def _grow(site: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    folder = site / "state" / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"s{seed}-{i:04d}.json").write_bytes(rng.randbytes(rng.randint(100, 6000)))


def _check_consistent(spec, identity_file: Path) -> tuple[set[str], set[str]]:
    """Every complete backup verifies fully and every stored object decrypts whole; returns (committed
    ids, object keys present)."""
    replica = Replica(spec, open_transport(spec))
    try:
        if replica.config() is None:
            return set(), set()
        objects = {o.key: o for o in replica.transport.list(OBJECTS_PREFIX)}
        opener = replica.opener(str(identity_file))
        committed = replica.committed_ids()
        for backup_id in committed:
            report = verify_remote(replica, backup_id, True, opener, objects)
            assert report.ok and report.plaintext, report.summary()
        for key in objects:  # orphans of the killed push included: whole or absent, never torn
            blob = replica.transport.get_bytes(key, max_size=10**8)
            opener.open_bytes(blob, key)
        return set(committed), set(objects)
    finally:
        replica.close()


def test_push_killed_at_random_moments_leaves_the_replica_consistent(sandbox: Path, tmp_path: Path) -> None:
    key = x25519.Identity.generate()
    identity_file = tmp_path / "key.txt"
    identity_file.write_text(f"{key}\n")
    root = tmp_path / "disk" / "replica"
    root.parent.mkdir()
    spec = spec_for("file", directory=root, name="usb", age_recipients=(str(key.to_public()),))
    manager = RecoveryManager(site=sandbox)
    rng = random.Random(1)
    ids: list[str] = []
    kills = completed = 0
    window = 0.6  # seconds after "ready" the kill may land; shrunk to how long a push really takes here
    for round_ in range(KILLS):
        _grow(sandbox, 150, round_)
        ids.append(manager.create_backup(description=f"round {round_}"))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(key.to_public()), str(manager.backup_dir), *ids],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, window))
        child.send_signal(signal.SIGKILL)
        code = child.wait()
        kills += code == -signal.SIGKILL
        completed += code == 0
        said = child.stdout.read().split() if code == 0 else []
        if said[:1] == ["done"]:  # it finished before the kill: aim the next kills inside a push this long
            window = max(0.01, 0.8 * float(said[1]))
        _check_consistent(spec, identity_file)
    print(f"{kills} of {KILLS} pushes killed mid-way, {completed} completed")
    assert kills >= KILLS // 2, f"only {kills} of {KILLS} pushes were killed mid-way: the test proves little"

    # The next push completes everything and uploads only what is missing.
    committed, present = _check_consistent(spec, identity_file)
    replica = Replica(spec, open_transport(spec))
    config = replica.config()
    assert config is not None
    needed = set()
    for backup_id in ids:
        manifest = manager._manifest(backup_id)
        needed |= {object_key(config.object_name(e.sha256)) for e in manifest.files}
    report = push_backups(replica, manager.backup_dir, ids)
    assert report.ok, report.summary()
    assert set(report.already) == committed and set(report.pushed) == set(ids) - committed
    assert report.objects_uploaded == len(needed - present)
    final, _ = _check_consistent(spec, identity_file)
    assert final == set(ids)
