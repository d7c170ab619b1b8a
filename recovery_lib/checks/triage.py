"""Which disaster is under way: the runbook's four scenario detections, and the procedure to run.

Scenario 1 (config corruption) -> Procedure A; 2 (data loss) -> B; 3 (complete system failure:
config and data, or state gone too) -> C; 4 (backup system failure) -> D.
When several hold, the widest wins (3 over 1 and 2); a backup failure next to a site failure is
reported as evidence and raises the escalation, because the site's procedure comes first; Procedure D
then follows it (``Triage.procedures``), so the incident ends with the backup system whole too.

When no local backup can serve (the backup directory is gone, or every backup in it is damaged), the
``replicas`` health check's facts choose the replica to recover from (``Triage.replica``): a restore
from it for scenarios 1-3 (a lost host is scenario 3), a re-seed of the local backups for scenario 4.

A declared config, state or data path whose kind differs from the newest verified local backup's
(a directory replaced by a file, or a file by a directory) counts as lost, like a missing one.
Data in, data out: nothing here writes or asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from recovery_lib.backup.listing import read_backups
from recovery_lib.backup.model import PRE_RECOVERY_TAG, BackupStatus, Manifest
from recovery_lib.backup.verify import verify_backup_dir
from recovery_lib.catalog import notebook, scenario
from recovery_lib.checks.default import health_check
from recovery_lib.checks.registry import HealthResult
from recovery_lib.site.config import Site

NOTHING = "No disaster detected"
RESTORE = "restore"  # Triage.replica_action: restore the site from the replica (scenarios 1-3)
RESEED = "reseed"  # Triage.replica_action: pull its backups into the local backup directory (scenario 4)


@dataclass
class Triage:
    """The detected scenario (None: nothing to recover), its procedure and the evidence."""

    scenario: int | None
    procedure: str | None
    failed_checks: list[str]
    missing_paths: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)
    procedures: list[str] = field(default_factory=list)  # in order: the scenario's, then D if backups fail too
    incident_id: str | None = None  # issued by the triage notebook; every notebook of the incident takes it
    replica: str | None = None  # the replica to recover from: no local backup can serve
    replica_action: str | None = None  # RESTORE or RESEED, with ``replica``
    notes: list[str] = field(default_factory=list)  # for a person: what to do differently, and why

    @property
    def name(self) -> str:
        """The runbook's name of the scenario (``Data Loss``), or that none was detected."""
        return scenario(self.scenario).name if self.scenario else NOTHING

    @property
    def notebook(self) -> str | None:
        """The notebook of the scenario's procedure (``B_data_recovery.ipynb``), if one was detected."""
        return notebook(self.procedure) if self.procedure else None

    def summary(self) -> str:
        """A few lines for a person: what was detected and what to run next, with which incident id."""
        if self.scenario is None:
            return NOTHING + (f" (failing: {', '.join(self.failed_checks)})" if self.failed_checks else "")
        then = [f"Procedure {p} ({notebook(p)})" for p in self.procedures]
        lines = [
            f"Scenario {self.scenario}: {self.name} -> Procedure {self.procedure} ({self.notebook}); "
            f"failing checks: {', '.join(self.failed_checks) or 'none'}",
            "Run next, in this order: " + ", then ".join(then) + ".",
            *self.notes,
        ]
        if self.incident_id:
            lines.append(
                f"Incident id: {self.incident_id}. The notebooks you open next on this site join it by themselves "
                "(leave incident_id empty); elsewhere, pass it as incident_id."
            )
        return "\n".join(lines)


def newest_usable_backup(site: Site, damaged: set[str] | frozenset[str] = frozenset()) -> tuple[str, Manifest] | None:
    """The newest local recovery point (SUCCESS, not a pre-recovery snapshot, not in ``damaged``, its
    structure verifies) and its manifest; None when the backup directory holds none."""
    backups, _ = read_backups(site.backup_dir)  # [] when the directory is gone
    for metadata in backups:
        if metadata.status is not BackupStatus.SUCCESS or PRE_RECOVERY_TAG in metadata.tags:
            continue
        if metadata.backup_id in damaged:
            continue
        report = verify_backup_dir(site.backup_dir / metadata.backup_id, read_data=False)
        if report.ok and report.manifest is not None:
            return metadata.backup_id, report.manifest
    return None


def _kind_in(manifest: Manifest, top: str) -> str | None:
    """``file`` or ``dir``: what ``top`` was when the backup was taken (None: not in it)."""
    if top in manifest.absent:
        return None
    if any(entry.path == top for entry in manifest.files):
        return "file"
    if top in manifest.dirs or any(entry.path.startswith(top + "/") for entry in manifest.files):
        return "dir"
    return None


def replaced_paths(site: Site, manifest: Manifest) -> list[dict[str, str]]:
    """Declared category paths whose kind (file or directory) differs from ``manifest``'s: each
    ``{"path", "category", "expected", "found"}``. A missing path is not listed (the other detections see it)."""
    replaced = []
    for category, tops in site.categories.items():
        for declared in tops:
            top = declared.rstrip("/")
            expected = _kind_in(manifest, top)
            path = site.path(top)
            if expected is None or not (path.exists() or path.is_symlink()):
                continue
            found = "dir" if path.is_dir() else "file"
            if found != expected:
                replaced.append({"path": top, "category": category, "expected": expected, "found": found})
    return replaced


