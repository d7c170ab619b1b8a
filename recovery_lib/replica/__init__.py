"""Replicas: copies of the backups off the host (docs/replica-format.md)."""
