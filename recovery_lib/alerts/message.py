"""What a notification says: a title a person reads on a phone, and a body with the site, what failed,
the problems, the record to open and what to do next.

One :class:`Message` per :class:`~recovery_lib.alerts.events.Outcome`; the same text goes to every
Apprise URL (Slack, e-mail, Teams, ntfy, a JSON webhook), so it is plain text, no markup.
"""

from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass

from recovery_lib.alerts.events import Outcome

MAX_PROBLEMS = 20  # a backup with 10,000 unreadable files names the first ones; the record has them all
MAX_LINE = 300  # one problem; a stack of them must still fit a chat message


@dataclass(frozen=True)
class Message:
    """One notification: ``failure`` (red) or a warning (a level-2 escalation)."""

    title: str
    body: str
    failure: bool = True


def what_failed(outcome: Outcome) -> str:
    """``backup PARTIAL``, ``push to replica offsite FAILED``, ``drill data NOT RECOVERED``, ..."""
    subject = outcome.subject
    if outcome.kind == "backup":
        return f"backup {outcome.status}"
    if outcome.kind == "verify":
        return f"backup verify {outcome.status}"
    if outcome.kind == "prune":
        where = "of local backups" if subject in ("", "local") else f"of replica {subject}"
        return f"prune {where} {outcome.status}"
    if outcome.kind == "push":
        return f"push to replica {subject or '?'} {outcome.status}"
    if outcome.kind == "drill":
        return f"drill {subject} {outcome.status}" if subject else f"drill run {outcome.status}"
    if outcome.kind == "escalation":
        return f"escalation to {outcome.status}"
    return f"{outcome.kind} {outcome.status}"


def compose(outcome: Outcome, host: str | None = None) -> Message:
    """The notification for ``outcome`` (sent from ``host``: default, this machine's name)."""
    host = host or socket.gethostname()
    title = f"[recovery] {outcome.site}: {what_failed(outcome)} on {host}"
    took = outcome.seconds
    lines = [
        f"Site: {outcome.site} ({outcome.site_root})",
        f"Host: {host}",
        f"What: {what_failed(outcome)}" + (f" ({_subject_label(outcome)})" if outcome.subject else ""),
        f"When: {outcome.finished:%Y-%m-%d %H:%M:%S} UTC" + (f", after {took:.1f} s" if took >= 0.05 else ""),
        f"Summary: {_line(outcome.summary)}",
    ]
    if outcome.problems:
        lines.append("Problems:")
        lines += [f"  - {_line(problem)}" for problem in outcome.problems[:MAX_PROBLEMS]]
        if len(outcome.problems) > MAX_PROBLEMS:
            lines.append(f"  ... and {len(outcome.problems) - MAX_PROBLEMS} more (the record has them all)")
    lines.append(f"Record: {outcome.record}" if outcome.record else "Record: none written (see the summary)")
    lines.append(f"Next: {outcome.advice or advice(outcome)}")
    failure = not (outcome.kind == "escalation" and outcome.status.startswith("Level 2"))
    return Message(title=title, body="\n".join(lines), failure=failure)


def advice(outcome: Outcome) -> str:
    """What the person reading the notification does next, by kind."""
    site = shlex.quote(str(outcome.site_root))
    record = f"Read {outcome.record}; " if outcome.record else ""
    if outcome.kind == "backup":
        partial = outcome.status == "PARTIAL"
        kept = "The PARTIAL backup is kept for evidence and never restored from. " if partial else ""
        return (
            f"{kept}{record}fix the cause, then run `recovery backup create --site {site}` again; "
            f"`recovery health --site {site}` shows the state of the backups (runbook Procedure D if they are "
            "damaged)."
        )
    if outcome.kind == "verify":
        return (
            f"{record}a damaged backup is never restored from: run `recovery backup verify all --read-data "
            f"--site {site}` and follow the runbook's Procedure D (backup system recovery)."
        )
    if outcome.kind == "prune":
        return f"{record}run the same prune with --dry-run to see what the policy keeps and removes."
    if outcome.kind == "push":
        replica = shlex.quote(outcome.subject or "NAME")
        return (
            f"{record}retry with `recovery replica push --replica {replica} --site {site}`; "
            f"`recovery replica list --site {site}` shows the replica's state. The local backup is not affected."
        )
    if outcome.kind == "drill":
        return (
            f"{record}open the drill's notebooks: they show which step failed and why. Fix it before a real "
            "incident needs that procedure."
        )
    if outcome.kind == "escalation":
        return f"{record}call the contact named above with this record."
    return f"{record}see the summary."


def _subject_label(outcome: Outcome) -> str:
    label = {"backup": "backup", "verify": "backup", "drill": "scenario", "push": "replica", "prune": "where"}
    return f"{label.get(outcome.kind, 'subject')} {outcome.subject}"


def _line(text: str) -> str:
    """One line, bounded: a problem's text may hold anything (newlines from a remote error)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_LINE else flat[: MAX_LINE - 3] + "..."


__all__ = ["Message", "advice", "compose", "what_failed"]
