"""Success criteria as a checklist: one pass/fail row per criterion, with the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Checklist:
    """The runbook's "Success Criteria" of a procedure, evaluated."""

    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def check(self, criterion: str, passed: bool | None, evidence: str = "") -> Checklist:
        """Add a row; ``passed=None`` means "not evaluated here" (shown, not counted as passing)."""
        self.rows.append({"criterion": criterion, "passed": passed, "evidence": evidence})
        return self

    @property
    def all_passed(self) -> bool:
        """No row failed and at least one passed; rows not evaluated here are shown, not counted."""
        return not any(row["passed"] is False for row in self.rows) and any(row["passed"] for row in self.rows)

    def frame(self) -> Any:
        """A DataFrame with a ✅ / ❌ / ⚪ column, readable in JupyterLab and in HTML."""
        import pandas as pd

        marks = {True: "✅ pass", False: "❌ FAIL", None: "⚪ not checked"}
        return pd.DataFrame(
            [
                # The mark is in the first column; evidence quoted from a result must not repeat it.
                {"": marks[row["passed"]], "criterion": row["criterion"], "evidence": _unmarked(row["evidence"])}
                for row in self.rows
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "all_passed": self.all_passed, "rows": self.rows}


def _unmarked(evidence: object) -> str:
    return str(evidence).lstrip("✅❌⚪⛔ ")
