"""Installing the site's schedules (systemd timers or crontab lines) and reading back what is installed."""
