"""Restore: plan a restore from a backup, check what must hold, apply it, and the journal that makes it
crash-safe.

- :mod:`.plan`: what a restore would do, per file, and what it would lose (touches nothing)
- :mod:`.preflight`: the refusals (nothing chosen, backup not verified, system running, site changed)
- :mod:`.prerecovery`: the pre-recovery backup of the current state, reused while the site is unchanged
- :mod:`.apply`: stage, verify, swap in, verify again
- :mod:`.journal`: the journal that lets the next command finish or roll back an interrupted restore
"""
