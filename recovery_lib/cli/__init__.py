"""The ``recovery`` command: one module per command group."""
