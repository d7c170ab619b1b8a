"""Prometheus metrics in the textfile-collector format (``[metrics] textfile_dir``): what the last
backups, verifications, pushes and drills did, for dashboards and the alert rules in docs/alerts.yml."""
