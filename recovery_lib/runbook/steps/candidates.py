"""The picker's candidates: every backup with whether it verifies and whether restoring it can fix the
fault (it verifies, holds what the procedure restores, passes its checks, is no pre-recovery snapshot)."""

from __future__ import annotations

from dataclasses import dataclass

from recovery_lib.backup import BackupCheck, BackupMetadata, BackupStatus
from recovery_lib.manager import PRE_RECOVERY_TAG
from recovery_lib.rendering import human_age, human_size
from recovery_lib.runbook.run import Run

FITNESS_CHECKED = ("config", "data")  # the categories RecoveryManager.fitness checks (state has no check)


@dataclass
class Candidate:
    """One backup as the picker offers it: what it is, whether it verifies, whether it can fix the fault."""

    metadata: BackupMetadata
    verification: str  # short: "✅ verifies (every byte hashed)", "❌ damaged", "not checked"
    problems: list[str]  # why restoring it cannot fix the fault; [] when it can
    fixes: str = ""  # what it passes: "passes the config check"

    @property
    def pre_recovery(self) -> bool:
        """A snapshot a restore took of the state it replaced: the state at the time of an incident."""
        return PRE_RECOVERY_TAG in self.metadata.tags

    @property
    def good(self) -> bool:
        """Verifies, holds what is needed, passes the checks and is not a snapshot of a broken state."""
        return not self.problems and not self.pre_recovery

    def verdict(self) -> str:
        """The mark a person reads first: ✅ can fix, ⚠ pre-recovery, ❌ cannot fix (and the first reason)."""
        if self.problems:
            more = f" (and {len(self.problems) - 1} more, named when it is selected)" if len(self.problems) > 1 else ""
            return f"❌ cannot fix: {without_id(self.problems[0], self.metadata.backup_id)}{more}"
        passes = f", {self.fixes}" if self.fixes else ""
        if self.pre_recovery:
            return f"⚠ pre-recovery: the state at the time of an incident{passes}"
        return f"✅ {self.fixes or 'can fix the fault'}"

    def label(self) -> str:
        """One picker option: the mark, then id, age, size, tags, verification and what it fixes or why not."""
        m = self.metadata
        mark, _, verdict = self.verdict().partition(" ")
        facts = [m.backup_id, f"{human_age(m.age_hours())} old", human_size(m.size_bytes)]
        facts += [", ".join(m.tags) or "no tags", self.verification.removeprefix("✅ "), verdict]
        return f"{mark} " + " · ".join(facts)


def without_id(problem: str, backup_id: str) -> str:
    """A problem as shown next to its backup's id: "holds a config that ..." (presentation only)."""
    return problem.removeprefix(f"backup {backup_id} ")


def _short_verification(check: BackupCheck | None) -> str:
    if check is None:
        return "not checked"
    if not check.ok:
        return "❌ damaged"
    return {"hashed": "✅ verifies (every byte hashed)", "sampled": "✅ verifies (partly hashed)"}.get(
        check.contents, "✅ structure verifies"
    )


def candidates(run: Run, needs: tuple[str, ...]) -> list[Candidate]:
    """Every backup for the picker: the good candidates first, then the pre-recovery snapshots and the
    backups that cannot fix the fault (damaged, not SUCCESS, without ``needs``, failing the checks); each
    group newest first. Verification is the manager's structural check (contents within the health
    budget), fitness its memoised check of the restored categories."""
    checked = {c.backup_id: c for c in run.manager.check_all().backups}
    checks = [c for c in needs if c in FITNESS_CHECKED]
    fixes = f"passes the {' and '.join(checks)} check{'s' if len(checks) > 1 else ''}" if checks else ""
    found = []
    for metadata in run.manager.list_backups():  # newest first
        check = checked.get(metadata.backup_id)
        problems = []
        if metadata.status is not BackupStatus.SUCCESS:
            problems.append(f"is {metadata.status.value.upper()}, not SUCCESS: it is never restored from")
        if check is not None and not check.ok:
            problems += [f"does not verify: {problem}" for problem in check.problems]
        missing = [category for category in needs if not metadata.includes(category)]
        if missing:
            problems.append(f"holds {', '.join(metadata.categories) or 'nothing'}, not {', '.join(missing)}")
        if not problems:  # the checks read the backup's files: only of one that is whole and holds them
            problems += run.manager.fitness(metadata.backup_id, needs)
        found.append(Candidate(metadata, _short_verification(check), problems, fixes))
    return [c for c in found if c.good] + [c for c in found if not c.good]
