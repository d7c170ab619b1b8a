"""Which disaster is under way: the runbook's four scenario detections, and the procedure to run.

Scenario 1 (config corruption) -> Procedure A; 2 (data loss) -> B; 3 (complete system failure:
config and data, or state gone too) -> C; 4 (backup system failure) -> D. When several hold, the
widest wins (3 over 1 and 2); a backup failure next to a site failure is reported as evidence and
raises the escalation, because the site's procedure comes first; Procedure D then follows it
(``Triage.procedures``), so the incident ends with the backup system whole too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recovery_lib.catalog import notebook, scenario
from recovery_lib.checks.default import health_check
from recovery_lib.checks.registry import HealthResult
from recovery_lib.site.config import Site

NOTHING = "No disaster detected"


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
        ]
        if self.incident_id:
            lines.append(
                f"Incident id: {self.incident_id}. The notebooks you open next on this site join it by themselves "
                "(leave incident_id empty); elsewhere, pass it as incident_id."
            )
        return "\n".join(lines)


def missing_paths(site: Site) -> list[str]:
    """Critical files (runbook Scenario 2) and declared state paths that do not exist."""
    missing = [p for p in site.critical if not site.path(p.rstrip("/")).exists()]
    for top in site.state_paths:
        path = site.path(top)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            missing.append(top + "/")
    return missing


def triage(site: Site, results: dict[str, HealthResult] | None = None) -> Triage:
    """Run the detections of scenarios 1-4 on ``site`` (health results may be passed in)."""
    results = results if results is not None else health_check.run_all(site)
    failed = [name for name, result in results.items() if not result.healthy]
    missing = missing_paths(site)
    config_bad = "config" in failed
    # Positions that disagree with a reachable exchange are a data fault too (a row nobody traded).
    disagrees = "reconciliation" in failed and "exchange" not in failed
    data_bad = "data" in failed or disagrees or any(p in site.critical for p in missing)
    state_gone = any(p.rstrip("/") in site.state_paths for p in missing)
    backups_bad = "backups" in failed
    evidence = {name: {"healthy": r.healthy, "message": r.message} for name, r in results.items()}
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
    return Triage(found, procedure, failed, missing, evidence, procedures)
