"""The SQLite implementation of the broker's storage (ngsild_broker.storage): the only place with SQL,
beside the temporal store (ngsild_broker/temporal_store.py)."""

from ngsild_broker.sqlite.store import SqliteStore, Writer

__all__ = ["SqliteStore", "Writer"]
