"""Sync state, outbox and quarantine on real SQLite files, delivered to an in-memory broker."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from adapter.errors import ConfigError
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import BrokerClient, RetryPolicy
from adapter.sync.outbox import Outbox
from adapter.sync.quarantine import Quarantine
from adapter.sync.state import StateStore
from tests.fakebroker import FakeBroker

CTX = ["https://example.org/ctx.jsonld", "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]


def ent(n: int, **attrs) -> OutgoingEntity:
    body = {"id": f"urn:ngsi-ld:T:{n}", "type": "T"}
    body.update({k: {"type": "Property", "value": v} for k, v in (attrs or {"name": f"e{n}"}).items()})
    return OutgoingEntity(body["id"], "T", body, CTX)


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.sqlite3")
    yield s
    s.close()


def deliver(store: StateStore, broker: FakeBroker, **client_kwargs):
    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(broker.handler)) as http:
            client = BrokerClient("http://b", http=http, retry=RetryPolicy(attempts=2, initial_wait=0, max_wait=0),
                                  **client_kwargs)
            return await Outbox(store).deliver(client)
    return asyncio.run(main())


def sync(store, broker, snapshot, *, tenant="", source="s", complete=True, run="r", **kwargs):
    plan = store.sync_snapshot(tenant, source, snapshot, run_id=run, complete=complete, **kwargs)
    return plan, deliver(store, broker, upsert_mode=kwargs.get("upsert_mode", "update"))


def test_first_sync_delivers_everything_and_advances_state(store):
    broker = FakeBroker()
    plan, report = sync(store, broker, [ent(n) for n in range(5)])
    assert len(plan.upserts) == 5 and report.upserted == 5 and report.remaining == 0
    assert len(broker.entities()) == 5
    states = store.entities("", "s")
    assert all(s.sent_hash == s.want_hash and s.sent_attrs == {"name"} for s in states)
    assert {s.last_seen_run for s in states} == {"r"}


def test_no_change_resync_sends_nothing(store):
    broker = FakeBroker()
    sync(store, broker, [ent(n) for n in range(5)])
    before = broker.requests
    plan, report = sync(store, broker, [ent(n) for n in range(5)], run="r2")
    assert plan.empty and len(plan.unchanged) == 5 and report.delivered == 0
    assert broker.requests == before
    assert {s.last_seen_run for s in store.entities("", "s")} == {"r2"}


def test_changed_entity_and_removed_attribute(store):
    broker = FakeBroker()
    sync(store, broker, [ent(1, a=1, b=2), ent(2, a=1)])
    plan, report = sync(store, broker, [ent(1, a=5), ent(2, a=1)])
    assert [e.id for e, _, _ in plan.upserts] == ["urn:ngsi-ld:T:1"]
    assert [(i, attr) for i, _, attr, _ in plan.attr_deletes] == [("urn:ngsi-ld:T:1", "b")]
    assert report.upserted == 1 and report.attrs_deleted == 1
    assert broker.entities()["urn:ngsi-ld:T:1"] == {"id": "urn:ngsi-ld:T:1", "type": "T",
                                                     "a": {"type": "Property", "value": 5}}
    assert store.get("", "s", "urn:ngsi-ld:T:1").sent_attrs == {"a"}


def test_replace_mode_needs_no_attribute_deletes(store):
    broker = FakeBroker()
    sync(store, broker, [ent(1, a=1, b=2)], upsert_mode="replace")
    plan, _ = sync(store, broker, [ent(1, a=1)], upsert_mode="replace")
    assert plan.attr_deletes == [] and "b" not in broker.entities()["urn:ngsi-ld:T:1"]


def test_removed_entities_deleted_only_after_complete_fetch(store):
    broker = FakeBroker()
    sync(store, broker, [ent(n) for n in range(3)])
    plan, _ = sync(store, broker, [ent(0)], complete=False)
    assert plan.deletes == [] and len(broker.entities()) == 3
    plan, _ = sync(store, broker, [ent(0)], delete_missing=False)
    assert plan.deletes == [] and len(broker.entities()) == 3
    plan, report = sync(store, broker, [ent(0)])
    assert sorted(i for i, _ in plan.deletes) == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"]
    assert report.deleted == 2 and list(broker.entities()) == ["urn:ngsi-ld:T:0"]
    assert [s.entity_id for s in store.entities("", "s")] == ["urn:ngsi-ld:T:0"]


def test_broker_down_keeps_outbox_and_resync_does_not_duplicate(store):
    broker = FakeBroker()
    broker.down = True
    _, report = sync(store, broker, [ent(n) for n in range(4)])
    assert report.delivered == 0 and report.deferred == 4 and report.remaining == 4
    assert all(s.sent_hash is None for s in store.entities("", "s"))
    plan, report = sync(store, broker, [ent(n) for n in range(4)], run="r2")
    assert plan.empty and report.remaining == 4  # pending work is not enqueued again
    assert {op.attempts for op in Outbox(store).ops()} == {2}
    broker.down = False
    report = deliver(store, broker)
    assert report.upserted == 4 and report.remaining == 0 and len(broker.entities()) == 4
    assert all(v == 1 for v in broker.writes.values())


def test_pending_upsert_superseded_by_delete(store):
    broker = FakeBroker()
    broker.down = True
    sync(store, broker, [ent(1), ent(2)])
    sync(store, broker, [ent(2, name="new")], run="r2")
    ops = [(op.op, op.entity_id) for op in Outbox(store).ops()]
    assert ops == [("upsert", "urn:ngsi-ld:T:2"), ("delete", "urn:ngsi-ld:T:1")] or \
        sorted(ops) == [("delete", "urn:ngsi-ld:T:1"), ("upsert", "urn:ngsi-ld:T:2")]
    broker.down = False
    report = deliver(store, broker)
    assert report.remaining == 0 and list(broker.entities()) == ["urn:ngsi-ld:T:2"]
    assert broker.entities()["urn:ngsi-ld:T:2"]["name"]["value"] == "new"


def test_rejected_entity_is_quarantined_and_retryable(store):
    broker = FakeBroker()
    broker.reject = {"urn:ngsi-ld:T:1"}
    _, report = sync(store, broker, [ent(0), ent(1)])
    assert report.upserted == 1 and report.rejected == 1 and report.remaining == 0
    quarantine = Quarantine(store)
    [entry] = quarantine.entries()
    assert entry.kind == "upsert" and entry.locator == "urn:ngsi-ld:T:1" and entry.status == 400
    assert entry.error_class == "EntityRejectedError" and "Invalid Entity" in entry.reason
    plan, _ = sync(store, broker, [ent(0), ent(1)], run="r2")
    assert plan.empty  # the same content is not retried by itself
    broker.reject = set()
    assert quarantine.retry([entry.id]) == []
    report = deliver(store, broker)
    assert report.upserted == 1 and quarantine.entries() == [] and len(broker.entities()) == 2
    state = store.get("", "s", "urn:ngsi-ld:T:1")
    assert state.sent_hash == state.want_hash


def test_fatal_broker_answer_stops_delivery_and_keeps_rows(store):
    def handler(request):
        return httpx.Response(400, json={"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                                         "title": "Tenants not supported", "detail": "t"})
    store.sync_snapshot("", "s", [ent(1)], run_id="r", complete=True)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await Outbox(store).deliver(BrokerClient("http://b", http=http))
    with pytest.raises(ConfigError, match="Tenants not supported"):
        asyncio.run(main())
    assert Outbox(store).pending() == 1


def test_two_tenants_are_kept_apart(store):
    broker = FakeBroker()
    store.sync_snapshot("t1", "s", [ent(1)], run_id="r", complete=True)
    store.sync_snapshot("t2", "s", [ent(2), ent(3)], run_id="r", complete=True)
    report = deliver(store, broker)
    assert report.upserted == 3
    assert list(broker.entities("t1")) == ["urn:ngsi-ld:T:1"] and len(broker.entities("t2")) == 2


def test_ops_on_one_entity_keep_their_order_across_phases(store):
    broker = FakeBroker()
    broker.down = True
    sync(store, broker, [ent(1, a=1, b=1)])
    broker.down = False
    # Pending upsert {a,b}; then a snapshot without b: the old upsert is replaced, b is deleted after.
    plan, report = sync(store, broker, [ent(1, a=2)], run="r2")
    assert report.remaining == 0
    assert broker.entities()["urn:ngsi-ld:T:1"] == {"id": "urn:ngsi-ld:T:1", "type": "T",
                                                     "a": {"type": "Property", "value": 2}}


def test_record_quarantine_list_retry_remove(store):
    q = Quarantine(store)
    q.add(tenant="", source="gis", kind="record", locator="layer/7#12", error="bad geometry",
          payload=b'{"x": 1}')
    q.add(tenant="", source="gis", kind="record", locator="layer/7#12", error="still bad")
    [entry] = q.entries(source="gis")
    assert entry.reason == "still bad" and entry.first_seen <= entry.last_seen
    [again] = q.retry([entry.id])
    assert again.locator == "layer/7#12" and q.entries()[0].retry_count == 1
    assert q.remove([entry.id]) == 1 and q.entries() == []


def test_state_survives_reopening(tmp_path):
    path = tmp_path / "state.sqlite3"
    first = StateStore(path)
    first.sync_snapshot("", "s", [ent(1)], run_id="r", complete=True)
    first.close()
    second = StateStore(path)
    assert Outbox(second).pending() == 1
    assert second.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    second.close()


# --- streams: one transaction per micro-batch, older readings are stale -----------------------------

def _at(minute: int):
    from datetime import UTC, datetime

    return datetime(2025, 6, 1, 10, minute, tzinfo=UTC)


def pending_values(store: StateStore) -> dict[str, int]:
    import orjson

    rows = store.conn.execute("SELECT entity_id, body FROM outbox WHERE op='upsert' ORDER BY seq").fetchall()
    return {i: orjson.loads(body)["v"]["value"] for i, body in rows}


def test_a_stream_reading_older_than_one_already_enqueued_is_stale(store):
    plan = store.sync_stream("", "m", [(ent(1, v=5), _at(5)), (ent(2, v=5), _at(5))], run_id="a")
    assert len(plan.upserts) == 2 and plan.stale == []
    # Another worker commits older readings of entity 1 and a newer one of entity 2 afterwards.
    plan = store.sync_stream("", "m", [(ent(1, v=3), _at(3)), (ent(2, v=7), _at(7))], run_id="b")
    assert plan.stale == ["urn:ngsi-ld:T:1"] and [e.id for e, _, _ in plan.upserts] == ["urn:ngsi-ld:T:2"]
    # The pending upsert of 2 was replaced, not repeated; 1 keeps its newer value.
    assert pending_values(store) == {"urn:ngsi-ld:T:1": 5, "urn:ngsi-ld:T:2": 7}
    # The same time again is not stale (a corrected reading), and a reading without time never is.
    plan = store.sync_stream("", "m", [(ent(1, v=6), _at(5)), (ent(3, v=1), None)], run_id="c")
    assert plan.stale == [] and pending_values(store)["urn:ngsi-ld:T:1"] == 6
    # Inside one batch the newest reading of an entity wins, whatever the order.
    plan = store.sync_stream("", "m", [(ent(4, v=9), _at(9)), (ent(4, v=8), _at(8))], run_id="d")
    assert pending_values(store)["urn:ngsi-ld:T:4"] == 9


def test_stream_times_are_per_source_and_tenant(store):
    store.sync_stream("", "m", [(ent(1, v=5), _at(5))], run_id="a")
    assert store.sync_stream("", "other", [(ent(1, v=3), _at(3))], run_id="b").stale == []
    assert store.sync_stream("t2", "m", [(ent(1, v=3), _at(3))], run_id="c").stale == []


def test_a_state_file_of_an_earlier_version_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE entity_state (
            tenant TEXT NOT NULL, source TEXT NOT NULL, entity_id TEXT NOT NULL, entity_type TEXT NOT NULL,
            want_hash TEXT, want_attrs TEXT, sent_hash TEXT, sent_attrs TEXT,
            last_seen_run TEXT, last_seen_at TEXT, confirmed_at TEXT,
            PRIMARY KEY (tenant, source, entity_id)) WITHOUT ROWID;
        INSERT INTO entity_state VALUES ('', 'm', 'urn:ngsi-ld:T:1', 'T', 'h', '["v"]', 'h', '["v"]',
                                         'r', '2025-06-01T10:00:00Z', '2025-06-01T10:00:00Z');
    """)
    old.close()
    store = StateStore(path)
    try:
        assert store.get("", "m", "urn:ngsi-ld:T:1").want_hash == "h"
        plan = store.sync_stream("", "m", [(ent(1, v=5), _at(5))], run_id="a")
        assert len(plan.upserts) == 1
        assert store.sync_stream("", "m", [(ent(1, v=4), _at(4))], run_id="b").stale == ["urn:ngsi-ld:T:1"]
    finally:
        store.close()


