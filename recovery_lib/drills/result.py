"""What one drill did and how it ended: kept apart from the runner, so that reading results (the metrics
after `drill run`, the CLI) does not import the papermill and Jupyter machinery the runner needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recovery_lib.drills.injectors import Fault


@dataclass
class DrillResult:
    """What one drill did and how it ended; the notebooks in ``run_dir`` are the full record."""

    run_id: str
    scenario: str
    fault: Fault | None
    run_dir: Path
    notebooks: list[Path] = field(default_factory=list)
    triage_procedure: str | None = None
    procedures: list[str] = field(default_factory=list)
    trades_lost: int | None = None
    trades_replayed: int = 0
    outcome: str = "not_recovered"
    failure: str | None = None
    seconds: float = 0.0

    @property
    def recovered(self) -> bool:
        return self.outcome == "recovered"


__all__ = ["DrillResult"]
