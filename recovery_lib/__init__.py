"""recovery_lib: the Peak_Trade disaster-recovery runbook, executable.

The runbook's snippets work with their imports changed to this package, e.g.
``from recovery_lib import health_check`` or ``from recovery_lib import RecoveryManager, BackupType``.
"""

import logging

from recovery_lib.backup import BackupError, BackupMetadata, BackupStatus, BackupType, RetentionPolicy
from recovery_lib.checks.default import health_check
from recovery_lib.checks.registry import HealthCheckRegistry, HealthResult
from recovery_lib.errors import RecoveryError, SiteConfigError, SiteError
from recovery_lib.manager import RecoveryManager
from recovery_lib.site.config import Site, load_site

__all__ = [
    "BackupError",
    "BackupMetadata",
    "BackupStatus",
    "BackupType",
    "RecoveryManager",
    "RetentionPolicy",
    "HealthCheckRegistry",
    "HealthResult",
    "RecoveryError",
    "Site",
    "SiteConfigError",
    "SiteError",
    "health_check",
    "load_site",
]
__version__ = "0.1.0"

# The library logs; the application (the `recovery` CLI, a notebook, cron) decides where records go.
logging.getLogger(__name__).addHandler(logging.NullHandler())
