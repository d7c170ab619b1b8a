"""The restore journal: how an interrupted restore is finished or rolled back.

A restore stages the new trees in ``<site>/.recovery-staging-<id>/``, then swaps each restored
top-level path: the current one moves to ``<site>/.recovery-old-<id>/`` and the staged one takes
its place. ``<site>/.recovery-journal.json`` records the phase:

- ``staging``: nothing in the site has changed yet; recovery rolls back (deletes the staging).
- ``swapping``: staging is complete and verified; recovery rolls forward, finishing each swap.
- ``swapped``: only cleanup is left.

Every phase is written with the atomic write pattern, so the journal is always one of these.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from recovery_lib.backup.lock import SiteRestoreLock
from recovery_lib.errors import RestoreError
from recovery_lib.fsops.atomic import atomic_write_text, fsync_dir
from recovery_lib.fsops.fileio import make_writable_tree

JOURNAL_NAME = ".recovery-journal.json"
STAGING_PREFIX = ".recovery-staging-"
OLD_PREFIX = ".recovery-old-"

log = logging.getLogger(__name__)


@dataclass
class Journal:
    """What an interrupted restore needs to be finished: its id, phase and the paths it swaps."""

    restore_id: str
    backup_id: str
    phase: str  # staging | swapping | swapped
    tops: list[str]
    staged: list[str]  # the tops that have a new version (others are removed by the restore)

    def staging_dir(self, site_root: Path) -> Path:
        return site_root / f"{STAGING_PREFIX}{self.restore_id}"

    def old_dir(self, site_root: Path) -> Path:
        return site_root / f"{OLD_PREFIX}{self.restore_id}"

    def save(self, site_root: Path) -> None:
        log.debug("restore %s of backup %s: journal phase %s", self.restore_id, self.backup_id, self.phase)
        atomic_write_text(site_root / JOURNAL_NAME, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, site_root: Path) -> Journal | None:
        path = site_root / JOURNAL_NAME
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise RestoreError(
                f"{path} (an interrupted restore's journal) is unreadable: {exc}. Inspect the "
                f"{STAGING_PREFIX}* and {OLD_PREFIX}* directories in the site before removing it."
            ) from exc


def journal_present(site_root: Path) -> bool:
    """Whether a restore journal (or a torn temp file of one) is in the site: a restore is running or
    was interrupted."""
    return (site_root / JOURNAL_NAME).exists() or any(site_root.glob(f".{JOURNAL_NAME}.*.tmp"))


def swap_in(site_root: Path, journal: Journal) -> None:
    """Move every restored top into place; idempotent, so it also finishes an interrupted swap."""
    staging, old = journal.staging_dir(site_root), journal.old_dir(site_root)
    for top in journal.tops:
        current, new, previous = site_root / top, staging / top, old / top
        if top in journal.staged and not new.exists() and not previous.exists():
            continue  # nothing to do: this top was already swapped and cleaned
        moving_out = (current.exists() or current.is_symlink()) and (new.exists() or top not in journal.staged)
        if moving_out and not previous.exists():
            previous.parent.mkdir(parents=True, exist_ok=True)
            log.debug("restore %s: moving %s aside", journal.restore_id, top)
            os.rename(current, previous)
            fsync_dir(current.parent)
        if top in journal.staged and new.exists():
            current.parent.mkdir(parents=True, exist_ok=True)
            log.debug("restore %s: swapping in %s", journal.restore_id, top)
            os.rename(new, current)
            fsync_dir(current.parent)


def cleanup(site_root: Path, journal: Journal) -> None:
    """Remove the staging and old trees, then the journal (last, so a crash here is retried)."""
    log.debug("restore %s: removing its staging and old trees, then the journal", journal.restore_id)
    for directory in (journal.staging_dir(site_root), journal.old_dir(site_root)):
        if directory.exists():
            make_writable_tree(directory)
            shutil.rmtree(directory)
    (site_root / JOURNAL_NAME).unlink(missing_ok=True)
    fsync_dir(site_root)


def recover_interrupted_restore(site_root: Path) -> str | None:
    """Finish or roll back a restore that a crash interrupted. Returns what was done, or None.

    The caller holds the lock, so any journal temp file left here is from a dead writer.
    """
    for torn in site_root.glob(f".{JOURNAL_NAME}.*.tmp"):
        torn.unlink(missing_ok=True)
    journal = Journal.load(site_root)
    if journal is None:
        return None
    if journal.phase == "staging":
        cleanup(site_root, journal)
        return f"rolled back interrupted restore {journal.restore_id} of {journal.backup_id} (site was not changed)"
    if journal.phase == "swapping":
        swap_in(site_root, journal)
        journal.phase = "swapped"
        journal.save(site_root)
    cleanup(site_root, journal)
    return f"completed interrupted restore {journal.restore_id} of {journal.backup_id}"


def finish_interrupted_restore(site_root: Path, site_lock: SiteRestoreLock) -> str | None:
    """Finish or roll back an interrupted restore of the site, if any: what was done, or None.

    A journal is only "interrupted" if no restore holds the site: one that another manager (another
    backup directory) is running right now must be left alone, so nothing is done unless
    ``site_lock`` can be taken at once. The caller holds the backup directory's lock.
    """
    if not journal_present(site_root) or not site_lock.acquire(blocking=False):
        return None
    try:
        return recover_interrupted_restore(site_root)
    finally:
        site_lock.release()