def missing_paths(site: Site, manifest: Manifest | None = None) -> list[str]:
    """Critical files (runbook Scenario 2) and declared state paths that do not exist; with the newest
    verified backup's ``manifest``, declared paths of the wrong kind too (``state/`` now a file)."""
    missing = [p for p in site.critical if not site.path(p.rstrip("/")).exists()]
    for top in site.state_paths:
        path = site.path(top)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            missing.append(top + "/")
    for replaced in replaced_paths(site, manifest) if manifest is not None else []:
        shown = replaced["path"] + ("/" if replaced["expected"] == "dir" else "")
        if shown not in missing:
            missing.append(shown)
    return missing


def host_lost(site: Site, missing: list[str]) -> bool:
    """The site's config, its critical data and state, and the local backup directory are all gone: a new
    host (where the site holds only recovery.toml), or one whose disk was lost."""
    gone = {p.rstrip("/") for p in missing}
    return (
        not site.backup_dir.exists()
        and not site.path(site.config_file).exists()
        and all(p.rstrip("/") in gone for p in site.critical)
        and all(p.rstrip("/") in gone for p in site.state_paths)
    )


def _replica_to_use(results: dict[str, HealthResult]) -> dict[str, Any] | None:
    """The replica holding the best backup, per the ``replicas`` check: fresh first, then the youngest."""
    checked = results.get("replicas")
    facts = checked.details.get("replicas", []) if checked is not None else []
    holding = [r for r in facts if r.get("reachable") and r.get("newest")]
    if not holding:
        return None
    return min(holding, key=lambda r: (not r.get("fresh"), math.inf if r.get("age_hours") is None else r["age_hours"]))


def _restore_flags(found: int, config_bad: bool, data_bad: bool, state_gone: bool) -> str:
    if found == 3:
        return "--all"
    flags = [
        flag for flag, broken in (("--config", config_bad), ("--state", state_gone), ("--data", data_bad)) if broken
    ]
    return " ".join(flags) or "--all"


def _replica_plan(found: int | None, replica: dict[str, Any] | None, flags: str) -> tuple[str | None, list[str]]:
    """The replica action and the notes, when no local backup can serve."""
    if found is None:
        return None, []
    if replica is None:
        return None, [
            "No local backup can serve and no replica holds a backup: the only copies are gone. Escalate now; "
            "look for any other copy of the site (another disk, the deploy repository)."
        ]
    name = replica["name"]
    key = " --identity FILE" if replica.get("encrypted") else ""  # the age private key, kept off the host
    age = _replica_age(replica)
    if found == 4:
        return RESEED, [
            f"No local backup can serve: re-seed from replica {name} ({age}) with "
            f"`recovery replica pull latest --replica {name}{key}`, then take a new backup."
        ]
    return RESTORE, [
        f"No local backup can serve: restore from replica {name} ({age}) with "
        f"`recovery restore latest --from-replica {name} {flags}{key}`."
    ]


def _replica_age(replica: dict[str, Any]) -> str:
    """What the replica's backups are worth, in a few words (from the ``replicas`` check's facts)."""
    text = f"its newest backup {replica['newest']}"
    if replica.get("age_hours") is not None:
        stalest = replica.get("stalest")
        judged = "" if stalest == replica["newest"] else f"; of {replica.get('stalest_category')}: {stalest},"
        text += f"{judged} is {replica['age_hours']:.1f} h old"
    if replica.get("missing_categories"):
        return text + f"; none there holds {', '.join(replica['missing_categories'])}"
    if not replica.get("fresh"):
        return text + f", older than the {replica['max_age_hours']:g} h allowed: what changed since is lost"
    return text


def triage(site: Site, results: dict[str, HealthResult] | None = None) -> Triage:
    """Run the detections of scenarios 1-4 on ``site`` (health results may be passed in)."""
    results = results if results is not None else health_check.run_all(site)
    failed = [name for name, result in results.items() if not result.healthy]
    backups_result = results.get("backups")
    damaged = set(backups_result.details.get("damaged", [])) if backups_result is not None else set()
    local = newest_usable_backup(site, damaged)
    missing = missing_paths(site, local[1] if local else None)
    lost = {p.rstrip("/") for p in missing}
    config_bad = "config" in failed or bool(lost & set(site.config_paths))
    # Positions that disagree with a reachable exchange are a data fault too (a row nobody traded).
    disagrees = "reconciliation" in failed and "exchange" not in failed
    data_bad = (
        "data" in failed or disagrees or any(p in site.critical for p in missing) or bool(lost & set(site.data_paths))
    )
    state_gone = bool(lost & set(site.state_paths))
    # A failing replica alone is no disaster (the local backups serve): health shows it, triage only
    # uses the replicas' facts when no local backup can serve.
    backups_bad = "backups" in failed
    evidence: dict[str, Any] = {name: {"healthy": r.healthy, "message": r.message} for name, r in results.items()}
    evidence["local_backup"] = local[0] if local else None
    evidence["host_lost"] = host_lost(site, missing)
    if local is not None and (replaced := replaced_paths(site, local[1])):
        evidence["replaced"] = replaced
    found: int | None
    if config_bad and (data_bad or state_gone):
        found = 3
    elif config_bad:
        found = 1
    elif data_bad or state_gone:
        found = 2
    elif backups_bad:
        found = 4
    else:
        found = None
    procedure = scenario(found).procedure if found else None
    procedures = [procedure] if procedure else []
    if found in (1, 2, 3) and backups_bad:
        evidence["also"] = "the backup system is failing too (Scenario 4): Procedure D follows; escalate"
        procedures.append(scenario(4).procedure)
    result = Triage(found, procedure, failed, missing, evidence, procedures)
    if local is None and site.replicas:
        replica = _replica_to_use(results)
        result.replica_action, result.notes = _replica_plan(
            found, replica, _restore_flags(found or 0, config_bad, data_bad, state_gone)
        )
        result.replica = replica["name"] if replica is not None and result.replica_action else None
    return result
