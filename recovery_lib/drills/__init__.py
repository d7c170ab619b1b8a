"""Drills: break a sandbox on purpose, recover it with the notebooks, keep the evidence."""
