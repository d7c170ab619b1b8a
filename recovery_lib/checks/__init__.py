"""Health checks: the registry, the built-in checks, the trading gate and triage."""
