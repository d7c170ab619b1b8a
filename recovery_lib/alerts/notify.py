"""Notifications through Apprise: one message to every URL of ``[alerts] urls`` (Slack, e-mail, Teams,
ntfy, JSON webhooks, ...), bounded in time, never raising.

A notification is sent on behalf of a run that already ended (a backup, a push, a drill) or a
procedure that escalated: whatever happens here, that run's outcome stands. So delivery is bounded
(each URL gets Apprise's connect/read timeouts ``cto``/``rto`` unless it sets its own, and every URL
is sent to at once, waited for at most :data:`DEADLINE_S`), and a URL that cannot be reached, refuses
the message or is not one Apprise knows costs one warning in the log, never an exception. URLs carry
secrets (tokens, passwords), so the log names a URL by its position in ``[alerts] urls``, its scheme
and, when it is a host name, its host: never the whole URL.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recovery_lib.alerts.events import Outcome
from recovery_lib.alerts.message import Message, compose
from recovery_lib.alerts.pings import ping
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 4.0  # Apprise's `cto`: a dead host is given up on after this
READ_TIMEOUT_S = 5.0  # Apprise's `rto`: a host that accepts and never answers, likewise
DEADLINE_S = 12.0  # all URLs together; a plugin that ignores its timeouts is left behind after this
APP_ID = "recovery"  # the sender name some services show (e-mail From, ntfy title prefix)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_HOSTNAME = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")


def notify(site: Site, outcome: Outcome) -> list[str]:
    """Tell the site's ``[alerts] urls`` about ``outcome``; returns the delivery problems (each also
    logged as a warning). No URLs: nothing is sent and nothing is returned."""
    urls = site.ops.alert_urls
    if not urls:
        return []
    try:
        return send(urls, compose(outcome))
    except Exception as exc:  # noqa: BLE001 - a bug here must not replace the outcome it reports; logged in full
        log.exception("notification of %s %s not sent (a bug in recovery_lib)", outcome.kind, outcome.status)
        return [f"not sent: {type(exc).__name__}: {scrub(str(exc))}"]


@dataclass(frozen=True)
class Delivery:
    """One URL's fate: ``where`` names it (:func:`label`, no secret), ``delivered`` or ``why`` not."""

    where: str
    delivered: bool
    why: str = ""

    @property
    def problem(self) -> str:
        """The line the log and the caller get for a URL not reached ("" when it was)."""
        return "" if self.delivered else f"{self.where}: {self.why}"


def send(urls: Sequence[str], message: Message) -> list[str]:
    """Send ``message`` to every Apprise URL at once; the problems of those it did not reach, in order."""
    problems = [d.problem for d in send_each(urls, message) if not d.delivered]
    for problem in problems:
        log.warning("notification %r: %s (the run it reports on is not affected)", message.title, problem)
    return problems


def send_each(urls: Sequence[str], message: Message) -> list[Delivery]:
    """Send ``message`` to every Apprise URL at once; one :class:`Delivery` per URL, in the order given
    (URLs Apprise does not accept first: they are known before anything is sent)."""
    import apprise  # here, not at the top: a site without [alerts] never loads it (a notebook kernel neither)

    labels: list[str] = []
    refused: list[Delivery] = []
    sender = apprise.Apprise(asset=apprise.AppriseAsset(app_id=APP_ID, app_desc="recovery_lib disaster recovery"))
    for number, url in enumerate(urls, 1):
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            added = sender.add(bounded(url))
        if added:  # one URL, one service: they line up with `labels`
            labels.append(label(url, number))
        else:
            said = "; ".join(_apprise_said(captured.getvalue())) or "Apprise does not know it"
            why = f"not a URL Apprise can send to ({said}); check [alerts] urls"
            refused.append(Delivery(label(url, number), False, why))
    kind = apprise.NotifyType.FAILURE if message.failure else apprise.NotifyType.WARNING
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        results, errors = _deliver(list(sender), message, kind)
    said = _apprise_said(captured.getvalue())
    deliveries = list(refused)
    for where, delivered, error in zip(labels, results, errors, strict=True):
        if delivered:
            log.info("notified %s: %s", where, message.title)
            deliveries.append(Delivery(where, True))
            continue
        why = error or (f"no answer within {DEADLINE_S:.0f} s" if delivered is None else "")
        why = why or "; ".join(said) or "refused or unreachable (Apprise gave no detail)"
        deliveries.append(Delivery(where, False, f"not delivered: {why}"))
    return deliveries


def _deliver(servers: list[Any], message: Message, kind: Any) -> tuple[list[bool | None], list[str]]:
    """Each service's notify in its own thread, all at once, waited for until :data:`DEADLINE_S`:
    True delivered, False not, None still trying at the deadline (its daemon thread is abandoned)."""
    results: list[bool | None] = [None] * len(servers)
    errors = [""] * len(servers)

    def one(index: int, server: Any) -> None:
        try:
            results[index] = bool(server.notify(body=message.body, title=message.title, notify_type=kind))
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not reach the run; it is reported
            errors[index] = f"{type(exc).__name__}: {scrub(str(exc))}"
            results[index] = False

    threads = [
        threading.Thread(target=one, args=(i, s), name=f"notify-{i}", daemon=True) for i, s in enumerate(servers)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return results, errors


def bounded(url: str) -> str:
    """``url`` with Apprise's connect and read timeouts, unless it sets them itself."""
    query = parse_qs(urlsplit(url).query)
    extra = [
        f"{key}={value:g}" for key, value in (("cto", CONNECT_TIMEOUT_S), ("rto", READ_TIMEOUT_S)) if key not in query
    ]
    if not extra:
        return url
    base, _, fragment = url.partition("#")
    joined = base + ("&" if "?" in base else "?") + "&".join(extra)
    return joined + (f"#{fragment}" if fragment else "")


def label(url: str, number: int) -> str:
    """How the log names the ``number``-th URL: ``alert URL 2 (json://127.0.0.1)``; the host only when it
    is a host name (in ``slack://T/B/C`` or ``ntfy://topic`` that place holds a secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # an unparsable URL: say nothing of it but its place
        return f"alert URL {number}"
    shown = host if host and _HOSTNAME.match(host) else "..."
    return f"alert URL {number} ({parts.scheme}://{shown})"


def scrub(text: str) -> str:
    """``text`` with any URL in it cut to its scheme (a message may quote the URL, secrets included)."""
    return _URL.sub(lambda found: found.group(0).split("://", 1)[0] + "://...", " ".join(text.split()))


def _apprise_said(text: str) -> list[str]:
    """Apprise's warnings and errors of this send, scrubbed, once each."""
    return list(dict.fromkeys(scrub(line) for line in text.splitlines() if line.strip()))


__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEADLINE_S",
    "READ_TIMEOUT_S",
    "Delivery",
    "bounded",
    "label",
    "notify",
    "ping",
    "send",
    "send_each",
]
