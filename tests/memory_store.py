"""An EntityStore in Python dicts, with no SQL: the second store the storage boundary is there for.

Every filter is evaluated with the parsed trees' own matchers (`QNode.matches`, `GeoQuery.matches_entity`,
scope.matches), so answers through it are the reference semantics the SQLite translation must agree with.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ngsild_broker import scope
from ngsild_broker.regex import compile_pattern
from ngsild_broker.storage import DEFAULT_TENANT, BBox, EntityFilter, QueryResult, Stored


class MemoryWriter:
    """Changes staged on a copy, applied by the store on commit."""

    def __init__(self, entities: dict[str, dict[str, Stored]], tenants: set[str], next_seq: int) -> None:
        self.history: Any = None
        self.conn: Any = None
        self.entities = {t: dict(by_id) for t, by_id in entities.items()}
        self.tenants = set(tenants)
        self.next_seq = next_seq

    def ensure_tenant(self, tenant: str) -> None:
        self.tenants.add(tenant)

    def get_many(self, tenant: str, ids: Sequence[str]) -> dict[str, Stored]:
        by_id = self.entities.get(tenant, {})
        return {i: by_id[i] for i in ids if i in by_id}

    def insert(self, tenant: str, doc: dict[str, Any], bbox: BBox | None) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.entities.setdefault(tenant, {})[doc["id"]] = Stored(seq, doc)
        return seq

    def replace(self, tenant: str, seq: int, doc: dict[str, Any], bbox: BBox | None,
                old: dict[str, Any]) -> None:
        by_id = self.entities[tenant]
        by_id.pop(old["id"], None)
        by_id[doc["id"]] = Stored(seq, doc)

    def delete(self, tenant: str, seq: int, types: list[str]) -> None:
        by_id = self.entities.get(tenant, {})
        for ident, stored in list(by_id.items()):
            if stored.seq == seq:
                del by_id[ident]


def selects(flt: EntityFilter, doc: dict[str, Any]) -> bool:
    """Whether an entity matches every part of a filter."""
    types = set(doc["type"])
    return ((not flt.ids or doc["id"] in flt.ids)
            and (flt.id_pattern is None or compile_pattern(flt.id_pattern).search(doc["id"]) is not None)
            and (not flt.types or bool(types & set(flt.types)))
            and (not flt.type_groups or any(set(g) <= types for g in flt.type_groups))
            and (not flt.attrs or any(a in doc for a in flt.attrs))
            and (not flt.scope_q or scope.matches(doc, flt.scope_q))
            and (flt.q is None or flt.q.matches(doc, flt.expand))
            and (flt.geo is None or flt.geo.matches_entity(doc, lambda _: flt.geoproperty)))


class MemoryStore:
    """Entities, tenants, contexts and subscriptions in dicts (one process, no persistence)."""

    def __init__(self) -> None:
        self.history: Any = None
        self.entities: dict[str, dict[str, Stored]] = {}
        self._tenants = {DEFAULT_TENANT}
        self._next_seq = 1
        self._contexts: dict[str, tuple[str, str, str, bytes, str]] = {}
        self._subscriptions: dict[tuple[str, str], dict[str, Any]] = {}

    def close(self) -> None:
        pass

    @contextmanager
    def write(self) -> Iterator[MemoryWriter]:
        writer = MemoryWriter(self.entities, self._tenants, self._next_seq)
        yield writer  # an exception leaves the store as it was: nothing below runs
        self.entities, self._tenants, self._next_seq = writer.entities, writer.tenants, writer.next_seq

    def tenant_exists(self, tenant: str) -> bool:
        return tenant in self._tenants

    def tenants(self) -> list[str]:
        return sorted(t for t in self._tenants if t)

    def ensure_tenant(self, tenant: str) -> None:
        self._tenants.add(tenant)

    def get(self, tenant: str, entity_id: str) -> dict[str, Any] | None:
        stored = self.entities.get(tenant, {}).get(entity_id)
        return stored.doc if stored else None

    def get_many(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        by_id = self.entities.get(tenant, {})
        return {i: by_id[i].doc for i in ids if i in by_id}

    def matching(self, flt: EntityFilter) -> Iterator[dict[str, Any]]:
        ordered = sorted(self.entities.get(flt.tenant, {}).values(), key=lambda s: s.seq)
        return (s.doc for s in ordered if selects(flt, s.doc))

    def query(self, flt: EntityFilter, limit: int, offset: int = 0, count: bool = False) -> QueryResult:
        found = list(self.matching(flt))
        return QueryResult(found[offset:offset + limit], len(found) if count else None)

    def type_counts(self, tenant: str) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for stored in self.entities.get(tenant, {}).values():
            for t in stored.doc["type"]:
                counts[t] = counts.get(t, 0) + 1
        return sorted(counts.items())

    def load_contexts(self) -> list[tuple[str, str, str, bytes, str]]:
        return list(self._contexts.values())

    def put_context(self, url: str, local_id: str, kind: str, body: bytes, created_at: str) -> None:
        self._contexts[url] = (url, local_id, kind, body, created_at)

    def delete_context(self, url: str) -> None:
        self._contexts.pop(url, None)

    def load_subscriptions(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(t, i, doc) for (t, i), doc in self._subscriptions.items()]

    def put_subscription(self, tenant: str, ident: str, doc: dict[str, Any]) -> None:
        self._subscriptions[(tenant, ident)] = doc

    def delete_subscription(self, tenant: str, ident: str) -> None:
        self._subscriptions.pop((tenant, ident), None)
