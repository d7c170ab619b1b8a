"""Writing the site's ledger: trades and the positions derived from them, atomically, only while the
trading system is stopped and its write lock is ours."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence

from recovery_lib.errors import LedgerError
from recovery_lib.fsops.atomic import atomic_write_text, atomic_writer
from recovery_lib.fsops.flock import flock_within
from recovery_lib.site.config import Site
from recovery_lib.site.process import process_status
from recovery_lib.trading.ledger.positions import positions_csv
from recovery_lib.trading.ledger.rows import TradeRows
from recovery_lib.trading.ledger.trade import HEADER, Trade

log = logging.getLogger(__name__)

WRITE_LOCK_TIMEOUT_S = 30.0


def _refuse_while_running(site: Site, what: str) -> None:
    status = process_status(site)
    if status.running:
        how = f"stop it with: cd {site.root} && {site.process.stop}" if site.process.stop else "stop it first"
        log.warning("%s refused for site %s: the trading system is %s", what, site.root, status.detail)
        raise LedgerError(
            f"{what} refused for site {site.root}: the trading system is {status.detail}; {how}. Nothing was changed."
        )


@contextlib.contextmanager
def _exclusive_write_lock(site: Site) -> Iterator[None]:
    """Hold the trading system's write lock exclusively, so no reader sees trades and positions disagree."""
    if not site.process.write_lock:
        yield
        return
    try:
        fd = os.open(site.path(site.process.write_lock), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield  # no writer has ever run here
        return
    try:
        if not flock_within(fd, fcntl.LOCK_EX, WRITE_LOCK_TIMEOUT_S):
            log.warning(
                "%s stayed locked for %g s; the ledger was not written", site.process.write_lock, WRITE_LOCK_TIMEOUT_S
            )
            raise LedgerError(
                f"{site.process.write_lock} stayed locked for {WRITE_LOCK_TIMEOUT_S:g} s (a backup or the trading "
                "system holds it); wait for it to finish and try again. Nothing was changed."
            )
        yield
    finally:
        os.close(fd)


def write_ledger(site: Site, trades: Sequence[Trade]) -> None:
    """Write ``trades`` as the site's ledger (header, then each trade's line), then positions recomputed
    from them, each file with the atomic write pattern.

    Refuses (:class:`LedgerError`) while the trading process runs. trades.csv is replaced whole or not
    at all; should positions.csv then fail to write, the error says so and rerunning the same write
    finishes the job (positions are derived from the trades).
    """
    _refuse_while_running(site, "writing the ledger")
    rows = TradeRows.from_trades(trades)
    positions = positions_csv(rows)  # computed first: nothing is written if it fails
    trades_path, positions_path = site.path(site.trades_file), site.path(site.positions_file)
    with _exclusive_write_lock(site):
        _refuse_while_running(site, "writing the ledger")  # started while we waited for the lock
        try:
            trades_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(trades_path) as handle:
                handle.write((HEADER + "\n").encode())
                rows.write_to(handle)
        except OSError as exc:
            log.warning("%s could not be written: %s", site.trades_file, exc.strerror or exc)
            raise LedgerError(
                f"{site.trades_file} could not be written ({exc.strerror or exc}); it is unchanged. "
                "Free space or fix permissions in its directory and try again."
            ) from exc
        try:
            positions_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(positions_path, positions)
        except OSError as exc:
            log.warning(
                "%s was written but %s could not be: %s", site.trades_file, site.positions_file, exc.strerror or exc
            )
            raise LedgerError(
                f"{site.trades_file} was written but {site.positions_file} could not be ({exc.strerror or exc}), "
                "so they disagree; fix the cause and write the ledger again (positions are recomputed from it)."
            ) from exc
    log.info("wrote %s (%d trades) and %s recomputed from them", site.trades_file, len(rows), site.positions_file)
