"""Restore: plan a restore from a backup, apply it, and the journal that makes it crash-safe."""
