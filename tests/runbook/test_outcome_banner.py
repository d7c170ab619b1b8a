"""The green banner of a procedure that succeeded never calls a criterion passed that was not checked."""

from __future__ import annotations

from recovery_lib.runbook.steps.verdict import Outcome


def test_a_criterion_not_checked_is_named_not_called_passed() -> None:
    banner = repr(Outcome("B", "Trading is RUNNING.", ("Data files restored",)))
    assert "every success criterion passed" not in banner
    assert "every success criterion checked passed (not checked: Data files restored)" in banner
    assert banner.startswith("✅ Procedure B RECOVERED the system")


def test_when_every_criterion_was_checked_the_banner_says_so() -> None:
    banner = repr(Outcome("A", "Trading is RUNNING."))
    assert banner == "✅ Procedure A RECOVERED the system: every success criterion passed. Trading is RUNNING."
