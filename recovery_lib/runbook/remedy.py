"""Least loss first: repair the ledger in place, or restore the data from a backup?

Procedure B weighs both before anything changes. Each option is worked out in full without
touching the disk: the ledger it would leave (a repair drops duplicate copies, a torn row and
unparseable rows; a restore puts the backup's ledger back), the fills the exchange knows that this
ledger lacks (both options write those back from the exchange), the positions that ledger implies,
and whether they reconcile with the exchange. A trade is lost when the current ledger, the
backup's ledger or the exchange knows it and the result would not hold it. An option that cannot be
applied (no ledger to repair, a missing reports directory, a backup the dry run refuses) is not
viable; among the viable ones the recommended option loses the fewest trades, then reconciles, then
touches the fewest other files. An option whose positions would still disagree with the exchange
may be applied (it is still the least loss), but trading then stays stopped: the restart's gate
reconciles again. The approval chooses; a restore is never the only option offered when a repair
would lose less.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from recovery_lib.backup import BackupError
from recovery_lib.manager import RecoveryManager
from recovery_lib.restore.journal import RestoreError
from recovery_lib.restore.plan import RestorePlan, site_fingerprint
from recovery_lib.site.config import Site
from recovery_lib.trading.ledger import Ledger, LedgerRepair, Trade, TradeRows, plan_repair, positions_of, read_ledger
from recovery_lib.trading.reconcile import reconcile

REPAIR, RESTORE = "repair", "restore"


@dataclass
class RemedyOption:
    """One way to bring the data back, worked out without touching the disk."""

    action: str  # "repair" | "restore"
    viable: bool
    why_not: list[str] = field(default_factory=list)
    trades_known: int = 0  # distinct trade ids the current ledger, the backup's ledger or the exchange knows
    trades_lost: int = 0  # of those, ids the result would not hold even after the exchange's fills are written back
    from_exchange: int = 0  # fills the exchange knows that this option's ledger lacks: written back after it
    rows_dropped: list[tuple[str, str]] = field(default_factory=list)  # (row, why): what a repair removes
    files_changed: list[str] = field(default_factory=list)  # other data files a restore creates, replaces, deletes
    reconciles: bool | None = None  # the resulting positions against the exchange (None: no exchange configured)
    reconciliation: str = ""  # what that comparison found, for a person
    restore_plan: RestorePlan | None = None
    repair: LedgerRepair | None = None

    @property
    def title(self) -> str:
        """What the option is, in a few words."""
        if self.action == REPAIR:
            return "Repair the ledger in place"
        backup = self.restore_plan.backup_id if self.restore_plan else "a backup"
        return f"Restore the data from backup {backup}"

    def describe(self) -> str:
        """What it does and what it loses, in one line for the person who approves it."""
        if not self.viable:
            return f"{self.title}: not possible: {'; '.join(self.why_not)}"
        does = []
        if self.repair is not None:
            does += [f"drops {count} row(s): {why}" for why, count in self.repair.counts().items()]
            if self.repair.header_added:
                does.append("puts the missing header back")
        if self.restore_plan is not None:
            does.append(f"replaces the data with the backup taken {self.restore_plan.backup_created_at}")
            if self.files_changed:
                shown = ", ".join(self.files_changed[:5]) + (
                    f" (+{len(self.files_changed) - 5} more)" if len(self.files_changed) > 5 else ""
                )
                does.append(f"changes {len(self.files_changed)} other data file(s): {shown}")
        does.append(f"writes back {self.from_exchange} trade(s) from the exchange")
        does.append("recomputes positions from the trades")
        reconciled = {True: "positions then match the exchange", None: "no exchange to reconcile with"}.get(
            self.reconciles, f"positions would STILL DISAGREE with the exchange ({self.reconciliation})"
        )
        return f"{self.title}: {'; '.join(does)}; {reconciled}. LOSES {self.trades_lost} trade(s)."

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the record."""
        return {
            "action": self.action,
            "title": self.title,
            "viable": self.viable,
            "why_not": self.why_not,
            "trades_known": self.trades_known,
            "trades_lost": self.trades_lost,
            "from_exchange": self.from_exchange,
            "rows_dropped": [{"row": row[:200], "why": why} for row, why in self.rows_dropped[:50]],
            "rows_dropped_count": len(self.rows_dropped),
            "files_changed": self.files_changed,
            "reconciles": self.reconciles,
            "reconciliation": self.reconciliation,
            "backup_id": self.restore_plan.backup_id if self.restore_plan else None,
            "description": self.describe(),
        }


