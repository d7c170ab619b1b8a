"""The sandbox's trading process: keeps trading while it runs, as the real live_ops would.

Every ``interval`` seconds it makes a trade: the simulated exchange logs the fill in
``exchange/my_trades.csv`` and moves its balances by the fill (exactly, in Decimal); the site
appends the same row text to ``trades.csv``, rewrites ``positions.csv`` (the net of the trades,
atomically) and updates ``state/session.json``. All of it happens under the site's write lock, so
readers never see the exchange, the trades and the positions disagree. It writes its pid to
``run/live_ops.pid`` and stops cleanly on SIGTERM.

A new trade's id is one above the highest id in ``trades.csv`` or in the exchange's fill log: a
process restarted on a restored (older) ledger never reuses an id the exchange already knows.

    python -m recovery_lib.sandbox.live_ops --site DIR [--interval 0.2]    # run (foreground)
    python -m recovery_lib.sandbox.live_ops --site DIR --stop              # stop a running one
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

from recovery_lib import clock
from recovery_lib.fsops.atomic import atomic_write_text
from recovery_lib.sandbox.generate import DECIMALS, EXCHANGE_FILE, FILL_LOG_FILE, SYMBOLS, TRADES_HEADER, UNITS
from recovery_lib.site.config import load_site
from recovery_lib.trading.ledger import positions_text, read_ledger, units_text

PIDFILE = "run/live_ops.pid"


def _units(text: str) -> int:
    return int((Decimal(text) * UNITS).to_integral_value())


def _text(units: int) -> str:
    return units_text(units, DECIMALS)


class Book:
    """Exact per-symbol totals, loaded from trades.csv, kept in step with every new trade."""

    def __init__(self) -> None:
        self.net: dict[str, int] = {}
        self.bought: dict[str, int] = {}
        self.notional: dict[str, int] = {}
        self.last_id = 0
        self.count = 0

    def add(self, trade_id: int, symbol: str, side: str, qty: int, price: int) -> None:
        self.last_id = max(self.last_id, trade_id)
        self.count += 1
        self.net[symbol] = self.net.get(symbol, 0) + (qty if side == "buy" else -qty)
        if side == "buy":
            self.bought[symbol] = self.bought.get(symbol, 0) + qty
            self.notional[symbol] = self.notional.get(symbol, 0) + qty * price

    @classmethod
    def load(cls, trades: Path) -> Book:
        book = cls()
        with trades.open() as handle:
            next(handle, None)
            for line in handle:
                trade_id, _, symbol, side, qty, price = line.rstrip("\n").split(",")
                book.add(int(trade_id), symbol, side, _units(qty), _units(price))
        return book

    def positions_csv(self) -> str:
        return positions_text(self.net, self.bought, self.notional, DECIMALS, DECIMALS)


def _exchange_fill(account_path: Path, symbol: str, side: str, qty: int, price: int, stamp: str) -> None:
    """The exchange's side of a fill: balances move by exactly the fill (base +-qty, quote -+qty*price)."""
    account = json.loads(account_path.read_text(), parse_float=Decimal)  # exact: no float arithmetic
    balances = account["balances"]
    base, _, quote = symbol.partition("/")
    signed = qty if side == "buy" else -qty
    balances[base] = Decimal(balances.get(base, 0)) + Decimal(signed).scaleb(-DECIMALS)
    balances[quote] = Decimal(balances.get(quote, 0)) - Decimal(signed * price).scaleb(-2 * DECIMALS)
    account["tickers"][symbol] = Decimal(price).scaleb(-DECIMALS)
    account["updated_at"] = stamp
    # JSON numbers are written as the shortest float text, which is the exact decimal for these values.
    atomic_write_text(account_path, json.dumps(account, indent=2, default=float) + "\n")


def _highest_exchange_id(fill_log: Path) -> int:
    """The highest trade id the exchange knows; an absent log (an older sandbox) is started empty."""
    if not fill_log.exists():
        atomic_write_text(fill_log, TRADES_HEADER.decode())
        return 0
    return read_ledger(fill_log, str(fill_log)).highest_id()


def run(site_dir: Path, interval: float, max_trades: int | None = None) -> int:
    """Trade until SIGTERM (or ``max_trades``); returns the number of trades made."""
    site = load_site(site_dir)
    trades, positions = site.path(site.trades_file), site.path(site.positions_file)
    account_path = site.path(site.exchange.path) / EXCHANGE_FILE
    fill_log = site.path(site.exchange.path) / FILL_LOG_FILE
    session = site.path("state/session.json")
    pidfile = site.path(PIDFILE)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pidfile, f"{os.getpid()}\n")
    stopping = False
    lock_path = site.path(site.process.write_lock or "run/trading.lock")
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    made = 0
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_SH)  # read the ledger and the fill log as one consistent state
        book = Book.load(trades)
        exchange_last = _highest_exchange_id(fill_log)
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        rng = random.Random(max(book.last_id, exchange_last))
        while not stopping and (max_trades is None or made < max_trades):
            symbol = rng.choice(sorted(SYMBOLS))
            side = "buy" if rng.random() < 0.6 else "sell"
            price = round(SYMBOLS[symbol] * (1 + rng.uniform(-0.03, 0.03)) * UNITS)
            qty = max(1, round(rng.uniform(0.1, 1.0) * 1000 / SYMBOLS[symbol] * UNITS))
            # Above every id the exchange knows, even when trades.csv was restored to an older copy.
            trade_id = max(book.last_id, exchange_last) + 1
            stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")  # the ledger's format: whole seconds
            row = f"{trade_id},{stamp},{symbol},{side},{_text(qty)},{_text(price)}\n"
            fcntl.flock(lock_fd, fcntl.LOCK_EX)  # readers see exchange, trades and positions agree
            # The exchange first: it is where the trade happens. A crash before the ledger append
            # leaves a fill the exchange knows and the ledger lacks, which a replay recovers.
            with fill_log.open("a") as handle:
                handle.write(row)
            exchange_last = trade_id
            _exchange_fill(account_path, symbol, side, qty, price, stamp)
            with trades.open("a") as handle:
                handle.write(row)
            book.add(trade_id, symbol, side, qty, price)
            atomic_write_text(positions, book.positions_csv())
            atomic_write_text(
                session,
                json.dumps({"last_trade_id": trade_id, "trade_count": book.count, "updated_at": stamp}, indent=2)
                + "\n",
            )
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            made += 1
            time.sleep(interval)
    finally:
        os.close(lock_fd)
        if pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink()
    return made


def stop(site_dir: Path, timeout_s: float = 10.0) -> bool:
    """SIGTERM the running live_ops of the site and wait for it to exit; True if it is gone."""
    pidfile = load_site(site_dir).path(PIDFILE)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=Path("."), help="the sandbox site (default: .)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between trades (default 0.2)")
    parser.add_argument("--max-trades", type=int, help="stop after this many trades")
    parser.add_argument("--stop", action="store_true", help="stop the running live_ops of the site")
    args = parser.parse_args(argv)
    if args.stop:
        pidfile = load_site(args.site).path(PIDFILE)
        if not pidfile.exists():
            print(f"no live_ops running for site {args.site.resolve()} (no {PIDFILE})")
            return 0
        return 0 if stop(args.site) else 1
    run(args.site, args.interval, args.max_trades)
    return 0


if __name__ == "__main__":
    sys.exit(main())
