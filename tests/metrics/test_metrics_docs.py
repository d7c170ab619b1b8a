"""docs/metrics.md is the spec of the metrics: every family the writer knows is documented with its
labels, and nothing else is; the alert rules read only metrics that exist, and each alert is listed
in the doc and tells a person what to do."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from recovery_lib.metrics.families import FAMILIES

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC_ROW = re.compile(r"^\| `(recovery_[a-z0-9_]+)` \| ([a-z, ]+) \|", re.MULTILINE)
ALERT_ROW = re.compile(r"^\| `([A-Za-z]+)` \|", re.MULTILINE)
METRIC_NAME = re.compile(r"\brecovery_[a-z0-9_]+\b")


def documented(text: str) -> dict[str, tuple[str, ...]]:
    """Metric name -> labels, from the doc's table rows."""
    return {name: tuple(label.strip() for label in labels.split(",")) for name, labels in METRIC_ROW.findall(text)}


def mismatches(text: str) -> list[str]:
    """How the doc and the table of families differ (empty: they agree)."""
    doc = documented(text)
    table = {family.name: family.labels for family in FAMILIES}
    problems = [f"{name}: not documented" for name in table if name not in doc]
    problems += [f"{name}: documented but never written" for name in doc if name not in table]
    problems += [
        f"{name}: labels {doc[name]} in the doc, {table[name]} written"
        for name in table
        if name in doc and doc[name] != table[name]
    ]
    return problems


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def test_the_doc_names_exactly_the_metrics_written_with_their_labels() -> None:
    assert mismatches((DOCS / "metrics.md").read_text()) == []


def test_the_doc_check_fails_on_a_missing_an_extra_or_a_mislabelled_metric() -> None:
    text = (DOCS / "metrics.md").read_text()
    first = FAMILIES[0]
    row = next(line for line in text.splitlines() if line.startswith(f"| `{first.name}` |"))
    assert mismatches(text.replace(row + "\n", "")) == [f"{first.name}: not documented"]
    extra = "| `recovery_backup_invented_seconds` | site | s | nothing |\n"
    assert mismatches(text + extra) == ["recovery_backup_invented_seconds: documented but never written"]
    relabelled = text.replace(row, row.replace("| site, category |", "| site |"))
    assert mismatches(relabelled) == [f"{first.name}: labels ('site',) in the doc, {first.labels} written"]


def test_the_rules_read_only_metrics_the_writer_writes() -> None:
    written = {family.name for family in FAMILIES}
    used = {name for rule in rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert used and used <= written, sorted(used - written)


def test_every_alert_is_in_the_doc_and_says_where_and_what_to_do() -> None:
    listed = ALERT_ROW.findall((DOCS / "metrics.md").read_text().split("## Alert rules", 1)[1])
    assert listed == [rule["alert"] for rule in rules()]
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert "{{ $labels.site }}" in annotations["summary"], rule["alert"]
        assert "{{ $labels.site }}" in annotations["description"], rule["alert"]
        assert "`recovery " in annotations["description"], f"{rule['alert']}: which command to run?"
