"""Entity writes as transactions (single and batch), with the ETSI / Orion-LD experimental-mode results.

Every function is blocking (runs in a worker thread), does all its reads and writes in one
serialised SQLite transaction, and returns the `Change`s the subscription manager is told about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from ngsild_broker.entities import EntityInput, location_bbox, merge_attributes, new_document, now_iso, stamp
from ngsild_broker.errors import NgsiError, already_exists, bad_request, not_found
from ngsild_broker.store import Store, Stored, Writer


class Change(NamedTuple):
    """One committed entity change in stored form (before=None: created, after=None: deleted)."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class BatchOutcome:
    """Per-entity results of a batch operation."""

    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiError]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seen: set[str] = set()
        self._created: set[str] = set()

    def ok(self, entity_id: str, created: bool = False) -> None:
        """Record a success once per id."""
        if entity_id not in self._seen:
            self._seen.add(entity_id)
            self.success.append(entity_id)
        if created and entity_id not in self._created:
            self._created.add(entity_id)
            self.created.append(entity_id)

    def body(self) -> dict[str, Any]:
        """The 207 BatchOperationResult body."""
        return {"success": self.success,
                "errors": [{"entityId": ident, "error": err.item()} for ident, err in self.errors]}


Item = EntityInput | tuple[str, NgsiError]


class _Batch:
    """Entities of one tenant inside one transaction, with in-request updates visible."""

    def __init__(self, tx: Writer, tenant: str, ids: list[str]) -> None:
        self.tx = tx
        self.tenant = tenant
        found = tx.get_many(tenant, ids)
        self.current: dict[str, Stored | None] = dict(found)
        self.before: dict[str, dict[str, Any] | None] = {i: s.doc for i, s in found.items()}
        self.touched: dict[str, None] = {}  # insertion-ordered set

    def get(self, entity_id: str) -> Stored | None:
        return self.current.get(entity_id)

    def _touch(self, entity_id: str) -> None:
        self.before.setdefault(entity_id, None)
        self.touched[entity_id] = None

    def _record(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        if self.tx.history is not None:  # the temporal representation (TRoE): every write is history
            self.tx.history.record(self.tx.conn, self.tenant, before, after)

    def insert(self, doc: dict[str, Any]) -> None:
        self._touch(doc["id"])
        self._record(None, doc)
        seq = self.tx.insert(self.tenant, doc, location_bbox(doc))
        self.current[doc["id"]] = Stored(seq, doc)

    def replace(self, stored: Stored, doc: dict[str, Any]) -> None:
        self._touch(doc["id"])
        self._record(stored.doc, doc)
        self.tx.replace(self.tenant, stored.seq, doc, location_bbox(doc), stored.doc)
        self.current[doc["id"]] = Stored(stored.seq, doc)

    def delete(self, stored: Stored) -> None:
        self._touch(stored.doc["id"])
        self._record(stored.doc, None)
        self.tx.delete(self.tenant, stored.seq, stored.doc["type"])
        self.current[stored.doc["id"]] = None

    def changes(self) -> list[Change]:
        out = []
        for ident in self.touched:
            after = self.current.get(ident)
            out.append(Change(self.before.get(ident), after.doc if after else None))
        return out


def _type_check(stored: Stored, entity: EntityInput) -> None:
    if entity.types is not None and set(entity.types) != set(stored.doc["type"]):
        raise bad_request("Invalid Entity", "the Entity Type cannot be altered")


def batch_create(store: Store, tenant: str, items: list[Item]) -> BatchOutcome:
    """POST /entityOperations/create (and, with one item, POST /entities)."""
    out = BatchOutcome()
    now = now_iso()
    with store.write() as tx:
        tx.ensure_tenant(tenant)
        batch = _Batch(tx, tenant, [i.id for i in items if isinstance(i, EntityInput)])
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, EntityInput):
                out.errors.append(item)
                continue
            if item.id in seen:
                out.errors.append((item.id, already_exists("Entity already exists",
                                                           "Created as part of the same request")))
                continue
            if batch.get(item.id) is not None:
                out.errors.append((item.id, already_exists("Entity already exists",
                                                           "Cannot create an existing entity")))
                continue
            seen.add(item.id)
            batch.insert(new_document(item, now))
            out.ok(item.id, created=True)
        out.changes = batch.changes()
    return out


