"""Batch sizing: entity and byte caps are never exceeded; contexts are grouped for Link headers."""

from __future__ import annotations

import asyncio
import random

import httpx
import orjson
import pytest

from adapter.errors import ConfigError, EntityRejectedError
from adapter.ngsi.batching import OutgoingEntity, build_batches, link_url, occurrence_rounds
from adapter.ngsi.client import BrokerClient, RetryPolicy

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
A = "https://example.org/a.jsonld"
B = "https://example.org/b.jsonld"


def make(n: int, ctx, pad: int = 10) -> OutgoingEntity:
    body = {"id": f"urn:ngsi-ld:T:{n}", "type": "T", "name": {"type": "Property", "value": "x" * pad}}
    return OutgoingEntity(body["id"], "T", body, ctx)


def send(entities, **kwargs):
    requests: list[httpx.Request] = []

    def handler(request):
        requests.append(request)
        return httpx.Response(204)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = BrokerClient("http://b", http=http, retry=RetryPolicy(attempts=1), **kwargs)
            return await client.upsert(entities)
    return asyncio.run(main()), requests


def test_batches_hold_at_most_1000_entities():
    result, reqs = send([make(n, [A, CORE], pad=1) for n in range(2500)])
    assert [len(orjson.loads(r.content)) for r in reqs] == [1000, 1000, 500]
    assert result.ok and len(result.succeeded) == 2500


def test_byte_cap_is_never_exceeded_and_nothing_is_lost():
    rng = random.Random(7)
    entities = [make(n, [A, CORE], pad=rng.randint(0, 3000)) for n in range(400)]
    result, reqs = send(entities, batch_max_bytes=20_000, batch_max_entities=1000)
    assert all(len(r.content) <= 20_000 for r in reqs)
    assert all(int(r.headers["Content-Length"]) <= 20_000 for r in reqs)
    sent = [e["id"] for r in reqs for e in orjson.loads(r.content)]
    assert sorted(sent) == sorted(e.id for e in entities) and len(reqs) > 10


def test_build_batches_exact_size_accounting():
    items = [(i, b"x" * 10) for i in range(10)]
    # Each batch of k items is 2 + 10k + (k-1) bytes: 3 items = 34 bytes fit in 34, 4 do not.
    batches = [b for b, _ in build_batches(items, 1000, 34)]
    assert [len(b.items) for b in batches] == [3, 3, 3, 1]
    assert all(len(b.body()) == b.size <= 34 for b in batches)


def test_entity_larger_than_byte_cap_is_rejected_without_sending():
    result, reqs = send([make(1, [A, CORE]), make(2, [A, CORE], pad=5000)], batch_max_bytes=2000)
    assert result.succeeded == ["urn:ngsi-ld:T:1"] and len(reqs) == 1
    assert isinstance(result.failed["urn:ngsi-ld:T:2"], EntityRejectedError)


def test_link_mode_groups_entities_by_context_url():
    entities = [make(n, [A if n % 2 else B, CORE]) for n in range(6)]
    result, reqs = send(entities, context_mode="link")
    assert result.ok and len(reqs) == 2
    for r in reqs:
        assert r.headers["Content-Type"] == "application/json"
        body = orjson.loads(r.content)
        assert all("@context" not in e for e in body)
        url = A if r.headers["Link"].startswith(f"<{A}>") else B
        assert {int(e["id"].rsplit(":", 1)[1]) % 2 for e in body} == ({1} if url == A else {0})


def test_link_mode_refuses_inline_contexts_per_entity():
    result, reqs = send([make(1, [{"name": "https://ex.org/name"}, CORE]), make(2, A)], context_mode="link")
    assert isinstance(result.failed["urn:ngsi-ld:T:1"], ConfigError)
    assert result.succeeded == ["urn:ngsi-ld:T:2"] and len(reqs) == 1


def test_body_mode_mixes_contexts_in_one_batch():
    result, reqs = send([make(1, [A, CORE]), make(2, [{"x": "https://ex.org/x"}, CORE])])
    assert len(reqs) == 1 and "Link" not in reqs[0].headers
    assert [e["@context"] for e in orjson.loads(reqs[0].content)] == [[A, CORE], [{"x": "https://ex.org/x"}, CORE]]


def test_pre_encoded_bodies_get_their_context_spliced_in():
    raw = OutgoingEntity("urn:a:1", "T", b'{"id":"urn:a:1","type":"T"}', [A, CORE])
    assert orjson.loads(raw.encode(True)) == {"@context": [A, CORE], "id": "urn:a:1", "type": "T"}
    assert raw.encode(False) == b'{"id":"urn:a:1","type":"T"}'
    assert raw.attribute_names() == frozenset()


def test_link_url_drops_the_core_context():
    assert link_url([A, CORE]) == A and link_url(A) == A
    assert link_url(CORE) is None and link_url(None) is None
    with pytest.raises(ConfigError):
        link_url([A, B, CORE])


def test_repeated_ids_go_out_in_later_requests_in_order():
    first, second = make(1, A, pad=1), make(1, A, pad=2)
    result, reqs = send([first, make(2, A), second])
    assert len(reqs) == 2
    assert [e["id"] for e in orjson.loads(reqs[0].content)] == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"]
    assert orjson.loads(reqs[1].content)[0]["name"]["value"] == "xx"
    assert occurrence_rounds(["a", "b", "a", "a"]) == [[0, 1], [2], [3]]
