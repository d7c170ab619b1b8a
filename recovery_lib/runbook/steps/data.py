"""Procedure steps about the trading data: what is lost or corrupt, how much a restore gives up,
repair or restore (least loss first), and the trades written back from the exchange.

The exchange is the second source of truth: after a repair or a restore, every fill the exchange
knows that the ledger lacks is written back with its original id, positions are recomputed from
the trades, and the record counts trades lost, recovered from the exchange and still missing.
"""

from __future__ import annotations

from typing import Any

from recovery_lib.checks.gate import trading_gate
from recovery_lib.clock import human_duration, now
from recovery_lib.rendering import Findings
from recovery_lib.runbook.remedy import (
    REPAIR,
    RESTORE,
    RemedyPlan,
    data_fingerprint,
    phantom_ids,
    plan_remedy,
    positions_in_file,
    state_missing,
)
from recovery_lib.runbook.restore_record_types import (
    DataLossExtentRecord,
    DataLossWindowRecord,
    RemedyChoiceRecord,
    RemedyPlanRecord,
    RemedyRecord,
    RestorePlanRecord,
    TradesRecord,
)
from recovery_lib.runbook.resume import Earlier, Recorded
from recovery_lib.runbook.run import Run, ran
from recovery_lib.runbook.steps.base import GO_ON, Halted, Replay, did, digest, halt, once, refused, step
from recovery_lib.runbook.steps.choice import BackupChoice
from recovery_lib.runbook.steps.restore import prepared_then, prepares, restore
from recovery_lib.trading.exchange import get_exchange_client
from recovery_lib.trading.ledger import Trade, plan_repair, positions_of, read_ledger, write_ledger
from recovery_lib.trading.replay import exchange_fills, replay_fills, replay_symbols


def _recorded_then(record: str, done: str = "") -> Any:
    """Replay a step from the record it wrote; ``done``: what ``once`` knows it by in this run."""

    def rebuild(run: Run, earlier: Earlier, *_: Any, **__: Any) -> Recorded:
        written = earlier.record(record)
        shown = Recorded(written, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in written.items() if _short(v)))
        return did(run, done, shown, record.replace("_", " ")) if done else shown

    return rebuild


def _short(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) and len(str(value)) < 80


def _on_site(what: str) -> Any:
    return lambda run, value, *a, **k: {"site": True, "what": what}


def _exchange(run: Run) -> tuple[Any, dict[int, Trade], str | None]:
    """The exchange client and its fills by trade id; (None, {}, None) when no exchange is configured,
    (None, {}, why) when it cannot be asked."""
    if run.site.exchange.client == "none":
        return None, {}, None
    try:
        client = get_exchange_client(run.site)
        return client, exchange_fills(client, replay_symbols(run.site, client)), None
    except Exception as exc:  # an unreachable exchange is a finding for the record, not a crash
        run.facts.external_systems_affected = True
        return None, {}, f"{type(exc).__name__}: {exc}"


