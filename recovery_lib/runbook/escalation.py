"""The runbook's escalation levels, computed from the facts of a run.

Level 4 (Emergency): live trading affected, financial loss occurring, legal/compliance issue,
security breach confirmed. Level 3 (Senior Engineer): complete system failure, critical data
corruption, external systems affected, security incident suspected. Level 2 (Team Lead): recovery
procedures fail, backup not available, data loss over 24 hours, multiple systems affected.
Level 1 (Self-Service) otherwise. The contact of each level comes from ``recovery.toml``.

A procedure whose success criteria did not all pass has failed: that alone is level 2 at least,
whatever else the run saw, so no record shows "Level 1" next to a failed criterion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recovery_lib.catalog import DATA_LOSS_LIMIT_HOURS
from recovery_lib.site.config import DEFAULT_CONTACTS, Contact, Site

DATA_LOSS_LIMIT_S = DATA_LOSS_LIMIT_HOURS * 3600
LEVEL_NAMES = {1: "Self-Service", 2: "Team Lead", 3: "Senior Engineer", 4: "Emergency"}  # the runbook's
# Who the runbook's placeholder contacts mean, for when recovery.toml names nobody at a level.
DEFAULT_WHO = {1: "the on-call engineer", 2: "the Team Lead", 3: "the on-call Senior Engineer", 4: "the CTO/CEO"}


@dataclass
class Facts:
    """What happened, as far as escalation cares."""

    restore_failed: bool = False
    aborted: str | None = None  # a person clicked Abort: who, at what (the recovery did not complete)
    criteria_failed: list[str] = field(default_factory=list)  # success criteria that did not pass
    trading_held: str | None = None  # why the restart step kept the trading system stopped
    trading_running: bool | None = None  # whether it runs now (someone may have started it by hand)
    trades_missing: int = 0  # fills the exchange knows that the ledger still lacks after recovery
    no_backup: bool = False
    data_loss_s: float | None = None
    systems_affected: int = 0
    complete_failure: bool = False
    critical_data_corruption: bool = False
    external_systems_affected: bool = False
    security_suspected: bool = False
    live_trading_affected: bool = False
    financial_loss: bool = False
    compliance_issue: bool = False
    security_breach: bool = False


@dataclass
class Escalation:
    """The level, who to call, and every rule that fired."""

    level: int
    name: str
    contact: str
    reasons: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def call(self) -> str:
        """The first thing to read: the level, and who to call at which address."""
        title = f"Level {self.level} ({LEVEL_NAMES.get(self.level, self.name)})"
        if self.level <= 1:
            return f"{title}: no one to call now (contact: {self.contact})."
        who, address = reach(self.level, Contact(self.name, self.contact))
        return f"{title}: call {who} at {address} now." if address else f"{title}: call {who} now {_unset(self.level)}."

    def summary(self) -> str:
        """Who to call first, then why, then what to do next (one per line)."""
        why = "; ".join(self.reasons) or "nothing calls for escalation"
        lines = [self.call(), f"Because: {why}."]
        if self.next_steps:
            lines += ["Next:", *(f"  {number}. {step}" for number, step in enumerate(self.next_steps, 1))]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        color = {1: "#2e7d32", 2: "#f9a825", 3: "#ef6c00", 4: "#c62828"}.get(self.level, "#c62828")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons) or "<li>nothing calls for escalation</li>"
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in self.next_steps)
        return (
            f"<div style='border-left:6px solid {color};padding-left:8px'>"
            f"<p style='font-size:1.3em;margin:0 0 0.4em 0'><b>{html.escape(self.call())}</b></p>"
            f"Because:<ul>{reasons}</ul>" + (f"What to do next:<ol>{steps}</ol>" if steps else "") + "</div>"
        )


def reach(level: int, contact: Contact) -> tuple[str, str | None]:
    """(who, address) of a level's contact: ``("Dana", "slack:@dana")``. The runbook's placeholder
    contacts (recovery.toml sets none) give who they mean and no address."""
    default = DEFAULT_CONTACTS.get(f"level{level}")
    who = DEFAULT_WHO.get(level, contact.name) if default is not None and contact.name == default.name else contact.name
    return who, None if default is not None and contact.contact == default.contact else contact.contact


def _unset(level: int) -> str:
    return f"(no address configured: set [escalation.level{level}] contact in recovery.toml)"


def assess(facts: Facts, site: Site) -> Escalation:
    """The highest level whose rule fires, with the site's contact for it."""
    rules: list[tuple[int, bool, str]] = [
        (4, facts.live_trading_affected, "live trading affected"),
        (4, facts.financial_loss, "financial loss occurring"),
        (4, facts.compliance_issue, "legal/compliance issue"),
        (4, facts.security_breach, "security breach confirmed"),
        (3, facts.complete_failure, "complete system failure"),
        (3, facts.critical_data_corruption, "critical data corruption"),
        (3, facts.external_systems_affected, "external systems affected"),
        (3, facts.security_suspected, "security incident suspected"),
        (2, facts.restore_failed and not facts.criteria_failed, "recovery procedure failed"),
        (2, bool(facts.aborted), f"the recovery procedure was aborted ({facts.aborted}): the fault is not fixed"),
        (
            2,
            bool(facts.criteria_failed),
            "recovery procedure failed: success criteria not met: " + ", ".join(facts.criteria_failed),
        ),
        (
            2,
            facts.trades_missing > 0,
            f"{facts.trades_missing} trade(s) the exchange knows are missing from the ledger",
        ),
        (2, facts.no_backup, "no usable backup available"),
        (
            2,
            (facts.data_loss_s or 0) > DATA_LOSS_LIMIT_S,
            f"data loss of {(facts.data_loss_s or 0) / 3600:.1f} h exceeds 24 h",
        ),
        (2, facts.systems_affected > 1, f"{facts.systems_affected} systems affected"),
    ]
    fired = [(level, reason) for level, hit, reason in rules if hit]
    level = max((level for level, _ in fired), default=1)
    contact = site.contacts[f"level{level}"]
    return Escalation(level, contact.name, contact.contact, [reason for _, reason in fired], next_steps(facts, site))


def next_steps(facts: Facts, site: Site) -> list[str]:
    """What the engineer does now, in the order they should do it."""
    steps = []
    if facts.trading_held and facts.trading_running:
        how = f" ({site.process.stop})" if site.process.stop else ""
        steps.append(
            f"Trading is RUNNING although it must not ({facts.trading_held}): stop it now{how}, then fix the "
            "cause and run the procedure again."
        )
    elif facts.trading_held:
        steps.append(
            f"Trading stays STOPPED: {facts.trading_held}. Do not start it by hand: fix the cause, then run "
            "the procedure again (its restart step starts trading once config, data and reconciliation pass)."
        )
    if facts.criteria_failed or facts.restore_failed:
        who, address = reach(2, site.contacts["level2"])
        how = f" at {address}" if address else ""
        later = "" if address else f" {_unset(2)}"
        steps.append(f"Call {who}{how} with this record: the recovery did not succeed{later}.")
    if facts.no_backup:
        steps.append("Run Procedure D (backup system recovery) once trading is safe: no usable backup exists.")
    if facts.trades_missing:
        steps.append("Compare the ledger with the exchange's trade history by hand before trading resumes.")
    return steps
