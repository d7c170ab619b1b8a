"""What must hold before a restore is planned or applied; each refusal says what to do instead.

A restore is refused when no category is chosen, when the backup is not SUCCESS or fails
verification (a dry run refuses whatever the real run refuses: both hash every byte), while the
trading system runs, for a plan made on another site, and when the site changed since the plan was
made. A backup that verifies but cannot fix the fault is not refused: it is a warning on the plan.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recovery_lib.backup.model import CATEGORIES, BackupMetadata, BackupStatus, Manifest
from recovery_lib.backup.verify import VerifyReport, verify_backup_dir
from recovery_lib.errors import RecoveryError, RestoreError
from recovery_lib.fsops.paths import within
from recovery_lib.restore.plan import RestorePlan, RestoreResult, site_fingerprint
from recovery_lib.site.config import Site
from recovery_lib.site.process import process_status

log = logging.getLogger(__name__)


def _refused(message: str) -> RestoreError:
    """The error for a refusal, logged: every refused restore leaves a trail (in the log file: the
    console shows the error itself once, from whoever catches it)."""
    log.warning("%s", message, extra={"console": False})
    return RestoreError(message)


def chosen_categories(restore_config: bool, restore_state: bool, restore_data: bool) -> list[str]:
    """The categories the runbook's three flags ask for, in order; refuses none at all."""
    wanted = (restore_config, restore_state, restore_data)
    categories = [category for category, chosen in zip(CATEGORIES, wanted, strict=True) if chosen]
    if not categories:
        raise _refused("nothing to restore: choose at least one of config, state, data")
    return categories


def running_blockers(site: Site) -> list[str]:
    """Why a restore cannot run now ([] when it can): the trading system is running."""
    status = process_status(site)
    if status.running:
        how = (
            f"stop it with: cd {shlex.quote(str(site.root))} && {site.process.stop}"
            if site.process.stop
            else "stop it first"
        )
        return [f"the trading system is {status.detail}; {how}"]
    return []


def refuse_if_running(site: Site) -> None:
    """Refuse to apply a restore while the trading system runs."""
    blockers = running_blockers(site)
    if blockers:
        raise _refused(f"restore refused, nothing was changed: {blockers[0]}")


def refuse_unless_success(metadata: BackupMetadata) -> None:
    """Only a SUCCESS backup is ever restored from."""
    if metadata.status is not BackupStatus.SUCCESS:
        raise _refused(
            f"backup {metadata.backup_id} is {metadata.status.value.upper()}, not SUCCESS; "
            "it is never restored from. Choose another (recovery backup list)."
        )


def verified_manifest(backup_id: str, report: VerifyReport) -> Manifest:
    """The manifest of a backup that passed verification; the one refusal for one that did not, so
    a dry run and the real run say the same."""
    if not report.ok or report.manifest is None:
        raise _refused(
            f"backup {backup_id} fails verification, restore refused and the site was not changed: {report.summary()}"
        )
    return report.manifest


def refuse_foreign_plan(plan: RestorePlan, site_root: Path) -> None:
    """A plan applies only to the site it was made for."""
    if plan.site_root != site_root:
        raise _refused(f"this plan is for site {plan.site_root}, not {site_root}")


def refuse_if_changed(plan: RestorePlan, site_root: Path) -> None:
    """Refuse a plan whose site changed since it was made: the person approved another picture."""
    tops = [top for paths in plan.tops.values() for top in paths]
    if site_fingerprint(site_root, tops) != plan.fingerprint:
        raise _refused(
            "the site changed since this restore was planned; nothing was changed. "
            "Plan again (dry-run) and review the new plan."
        )


def verify_for_apply(backup_path: Path, plan: RestorePlan, progress: Callable[[int, int], None] | None) -> Manifest:
    """Check every byte of the backup before the site is touched (the pre-recovery backup included):
    a backup that fails is never restored from, not even the categories that verify. Files outside
    the restored paths are hashed here; the restored ones while they are staged."""
    restored = within(top for tops in plan.tops.values() for top in tops)
    report = verify_backup_dir(
        backup_path,
        read_data=True,
        progress=progress,
        hash_only=lambda path: not restored(path),
    )
    return verified_manifest(plan.backup_id, report)


def fitness_warnings(unfit: list[str]) -> list[str]:
    """The plan's warnings for a backup that verifies but holds the fault (see ``fitness_problems``)."""
    return [
        f"{problem}: restoring it will not fix the fault. Choose another backup (recovery backup list)."
        for problem in unfit
    ]


def apply_while_checking(
    plan: RestorePlan,
    apply: Callable[[RestorePlan], RestoreResult],
    warnings: Callable[[RestorePlan], list[str]],
) -> tuple[RestoreResult, list[str]]:
    """Apply ``plan`` while its warnings are worked out beside it (they take seconds at millions of
    trades, and nobody reads them before this apply): the result, and the warnings once both are done.
    A check that could not run is one of the warnings (the restore itself verified every byte)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(warnings, plan)
        result = apply(plan)
        try:
            found = pending.result()
        except (RecoveryError, OSError) as exc:
            found = [f"could not check whether backup {plan.backup_id} can fix the fault: {exc}"]
    return result, found
