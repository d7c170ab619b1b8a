"""Issue 17's "Done when": for each procedure, the disk fills at each step that writes, then the run is
resumed from the failed one; it ends recovered, and every write happened exactly once across both runs.

This file holds Procedures A and B and the helpers the C/D matrix (test_resume_matrix_cd.py) and the
staleness tests (test_resume_stale.py) share. Each case executes the committed notebook's own cells
in-process, as a kernel would (headless, every action approved), on a copy of a per-procedure sandbox
template with the matching drill fault injected.

Fault injection at a real boundary, not a mock: the one call a step makes that writes (or the library
function under it that fills the disk, e.g. ``build_backup`` under a backup) is monkeypatched to raise
``OSError(ENOSPC)`` once; the rest of the stack handles it as it would a full disk. The second run has
no fault and gives ``resume_from=<first run id>``.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from site_copies import copy_site

import recovery_lib.backup.store as backup_store
import recovery_lib.restore.apply as restore_apply
import recovery_lib.runbook.steps.data as data_steps
import recovery_lib.runbook.steps.system as system_steps
from recovery_lib.drills.injectors import inject
from recovery_lib.manager import PRE_RECOVERY_TAG, RecoveryManager
from recovery_lib.runbook.journal import IncidentJournal, release_procedure_lock
from recovery_lib.sandbox.destination import replica_dir
from recovery_lib.site.config import load_site
from recovery_lib.site.process import process_status, start_system, stop_system

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = {
    "A": "A_config_recovery.ipynb",
    "B": "B_data_recovery.ipynb",
    "C": "C_full_system_recovery.ipynb",
    "D": "D_backup_system_recovery.ipynb",
}
APPROVE_ALL = ["restore", "repair", "backup", "stop_system", "start_system"]
DISK_FULL = "No space left on device"
CATEGORIES = ("config", "state", "data")


def cells(procedure: str) -> list[tuple[str, str]]:
    """(tag, source) of every code cell of a committed procedure notebook."""
    notebook = nbformat.read(NOTEBOOKS / NOTEBOOK[procedure], as_version=4)
    return [((c.metadata.get("tags") or [""])[0], c.source) for c in notebook.cells if c.cell_type == "code"]


@dataclass
class Executed:
    """One headless execution of a procedure notebook: its kernel namespace, and the cell that raised."""

    namespace: dict[str, Any]
    raised_at: str | None = None
    error: BaseException | None = None
    files_after: dict[str, bytes] = field(default_factory=dict)  # the site's files when it ended
    backups_after: list[str] = field(default_factory=list)  # and its backups

    @property
    def run(self) -> Any:
        return self.namespace["run"]

    @property
    def records(self) -> dict[str, Any]:
        return self.run.recorder.values

    @property
    def recovered(self) -> bool:
        return self.raised_at is None and bool((self.records.get("outcome") or {}).get("success"))

    def said(self) -> str:
        """What the run said of its failure: the exception, the halt, each record's ``error`` (a push's too)."""

        def errors(value: Any) -> list[str]:
            if isinstance(value, list):
                return [e for item in value for e in errors(item)]
            if not isinstance(value, dict):
                return []
            return [str(value.get("error") or "")] + [e for v in value.values() for e in errors(v)]

        halted = (self.records.get("halted") or {}).get("reason") or ""
        return " ".join([repr(self.error), halted, *errors(self.records)])


def execute(procedure: str, site: Path, **parameters: Any) -> Executed:
    """Run every cell of the procedure's notebook in order in one namespace, as papermill does (its
    parameters injected after the parameters cell), until one raises."""
    namespace: dict[str, Any] = {}
    for tag, source in cells(procedure):
        try:
            exec(compile(source, tag, "exec", dont_inherit=True), namespace)  # no __future__ of ours
        except Exception as exc:  # noqa: BLE001 - the test asserts on which cell stopped the run, and why
            return Executed(namespace, tag, exc)
        if tag == "parameters":
            namespace.update(
                site=str(site), interactive=False, approve=APPROVE_ALL, operator="drill-bot", kind="drill", **parameters
            )
    return Executed(namespace)


def site_files(root: Path) -> dict[str, bytes]:
    """Every file of the site's config, state and data, with its bytes."""
    site = load_site(root)
    found: dict[str, bytes] = {}
    for category in CATEGORIES:
        for top in site.categories[category]:
            path = site.path(top)
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            found.update({p.relative_to(root).as_posix(): p.read_bytes() for p in files})
    return found


