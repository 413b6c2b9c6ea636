"""DELETE /entities (NGSI-LD 1.8 Purge Entities): the query's filters, the too-broad rule, 204."""

from __future__ import annotations

import httpx
import pytest

from tests.broker_fixtures import entity, new_id

pytestmark = pytest.mark.integration
TENANT = {"NGSILD-Tenant": "purge"}


def _create(client: httpx.Client, kind: str, n: int, **attrs) -> list[str]:
    ids = [new_id(kind) for _ in range(n)]
    answer = client.post("/entityOperations/upsert", headers=TENANT,
                         json=[entity(i, kind, **attrs) for i in ids])
    assert answer.status_code == 201, answer.text
    return ids


def _count(client: httpx.Client, **params) -> int:
    answer = client.get("/entities", headers=TENANT, params={"count": "true", "limit": "0", **params})
    assert answer.status_code == 200, answer.text
    return int(answer.headers["NGSILD-Results-Count"])


def test_purge_deletes_exactly_what_the_filter_matches(client):
    _create(client, "PurgeCold", 3, temperature=5)
    _create(client, "PurgeHot", 1205, temperature=40)  # more than one page of deletions
    kept = _create(client, "PurgeHot", 2, temperature=10)
    answer = client.delete("/entities", headers=TENANT, params={"type": "PurgeHot", "q": "temperature>20"})
    assert answer.status_code == 204 and answer.content == b""
    assert _count(client, type="PurgeHot") == 2 and _count(client, type="PurgeCold") == 3
    assert client.get(f"/entities/{kept[0]}", headers=TENANT).status_code == 200


def test_purge_without_a_filter_is_the_too_broad_400_and_deletes_nothing(client):
    _create(client, "PurgeSafe", 2, temperature=1)
    answer = client.delete("/entities", headers=TENANT)
    assert answer.status_code == 400 and answer.json()["title"] == "Too broad query"
    assert _count(client, type="PurgeSafe") == 2


def test_purge_of_nothing_is_204_and_of_an_unknown_tenant_is_404(client):
    assert client.delete("/entities", headers=TENANT, params={"type": "NoSuchType"}).status_code == 204
    answer = client.delete("/entities", headers={"NGSILD-Tenant": "nobody"}, params={"type": "X"})
    assert answer.status_code == 404 and answer.json()["type"].endswith("NonExistingTenant")
