"""Sync engine: state, outbox, quarantine and the pipeline that runs one source end to end."""