@step(  # it only reads; replayed, so that a resumed run keeps what was found before the remedy
    prepares=("assess", "the data loss assessment"),
    on_halt=GO_ON,
    replay=Replay(_recorded_then("data_loss_extent"), _on_site("the data loss was assessed")),
)
def assess_data_loss(run: Run) -> Any:
    """Runbook B step 1, extended: what is missing AND what is corrupt (duplicated trade ids, a torn
    row, a missing header, positions that disagree with the trades), and the trades the exchange has
    that the ledger lacks."""
    import pandas as pd

    site = run.site
    rows = []
    missing = []
    for path in site.critical:
        there = site.path(path.rstrip("/")).exists()
        rows.append({"": "✅ present" if there else "❌ MISSING", "what": path, "finding": ""})
        if not there:
            missing.append(path)
    for path in state_missing(site):  # the trading process cannot run without its state
        rows.append({"": "❌ MISSING", "what": path, "finding": "state: only a restore brings it back"})
        missing.append(path)
    ledger = read_ledger(site.path(site.trades_file), site.trades_file)
    corruption = []
    if ledger.exists:
        duplicates = ledger.duplicates()
        copies = sum(len(rows_) - 1 for rows_ in duplicates.values() if len({t.line for t in rows_}) == 1)
        conflicting = [i for i, rows_ in duplicates.items() if len({t.line for t in rows_}) > 1]
        if ledger.header_missing:
            corruption.append(f"{site.trades_file} has no header line")
        if ledger.torn_last_row is not None:
            corruption.append(f"{site.trades_file} ends in a torn row: {ledger.torn_last_row[:60]!r}")
        if ledger.invalid_lines:
            lines = ", ".join(map(str, ledger.invalid_lines[:5]))
            more = f" (+{len(ledger.invalid_lines) - 5} more)" if len(ledger.invalid_lines) > 5 else ""
            corruption.append(f"{site.trades_file}: {len(ledger.invalid_lines)} unparseable row(s), line {lines}{more}")
        if copies:
            corruption.append(f"{site.trades_file}: {copies} duplicated row(s) (exact copies of a trade)")
        if conflicting:
            shown = ", ".join(map(str, conflicting[:5]))
            corruption.append(f"{site.trades_file}: {len(conflicting)} trade id(s) name two different trades: {shown}")
        held = positions_in_file(site.path(site.positions_file))
        implied = positions_of(plan_repair(ledger).trades)
        if held is not None and held != {s: q for s, q in implied.items() if s in held or q}:
            wrong = sorted(s for s in set(held) | set(implied) if held.get(s, 0) != implied.get(s, 0))
            corruption.append(f"{site.positions_file} disagrees with the trades for {', '.join(wrong[:8])}")
    _, fills, unreachable = _exchange(run)
    not_in_ledger = sorted(set(fills) - ledger.ids)
    phantoms = sorted(phantom_ids(ledger.ids, fills))
    if phantoms:
        shown = ", ".join(map(str, phantoms[:5]))
        corruption.append(f"{site.trades_file}: {len(phantoms)} trade(s) the exchange never had: {shown}")
    for finding in corruption:
        rows.append({"": "❌ CORRUPT", "what": finding.split(" ", 1)[0].rstrip(":"), "finding": finding})
    if unreachable:
        rows.append({"": "❌ UNREACHABLE", "what": "exchange", "finding": unreachable})
    elif fills or run.site.exchange.client != "none":
        mark = "✅ complete" if not not_in_ledger else "❌ INCOMPLETE"
        rows.append(
            {
                "": mark,
                "what": "trades vs exchange",
                "finding": f"the exchange has {len(not_in_ledger)} trade(s) the ledger lacks"
                + (f" (ids {not_in_ledger[0]}..{not_in_ledger[-1]})" if not_in_ledger else ""),
            }
        )
    if not (missing or corruption or unreachable or not_in_ledger) and _whole(run):
        run.nothing_to_do = (
            "nothing is missing or corrupt, the ledger holds every trade the exchange has and reconciles"
        )
        rows.append({"": "✅ no fault", "what": "data", "finding": run.nothing_to_do + ": nothing to recover"})
    run.record(
        "data_loss_extent",
        DataLossExtentRecord(
            nothing_to_do=run.nothing_to_do,
            missing=missing,
            checked=list(site.critical),
            corruption=corruption,
            trades_on_exchange_not_in_ledger=len(not_in_ledger),
            exchange_error=unreachable,
        ),
    )
    return pd.DataFrame(rows, columns=["", "what", "finding"])


def _whole(run: Run) -> bool:
    """The data check and reconciliation both pass now."""
    gate = trading_gate(run.site)
    return all(check.ok is not False for check in gate.checks if check.name != "config check")


@step(  # it only reads
    prepares=("data_loss_window", "the data loss window"),
    on_halt=GO_ON,
    replay=Replay(_recorded_then("data_loss_window"), lambda run, value, *a, **k: {"what": "the data loss window"}),
)
def data_loss_window(run: Run, choice: BackupChoice) -> Findings | None:
    """Runbook B step 3: what a restore from the chosen backup gives up, in human units, and how many of
    the trades made since are on the exchange (a restore writes those back)."""
    choice = ran(choice)
    if choice.metadata is None:
        run.record(
            "data_loss_window", DataLossWindowRecord(backup_id=None, seconds=None, note="no backup to restore from")
        )
        return Findings("Data loss window", {"restore point": "none: no usable backup", "window": "-"})
    metadata = run.manager.get_backup(choice.backup_id or "")
    seconds = max(0.0, (now() - metadata.created).total_seconds())
    run.facts.data_loss_s = seconds
    restored = read_ledger(run.manager.backup_dir / metadata.backup_id / run.site.trades_file, run.site.trades_file)
    _, fills, _ = _exchange(run)
    after = len(set(fills) - restored.ids)
    run.record(
        "data_loss_window",
        DataLossWindowRecord(
            backup_id=metadata.backup_id,
            restore_point=metadata.created_at,
            seconds=round(seconds, 3),
            text=human_duration(seconds),
            exchange_trades_after_restore_point=after,
        ),
    )
    return Findings(
        "Data loss window if the data is restored",
        {
            "restore point": f"{metadata.backup_id} ({metadata.created_at})",
            "window": human_duration(seconds),
            "trades since then on the exchange": f"{after} (a restore writes them back)",
        },
    )


