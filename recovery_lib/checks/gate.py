"""The gate before trading resumes: the config check, the data check and reconciliation with the
exchange must all pass (DESIGN: "Trading resumes only on a whole system").

The same gate guards every backup tagged "verified": a state that fails it is never recorded as a
good recovery point. Data in, data out: :func:`trading_gate` returns a :class:`TradingGate`; the
procedure steps decide what to show and what to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recovery_lib.site.config import Site
from recovery_lib.site.integrity import check_config_file, check_data
from recovery_lib.site.process import consistent_view
from recovery_lib.trading.exchange import get_exchange_client
from recovery_lib.trading.reconcile import reconcile


@dataclass(frozen=True)
class GateCheck:
    """One condition of the gate; ``ok`` None means it cannot be checked on this site (shown, not blocking)."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class TradingGate:
    """Whether trading may resume, and the evidence for each condition."""

    checks: list[GateCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no condition failed."""
        return not self.failing

    @property
    def failing(self) -> list[GateCheck]:
        """The conditions that block trading."""
        return [check for check in self.checks if check.ok is False]

    def reason(self) -> str:
        """Why trading may not resume, in one line (empty when it may)."""
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failing)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the record."""
        return {"ok": self.ok, "checks": [vars(check) for check in self.checks]}


def reconciliation_check(site: Site, exchange: Any = None) -> tuple[GateCheck, Any]:
    """Positions against the exchange's balances; returns the gate condition and the reconciliation."""
    if site.exchange.client == "none":
        detail = "no exchange configured ([exchange] client in recovery.toml): nothing to reconcile against"
        return GateCheck("reconciliation", None, detail), None
    try:
        client = exchange if exchange is not None else get_exchange_client(site)
    except Exception as exc:  # an exchange that cannot be built is a blocking finding, never a crash
        return GateCheck("reconciliation", False, f"the exchange cannot be asked: {exc}"), None
    # A running trading process moves positions and the exchange together: read both under its lock.
    with consistent_view(site):
        result = reconcile(site, client)
    return GateCheck("reconciliation", result.ok, result.summary()), result


def trading_gate(site: Site, exchange: Any = None) -> TradingGate:
    """The config check, the data check and reconciliation with the exchange, now."""
    config = check_config_file(site.path(site.config_file), site.required_sections, shown_as=site.config_file)
    data = check_data(site)
    reconciliation, _ = reconciliation_check(site, exchange)
    return TradingGate(
        [
            GateCheck("config check", config.ok, config.summary()),
            GateCheck("data check", data.ok, data.summary()),
            reconciliation,
        ]
    )
