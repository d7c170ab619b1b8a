"""The runbook's steps, one module per concern; ``recovery_lib.runbook.procedures`` gathers them for the notebooks."""