def batch_upsert(store: Store, tenant: str, items: list[Item], update: bool) -> BatchOutcome:
    """POST /entityOperations/upsert: replace (default) or update existing entities, create others."""
    out = BatchOutcome()
    now = now_iso()
    with store.write() as tx:
        tx.ensure_tenant(tenant)
        batch = _Batch(tx, tenant, [i.id for i in items if isinstance(i, EntityInput)])
        for item in items:
            if not isinstance(item, EntityInput):
                out.errors.append(item)
                continue
            stored = batch.get(item.id)
            if stored is None:
                batch.insert(new_document(item, now))
                out.ok(item.id, created=True)
                continue
            try:
                _type_check(stored, item)
            except NgsiError as err:
                out.errors.append((item.id, err))
                continue
            if update:
                doc, _, _ = merge_attributes(stored.doc, item.attrs, now)
                doc["modifiedAt"] = now
            else:
                doc = new_document(EntityInput(item.id, stored.doc["type"], item.attrs), now,
                                   created=stored.doc["createdAt"])
            batch.replace(stored, doc)
            out.ok(item.id)
        out.changes = batch.changes()
    return out


def batch_update(store: Store, tenant: str, items: list[Item], no_overwrite: bool) -> BatchOutcome:
    """POST /entityOperations/update: append attributes to existing entities."""
    out = BatchOutcome()
    now = now_iso()
    with store.write() as tx:
        batch = _Batch(tx, tenant, [i.id for i in items if isinstance(i, EntityInput)])
        for item in items:
            if not isinstance(item, EntityInput):
                out.errors.append(item)
                continue
            stored = batch.get(item.id)
            if stored is None:
                out.errors.append((item.id, not_found("Entity not found",
                                                      "Cannot update a non-existing entity")))
                continue
            doc, _, _ = merge_attributes(stored.doc, item.attrs, now, overwrite=not no_overwrite)
            doc["modifiedAt"] = now
            batch.replace(stored, doc)
            out.ok(item.id)
        out.changes = batch.changes()
    return out


def batch_delete(store: Store, tenant: str, ids: list[str]) -> BatchOutcome:
    """POST /entityOperations/delete: the same id twice is fine."""
    out = BatchOutcome()
    with store.write() as tx:
        batch = _Batch(tx, tenant, ids)
        for entity_id in ids:
            stored = batch.get(entity_id)
            if stored is None:
                if entity_id in batch.touched:
                    continue
                out.errors.append((entity_id, not_found("Entity not found",
                                                        "Cannot delete entities that do not exist")))
                continue
            batch.delete(stored)
            out.ok(entity_id)
        out.changes = batch.changes()
    return out


def _on_entity(fn: Any) -> Any:
    """Run `fn(batch, stored, ...)` in one transaction on an existing entity (404 when missing)."""
    def run(store: Store, tenant: str, entity_id: str, *args: Any, **kwargs: Any) -> Any:
        with store.write() as tx:
            batch = _Batch(tx, tenant, [entity_id])
            stored = batch.get(entity_id)
            if stored is None:
                raise not_found("Entity does not exist", entity_id)
            result = fn(batch, stored, *args, **kwargs)
            changes = batch.changes()
        return result, (changes[0] if changes else None)
    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


