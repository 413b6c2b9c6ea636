"""Entity writes as transactions (single and batch), with the ETSI / Orion-LD experimental-mode results.

Every function is blocking (runs in a worker thread), does all its reads and writes in one
serialised SQLite transaction, and returns the `Change`s the subscription manager is told about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from ngsild_broker.entities import EntityInput, location_bbox, merge_attributes, new_document, now_iso, stamp
from ngsild_broker.errors import NgsiError, already_exists, bad_request, not_found
from ngsild_broker.instances import dataset_of, find, instances, remove, replace
from ngsild_broker.storage import EntityStore, EntityWriter, Stored


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

    def __init__(self, tx: EntityWriter, tenant: str, ids: list[str]) -> None:
        self.tx = tx
        self.tenant = tenant
        found = tx.get_many(tenant, ids)
        if tx.history is not None:
            tx.history.prefetch(tx.conn, tenant, ids)
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


def with_types(old: list[str], new: list[str] | None) -> list[str]:
    """An entity's types after an update: types are added, never removed (GS CIM 009 4.16)."""
    return list(dict.fromkeys([*old, *(new or ())]))


def batch_create(store: EntityStore, tenant: str, items: list[Item]) -> BatchOutcome:
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


def batch_upsert(store: EntityStore, tenant: str, items: list[Item], update: bool) -> BatchOutcome:
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
            if update:
                doc, _, _ = merge_attributes(stored.doc, item.attrs, now)
                doc["type"] = with_types(stored.doc["type"], item.types)
                doc["modifiedAt"] = now
            else:  # the entity is replaced, its types too (multi-typed entities, GS CIM 009 4.16)
                doc = new_document(EntityInput(item.id, item.types or stored.doc["type"], item.attrs), now,
                                   created=stored.doc["createdAt"])
            batch.replace(stored, doc)
            out.ok(item.id)
        out.changes = batch.changes()
    return out


def batch_update(store: EntityStore, tenant: str, items: list[Item], no_overwrite: bool) -> BatchOutcome:
    """POST /entityOperations/update: append attributes to existing entities."""

    def update(batch: _Batch, stored: Stored, item: EntityInput, now: str) -> NgsiError | None:
        doc, _, skipped = merge_attributes(stored.doc, item.attrs, now, overwrite=not no_overwrite)
        doc["type"] = with_types(stored.doc["type"], item.types)
        doc["modifiedAt"] = now
        batch.replace(stored, doc)
        if skipped:  # noOverwrite kept some attributes: a partial success is a 207 (ETSI 005_02)
            return bad_request("Attributes not overwritten", ", ".join(sorted({iri for iri, _ in skipped})))
        return None

    return _on_existing(store, tenant, items, "update", update)


def _on_existing(store: EntityStore, tenant: str, items: list[Item], verb: str,
                 change: Callable[[_Batch, Stored, EntityInput, str], NgsiError | None]) -> BatchOutcome:
    """`change` applied to each existing entity of a batch, in one transaction; an item that is no
    entity, a missing entity or the error `change` returns is that entity's error in the 207."""
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
                out.errors.append((item.id, not_found("Entity not found", f"Cannot {verb} a non-existing entity")))
                continue
            error = change(batch, stored, item, now)
            if error is None:
                out.ok(item.id)
            else:
                out.errors.append((item.id, error))
        out.changes = batch.changes()
    return out


def batch_delete(store: EntityStore, tenant: str, ids: list[str]) -> BatchOutcome:
    """POST /entityOperations/delete: the same id twice is fine."""
    out = BatchOutcome()
    with store.write() as tx:
        batch = _Batch(tx, tenant, ids)
        for entity_id in ids:
            stored = batch.get(entity_id)
            if stored is None:  # also the second time an id is given (ETSI 006_04_01)
                out.errors.append((entity_id, not_found("Entity not found",
                                                        "Cannot delete entities that do not exist")))
                continue
            batch.delete(stored)
            out.ok(entity_id)
        out.changes = batch.changes()
    return out


def _on_entity(fn: Any) -> Any:
    """Run `fn(batch, stored, ...)` in one transaction on an existing entity (404 when missing)."""
    def run(store: EntityStore, tenant: str, entity_id: str, *args: Any, **kwargs: Any) -> Any:
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
                 no_overwrite: bool, types: list[str] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """POST /entities/{id}/attrs (a `type` member adds types)."""
    doc, updated, skipped = merge_attributes(stored.doc, attrs, now_iso(), overwrite=not no_overwrite)
    doc["type"] = with_types(stored.doc["type"], types)
    if updated or doc["type"] != stored.doc["type"]:
        batch.replace(stored, doc)
    return updated, skipped


Deletion = tuple[str, "str | None"]  # (attribute IRI, datasetId): an NGSI-LD Null in the payload


def _without(doc: dict[str, Any], deletions: list[Deletion]) -> tuple[dict[str, Any], list[str]]:
    """`doc` without the instances `deletions` name; the IRIs actually deleted."""
    out = dict(doc)
    done: list[str] = []
    for iri, dataset_id in deletions:
        if iri not in out:
            continue
        value, found = remove(out[iri], dataset_id)
        if not found:
            continue
        if value is None:
            del out[iri]
        else:
            out[iri] = value
        done.append(iri)
    return out, done


