"""recovery_lib: the Peak_Trade disaster-recovery runbook, executable.

The runbook's snippets work with their imports changed to this package, e.g.
``from recovery_lib import health_check`` or ``from recovery_lib import RecoveryManager, BackupType``.
"""

from .backup import (
    BackupError,
    BackupMetadata,
    BackupStatus,
    BackupType,
    RecoveryManager,
    RetentionPolicy,
)
from .errors import RecoveryError, SiteConfigError, SiteError
from .health import HealthCheckRegistry, HealthResult, health_check
from .site import Site, load_site

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