def test_quarantine_keeps_the_most_recently_seen_items_of_a_source(store):
    quarantine = Quarantine(store)
    for n in range(12):
        quarantine.add(tenant="", source="noisy", kind="record", locator=f"r{n}", error="bad")
    quarantine.add(tenant="", source="other", kind="record", locator="x", error="bad")
    quarantine.add(tenant="", source="noisy", kind="upsert", locator="urn:ngsi-ld:T:1", error="refused")
    quarantine.add(tenant="", source="noisy", kind="record", locator="r0", error="bad again")  # seen last
    assert quarantine.trim("", "noisy", keep=5) == 7
    assert quarantine.count(source="noisy", kind="upsert") == 1  # entity operations are never dropped
    assert {e.locator for e in quarantine.entries(source="noisy", kind="record")} == {"r0", "r8", "r9", "r10", "r11"}
    assert quarantine.count(source="other") == 1 and quarantine.trim("", "noisy", keep=5) == 0
    assert [e.locator for e in quarantine.entries(source="noisy", kind="record", limit=2, offset=1)] == ["r8", "r9"]


def test_outbox_and_quarantine_counts_per_source_cover_every_tenant(store):
    store.sync_snapshot("", "a", [ent(n) for n in range(3)], run_id="r", complete=True)
    store.sync_snapshot("north", "a", [ent(9)], run_id="r", complete=True)
    store.sync_snapshot("", "b", [ent(n) for n in range(2)], run_id="r", complete=True)
    quarantine = Quarantine(store)
    quarantine.add(tenant="", source="b", kind="record", locator="row 1", error="bad")
    quarantine.add(tenant="north", source="b", kind="record", locator="row 2", error="bad")
    assert store.outbox_by_source() == {"a": 4, "b": 2}
    assert store.quarantine_by_source() == {"b": 2}
    deliver(store, FakeBroker())
    assert store.outbox_by_source() == {}