@_on_entity
def update_attrs(batch: _Batch, stored: Stored, attrs: dict[str, Any],
                 deletions: list[Deletion] | None = None,
                 types: list[str] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """PATCH /entities/{id}/attrs: only existing attributes are written; NGSI-LD Nulls delete; a
    `type` member adds types."""
    now = now_iso()
    base, deleted = _without(stored.doc, deletions or [])
    doc, updated, skipped = merge_attributes(base, attrs, now, only_existing=True)
    doc["type"] = with_types(stored.doc["type"], types)
    for iri, _ in deletions or []:
        if iri not in deleted:
            skipped.append((iri, f"attribute doesn't exist: {iri}"))
    if updated or deleted or doc["type"] != stored.doc["type"]:
        doc["modifiedAt"] = now
        batch.replace(stored, doc)
    return [*updated, *deleted], skipped


def _copy(attr: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(attr))  # stamp() writes in place: never into the stored document


@_on_entity
def patch_attr(batch: _Batch, stored: Stored, iri: str, fragment: dict[str, Any] | None,
               dataset_id: str | None = None) -> None:
    """PATCH /entities/{id}/attrs/{attr}: the given members replace the instance's ones (matched by
    the fragment's datasetId); a None fragment (NGSI-LD Null) deletes the instance."""
    old = stored.doc.get(iri)
    prior = find(old, fragment.get("datasetId") if fragment is not None else dataset_id)
    if prior is None:
        raise not_found("Entity/Attribute not found", iri)
    now = now_iso()
    doc = dict(stored.doc)
    if fragment is None:
        value, _ = remove(old, dataset_of(prior))
        if value is None:
            del doc[iri]
        else:
            doc[iri] = value
    else:
        if fragment.get("type", prior.get("type")) != prior.get("type"):  # ETSI 012_02_03
            raise bad_request("Attribute type mismatch",
                              f"{iri} is a {prior.get('type')}; a partial update cannot change it")
        merged = {**_copy(prior), **fragment}
        doc[iri] = replace(old, stamp(merged, now, prior.get("createdAt")))
    doc["modifiedAt"] = now
    batch.replace(stored, doc)


@_on_entity
def replace_attr(batch: _Batch, stored: Stored, iri: str, attr: dict[str, Any]) -> None:
    """PUT /entities/{id}/attrs/{attr}: the instance with the payload's datasetId is replaced."""
    old = stored.doc.get(iri)
    prior = find(old, attr.get("datasetId")) if isinstance(attr, dict) else None
    if prior is None:
        raise not_found("Entity/Attribute not found", iri)
    now = now_iso()
    doc = dict(stored.doc)
    doc[iri] = replace(old, stamp(attr, now, prior.get("createdAt")))
    doc["modifiedAt"] = now
    batch.replace(stored, doc)


@_on_entity
def delete_attr(batch: _Batch, stored: Stored, iri: str, dataset_id: str | None = None,
                delete_all: bool = False) -> None:
    """DELETE /entities/{id}/attrs/{attr}: the default instance, the `datasetId` one, or all."""
    if iri not in stored.doc or iri in ("id", "type", "createdAt", "modifiedAt"):
        raise not_found("Entity/Attribute not found", iri)
    doc = dict(stored.doc)
    if delete_all or iri == "scope":
        del doc[iri]
    else:
        value, found = remove(doc[iri], dataset_id)
        if not found:
            raise not_found("Entity/Attribute not found", f"{iri} (datasetId {dataset_id or '@none'})")
        if value is None:
            del doc[iri]
        else:
            doc[iri] = value
    doc["modifiedAt"] = now_iso()
    batch.replace(stored, doc)


@_on_entity
def merge_entity(batch: _Batch, stored: Stored, entity: EntityInput, deletions: list[Deletion]) -> None:
    """PATCH /entities/{id} (merge-patch): instances merged member-wise, NGSI-LD Nulls deleted."""
    batch.replace(stored, merged_document(stored.doc, entity, deletions, now_iso()))


def batch_merge(store: EntityStore, tenant: str, items: list[Item]) -> BatchOutcome:
    """POST /entityOperations/merge: a merge-patch of each existing entity (GS CIM 009 5.6.20)."""

    def merge(batch: _Batch, stored: Stored, item: EntityInput, now: str) -> NgsiError | None:
        deletions = [(iri, d) for iri, d in item.deletions] if item.deletions else []
        batch.replace(stored, merged_document(stored.doc, item, deletions, now))
        return None

    return _on_existing(store, tenant, items, "merge", merge)


def merged_document(old: dict[str, Any], entity: EntityInput, deletions: list[Deletion],
                    now: str) -> dict[str, Any]:
    """`old` merge-patched with `entity`: instances merged member-wise, `deletions` removed."""
    stored = Stored(0, old)
    doc, _ = _without(stored.doc, deletions)
    for iri, attr in entity.attrs.items():
        if iri == "scope":
            doc[iri] = attr
            continue
        value = doc.get(iri)
        for item in instances(attr):
            prior = find(value, dataset_of(item))
            merged = {**_copy(prior), **item} if prior and prior.get("type") == item.get("type") else item
            value = replace(value, stamp(merged, now, prior.get("createdAt") if prior else None))
        doc[iri] = value
    doc["type"] = with_types(stored.doc["type"], entity.types)
    doc["modifiedAt"] = now
    return doc


@_on_entity
def replace_entity(batch: _Batch, stored: Stored, entity: EntityInput) -> None:
    """PUT /entities/{id}: the whole entity is replaced, createdAt kept."""
    types = entity.types or stored.doc["type"]
    batch.replace(stored, new_document(EntityInput(entity.id, types, entity.attrs), now_iso(),
                                       created=stored.doc["createdAt"]))


def delete_entity(store: EntityStore, tenant: str, entity_id: str) -> Change:
    """DELETE /entities/{id}."""
    outcome = batch_delete(store, tenant, [entity_id])
    if outcome.errors:
        raise not_found("Entity not found", entity_id)
    return outcome.changes[0]
