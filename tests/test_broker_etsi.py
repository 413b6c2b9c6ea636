"""Embedded broker: behaviours the ETSI NGSI-LD conformance suite requires (docs/conformance.md)."""

from __future__ import annotations

import httpx
import pytest

from tests.broker_fixtures import assert_problem, broker, client, entity, new_id  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


def test_collection_urls_accept_a_trailing_slash(client: httpx.Client) -> None:
    ident = new_id()
    assert client.post("/entities/", json=entity(ident, n=1)).status_code == 201
    assert client.post(f"/entities/{ident}/attrs/", json={"m": 2}).status_code == 204
    assert client.patch(f"/entities/{ident}/attrs/", json={"m": 3}).status_code == 204
    assert [e["id"] for e in client.get("/entities/", params={"id": ident}).json()] == [ident]
    sub = {"type": "Subscription", "entities": [{"type": "Thing"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/hook"}}}
    assert client.post("/subscriptions/", json=sub).status_code == 201


def test_a_verb_without_an_id_on_a_collection_is_405(client: httpx.Client) -> None:
    assert_problem(client.patch("/subscriptions/", json={"q": "a>1"}), 405, "OperationNotSupported")
    assert_problem(client.delete("/subscriptions/"), 405, "OperationNotSupported")