def test_confirmed_rows_leave_the_outbox_by_seq_range_and_the_rows_between_stay(store):
    # seq 1 and 3 (tenant t1) are confirmed together; seq 2 (tenant t2, whose broker is down) lies
    # between them and must stay pending (delivered rows are deleted by seq ranges).
    broker = FakeBroker()
    store.sync_snapshot("t1", "s", [ent(1)], run_id="r", complete=False)
    store.sync_snapshot("t2", "s", [ent(2)], run_id="r", complete=False)
    store.sync_snapshot("t1", "s", [ent(3)], run_id="r", complete=False)
    assert [op.seq for op in Outbox(store).ops()] == [1, 2, 3]

    def handler(request):
        if request.headers.get("NGSILD-Tenant") == "t2":
            return httpx.Response(503, json={"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                                             "title": "down", "detail": "x"})
        return broker.handler(request)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = BrokerClient("http://b", http=http, retry=RetryPolicy(attempts=1, initial_wait=0, max_wait=0))
            return await Outbox(store).deliver(client)
    report = asyncio.run(main())
    assert report.upserted == 2 and report.deferred == 1
    [left] = Outbox(store).ops()
    assert (left.seq, left.tenant, left.entity_id) == (2, "t2", "urn:ngsi-ld:T:2")
    assert store.get("t2", "s", "urn:ngsi-ld:T:2").sent_hash is None
    assert store.get("t1", "s", "urn:ngsi-ld:T:3").sent_hash is not None


def test_seq_ranges_cover_exactly_the_given_seqs():
    from adapter.sync.outbox import _seq_ranges
    assert _seq_ranges([]) == []
    assert _seq_ranges([5, 1, 2, 3, 7, 8, 10]) == [(1, 3), (5, 5), (7, 8), (10, 10)]


def test_a_waiting_upsert_is_kept_only_while_it_carries_a_reading_the_newer_one_does_not(store):
    def reading(n: int, minute: int, name: str) -> OutgoingEntity:
        body = {"id": f"urn:ngsi-ld:T:{n}", "type": "T", "name": {"type": "Property", "value": name},
                "v": {"type": "Property", "value": minute, "observedAt": f"2025-06-01T10:{minute:02d}:00Z"}}
        return OutgoingEntity(body["id"], "T", body, CTX)

    def waiting() -> list[tuple[int, str]]:
        import orjson

        return [(orjson.loads(body)["v"]["value"], orjson.loads(body)["name"]["value"]) for (body,) in
                store.conn.execute("SELECT body FROM outbox WHERE op='upsert' ORDER BY seq")]

    for minute, name in ((5, "a"), (5, "renamed"), (7, "renamed")):
        store.sync_stream("", "m", [(reading(1, minute, name), _at(minute))], run_id="r", keep_pending=True)
    # 10:05 renamed replaced 10:05 (the same reading: sending both would record it twice);
    # 10:07 waits behind 10:05, whose reading goes only with its own upsert.
    assert waiting() == [(5, "renamed"), (7, "renamed")]
    store.sync_stream("", "m", [(reading(1, 9, "x"), _at(9))], run_id="r")  # without: all replaced, as before
    assert waiting() == [(9, "x")]
