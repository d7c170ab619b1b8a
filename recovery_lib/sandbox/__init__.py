"""Sandbox sites: realistic, disposable copies of a Peak_Trade-like system for drills and tests."""

from recovery_lib.sandbox.generate import SandboxSpec, SandboxSummary, create_sandbox, parse_size

__all__ = ["SandboxSpec", "SandboxSummary", "create_sandbox", "parse_size"]
