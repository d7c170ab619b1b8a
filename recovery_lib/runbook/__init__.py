"""The runbook: catalog, run context, approvals, records, criteria, escalation, and the steps of
procedures A-D, V and P."""
