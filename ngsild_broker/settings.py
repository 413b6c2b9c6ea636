"""Settings of the embedded broker."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class BrokerSettings(BaseModel):
    """Where the broker listens, where it stores, and its limits."""

    host: str = "127.0.0.1"
    port: int = Field(default=1026, ge=0, le=65535)
    # None keeps everything in memory (lost on exit); a path gives a WAL-mode SQLite file.
    db_path: Path | None = None
    # Air-gapped use: files named after a context URL (see contexts.OfflineContexts).
    contexts_dir: Path | None = None
    # Explicit URL -> local file mapping, checked before contexts_dir and the network.
    context_files: dict[str, Path] = Field(default_factory=dict)
    max_payload: int = Field(default=1024 * 1024, gt=0)
    context_timeout: float = Field(default=5.0, gt=0)
    context_attempts: int = Field(default=3, ge=1)
    max_context_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_context_downloads: int = Field(default=4, gt=0)
    default_limit: int = Field(default=20, ge=1, le=1000)
    max_limit: int = 1000
