"""healthchecks-style pings: ``<url>/start`` when a scheduled backup or drill starts, ``<url>`` when it
succeeds, ``<url>/fail`` when it fails (``[alerts] ping_backup`` / ``ping_drill``).

A monitoring service (healthchecks.io, a self-hosted Healthchecks, Uptime Kuma's push monitors, ...)
then raises the alarm for the run that never happened, which no notification can: a host that is
off sends nothing. Exactly those three suffixes, the healthchecks convention. A POST with a short
plain-text body (what happened), bounded by :data:`PING_TIMEOUT_S`; a ping that fails is logged
(with the URL's scheme and host only: the path is the check's secret) and never raised.
"""

from __future__ import annotations

import http.client
import logging
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from recovery_lib.alerts.events import Outcome
from recovery_lib.site.config import Site

log = logging.getLogger(__name__)

PHASES = {"start": "/start", "success": "", "fail": "/fail"}  # healthchecks' suffixes, nothing else
PING_TIMEOUT_S = 10.0
MAX_BODY = 10_000  # healthchecks keeps the first 100 kB of a ping's body; a summary needs far less


def ping(site: Site, run: str, phase: str, outcome: Outcome | None = None) -> str | None:
    """Ping ``[alerts] ping_<run>`` (``run``: backup or drill) with ``phase`` (start, success, fail).

    Returns the problem when the ping was not delivered (also logged), None when it was or when the
    site configures no ping for ``run``.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown ping phase {phase!r}; one of {', '.join(PHASES)}")
    base = site.ops.pings.get(run)
    if base is None:
        return None
    return send_ping(base, phase, _body(site, run, phase, outcome))


def ping_url(base: str, phase: str) -> str:
    """``base`` with the phase's suffix on its path (a query string stays where it belongs)."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + PHASES[phase]))


def send_ping(base: str, phase: str, body: str) -> str | None:
    """POST ``body`` to the ``phase`` URL of ``base``; the problem if it was not delivered, else None."""
    url = ping_url(base, phase)
    request = urllib.request.Request(
        url,
        data=body.encode("utf-8")[:MAX_BODY],
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "recovery_lib"},
    )
    try:
        with urllib.request.urlopen(request, timeout=PING_TIMEOUT_S) as response:  # noqa: S310 - http(s) only
            response.read(1024)  # healthchecks answers "OK"; read it so the connection closes cleanly
    except urllib.error.HTTPError as exc:
        why = f"HTTP {exc.code} {exc.reason}"
    except (OSError, http.client.HTTPException) as exc:  # refused, unreachable, timed out, a broken answer
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        why = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}".rstrip(": ")
    else:
        log.info("pinged %s (%s)", where(base), phase)
        return None
    problem = f"ping {phase} to {where(base)} not delivered: {why}"
    log.warning("%s (the run it reports on is not affected)", problem)
    return problem


def where(url: str) -> str:
    """``https://hc-ping.com``: the scheme and host of a ping URL, never its path (the secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def _body(site: Site, run: str, phase: str, outcome: Outcome | None) -> str:
    host = socket.gethostname()
    if outcome is None:
        return f"{run} of {site.name} {phase} on {host}"
    lines = [f"{run} of {site.name} on {host}: {outcome.status}: {outcome.summary}", *outcome.problems]
    if outcome.record:
        lines.append(f"record: {outcome.record}")
    return "\n".join(lines)


__all__ = ["PHASES", "PING_TIMEOUT_S", "ping", "ping_url", "send_ping"]
