"""recovery_lib: the Peak_Trade disaster-recovery runbook, executable.

The runbook's snippets work with their imports changed to this package, e.g.
``from recovery_lib import health_check`` or ``from recovery_lib import RecoveryManager, BackupType``.

The names are loaded when first asked for (PEP 562): every ``python -m recovery_lib.<module>`` (the
sandbox's trading process and its stop command, the CLI, a scheduled backup) imports this package
first, and loading the whole library for it took half a second each time.
"""

import importlib
import logging
from typing import Any

# name -> the module that defines it (tests/test_architecture.py checks each one exists and has it)
PUBLIC = {
    "BackupError": "recovery_lib.errors",
    "BackupMetadata": "recovery_lib.backup.model",
    "BackupStatus": "recovery_lib.backup.model",
    "BackupType": "recovery_lib.backup.model",
    "RetentionPolicy": "recovery_lib.backup.retention",
    "health_check": "recovery_lib.checks.default",
    "HealthCheckRegistry": "recovery_lib.checks.registry",
    "HealthResult": "recovery_lib.checks.registry",
    "RecoveryError": "recovery_lib.errors",
    "SiteConfigError": "recovery_lib.errors",
    "SiteError": "recovery_lib.errors",
    "RecoveryManager": "recovery_lib.manager",
    "Site": "recovery_lib.site.config",
    "load_site": "recovery_lib.site.config",
}
__all__ = sorted(PUBLIC)
__version__ = "0.1.0"

# The library logs; the application (the `recovery` CLI, a notebook, cron) decides where records go.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'recovery_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *PUBLIC])