@dataclass
class RemedyPlan:
    """The options for bringing the data back, and the facts they were weighed on."""

    options: list[RemedyOption]
    known_ids: set[int]
    fingerprint: str  # of the ledger and positions when planned: a repair is refused if they changed since

    @property
    def recommended(self) -> RemedyOption | None:
        """The viable option that loses the fewest trades, then reconciles, then touches the fewest other
        files; a repair wins ties."""
        viable = [o for o in self.options if o.viable]
        return min(
            viable,
            key=lambda o: (o.trades_lost, o.reconciles is False, len(o.files_changed), o.action != REPAIR),
            default=None,
        )

    def option(self, action: str) -> RemedyOption | None:
        """The option for ``action``."""
        return next((o for o in self.options if o.action == action), None)

    def summary(self) -> str:
        """Every option with what it loses, the recommended one marked."""
        best = self.recommended
        lines = ["Options (nothing has been changed):"]
        for option in self.options:
            mark = "→ recommended" if option is best else ("  possible" if option.viable else "  not possible")
            lines.append(f"{mark}: {option.describe()}")
        if best is None:
            lines.append("No option can be applied: escalate.")
        elif best.reconciles is False:
            lines.append(
                "Even the recommended option leaves positions that disagree with the exchange: it is the least loss, "
                "but trading stays stopped afterwards. Escalate."
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"

    def __repr__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the record."""
        best = self.recommended
        return {
            "options": [o.to_dict() for o in self.options],
            "recommended": best.action if best else None,
            "trades_known": len(self.known_ids),
        }


def data_fingerprint(site: Site) -> str:
    """What a repair was planned against: the ledger and the positions file."""
    return site_fingerprint(site.root, [site.trades_file, site.positions_file])


def _outcome(
    site: Site, option: RemedyOption, trades: TradeRows, fills: dict[int, Trade], known: set[int], exchange: Any
) -> None:
    """Fill in what ``trades`` plus the exchange's missing fills would leave: losses and reconciliation."""
    held = set(trades.id_array.tolist())
    missing = [fills[i] for i in sorted(set(fills) - held)]
    option.from_exchange = len(missing)
    option.trades_known = len(known)
    option.trades_lost = len(known - held - set(fills))
    if exchange is None:
        option.reconciles = None
        return
    reconciled = reconcile(site, exchange, positions_of(trades + missing))
    option.reconciles = reconciled.ok
    option.reconciliation = reconciled.summary()


def state_missing(site: Site) -> list[str]:
    """State paths that are gone or empty: only a restore brings them back (with the data)."""
    missing = []
    for top in site.state_paths:
        path = site.path(top)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            missing.append(top + "/")
    return missing


def _repair_option(site: Site, ledger: Ledger, fills: dict[int, Trade], known: set[int], exchange: Any) -> RemedyOption:
    option = RemedyOption(REPAIR, viable=True)
    if not ledger.exists:
        option.viable = False
        option.why_not.append(f"{site.trades_file} is missing: there is no ledger to repair")
        return option
    others = [p for p in site.critical if p.rstrip("/") not in (site.trades_file, site.positions_file)]
    gone = [p for p in others if not site.path(p.rstrip("/")).exists()] + state_missing(site)
    if gone:
        option.viable = False
        option.why_not.append(f"{', '.join(gone)} missing: only a restore brings it back")
    option.repair = plan_repair(ledger, fills)
    option.rows_dropped = list(option.repair.dropped)
    _outcome(site, option, option.repair.trades, fills, known, exchange)
    return option


def _backup_ledger(site: Site, manager: RecoveryManager, backup_id: str | None) -> Ledger | None:
    """The ledger a restore from ``backup_id`` would put back (None: no backup)."""
    if backup_id is None:
        return None
    return read_ledger(manager.backup_dir / backup_id / site.trades_file, f"{backup_id}/{site.trades_file}")


def _restore_option(
    site: Site,
    manager: RecoveryManager,
    backup_id: str | None,
    restored: Ledger | None,
    fills: dict[int, Trade],
    known: set[int],
    exchange: Any,
) -> RemedyOption:
    option = RemedyOption(RESTORE, viable=True)
    if backup_id is None or restored is None:
        option.viable = False
        option.why_not.append("no backup verifies and holds data that passes the data check")
        return option
    try:
        # Lost state comes back with the data: the trading process cannot run without it.
        state = bool(state_missing(site))
        option.restore_plan = manager.plan_restore(
            backup_id, restore_config=False, restore_state=state, restore_data=True
        )
    except (BackupError, RestoreError) as exc:
        option.viable = False
        option.why_not.append(f"the dry run refuses: {exc}")
        return option
    if option.restore_plan.blockers:
        option.viable = False
        option.why_not.append(f"blocked: {option.restore_plan.blockers[0]}")
    ledger_files = (site.trades_file, site.positions_file)
    option.files_changed = [a.path for a in option.restore_plan.changes if a.path not in ledger_files]
    _outcome(site, option, restored.trades, fills, known, exchange)
    return option


def plan_remedy(
    site: Site, manager: RecoveryManager, backup_id: str | None, exchange: Any, fills: dict[int, Trade]
) -> RemedyPlan:
    """Both options for ``site``'s data: a repair in place and a restore from ``backup_id`` (None: no
    usable backup). ``fills`` are the exchange's fills by trade id; ``exchange`` None means there is
    no exchange to reconcile with."""
    ledger = read_ledger(site.path(site.trades_file), site.trades_file)
    restored = _backup_ledger(site, manager, backup_id)
    phantoms = phantom_ids(ledger.ids, fills)
    known = (ledger.ids - phantoms) | set(fills) | ((restored.ids - phantoms) if restored else set())
    options = [
        _repair_option(site, ledger, fills, known, exchange),
        _restore_option(site, manager, backup_id, restored, fills, known, exchange),
    ]
    return RemedyPlan(options, known, data_fingerprint(site))


def phantom_ids(ids: set[int], fills: dict[int, Trade]) -> set[int]:
    """Ledger ids inside the exchange's history (above its first fill) that the exchange never had:
    rows nobody traded. They are not trades a remedy could lose."""
    if not fills:
        return set()
    first = min(fills)
    return {i for i in ids if i > first and i not in fills}


def positions_in_file(path: Path) -> dict[str, Decimal] | None:
    """The positions file's quantities by symbol, or None when it is missing or does not parse."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0].split(",")[:2] != ["symbol", "quantity"]:
        return None
    held: dict[str, Decimal] = {}
    for line in lines[1:]:
        fields = line.split(",")
        try:
            held[fields[0]] = Decimal(fields[1])
        except (IndexError, InvalidOperation):
            return None
    return held