def backup_ids(root: Path) -> list[str]:
    return sorted(m.backup_id for m in RecoveryManager(site=root).list_backups())


def tagged(root: Path, tag: str) -> list[str]:
    return [m.backup_id for m in RecoveryManager(site=root).list_backups() if tag in m.tags]


@dataclass
class DiskFull:
    """``owner.name`` raises OSError(ENOSPC) the first time it is called (``only`` picks the call by its
    arguments): the disk filled there. It saves the site and the backup listing as they were at that
    moment, to prove the failure lost nothing."""

    owner: Any
    name: str
    only: Callable[..., bool] = lambda *a, **k: True
    fired: int = 0
    files_then: dict[str, bytes] = field(default_factory=dict)
    backups_then: list[str] = field(default_factory=list)
    running_then: bool | None = None

    def arm(self, monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
        real = getattr(self.owner, self.name)

        def full(*args: Any, **kwargs: Any) -> Any:
            if self.fired or not self.only(*args, **kwargs):
                return real(*args, **kwargs)
            self.fired += 1
            self.files_then, self.backups_then = site_files(site), backup_ids(site)
            self.running_then = process_status(load_site(site)).running
            raise OSError(errno.ENOSPC, DISK_FULL)

        monkeypatch.setattr(self.owner, self.name, full)


def tags_have(tag: str) -> Callable[..., bool]:
    """``only`` of a DiskFull on ``build_backup(site, backup_dir, categories, description, tags, ...)``."""
    return lambda *args, **kwargs: tag in (args[4] if len(args) > 4 else kwargs.get("tags", []))


# --- counting every write of an incident across its runs -------------------------------------------


def writes(site: Path, executed: Executed) -> dict[str, int]:
    """How many times each kind of write happened in the incident (every run of it): its journal's records,
    and the backups in the backup directory."""
    entries = IncidentJournal(load_site(site).records_dir, executed.run.incident_id).entries()

    def count(name: str, ok: Callable[[dict[str, Any]], bool]) -> int:
        found = [e["value"] for e in entries if e.get("kind") == "record" and e.get("name") == name]
        return sum(1 for value in found if isinstance(value, dict) and ok(value))

    return {
        "stops": count("stop_system", lambda v: v.get("ok") is True),
        "starts": count("restart_system", lambda v: v.get("ok") is True and v.get("action") == "start"),
        "pre_recovery_backups": len(tagged(site, PRE_RECOVERY_TAG)),
        "restores": count("restore_result", lambda v: v.get("ok") is True),
        "trade_write_backs": count("trades", lambda v: (v.get("recovered") or 0) > 0),
        "post_recovery_backups": len(tagged(site, "post-incident")),
        "emergency_backups": len(tagged(site, "manual")),
        "pushes": count("replica_push", lambda v: v.get("ok") is True and bool(v.get("replicas"))),
        "pulls": count("replica_seed", lambda v: v.get("needed") is True and v.get("ok") is True),
        "quarantines": count("quarantine", lambda v: bool(v.get("quarantined"))),
    }


# --- sandboxes: one template per procedure, copied per case --------------------------------------------


def make_trades(site: Path, count: int) -> None:
    """``count`` trades by the sandbox's trading process (on the exchange and in the ledger), in a child
    process: trades made after the nightly backup, which a replay writes back after a restore."""
    command = [sys.executable, "-m", "recovery_lib.sandbox.live_ops", "--site", str(site)]
    subprocess.run([*command, "--interval", "0", "--max-trades", str(count)], check=True, timeout=60)


def template(sandbox_template: Path, where: Path, trades_after: int = 5) -> Path:
    """A copy of the session's sandbox with a nightly backup (pushed to its replica), then ``trades_after``
    trades made since."""
    site = copy_site(sandbox_template, where)
    RecoveryManager(site=site).create_backup(description="nightly", tags=["daily"])
    if trades_after:
        make_trades(site, trades_after)
    return site


def case_site(template_site: Path, tmp_path: Path, with_replica: bool = False) -> Path:
    """A private copy of a procedure's template (and of its replica's contents, ``with_replica``)."""
    site = copy_site(template_site, tmp_path / "site")
    if with_replica and replica_dir(template_site).exists():
        shutil.copytree(replica_dir(template_site), replica_dir(site))
    return site


@contextlib.contextmanager
def running(site: Path, start: bool = True) -> Iterator[Path]:
    """The site with its trading process running (``start``); stopped again and the procedure lock let go
    after, whatever the test left."""
    if start:
        assert start_system(load_site(site), timeout_s=15).ok
    try:
        yield site
    finally:
        stop_system(load_site(site), timeout_s=15)
        release_procedure_lock(load_site(site).records_dir)


def traded_since(site: Path, first: Executed) -> None:
    """Wait (bounded) until the trading process that the failed stop left running made a trade after the
    failed run's assessment: the site changed since, for certain."""
    ledger = load_site(site).path(load_site(site).trades_file)
    before = ledger.read_bytes() if ledger.exists() else b""
    deadline = time.monotonic() + 15
    while (ledger.read_bytes() if ledger.exists() else b"") == before:
        assert time.monotonic() < deadline, "the trading process made no trade in 15 s"
        time.sleep(0.05)


def assert_once(counted: dict[str, int], **expected: int) -> None:
    """Each write in ``expected`` happened that many times in the incident (both runs)."""
    assert {name: counted[name] for name in expected} == expected, counted


def fail_then_resume(
    procedure: str,
    site: Path,
    fault: DiskFull,
    monkeypatch: pytest.MonkeyPatch,
    between: Callable[[Executed], None] = lambda first: None,
    **parameters: Any,
) -> tuple[Executed, Executed]:
    """The first run with the disk full at ``fault``; then, the fault removed (and ``between`` done), the run
    resumed."""
    fault.arm(monkeypatch, site)
    first = execute(procedure, site, **parameters)
    monkeypatch.undo()  # the disk has space again
    first.files_after, first.backups_after = site_files(site), backup_ids(site)
    between(first)
    assert fault.fired == 1, f"the fault at {fault.name} never fired: {first.raised_at} {first.error!r}"
    second = execute(procedure, site, resume_from=first.run.run_id, **parameters)
    return first, second


def assert_failed_and_lost_nothing(first: Executed, fault: DiskFull) -> None:
    """The first run did not recover, said the disk was full, and the failing write changed nothing."""
    assert not first.recovered
    assert DISK_FULL in first.said(), f"the failure does not name the disk: {first.said()[:2000]}"
    assert fault.running_then is False, "trading ran when the disk filled: the site could change under the test"
    assert first.files_after == fault.files_then, "the failing write (or a step after it) changed the site"
    assert set(fault.backups_then) <= set(first.backups_after), "a backup was lost"


def assert_stop_raised(first: Executed, fault: DiskFull) -> None:
    """The stop raised at its cell, naming the disk; trading runs on as it did (nothing was changed)."""
    assert first.raised_at == "step:stop_system" and isinstance(first.error, OSError)
    assert fault.running_then is True and DISK_FULL in str(first.error)


def assert_resumed(second: Executed, first: Executed, replayed: list[str], stale: str | None = None) -> None:
    """The resumed run recovered, replaying exactly ``replayed`` from the first run; ``stale``: the step
    whose facts no longer held (None: every step before the failed one was replayed)."""
    assert second.raised_at is None, f"the resumed run raised at {second.raised_at}: {second.error!r}"
    assert second.recovered, second.records.get("outcome")
    assert second.run.resume is not None and second.run.resume.from_run == first.run.run_id
    assert second.run.resume.replayed == replayed, second.run.resume.summary()
    if stale is None:
        assert second.run.resume.stale is None, second.run.resume.summary()
    else:
        assert (second.run.resume.stale or "").startswith(f"{stale}: "), second.run.resume.summary()
    assert second.run.incident_id == first.run.incident_id
    assert second.records["run"]["resumed_from"] == first.run.run_id


# --- Procedure A: the config ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_a(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template(sandbox_template, tmp_path_factory.mktemp("template-a") / "site", trades_after=0)


@pytest.fixture
def site_a(template_a: Path, tmp_path: Path) -> Iterator[Path]:
    site = case_site(template_a, tmp_path)
    with running(site):
        inject(load_site(site), "config", variant="unparseable", seed=1)
        yield site


A_CASES = {
    # step that fails: (the fault, the steps replayed from the failed run)
    "stop": (lambda: DiskFull(system_steps, "stop_system"), []),
    "restore": (
        lambda: DiskFull(backup_store, "build_backup", tags_have(PRE_RECOVERY_TAG)),
        ["stop", "choose_backup"],
    ),
    "restart": (
        lambda: DiskFull(system_steps, "start_system"),
        ["stop", "choose_backup", "plan", "approval", "restore"],
    ),
}


@pytest.mark.parametrize("failing", list(A_CASES))
def test_a_fails_at_each_write_and_resumes_to_recovered(
    failing: str, site_a: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fault, replayed = A_CASES[failing]
    fault = make_fault()
    first, second = fail_then_resume("A", site_a, fault, monkeypatch)

    if failing == "stop":  # the stop raised: trading runs on as before, nothing was changed
        assert_stop_raised(first, fault)
    else:
        assert_failed_and_lost_nothing(first, fault)
    assert_resumed(second, first, replayed)
    assert_once(writes(site_a, second), stops=1, starts=1, pre_recovery_backups=1, restores=1)
    assert process_status(load_site(site_a)).running


# --- Procedure B: the data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_b(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template(sandbox_template, tmp_path_factory.mktemp("template-b") / "site")


@pytest.fixture
def site_b(template_b: Path, tmp_path: Path) -> Iterator[Path]:
    site = case_site(template_b, tmp_path)
    with running(site):
        inject(load_site(site), "data", variant="files_deleted", seed=4)
        yield site


B_PREPARED = ["assess_data_loss", "choose_backup", "data_loss_window", "stop", "pre_recovery_backup"]
B_APPLIED = [*B_PREPARED, "plan_remedies", "remedy_approval", "apply_remedy"]
B_CASES = {
    "stop": (lambda: DiskFull(system_steps, "stop_system"), []),
    "pre_recovery_backup": (
        lambda: DiskFull(backup_store, "build_backup", tags_have(PRE_RECOVERY_TAG)),
        B_PREPARED[:-1],
    ),
    # the restore stages the backup's files: the disk fills there
    "apply_remedy": (lambda: DiskFull(restore_apply, "_stage"), B_PREPARED),
    "replay_trades": (lambda: DiskFull(data_steps, "replay_fills"), B_APPLIED),
    "restart": (lambda: DiskFull(system_steps, "start_system"), [*B_APPLIED, "replay_trades"]),
}


@pytest.mark.parametrize("failing", list(B_CASES))
def test_b_fails_at_each_write_and_resumes_to_recovered(
    failing: str, site_b: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fault, replayed = B_CASES[failing]
    fault = make_fault()
    first, second = fail_then_resume(
        "B",
        site_b,
        fault,
        monkeypatch,
        between=lambda first: traded_since(site_b, first) if failing == "stop" else None,
    )

    if failing == "stop":  # trading ran on and traded: the assessment of the data is made again
        assert_stop_raised(first, fault)
        assert_resumed(second, first, [], stale="assess_data_loss")
        assert "the site's files changed" in (second.run.resume.stale or "")
    else:
        assert_failed_and_lost_nothing(first, fault)
        assert_resumed(second, first, replayed)
    assert_once(writes(site_b, second), stops=1, starts=1, pre_recovery_backups=1, restores=1, trade_write_backs=1)
    assert process_status(load_site(site_b)).running