@_on_entity
def append_attrs(batch: _Batch, stored: Stored, attrs: dict[str, dict[str, Any]],
                 no_overwrite: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """POST /entities/{id}/attrs."""
    doc, updated, skipped = merge_attributes(stored.doc, attrs, now_iso(), overwrite=not no_overwrite)
    if updated:
        batch.replace(stored, doc)
    return updated, skipped


@_on_entity
def update_attrs(batch: _Batch, stored: Stored,
                 attrs: dict[str, dict[str, Any]]) -> tuple[list[str], list[tuple[str, str]]]:
    """PATCH /entities/{id}/attrs: only existing attributes are written."""
    doc, updated, skipped = merge_attributes(stored.doc, attrs, now_iso(), only_existing=True)
    if updated:
        batch.replace(stored, doc)
    return updated, skipped


@_on_entity
def patch_attr(batch: _Batch, stored: Stored, iri: str, fragment: dict[str, Any]) -> None:
    """PATCH /entities/{id}/attrs/{attr}: the given members replace the attribute's ones."""
    old = stored.doc.get(iri)
    if old is None:
        raise not_found("Entity/Attribute not found", iri)
    now = now_iso()
    merged = {**orjson.loads(orjson.dumps(old)), **fragment}  # stamp() writes in place
    if fragment.get("type", old.get("type")) != old.get("type"):
        merged = dict(fragment)
    doc = dict(stored.doc)
    doc[iri] = stamp(merged, now, old.get("createdAt"))
    doc["modifiedAt"] = now
    batch.replace(stored, doc)


@_on_entity
def replace_attr(batch: _Batch, stored: Stored, iri: str, attr: dict[str, Any]) -> None:
    """PUT /entities/{id}/attrs/{attr}."""
    old = stored.doc.get(iri)
    if old is None:
        raise not_found("Entity/Attribute not found", iri)
    now = now_iso()
    doc = dict(stored.doc)
    doc[iri] = stamp(attr, now, old.get("createdAt"))
    doc["modifiedAt"] = now
    batch.replace(stored, doc)


@_on_entity
def delete_attr(batch: _Batch, stored: Stored, iri: str) -> None:
    """DELETE /entities/{id}/attrs/{attr}."""
    if iri not in stored.doc or iri in ("id", "type", "createdAt", "modifiedAt"):
        raise not_found("Entity/Attribute not found", iri)
    doc = {k: v for k, v in stored.doc.items() if k != iri}
    doc["modifiedAt"] = now_iso()
    batch.replace(stored, doc)


@_on_entity
def merge_entity(batch: _Batch, stored: Stored, entity: EntityInput, deleted: list[str]) -> None:
    """PATCH /entities/{id} (merge-patch): attributes merged member-wise, `deleted` removed."""
    now = now_iso()
    doc = {k: v for k, v in stored.doc.items() if k not in deleted}
    for iri, attr in entity.attrs.items():
        old = doc.get(iri)
        merged = ({**orjson.loads(orjson.dumps(old)), **attr} if old and old.get("type") == attr.get("type")
                  else attr)  # stamp() writes in place: never into the stored `before` document
        doc[iri] = stamp(merged, now, old.get("createdAt") if old else None)
    if entity.types:
        doc["type"] = list(dict.fromkeys([*stored.doc["type"], *entity.types]))
    doc["modifiedAt"] = now
    batch.replace(stored, doc)


@_on_entity
def replace_entity(batch: _Batch, stored: Stored, entity: EntityInput) -> None:
    """PUT /entities/{id}: the whole entity is replaced, createdAt kept."""
    types = entity.types or stored.doc["type"]
    batch.replace(stored, new_document(EntityInput(entity.id, types, entity.attrs), now_iso(),
                                       created=stored.doc["createdAt"]))


def delete_entity(store: Store, tenant: str, entity_id: str) -> Change:
    """DELETE /entities/{id}."""
    outcome = batch_delete(store, tenant, [entity_id])
    if outcome.errors:
        raise not_found("Entity not found", entity_id)
    return outcome.changes[0]
