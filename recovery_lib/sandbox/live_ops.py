"""The sandbox's trading process: keeps trading while it runs, as the real live_ops would.

Every ``interval`` seconds it appends a trade to ``trades.csv``, rewrites ``positions.csv`` (the
net of the trades, atomically), moves the simulated exchange's balances the same way, and updates
``state/session.json``. It writes its pid to ``run/live_ops.pid`` and stops cleanly on SIGTERM.

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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from ..atomic import atomic_write_text
from ..site import load_site
from .generate import EXCHANGE_FILE, SYMBOLS, UNITS

PIDFILE = "run/live_ops.pid"


def _units(text: str) -> int:
    return int((Decimal(text) * UNITS).to_integral_value())


def _text(units: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS)
    return f"{sign}{whole}.{frac:04d}"


class Book:
    """Exact per-symbol totals, loaded from trades.csv, kept in step with every new trade."""

    def __init__(self) -> None:
        self.net: dict[str, int] = {}
        self.bought: dict[str, int] = {}
        self.notional: dict[str, int] = {}
        self.last_id = 0

    def add(self, trade_id: int, symbol: str, side: str, qty: int, price: int) -> None:
        self.last_id = max(self.last_id, trade_id)
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
        lines = ["symbol,quantity,avg_price"]
        for symbol in sorted(self.net):
            bought = self.bought.get(symbol, 0)
            avg = self.notional.get(symbol, 0) / bought / UNITS if bought else 0.0
            lines.append(f"{symbol},{_text(self.net[symbol])},{avg:.6f}")
        return "\n".join(lines) + "\n"


def run(site_dir: Path, interval: float, max_trades: int | None = None) -> int:
    """Trade until SIGTERM (or ``max_trades``); returns the number of trades made."""
    site = load_site(site_dir)
    trades, positions = site.path(site.trades_file), site.path(site.positions_file)
    account_path = site.path(site.exchange.path) / EXCHANGE_FILE
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
        book = Book.load(trades)
        rng = random.Random(book.last_id)
        while not stopping and (max_trades is None or made < max_trades):
            symbol = rng.choice(sorted(SYMBOLS))
            side = "buy" if rng.random() < 0.6 else "sell"
            price = round(SYMBOLS[symbol] * (1 + rng.uniform(-0.03, 0.03)) * UNITS)
            qty = max(1, round(rng.uniform(0.1, 1.0) * 1000 / SYMBOLS[symbol] * UNITS))
            trade_id = book.last_id + 1
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fcntl.flock(lock_fd, fcntl.LOCK_EX)  # readers see trades and positions agree
            with trades.open("a") as handle:
                handle.write(f"{trade_id},{stamp},{symbol},{side},{_text(qty)},{_text(price)}\n")
            book.add(trade_id, symbol, side, qty, price)
            atomic_write_text(positions, book.positions_csv())
            account = json.loads(account_path.read_text())
            base = symbol.split("/")[0]
            account["balances"][base] = float(_text(book.net[symbol]))
            account["balances"]["USD"] = round(
                account["balances"].get("USD", 0.0) + (-1 if side == "buy" else 1) * qty * price / UNITS / UNITS, 4
            )
            account["tickers"][symbol] = price / UNITS
            account["updated_at"] = stamp
            atomic_write_text(account_path, json.dumps(account, indent=2) + "\n")
            atomic_write_text(
                session,
                json.dumps({"last_trade_id": trade_id, "trade_count": trade_id, "updated_at": stamp}, indent=2) + "\n",
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
