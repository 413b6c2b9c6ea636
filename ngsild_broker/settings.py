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
    # Directories laid out like the Smart Data Models repositories (`<dir>/<subject>/context.jsonld`,
    # e.g. a copy of ../shared/smart-data-models): the official subject context URLs are read
    # from there, so entities naming them need no network.
    reference_dirs: list[Path] = Field(default_factory=list)
    max_payload: int = Field(default=1024 * 1024, gt=0)
    context_timeout: float = Field(default=5.0, gt=0)
    context_attempts: int = Field(default=3, ge=1)
    max_context_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_context_downloads: int = Field(default=4, gt=0)
    default_limit: int = Field(default=20, ge=1, le=1000)
    max_limit: int = 1000
    # The temporal API (attribute history): off records nothing and answers 501 on /temporal.
    temporal: bool = True
    # Instances older than this many days are pruned (by observedAt, else recording time); None keeps all.
    temporal_retention_days: float | None = Field(default=None, gt=0)
    # Instances per attribute in one temporal answer (NGSI-LD 6.3.10 pagination, 206 + Content-Range).
    temporal_limit: int = Field(default=20, ge=1, le=100_000)
