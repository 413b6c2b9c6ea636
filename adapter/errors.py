"""The adapter's error tree, classed by what the caller must do.

    AdapterError
    ├── FatalError            stop: configuration or authorisation is wrong; retrying cannot help
    │   ├── ConfigError
    │   └── AuthError
    ├── TransientError        retry later: the peer is down, slow or overloaded
    │   ├── SourceUnavailableError
    │   └── BrokerUnavailableError
    └── RecordError           quarantine this one record/entity; everything else goes on
        ├── SourceFormatError     a payload or record that cannot be read
        ├── MappingError          a record that cannot become a valid entity
        ├── GeometryError         a geometry that is invalid, out of area or in an unknown CRS
        └── EntityRejectedError   the broker refused this entity

Callers branch on the class, never on the message. Every error keeps its context as attributes
(source, record, entity id, reason) so that quarantine and logs can name them.
"""

from __future__ import annotations

from typing import Any


class AdapterError(Exception):
    """Base of every error the adapter raises on purpose."""

    exit_code = 1

    def __init__(self, reason: str, *, source: str | None = None, record: str | None = None,
                 entity_id: str | None = None, **context: Any) -> None:
        self.reason = reason
        self.source = source
        self.record = record
        self.entity_id = entity_id
        self.context = context
        super().__init__(self._render())

    def _render(self) -> str:
        where = [f"{k}={v}" for k, v in (("source", self.source), ("record", self.record),
                                          ("entity", self.entity_id)) if v is not None]
        return f"{' '.join(where)}: {self.reason}" if where else self.reason


class FatalError(AdapterError):
    """Stop: retrying cannot help until a human changes something."""

    exit_code = 2


class ConfigError(FatalError):
    """The configuration or settings are invalid."""


class AuthError(FatalError):
    """Credentials are missing or refused."""

    exit_code = 3


class TransientError(AdapterError):
    """Retry later: the peer is unreachable, slow or overloaded."""

    exit_code = 4


class SourceUnavailableError(TransientError):
    """A source could not be fetched (network, timeout, 5xx)."""


class BrokerUnavailableError(TransientError):
    """The broker could not be reached or answered 5xx."""


class RecordError(AdapterError):
    """Quarantine this record or entity; the rest of the sync goes on."""

    exit_code = 5


class SourceFormatError(RecordError):
    """A payload or record that cannot be read (HTML instead of JSON, truncated, missing keys)."""


class MappingError(RecordError):
    """A record that cannot become a valid entity."""


class GeometryError(MappingError):
    """A geometry that is invalid, outside the expected area or in an unknown CRS."""


class EntityRejectedError(RecordError):
    """The broker refused this entity (4xx for the entity itself)."""