@step(
    prepares=("dry_run", "the dry run of repair and restore"),
    idle=True,
    replay=Replay(prepared_then("remedy_plan"), prepares("apply_remedy", site=True)),
)
def plan_remedies(run: Run, choice: BackupChoice) -> RemedyPlan | Halted:
    """Runbook B step 6, dry run: repair in place and restore, each worked out with what it loses.
    Nothing is changed."""
    choice = ran(choice)
    client, fills, unreachable = _exchange(run)
    if unreachable:
        return halt(run, f"the exchange cannot be asked, so no remedy can be checked against it: {unreachable}")
    options = plan_remedy(run.site, run.manager, choice.backup_id, client, fills)
    restore_option = options.option(RESTORE)
    if restore_option is not None and restore_option.restore_plan is not None:
        # the dry run of the restore option
        run.record("restore_plan", RestorePlanRecord(**restore_option.restore_plan.to_dict()))
    run.record("remedy_plan", RemedyPlanRecord(**options.to_dict()))
    return options


def remedy_key(options: RemedyPlan) -> str:
    """A digest of exactly what the options do, and the ledger they were planned on."""
    return digest(options.to_dict(), options.fingerprint)


@step(  # a halted dry run is shown as it is; options are put up for approval
    consumes=True, on_halt=GO_ON, replay=Replay(prepared_then("remedy_choice"), prepares("apply_remedy"))
)
def remedy_approval(run: Run, options: RemedyPlan | Halted, remedy: str = "least_loss", then: str = "") -> Any:
    """The approval of one remedy. ``remedy`` (the notebook parameter): "least_loss" takes the
    recommended option; "repair" or "restore" insists on one (halts if it is not possible). In
    JupyterLab the person picks among the possible ones. Headless, "least_loss" takes the least loss
    among the options the ``approve`` parameter allows, and the record says when that is not the
    overall least loss. ``then``: the title of the cell that applies it. Rerun with the same options,
    an approval stands."""
    wanted = options.recommended if remedy == "least_loss" else options.option(remedy)
    if wanted is None or not wanted.viable:
        run.facts.restore_failed = True
        why = "; ".join(wanted.why_not if wanted else [w for o in options.options for w in o.why_not])
        return halt(run, f"{'no remedy' if remedy == 'least_loss' else remedy} possible: {why}")
    if remedy == "least_loss" and not run.gate.interactive and wanted.action not in run.gate.approvals:
        allowed = [o for o in options.options if o.viable and o.action in run.gate.approvals]
        if allowed:
            chosen = min(allowed, key=lambda o: (o.trades_lost, o.reconciles is False, len(o.files_changed)))
            run.record(
                "remedy_choice",
                RemedyChoiceRecord(
                    recommended=wanted.action, chosen=chosen.action, why="the recommended one is not approved"
                ),
            )
            wanted = chosen
    run.remedy_action = wanted.action
    viable = {o.action: o.describe() for o in options.options if o.viable}
    return run.gate.request_choice(
        viable, default=wanted.action, step=then or "that applies it", key=remedy_key(options)
    )


def _remedied(run: Run, options: RemedyPlan) -> tuple[str, str]:
    """A remedy is applied once per set of options: run again, it says so (even after a halt)."""
    return "remedy", remedy_key(options)


def _remedied_then(run: Run, earlier: Earlier, *_: Any) -> Recorded:
    """The remedy the failed run applied (its facts: the site is as that run left it)."""
    remedy, restored = earlier.record("remedy"), earlier.record("restore_result")
    what = f"{remedy.get('action')} applied"
    what += f" from backup {restored['backup_id']}" if restored.get("backup_id") else ""
    shown = Recorded({**restored, **remedy}, f"✅ Data {what}.")
    return did(run, "remedy", shown, what)


