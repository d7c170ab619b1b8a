"""Retention with restic's ``forget`` semantics, as a plan with a reason for every decision.

Backups are walked newest first. ``keep_last`` keeps the N newest; ``keep_hourly``/``daily``/
``weekly``/``monthly``/``yearly`` keep the newest backup of each of the N most recent periods that
have one; ``keep_within`` keeps everything within that long of the newest backup; ``keep_tags``
keeps every backup carrying one of the tags. On top of restic: a group (backups of one type) is
never emptied, and the newest verified backup is never removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from recovery_lib.backup.model import PRE_RECOVERY_TAG, BackupMetadata
from recovery_lib.errors import InvalidArgumentError

log = logging.getLogger(__name__)

BUCKETS: dict[str, Callable[[datetime], str]] = {
    "hourly": lambda t: t.strftime("%Y-%m-%d %H"),
    "daily": lambda t: t.strftime("%Y-%m-%d"),
    "weekly": lambda t: f"{t.isocalendar()[0]:04d}-W{t.isocalendar()[1]:02d}",
    "monthly": lambda t: t.strftime("%Y-%m"),
    "yearly": lambda t: t.strftime("%Y"),
}


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep. An empty policy is refused: it would mean "remove everything"."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: timedelta | None = None
    keep_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidArgumentError(f"retention {name} must be a whole number >= 0, got {value!r}")

    @property
    def is_empty(self) -> bool:
        """True when the policy keeps nothing at all."""
        counts = (
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        )
        return not any(counts) and not self.keep_within and not self.keep_tags


@dataclass
class Decision:
    """Keep or remove one backup, and why."""

    backup: BackupMetadata
    reasons: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


@dataclass
class PrunePlan:
    """Decisions for every backup, newest first."""

    decisions: list[Decision]

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]

    @property
    def remove(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]

    def summary(self) -> str:
        """A table for people: one line per backup with its fate and reasons."""
        lines = [f"keep {len(self.keep)}, remove {len(self.remove)}"]
        for decision in self.decisions:
            verdict = "keep  " if decision.keep else "remove"
            why = ", ".join(decision.reasons) if decision.keep else "matched no keep rule"
            lines.append(f"  {verdict} {decision.backup.backup_id}  ({why})")
        return "\n".join(lines)


def plan_prune(backups: list[BackupMetadata], policy: RetentionPolicy, newest_verified: str | None) -> PrunePlan:
    """Decide, for ``backups`` given newest first, which the policy keeps."""
    if policy.is_empty:
        raise InvalidArgumentError(
            "refusing an empty retention policy: it would remove every backup. "
            "Give at least one keep rule (e.g. --keep-last 7)."
        )
    ordered = sorted(backups, key=lambda b: b.created, reverse=True)
    decisions = [Decision(backup) for backup in ordered]
    remaining = {"last": policy.keep_last, **{name: getattr(policy, f"keep_{name}") for name in BUCKETS}}
    last_bucket: dict[str, str | None] = dict.fromkeys(BUCKETS)
    newest_time = ordered[0].created if ordered else None
    for decision in decisions:
        created = decision.backup.created
        if remaining["last"] > 0:
            remaining["last"] -= 1
            decision.reasons.append("last")
        for name, bucket_of in BUCKETS.items():
            bucket = bucket_of(created)
            if remaining[name] > 0 and bucket != last_bucket[name]:
                remaining[name] -= 1
                last_bucket[name] = bucket
                decision.reasons.append(f"{name} {bucket}")
        if policy.keep_within and newest_time and newest_time - created <= policy.keep_within:
            decision.reasons.append(f"within {policy.keep_within}")
        matched = sorted(set(policy.keep_tags) & set(decision.backup.tags))
        if matched:
            decision.reasons.append(f"tag {', '.join(matched)}")
        if decision.backup.backup_id == newest_verified:
            decision.reasons.append("newest verified backup (never removed)")
    # Pre-recovery snapshots are their own group: a full snapshot of a broken state must never be
    # what keeps the last real full backup (the one "latest" restores from) from being protected.
    groups: dict[str, list[Decision]] = {}
    for decision in decisions:
        kind = decision.backup.backup_type.value
        group = f"{kind} {PRE_RECOVERY_TAG}" if PRE_RECOVERY_TAG in decision.backup.tags else kind
        groups.setdefault(group, []).append(decision)
    for group, members in groups.items():
        if not any(member.keep for member in members):
            members[0].reasons.append(f"newest {group} backup (a group is never emptied)")
    plan = PrunePlan(decisions)
    log.info("retention plan: keep %d, remove %d", len(plan.keep), len(plan.remove))
    for decision in decisions:
        log.debug("%s %s: %s", "keep" if decision.keep else "remove", decision.backup.backup_id, decision.reasons)
    return plan
