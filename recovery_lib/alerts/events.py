"""What a run reports when it ends: one :class:`Outcome`, read by the notifier and the metrics writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

KINDS = ("backup", "verify", "prune", "push", "drill", "escalation")


@dataclass(frozen=True)
class Outcome:
    """How one backup, verify, prune, push, drill or escalation ended.

    ``results`` holds the library's own result objects (BackupMetadata, VerifyReport, PushReport,
    PruneResult, DrillResult, ...) for the metrics writer; people read ``summary`` and ``problems``.
    """

    kind: str  # one of KINDS
    site: str  # the site's name
    site_root: Path
    ok: bool
    status: str  # e.g. SUCCESS, PARTIAL, FAILED, recovered, not_recovered, level 3
    summary: str  # one line: what happened
    started: datetime
    finished: datetime
    subject: str = ""  # the backup id, replica name or scenario
    record: Path | None = None  # what a person opens next: the log, the record notebook
    problems: tuple[str, ...] = ()
    advice: str = ""  # what to do next; empty: the notifier says what fits the kind
    results: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def seconds(self) -> float:
        """How long the run took."""
        return (self.finished - self.started).total_seconds()