@step(consumes=True, again=_remedied, replay=Replay(_remedied_then, _on_site("the remedy was applied")))
def apply_remedy(run: Run, options: RemedyPlan | Halted) -> Any:
    """Runbook B step 6: apply the approved option exactly as planned. Fails closed without approval.
    Run again after it happened, it says so instead of applying it twice."""
    action = run.gate.chosen([REPAIR, RESTORE], default=run.remedy_action or RESTORE)
    # A restore asks the gate in restore() itself: asking here too recorded its approval twice.
    if action != RESTORE and (skipped := refused(run, action)):
        return skipped
    option = options.option(action)
    if option is None or not option.viable:  # never reached through the gate; kept as a hard stop
        return halt(run, f"{action} is not possible: {'; '.join(option.why_not) if option else 'not offered'}")
    run.known_trade_ids = options.known_ids
    if action == RESTORE:
        if option.restore_plan is None:  # never offered as viable without one; kept as a hard stop
            return halt(run, "restore is not possible: the dry run made no restore plan")
        result = restore(run, option.restore_plan)
        run.record("remedy", RemedyRecord(action=RESTORE, ok=getattr(result, "ok", False)))
        return did(run, "remedy", result, "restored the data", remedy_key(options))
    if data_fingerprint(run.site) != options.fingerprint:
        return halt(run, "the ledger or positions changed since the repair was planned; nothing was changed")
    assert option.repair is not None
    trades = option.repair.trades
    try:
        write_ledger(run.site, trades)
    except Exception as exc:  # a refused or failed write halts the run; the pre-recovery backup holds the old state
        run.facts.restore_failed = True
        run.record("remedy", RemedyRecord(action=REPAIR, ok=False, error=str(exc)))
        return halt(run, f"repair failed: {exc}")
    run.record(
        "remedy",
        RemedyRecord(
            action=REPAIR,
            ok=True,
            rows_dropped=len(option.rows_dropped),
            header_added=option.repair.header_added,
            ledger_trades=len(trades),
        ),
    )
    repaired = Repaired(len(option.rows_dropped), option.repair.header_added, len(trades))
    return did(run, "remedy", repaired, "repaired the ledger in place", remedy_key(options))


class Repaired:
    """The ledger was repaired in place and positions recomputed."""

    ok = True

    def __init__(self, dropped: int, header_added: bool, trades: int) -> None:
        self.dropped = dropped
        self.header_added = header_added
        self.trades = trades

    def summary(self) -> str:
        """One line for a person."""
        header = ", header put back" if self.header_added else ""
        kept = f"{self.trades} trades kept; positions recomputed"
        return f"✅ Ledger repaired in place: {self.dropped} row(s) dropped{header}, {kept}."

    def __repr__(self) -> str:
        return self.summary()


@step(
    idle=True,
    replay=Replay(_recorded_then("trades", "replay"), _on_site("the exchange's trades were written back")),
)
def replay_trades(run: Run) -> Any:
    """Write back every fill the exchange knows that the ledger lacks (original ids), recompute positions,
    and count trades lost, recovered from the exchange, and still missing (recorded as ``trades``)."""
    if again := once(run, "replay"):
        return again  # a second pass would find nothing and record "0 lost" over the real count
    client, fills, unreachable = _exchange(run)
    if client is None:
        reason = unreachable or "no exchange configured: nothing to recover trades from"
        run.record("trades", TradesRecord(lost=None, recovered=0, still_missing=None, note=reason))
        if unreachable:
            return halt(run, f"the exchange cannot be asked: {unreachable}")
        return Findings("Trades", {"note": reason})
    try:
        result = replay_fills(run.site, client)
    except Exception as exc:  # refused (trading running) or failed: halts; nothing half-written (atomic writes)
        run.facts.restore_failed = True
        run.record("trades", TradesRecord(ok=False, error=str(exc)))
        return halt(run, f"writing the exchange's trades back failed: {exc}")
    known = run.known_trade_ids | set(fills)
    final = read_ledger(run.site.path(run.site.trades_file), run.site.trades_file).ids
    still_missing = sorted(known - final)
    lost = len(known - (final - set(result.recovered_ids)))
    run.facts.trades_missing = len(still_missing)
    record = TradesRecord(
        ok=not still_missing,
        lost=lost,
        recovered=result.recovered,
        still_missing=len(still_missing),
        still_missing_ids=still_missing[:50],
        recovered_ids=result.recovered_ids[:200],
        ledger_trades=len(final),
    )
    run.record("trades", record)
    return did(
        run,
        "replay",
        Findings(
            "Trades after recovery",
            {
                "ok": not still_missing,
                "lost by the fault or the restore": lost,
                "recovered from the exchange": result.recovered,
                "still missing": len(still_missing),
                "ledger now holds": f"{len(final)} trades",
            },
        ),
        "wrote the exchange's trades back",
    )
