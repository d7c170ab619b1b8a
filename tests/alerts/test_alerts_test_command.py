"""``recovery alerts test`` against a real HTTP receiver on 127.0.0.1: a marked test notification per URL,
each URL reported (never its secret), pings only with --pings, exit 1 on any failure, 2 with no URLs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_receiver import Receiver, dead_url, running_receiver

from recovery_lib.cli.main import main
from recovery_lib.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE

SECRET = "T0KENsecretB/XXsecretYY/zzSECRETzz"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def make_site(tmp_path: Path, urls: list[str], **alerts: str) -> Path:
    """A site (config/ and a recovery.toml with only ``[alerts]``)."""
    root = tmp_path / "prod"
    (root / "config").mkdir(parents=True, exist_ok=True)
    keys = "".join(f'{key} = "{value}"\n' for key, value in alerts.items())
    (root / "recovery.toml").write_text("[alerts]\nurls = [" + ", ".join(f'"{u}"' for u in urls) + "]\n" + keys)
    return root


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["alerts", "test", *argv], out=out)
    return code, out.getvalue()


def test_every_url_is_reported_and_a_failure_exits_1_without_leaking_secrets(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Promise: each URL gets its own line (position, scheme, host), delivered or why not; the one that
    works receives a notification marked TEST; any failure makes exit 1; no URL's secret is printed;
    the ping URL is not pinged without --pings."""
    urls = [receiver.json_url("/notify/ok"), dead_url("/notify/dead", scheme="json"), f"nosuchservice://{SECRET}"]
    site = make_site(tmp_path, urls, ping_backup=receiver.url("/ping/backup"))

    code, text = run("--site", str(site))

    assert code == EXIT_FAILED
    lines = text.splitlines()
    assert "alert URL 1 (json://127.0.0.1): delivered" in lines
    assert any(line.startswith("alert URL 2 (json://127.0.0.1): NOT DELIVERED: not delivered") for line in lines)
    assert any(line.startswith("alert URL 3 (nosuchservice://...): NOT DELIVERED: not a URL Apprise") for line in lines)
    assert "FAILED: 2 of 3 alert URLs not delivered" in text
    assert "--pings" in text  # says the ping was left alone, and how to include it
    captured = capsys.readouterr()
    assert "secret" not in (text + captured.err + captured.out).lower()
    (note,) = receiver.notifications()
    assert note["title"].startswith("[recovery] TEST prod:")
    assert note["message"].startswith("TEST: this is a test notification, not an incident.")
    assert receiver.received("/ping") == []  # a success ping would hide a dead scheduler


def test_all_delivered_exits_0(tmp_path: Path, receiver: Receiver) -> None:
    """Promise: every URL delivered is exit 0, each reported, and each received the test."""
    site = make_site(tmp_path, [receiver.json_url("/notify/a"), receiver.json_url("/notify/b")])

    code, text = run("--site", str(site))

    assert code == EXIT_OK, text
    assert "alert URL 1 (json://127.0.0.1): delivered" in text and "alert URL 2 (json://127.0.0.1): delivered" in text
    assert "OK: the test notification reached all 2 alert URLs" in text
    assert sorted(r.path.split("?")[0] for r in receiver.received("/notify")) == ["/notify/a", "/notify/b"]


def test_pings_flag_sends_start_then_success(tmp_path: Path, receiver: Receiver) -> None:
    """Promise: with --pings each ping URL gets ``/start`` then the success ping (never /fail), in order."""
    site = make_site(
        tmp_path,
        [receiver.json_url("/notify/a")],
        ping_backup=receiver.url("/ping/backup"),
        ping_drill=receiver.url("/ping/drill"),
    )

    code, text = run("--pings", "--site", str(site))

    assert code == EXIT_OK, text
    assert [r.path for r in receiver.received("/ping/backup")] == ["/ping/backup/start", "/ping/backup"]
    assert [r.path for r in receiver.received("/ping/drill")] == ["/ping/drill/start", "/ping/drill"]
    assert all("TEST" in r.text for r in receiver.received("/ping"))
    assert "ping_backup (http://127.0.0.1:" in text and "start and success delivered" in text


def test_a_dead_ping_url_with_pings_exits_1(tmp_path: Path, receiver: Receiver) -> None:
    """Promise: a ping that is not delivered is reported and fails the test, though every alert arrived."""
    site = make_site(tmp_path, [receiver.json_url("/notify/a")], ping_backup=dead_url("/ping/backup"))

    code, text = run("--pings", "--site", str(site))

    assert code == EXIT_FAILED
    assert "alert URL 1 (json://127.0.0.1): delivered" in text
    assert "ping_backup (http://127.0.0.1:" in text and "NOT DELIVERED" in text
    assert "1 ping(s) not delivered" in text
    assert len(receiver.notifications()) == 1


def test_no_urls_exits_2_and_says_how_to_add_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Promise: a site without [alerts] urls is refused (exit 2) with the file and an example to add."""
    site = make_site(tmp_path, [])

    code, text = run("--site", str(site))

    assert code == EXIT_USAGE
    assert text == ""
    err = capsys.readouterr().err
    assert str(site / "recovery.toml") in err and "[alerts] urls = [" in err and "add them" in err
