"""The site: recovery.toml and its model, process control, file integrity checks."""
