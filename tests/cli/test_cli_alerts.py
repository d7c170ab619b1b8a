"""The scheduled commands tell ``[alerts]``: a failed or PARTIAL backup, a failed push, a damaged backup,
a failed drill run notify; pings go /start then success or /fail; a notification that cannot be
delivered is logged and never fails the backup. Against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_receiver import Receiver, dead_url, running_receiver

from recovery_lib.cli.drill import drill_log_target
from recovery_lib.cli.main import build_parser, main
from recovery_lib.cli.operations import Report, tell_drills
from recovery_lib.drills.runner import DrillResult
from recovery_lib.site.config import load_site


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def with_alerts(site: Path, urls: list[str], replica: Path | None = None, **keys: str) -> None:
    """Add ``[alerts]`` to the site's recovery.toml (and point its replica at ``replica``)."""
    toml = site / "recovery.toml"
    text = toml.read_text()
    text = text[: text.index("\n[alerts]\n")] if "\n[alerts]\n" in text else text  # ours, the last table
    if replica is not None:
        start = text.index('url = "file://', text.index("[[replicas]]"))
        end = text.index("\n", start)
        text = text[:start] + f'url = "file://{replica}"' + text[end:]
    lines = [f"urls = {json.dumps(urls)}", *(f"{key} = {json.dumps(value)}" for key, value in keys.items())]
    toml.write_text(text.rstrip("\n") + "\n\n[alerts]\n" + "\n".join(lines) + "\n")


def log_file(site: Path) -> Path:
    return site / "backups" / ".logs" / "recovery.log"


def test_a_good_backup_pings_start_then_success_and_notifies_nobody(sandbox: Path, receiver: Receiver) -> None:
    with_alerts(sandbox, [receiver.json_url("/notify")], ping_backup=receiver.url("/ping/b1"))
    code, text = run("backup", "create", "--scheduled", "--site", str(sandbox))
    assert code == 0, text
    backup_id = text.split()[1]
    assert [(r.method, r.path) for r in receiver.received()] == [("POST", "/ping/b1/start"), ("POST", "/ping/b1")]
    assert f"Backup {backup_id}" in receiver.received()[1].text
    assert receiver.notifications() == []


def test_a_manual_backup_sends_no_ping_and_is_not_tagged_scheduled(sandbox: Path, receiver: Receiver) -> None:
    """Only the schedule pings: a person's backups must not keep a dead timer's healthchecks check green."""
    with_alerts(sandbox, [receiver.json_url("/notify")], ping_backup=receiver.url("/ping/m1"))
    code, text = run("backup", "create", "--site", str(sandbox))
    assert code == 0, text
    assert receiver.received() == []
    code, text = run("backup", "create", "--scheduled", "--site", str(sandbox))
    assert code == 0, text
    assert [r.path for r in receiver.received()] == ["/ping/m1/start", "/ping/m1"]
    code, listing = run("backup", "list", "--tag", "scheduled", "--site", str(sandbox))
    assert code == 0 and text.split()[1] in listing and listing.count("[scheduled") == 1, listing


def test_a_partial_backup_notifies_with_the_file_the_backup_and_the_log(sandbox: Path, receiver: Receiver) -> None:
    with_alerts(sandbox, [receiver.json_url("/notify/ops")], ping_backup=receiver.url("/ping/b2"))
    (sandbox / "data" / "latest.csv").symlink_to("trades.csv")  # symlinks are not backed up: PARTIAL
    code, _ = run("backup", "create", "--scheduled", "--site", str(sandbox))
    assert code == 1
    (sent,) = receiver.notifications()
    partial = next(p for p in (sandbox / "backups").iterdir() if not p.name.startswith("."))
    assert sent["title"].startswith(f"[recovery] {load_site(sandbox).name}: backup PARTIAL on ")
    body = sent["message"]
    assert f"backup {partial.name}" in body and "data/latest.csv: is a symlink" in body
    assert f"Record: {log_file(sandbox)}" in body and partial.name in log_file(sandbox).read_text()
    assert [r.path for r in receiver.received("/ping")] == ["/ping/b2/start", "/ping/b2/fail"]
    assert "PARTIAL" in receiver.received("/ping")[1].text


def test_a_backup_that_cannot_run_notifies_failed(sandbox: Path, receiver: Receiver) -> None:
    with_alerts(sandbox, [receiver.json_url("/notify")], ping_backup=receiver.url("/ping/b3"))
    shutil.rmtree(sandbox / "backups", ignore_errors=True)
    (sandbox / "backups").write_text("someone's file\n")
    code, _ = run("backup", "create", "--scheduled", "--site", str(sandbox))
    assert code == 2
    (sent,) = receiver.notifications()
    assert " backup FAILED on " in sent["title"]
    assert "is a file, not a directory" in sent["message"]
    assert [r.path for r in receiver.received("/ping")] == ["/ping/b3/start", "/ping/b3/fail"]
    assert (sandbox / "backups").read_text() == "someone's file\n"  # nothing lost


def test_a_failed_push_after_the_backup_notifies_and_the_backup_still_succeeds(
    sandbox: Path, receiver: Receiver, tmp_path: Path
) -> None:
    unmounted = tmp_path / "not-mounted" / "peak-trade"
    with_alerts(sandbox, [receiver.json_url("/notify")], replica=unmounted, ping_backup=receiver.url("/ping/b4"))
    code, text = run("backup", "create", "--scheduled", "--site", str(sandbox))
    assert code == 0 and "Push to replica offsite FAILED" in text
    (sent,) = receiver.notifications()
    assert " push to replica offsite FAILED on " in sent["title"]
    assert "is the disk mounted?" in sent["message"]
    assert f"Record: {sandbox / 'backups' / '.replicas' / 'offsite.json'}" in sent["message"]
    assert "recovery replica push --replica offsite" in sent["message"]
    assert [r.path for r in receiver.received("/ping")] == ["/ping/b4/start", "/ping/b4"]  # the backup is fine


