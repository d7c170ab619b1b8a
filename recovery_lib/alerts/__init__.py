"""Telling someone: Apprise notifications and healthchecks-style pings for backups, pushes, drills and
escalations (``[alerts]`` in recovery.toml). Never raises into the run it reports on."""
