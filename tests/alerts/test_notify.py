"""Notifications and pings against a real HTTP server on 127.0.0.1: what arrives, and that a far end
that refuses, is not there or never answers costs a logged warning, bounded in time, never an exception."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from http_receiver import Receiver, dead_url, running_receiver

from recovery_lib.alerts import notify as notify_module
from recovery_lib.alerts.events import Outcome
from recovery_lib.alerts.message import compose
from recovery_lib.alerts.notify import bounded, label, notify, send
from recovery_lib.alerts.pings import ping, ping_url
from recovery_lib.clock import now
from recovery_lib.site.config import Site, load_site


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def site_with(tmp_path: Path, urls: list[str], **alerts: str) -> Site:
    """A site whose recovery.toml holds only ``[alerts]``."""
    root = tmp_path / "prod"
    root.mkdir(exist_ok=True)
    keys = "".join(f'{key} = "{value}"\n' for key, value in alerts.items())
    (root / "recovery.toml").write_text("[alerts]\nurls = [" + ", ".join(f'"{u}"' for u in urls) + "]\n" + keys)
    return load_site(root)


def outcome(site: Site, **fields: object) -> Outcome:
    finished = now()
    values: dict[str, object] = {
        "kind": "backup",
        "site": site.name,
        "site_root": site.root,
        "ok": False,
        "status": "PARTIAL",
        "summary": "backup 20261120T020000Z-full-abc123 is PARTIAL: 1 file(s) could not be captured",
        "started": finished - timedelta(seconds=3),
        "finished": finished,
        "subject": "20261120T020000Z-full-abc123",
        "record": site.backup_dir / ".logs" / "recovery.log",
        "problems": ("data/trades.csv: cannot be read (Permission denied)",),
    }
    values.update(fields)
    return Outcome(**values)  # type: ignore[arg-type]


def test_a_partial_backup_arrives_with_site_what_failed_problems_record_and_next_step(
    receiver: Receiver, tmp_path: Path
) -> None:
    site = site_with(tmp_path, [receiver.json_url("/notify/a")])
    assert notify(site, outcome(site)) == []
    (sent,) = receiver.notifications()
    assert sent["title"].startswith("[recovery] prod: backup PARTIAL on ")
    body = sent["message"]
    assert f"Site: prod ({site.root})" in body
    assert "backup 20261120T020000Z-full-abc123" in body
    assert "data/trades.csv: cannot be read (Permission denied)" in body
    assert f"Record: {site.backup_dir / '.logs' / 'recovery.log'}" in body
    assert "never restored from" in body and "recovery backup create --site" in body
    assert sent["type"] == "failure"


def test_every_url_gets_it_and_an_unknown_one_is_named_without_stopping_the_others(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = site_with(
        tmp_path, [receiver.json_url("/notify/one"), "nosuchservice://x", receiver.json_url("/notify/two")]
    )
    with caplog.at_level(logging.WARNING, logger="recovery_lib"):
        problems = notify(site, outcome(site, kind="push", status="FAILED", subject="offsite"))
    assert sorted(r.path for r in receiver.received("/notify")) == ["/notify/one", "/notify/two"]
    assert [r.json()["title"].split(" on ")[0] for r in receiver.received("/notify")] == [
        "[recovery] prod: push to replica offsite FAILED"
    ] * 2
    assert len(problems) == 1 and problems[0].startswith("alert URL 2 (nosuchservice://...): not a URL Apprise")
    assert "alert URL 2" in caplog.text


def test_a_refusing_endpoint_is_a_logged_problem_with_no_secret_in_the_log(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    url = f"json://hook:s3cr3tpass@127.0.0.1:{receiver.port}/notify/token-xyz-secret"
    site = site_with(tmp_path, [url])
    with caplog.at_level(logging.INFO):
        problems = notify(site, outcome(site))
    assert len(receiver.received("/notify")) == 1  # it was tried
    assert problems == [problems[0]] and problems[0].startswith("alert URL 1 (json://127.0.0.1): not delivered")
    assert "500" in problems[0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("recovery_lib")]
    assert warnings and "not delivered" in warnings[0].getMessage()
    assert "s3cr3tpass" not in caplog.text and "token-xyz-secret" not in caplog.text


def test_nobody_listening_is_a_problem_at_once(tmp_path: Path) -> None:
    site = site_with(tmp_path, [dead_url("/notify/x", scheme="json")])
    began = time.monotonic()
    problems = notify(site, outcome(site))
    assert time.monotonic() - began < 5
    assert len(problems) == 1 and "not delivered" in problems[0]


def test_an_endpoint_that_never_answers_is_given_up_on_within_the_read_timeout(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.hang = True
    site = site_with(tmp_path, [receiver.json_url("/notify/slow")])
    began = time.monotonic()
    problems = notify(site, outcome(site))
    took = time.monotonic() - began
    assert len(receiver.received("/notify")) == 1
    assert notify_module.READ_TIMEOUT_S - 0.5 <= took < notify_module.DEADLINE_S
    assert len(problems) == 1 and "not delivered" in problems[0]


def test_a_plugin_that_ignores_its_timeouts_is_left_behind_at_the_deadline(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timeouts in the URL longer than the deadline stand for a plugin that does not honour them.
    receiver.hang = True
    monkeypatch.setattr(notify_module, "DEADLINE_S", 1.0)
    began = time.monotonic()
    problems = send([receiver.json_url("/notify/stuck?rto=30")], compose(outcome(site_with(tmp_path, []))))
    assert time.monotonic() - began < 3
    assert problems == ["alert URL 1 (json://127.0.0.1): not delivered: no answer within 1 s"]


def test_no_urls_sends_nothing(receiver: Receiver, tmp_path: Path) -> None:
    site = site_with(tmp_path, [])
    assert notify(site, outcome(site)) == []
    assert receiver.received() == []


def test_messages_by_kind(tmp_path: Path) -> None:
    site = site_with(tmp_path, [])
    cases = {
        ("push", "FAILED", "offsite"): ("push to replica offsite FAILED", "recovery replica push --replica offsite"),
        ("drill", "NOT RECOVERED", "data"): ("drill data NOT RECOVERED", "notebooks"),
        ("verify", "FAILED", "all"): ("backup verify FAILED", "Procedure D"),
        ("prune", "FAILED", "local"): ("prune of local backups FAILED", "--dry-run"),
        ("escalation", "Level 3 (Senior Engineer)", "INC-1"): ("escalation to Level 3 (Senior Engineer)", "call"),
    }
    for (kind, status, subject), (title, advice) in cases.items():
        message = compose(outcome(site, kind=kind, status=status, subject=subject), host="dr-host")
        assert message.title == f"[recovery] prod: {title} on dr-host"
        assert advice in message.body.split("Next: ", 1)[1]
    level2 = compose(outcome(site, kind="escalation", status="Level 2 (Team Lead)"))
    assert not level2.failure  # a warning, not red
    many = compose(outcome(site, problems=tuple(f"data/f{i}: unreadable" for i in range(50))))
    assert "data/f19: unreadable" in many.body and "data/f20" not in many.body and "and 30 more" in many.body


def test_timeouts_are_added_unless_the_url_sets_them() -> None:
    assert bounded("json://h/p") == "json://h/p?cto=4&rto=5"
    assert bounded("mailtos://u:p@h?to=a@b.c") == "mailtos://u:p@h?to=a@b.c&cto=4&rto=5"
    assert bounded("json://h/p?rto=1") == "json://h/p?rto=1&cto=4"
    assert bounded("json://h/p?cto=1&rto=2") == "json://h/p?cto=1&rto=2"


def test_a_url_is_named_by_scheme_and_host_only_when_the_host_is_no_secret() -> None:
    assert label("slack://T1234/B5678/abcdef", 1) == "alert URL 1 (slack://...)"
    assert label("ntfy://my-secret-topic", 2) == "alert URL 2 (ntfy://...)"
    assert label("ntfys://ntfy.example.com/topic", 3) == "alert URL 3 (ntfys://ntfy.example.com)"
    assert label("mailtos://user:pw@mail.example.com", 4) == "alert URL 4 (mailtos://mail.example.com)"


# --- pings ----------------------------------------------------------------------------------------


def test_pings_go_to_start_success_and_fail_with_a_body(receiver: Receiver, tmp_path: Path) -> None:
    site = site_with(tmp_path, [], ping_backup=receiver.url("/ping/uuid-1/"), ping_drill=receiver.url("/ping/d"))
    assert ping(site, "backup", "start") is None
    assert (
        ping(site, "backup", "success", outcome(site, ok=True, status="SUCCESS", summary="Backup X: 3 files")) is None
    )
    assert ping(site, "backup", "fail", outcome(site)) is None
    assert ping(site, "drill", "fail", outcome(site, kind="drill")) is None
    got = receiver.received("/ping")
    assert [(r.method, r.path) for r in got] == [
        ("POST", "/ping/uuid-1/start"),
        ("POST", "/ping/uuid-1"),
        ("POST", "/ping/uuid-1/fail"),
        ("POST", "/ping/d/fail"),
    ]
    assert "backup of prod start" in got[0].text
    assert "SUCCESS: Backup X: 3 files" in got[1].text
    assert "PARTIAL" in got[2].text and "data/trades.csv" in got[2].text and "recovery.log" in got[2].text


def test_no_ping_configured_sends_nothing(receiver: Receiver, tmp_path: Path) -> None:
    site = site_with(tmp_path, [], ping_backup=receiver.url("/ping/b"))
    assert ping(site, "drill", "start") is None
    assert receiver.received() == []


def test_a_ping_that_fails_is_logged_with_scheme_and_host_only(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 503
    site = site_with(tmp_path, [], ping_backup=receiver.url("/ping/secret-uuid"))
    with caplog.at_level(logging.WARNING, logger="recovery_lib"):
        problem = ping(site, "backup", "start")
    assert problem == f"ping start to http://127.0.0.1:{receiver.port} not delivered: HTTP 503 Service Unavailable"
    assert problem in caplog.text and "secret-uuid" not in caplog.text
    dead = site_with(tmp_path, [], ping_backup=dead_url("/ping/x"))
    problem = ping(dead, "backup", "fail", outcome(dead))
    assert problem is not None and "not delivered" in problem and "Connection refused" in problem


def test_ping_urls_keep_their_query() -> None:
    assert ping_url("https://hc-ping.com/abc?create=1", "start") == "https://hc-ping.com/abc/start?create=1"
    assert ping_url("https://hc-ping.com/abc/", "success") == "https://hc-ping.com/abc"
    assert ping_url("https://hc-ping.com/abc", "fail") == "https://hc-ping.com/abc/fail"