@pytest.mark.parametrize("far_end", ["down", "500"])
def test_an_undeliverable_notification_is_logged_and_the_backup_exits_0_intact(
    sandbox: Path, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str], far_end: str
) -> None:
    receiver.status = 500
    url = dead_url("/notify", scheme="json") if far_end == "down" else receiver.json_url("/notify")
    with_alerts(sandbox, [url], replica=tmp_path / "gone" / "x", ping_backup=dead_url("/ping"))
    code, text = run("backup", "create", "--scheduled", "--site", str(sandbox))
    err = capsys.readouterr().err
    assert code == 0, err
    backup_id = text.split()[1]
    assert "not delivered" in err and "the run it reports on is not affected" in err
    logged = log_file(sandbox).read_text()
    assert "alert URL 1 (json://127.0.0.1): not delivered" in logged and "ping start to http://127.0.0.1" in logged
    assert len(receiver.received("/notify")) == (1 if far_end == "500" else 0)
    code, text = run("backup", "verify", backup_id, "--read-data", "--site", str(sandbox))
    assert code == 0 and text.startswith("✅")


def test_replica_push_and_verify_failures_notify(sandbox: Path, receiver: Receiver, tmp_path: Path) -> None:
    with_alerts(sandbox, [receiver.json_url("/notify")])
    code, text = run("backup", "create", "--site", str(sandbox))
    assert code == 0 and receiver.notifications() == []
    backup_id = text.split()[1]
    code, _ = run("replica", "push", "--site", str(sandbox))  # a good push: nobody told
    assert code == 0 and receiver.notifications() == []
    # The replica's disk goes away: the push command fails and says so.
    with_alerts(sandbox, [receiver.json_url("/notify")], replica=tmp_path / "unplugged" / "peak-trade")
    code, _ = run("replica", "push", "all", "--site", str(sandbox))
    assert code == 1
    (pushed,) = receiver.notifications()
    assert " push to replica offsite FAILED on " in pushed["title"] and "is the disk mounted?" in pushed["message"]
    assert f"Record: {sandbox / 'backups' / '.replicas' / 'offsite.json'}" in pushed["message"]
    # A damaged backup: verify notifies, naming the file.
    damaged = sandbox / "backups" / backup_id / "data" / "positions.csv"
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes().replace(b"BTC", b"XXX", 1))
    code, _ = run("backup", "verify", "all", "--read-data", "--site", str(sandbox))
    assert code == 1
    verified = receiver.notifications()[1]
    assert " backup verify FAILED on " in verified["title"]
    assert f"{backup_id}: 1 problem(s)" in verified["message"] and "data/positions.csv" in verified["message"]


def test_drill_run_for_a_site_pings_and_notifies_a_run_that_cannot_start(
    sandbox: Path, receiver: Receiver, tmp_path: Path
) -> None:
    with_alerts(sandbox, [receiver.json_url("/notify")], ping_drill=receiver.url("/ping/d1"))
    code, _ = run("drill", "run", "--for-site", str(sandbox), "--jobs", "0")
    assert code == 2
    (sent,) = receiver.notifications()
    assert " drill run FAILED on " in sent["title"] and "--jobs must be at least 1" in sent["message"]
    assert [r.path for r in receiver.received("/ping")] == ["/ping/d1/start", "/ping/d1/fail"]
    records = load_site(sandbox).drill_records_dir
    assert not records.exists()  # refused before anything was created
    # The site's [drills] records directory is the default --outputs (the log goes there too); never the site.
    args = build_parser().parse_args(["drill", "run", "--for-site", str(sandbox)])
    assert drill_log_target(args).path == records / ".logs" / "recovery.log"
    assert sandbox not in records.parents
    args = build_parser().parse_args(["drill", "run", "--for-site", str(sandbox), "--outputs", str(tmp_path / "o")])
    assert drill_log_target(args).anchor == tmp_path / "o"


def test_each_drill_that_did_not_recover_is_told_on_its_own(sandbox: Path, receiver: Receiver, tmp_path: Path) -> None:
    with_alerts(sandbox, [receiver.json_url("/notify")])
    site = load_site(sandbox)
    outputs = tmp_path / "records"
    results = [
        DrillResult("20261120T040000Z-config-aaaa", "config", None, outputs / "20261120T040000Z-config-aaaa"),
        DrillResult("20261120T040100Z-data-bbbb", "data", None, outputs / "20261120T040100Z-data-bbbb"),
    ]
    results[0].outcome = "recovered"
    results[1].failure = "Procedure B did NOT recover the system: failed criteria: ledger reconciled"
    results[1].notebooks = [results[1].run_dir / "B_data.ipynb"]
    report = Report()
    tell_drills(site, report, results, outputs)
    (sent,) = receiver.notifications()
    assert " drill data NOT RECOVERED on " in sent["title"]
    assert f"Record: {results[1].run_dir}" in sent["message"] and "ledger reconciled" in sent["message"]
    assert "B_data.ipynb" in sent["message"]
    # The run's own outcome: failed, for the metrics, and not told a second time.
    assert not report.ok and report.told and report.results == [*results, outputs]
