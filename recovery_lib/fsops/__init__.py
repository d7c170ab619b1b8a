"""Durable file primitives: atomic write, copy with hashing, flock, path containment."""
