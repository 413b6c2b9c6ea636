"""The storage boundary of the broker: what the API layer asks of an entity store, without SQL.

The API layer parses a request into an `EntityFilter` (the q tree of ngsild_broker.q, the geo-query
of ngsild_broker.geo, ids, types, attrs, scopeQ) and hands it to an `EntityStore`; each store decides
how much of the filter its database evaluates and does the rest in Python (`QNode.matches`,
`GeoQuery.matches_many`). The SQLite store (ngsild_broker/sqlite/) is the one shipped; a PostGIS store
would implement the same protocols without touching the API layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ngsild_broker.entities import LOCATION

DEFAULT_TENANT = ""
BBox = tuple[float, float, float, float]


class StoreFormatError(RuntimeError):
    """A database written in a format this broker cannot read (e.g. by a newer version)."""


@dataclass(slots=True)
class EntityFilter:
    """Which entities of one tenant a query selects; every member given must match (AND)."""

    tenant: str
    ids: list[str] | None = None
    id_pattern: str | None = None  # a regex (RE2 syntax), checked by the API layer
    types: list[str] | None = None  # expanded types, any of
    type_groups: list[list[str]] | None = None  # a type selection with `;`: OR of AND groups
    attrs: list[str] | None = None  # expanded attribute names, any of
    q: Any = None  # a parsed q tree (ngsild_broker.q.QNode)
    geo: Any = None  # a parsed geo-query (ngsild_broker.geo.GeoQuery) on `geoproperty`
    geoproperty: str = LOCATION
    scope_q: list[list[str]] | None = None  # scopeQ: OR of AND of regexes over one scope each
    expand: Callable[[str], str] = field(default=lambda name: name, repr=False)  # q's attribute names


@dataclass(slots=True)
class Stored:
    """A stored entity: its creation sequence number and its stored-form document."""

    seq: int
    doc: dict[str, Any]


@dataclass(slots=True)
class QueryResult:
    """A page of stored entities (creation order) and the total when counted."""

    docs: list[dict[str, Any]]
    total: int | None


class EntityWriter(Protocol):
    """One write transaction: everything done through it commits or rolls back together."""

    history: Any  # the temporal store recording every write, or None
    conn: Any  # the store's own transaction handle, passed through to `history` (same transaction)

    def ensure_tenant(self, tenant: str) -> None: ...
    def get_many(self, tenant: str, ids: Sequence[str]) -> dict[str, Stored]: ...
    def insert(self, tenant: str, doc: dict[str, Any], bbox: BBox | None) -> int: ...
    def replace(self, tenant: str, seq: int, doc: dict[str, Any], bbox: BBox | None,
                old: dict[str, Any]) -> None: ...
    def delete(self, tenant: str, seq: int, types: list[str]) -> None: ...


class EntityStore(Protocol):
    """Entities, tenants, hosted @contexts and subscriptions of a broker. Blocking: run in a worker thread."""

    history: Any

    def close(self) -> None: ...
    def write(self) -> AbstractContextManager[EntityWriter]: ...
    def tenant_exists(self, tenant: str) -> bool: ...
    def tenants(self) -> list[str]: ...
    def ensure_tenant(self, tenant: str) -> None: ...
    def get(self, tenant: str, entity_id: str) -> dict[str, Any] | None: ...
    def get_many(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def query(self, flt: EntityFilter, limit: int, offset: int = 0, count: bool = False) -> QueryResult:
        """A page of the matching entities in creation order, and their number when `count`."""
        ...
    def matching(self, flt: EntityFilter) -> Iterator[dict[str, Any]]:
        """Every matching entity, in creation order."""
        ...
    def type_counts(self, tenant: str) -> list[tuple[str, int]]: ...
    def load_contexts(self) -> list[tuple[str, str, str, bytes, str]]: ...
    def put_context(self, url: str, local_id: str, kind: str, body: bytes, created_at: str) -> None: ...
    def delete_context(self, url: str) -> None: ...
    def load_subscriptions(self) -> list[tuple[str, str, dict[str, Any]]]: ...
    def put_subscription(self, tenant: str, ident: str, doc: dict[str, Any]) -> None: ...
    def delete_subscription(self, tenant: str, ident: str) -> None: ...
