"""Broker client: every broker answer of the Orion-LD reference read into per-entity results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import orjson
import pytest
from pydantic import SecretStr

from adapter.errors import AuthError, BrokerUnavailableError, ConfigError, EntityRejectedError
from adapter.ngsi.auth import BearerToken, OAuth2ClientCredentials
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import AttributeDelete, BrokerClient, RetryPolicy

BASE = "http://broker.test"
CTX = ["https://example.org/ctx.jsonld", "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
FAST = RetryPolicy(attempts=3, max_seconds=30, initial_wait=0, max_wait=0)
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def entity(n: int, pad: int = 0) -> OutgoingEntity:
    body = {"id": f"urn:ngsi-ld:T:{n}", "type": "T", "p": {"type": "Property", "value": "x" * pad or n}}
    return OutgoingEntity(body["id"], "T", body, CTX)


def ids(*ns: int) -> list[str]:
    return [f"urn:ngsi-ld:T:{n}" for n in ns]


def problem(type_: str, title: str, detail: str = "d", status: int | None = None) -> dict:
    body = {"type": ERR + type_, "title": title, "detail": detail}
    if status is not None:
        body["status"] = status
    return body


def run(handler: Callable[[httpx.Request], httpx.Response], coro_fn, **kwargs):
    """Run `coro_fn(client)` against a MockTransport; returns (result, requests)."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
            client = BrokerClient(BASE, http=http, retry=kwargs.pop("retry", FAST), **kwargs)
            return await coro_fn(client)

    return asyncio.run(main()), requests


def sent_ids(request: httpx.Request) -> list[str]:
    return [e["id"] if isinstance(e, dict) else e for e in orjson.loads(request.content)]


def upsert_all(*entities: OutgoingEntity):
    return lambda client: client.upsert(entities)


# -- status-code matrix -------------------------------------------------------------------------

def test_a_large_upsert_is_encoded_batch_by_batch_not_all_at_once(monkeypatch):
    encoded: list[str] = []
    original = OutgoingEntity.encode

    def counting(self: OutgoingEntity, with_context: bool) -> bytes:
        encoded.append(self.id)
        return original(self, with_context)
    monkeypatch.setattr(OutgoingEntity, "encode", counting)
    encoded_at_request: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        encoded_at_request.append(len(encoded))
        return httpx.Response(204)

    (result, requests) = run(answer, upsert_all(*(entity(n) for n in range(100))),
                             batch_max_entities=10, concurrency=1)
    assert result.ok and len(result.succeeded) == 100 and len(requests) == 10
    assert sorted(i for r in requests for i in sent_ids(r)) == sorted(ids(*range(100)))
    # Held as bytes when request i goes out: what was encoded minus the i batches already answered.
    # At most the batches of the window (in flight, ready, being built): never all 100 at once.
    held = [n - 10 * i for i, n in enumerate(encoded_at_request)]
    assert max(held) <= 31 and encoded_at_request[0] < 100


def test_entities_with_different_contexts_go_in_separate_requests_with_their_link():
    other = ["https://example.org/other.jsonld"]
    mixed = [entity(1), OutgoingEntity("urn:ngsi-ld:T:2", "T", {"id": "urn:ngsi-ld:T:2", "type": "T"}, other),
             entity(3)]
    (result, requests) = run(lambda r: httpx.Response(204), lambda c: c.upsert(mixed), context_mode="link")
    assert result.ok and len(requests) == 2
    by_link = {r.headers["Link"]: sent_ids(r) for r in requests}
    assert by_link == {'<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; '
                       'type="application/ld+json"': ids(1, 3),
                       '<https://example.org/other.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; '
                       'type="application/ld+json"': ids(2)}


def test_upsert_201_with_all_ids_is_success():
    result, reqs = run(lambda r: httpx.Response(201, json=sent_ids(r)), upsert_all(entity(1), entity(2)))
    assert result.ok and result.succeeded == ids(1, 2)
    assert reqs[0].url.params["options"] == "update"
    assert reqs[0].headers["Content-Type"] == "application/ld+json"
    assert all(e["@context"] == CTX for e in orjson.loads(reqs[0].content))


def test_upsert_201_with_only_new_ids_is_success_for_all_sent():
    result, _ = run(lambda r: httpx.Response(201, json=ids(2)), upsert_all(entity(1), entity(2)))
    assert result.ok and sorted(result.succeeded) == ids(1, 2)


def test_upsert_204_is_success():
    result, _ = run(lambda r: httpx.Response(204), upsert_all(entity(1), entity(2)))
    assert result.ok and result.succeeded == ids(1, 2)


def test_upsert_207_legacy_mixed_with_empty_errors_is_success():
    result, _ = run(lambda r: httpx.Response(207, json={"success": ids(1, 2), "errors": []}),
                    upsert_all(entity(1), entity(2)))
    assert result.ok and sorted(result.succeeded) == ids(1, 2)


def test_upsert_reports_partial_failure():
    body = {"success": ids(1), "errors": [
        {"entityId": ids(2)[0], "error": problem("BadRequestData", "non-matching entity type", "T2", 400)},
        {"entityId": ids(3)[0], "error": problem("AlreadyExists", "Entity already exists", status=409)}]}
    result, _ = run(lambda r: httpx.Response(207, json=body), upsert_all(entity(1), entity(2), entity(3)))
    assert result.succeeded == ids(1)
    assert set(result.rejected) == set(ids(2, 3))
    error = result.failed[ids(2)[0]]
    assert isinstance(error, EntityRejectedError) and error.entity_id == ids(2)[0]
    assert error.context["status"] == 400 and error.context["title"] == "non-matching entity type"
    assert result.failed[ids(3)[0]].context["status"] == 409


def test_upsert_207_duplicated_entity_note_counts_as_written():
    body = {"success": ids(1), "errors": [{"entityId": ids(1)[0], "error": {
        "type": ERR + "BadRequestData", "title": "Duplicated Entity",
        "detail": "previous instances merged into one", "status": 400}}]}
    result, _ = run(lambda r: httpx.Response(207, json=body), upsert_all(entity(1)))
    assert result.ok


def test_upsert_207_scorpio_bare_array():
    body = [{"success": [{"attributes": []}], "id": ids(1)[0], "type": "Upsert"},
            {"failure": [{"type": ERR + "BadRequestData", "title": "Bad Request Data.",
                          "detail": {"message": "The key dataset is an invalid entry."}, "errorCode": 400}],
             "id": ids(2)[0], "type": "Upsert"}]
    result, _ = run(lambda r: httpx.Response(207, json=body), upsert_all(entity(1), entity(2)))
    assert result.succeeded == ids(1)
    error = result.failed[ids(2)[0]]
    assert isinstance(error, EntityRejectedError) and "dataset" in error.context["detail"]


def test_upsert_207_per_entity_5xx_is_transient():
    body = {"success": ids(1), "errors": [{"entityId": ids(2)[0], "error": problem(
        "InternalError", "Database Error", "mongocEntitiesUpsert failed", 500)}]}
    result, _ = run(lambda r: httpx.Response(207, json=body), upsert_all(entity(1), entity(2)))
    assert isinstance(result.failed[ids(2)[0]], BrokerUnavailableError)
    assert set(result.transient) == set(ids(2))


def test_upsert_400_for_whole_request_is_config_error_for_every_entity():
    body = problem("BadRequestData", "invalid combination of HTTP headers Content-Type and Link")
    result, reqs = run(lambda r: httpx.Response(400, json=body), upsert_all(entity(1), entity(2)))
    assert len(reqs) == 1  # not retried, not split
    assert set(result.fatal) == set(ids(1, 2))
    assert all(isinstance(e, ConfigError) for e in result.failed.values())
    with pytest.raises(ConfigError, match="invalid combination"):
        result.raise_for_fatal()


def test_upsert_400_json_parse_error_isolates_the_bad_entity():
    def handler(request):
        if ids(3)[0] in sent_ids(request):
            return httpx.Response(400, json=problem("InvalidRequest", "JSON Parse Error", "Invalid JSON payload"))
        return httpx.Response(201, json=sent_ids(request))
    result, _ = run(handler, upsert_all(*(entity(n) for n in range(1, 5))))
    assert sorted(result.succeeded) == ids(1, 2, 4)
    assert isinstance(result.failed[ids(3)[0]], EntityRejectedError)


def test_upsert_404_non_existing_tenant_is_config_error():
    body = problem("NonExistingTenant", "No such tenant", "t1")
    result, _ = run(lambda r: httpx.Response(404, json=body), upsert_all(entity(1)), tenant="t1")
    assert isinstance(result.failed[ids(1)[0]], ConfigError)


def test_delete_on_non_existing_tenant_counts_as_deleted():
    body = problem("NonExistingTenant", "No such tenant", "t1")
    result, reqs = run(lambda r: httpx.Response(404, json=body), lambda c: c.delete(ids(1, 2)), tenant="t1")
    assert result.ok and result.succeeded == ids(1, 2)
    assert reqs[0].headers["NGSILD-Tenant"] == "t1"
    assert orjson.loads(reqs[0].content) == ids(1, 2)


def test_delete_207_missing_entities_count_as_deleted_other_errors_do_not():
    body = {"success": ids(1), "errors": [
        {"entityId": ids(2)[0], "error": problem("ResourceNotFound", "Entity not found", status=404)},
        {"entityId": ids(3)[0], "error": problem("InternalError", "Database Error", status=500)}]}
    result, _ = run(lambda r: httpx.Response(207, json=body), lambda c: c.delete(ids(1, 2, 3)))
    assert sorted(result.succeeded) == ids(1, 2)
    assert set(result.transient) == set(ids(3))


def test_delete_204_and_207_all_failed_with_success_empty():
    result, _ = run(lambda r: httpx.Response(204), lambda c: c.delete(ids(1)))
    assert result.ok
    body = {"success": [], "errors": [{"entityId": ids(1)[0], "error": problem("BadRequestData", "x", status=400)}]}
    result, _ = run(lambda r: httpx.Response(207, json=body), lambda c: c.delete(ids(1)))
    assert set(result.rejected) == set(ids(1))


def test_upsert_413_splits_in_halves_until_it_fits():
    sizes: list[int] = []

    def handler(request):
        sent = sent_ids(request)
        sizes.append(len(sent))
        if len(sent) > 2:
            return httpx.Response(413, json=problem("BadRequestData", "Request Entity too large"))
        return httpx.Response(201, json=sent)
    result, _ = run(handler, upsert_all(*(entity(n) for n in range(8))))
    assert sizes == [8, 4, 4, 2, 2, 2, 2] or sorted(sizes) == sorted([8, 4, 4, 2, 2, 2, 2])
    assert result.ok and sorted(result.succeeded) == sorted(ids(*range(8)))


def test_upsert_413_on_a_single_entity_quarantines_only_that_entity():
    def handler(request):
        sent = sent_ids(request)
        if ids(5)[0] in sent:
            return httpx.Response(413, json=problem("BadRequestData", "Request Entity too large",
                                                    "payload size: 2000000, max size supported: 1048576"))
        return httpx.Response(201, json=sent)
    result, _ = run(handler, upsert_all(*(entity(n) for n in range(8))))
    assert sorted(result.succeeded) == sorted(ids(0, 1, 2, 3, 4, 6, 7))
    error = result.failed[ids(5)[0]]
    assert isinstance(error, EntityRejectedError) and error.context["status"] == 413


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_upsert_5xx_is_retried_then_succeeds(status):
    answers = iter([httpx.Response(status, json=problem("InternalError", "boom")),
                    httpx.Response(status), httpx.Response(204)])
    result, reqs = run(lambda r: next(answers), upsert_all(entity(1)))
    assert result.ok and len(reqs) == 3


def test_upsert_5xx_that_persists_is_transient_failure():
    result, reqs = run(lambda r: httpx.Response(503), upsert_all(entity(1), entity(2)))
    assert len(reqs) == FAST.attempts
    assert set(result.transient) == set(ids(1, 2))


def test_timeouts_are_retried_then_reported_transient():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)
    result, reqs = run(handler, upsert_all(entity(1)))
    assert len(reqs) == FAST.attempts
    assert isinstance(result.failed[ids(1)[0]], BrokerUnavailableError)


def test_refused_connection_then_recovery():
    calls = iter([httpx.ConnectError("refused"), httpx.ConnectError("refused"), httpx.Response(201, json=[])])

    def handler(request):
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer
    result, reqs = run(handler, upsert_all(entity(1)))
    assert result.ok and len(reqs) == 3


@pytest.mark.parametrize("status", [406, 415, 405, 501])
def test_media_type_and_route_refusals_stop(status):
    result, reqs = run(lambda r: httpx.Response(status, json=problem("BadRequestData", "nope")),
                       upsert_all(entity(1)))
    assert len(reqs) == 1 and isinstance(result.failed[ids(1)[0]], ConfigError)


def test_static_token_401_is_auth_error_without_retry():
    result, reqs = run(lambda r: httpx.Response(401), upsert_all(entity(1)),
                       auth=BearerToken(SecretStr("s3cret")))
    assert len(reqs) == 1 and reqs[0].headers["Authorization"] == "Bearer s3cret"
    assert isinstance(result.failed[ids(1)[0]], AuthError)


class TokenServer:
    """A token endpoint handing out numbered tokens, plus a broker that accepts only the latest."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.issued = 0
        self.expires_in = expires_in
        self.valid: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            assert request.headers["Authorization"].startswith("Basic ")
            assert b"grant_type=client_credentials" in request.content
            self.issued += 1
            token = f"tok{self.issued}"
            self.valid = {token}
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in,
                                             "token_type": "Bearer"})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, json=problem("BadRequestData", "unauthorized"))
        return httpx.Response(204)


def test_401_fetches_a_fresh_token_and_retries_once():
    server = TokenServer()
    auth = OAuth2ClientCredentials(f"{BASE}/token", "adapter", SecretStr("pw"))

    async def twice(client):
        first = await client.upsert([entity(1)])
        server.valid = set()  # the broker revokes tok1
        second = await client.upsert([entity(2)])
        return first, second
    (first, second), reqs = run(server, twice, auth=auth)
    assert first.ok and second.ok and server.issued == 2
    assert reqs[-1].headers["Authorization"] == "Bearer tok2"
    assert "pw" not in repr(auth)


def test_401_after_refresh_is_auth_error():
    def handler(request):
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(401)
    auth = OAuth2ClientCredentials(f"{BASE}/token", "adapter", SecretStr("pw"))
    result, reqs = run(handler, upsert_all(entity(1)), auth=auth)
    assert isinstance(result.failed[ids(1)[0]], AuthError)
    assert [r.url.path for r in reqs].count("/token") == 2


def test_oauth_token_is_refreshed_before_expiry():
    now = [1000.0]
    server = TokenServer(expires_in=60)
    auth = OAuth2ClientCredentials(f"{BASE}/token", "adapter", SecretStr("pw"), refresh_margin=10,
                                   clock=lambda: now[0])

    async def over_time(client):
        results = [await client.upsert([entity(1)])]
        now[0] += 40  # still valid for 20 s > margin: cached
        results.append(await client.upsert([entity(2)]))
        now[0] += 15  # 5 s left < margin: refreshed before use
        results.append(await client.upsert([entity(3)]))
        return results
    results, reqs = run(server, over_time, auth=auth)
    assert all(r.ok for r in results)
    assert server.issued == 2
    assert [r.url.path for r in reqs].count("/token") == 2


def test_oauth_refused_credentials_are_auth_error():
    def handler(request):
        return httpx.Response(401, json={"error": "invalid_client"})
    auth = OAuth2ClientCredentials(f"{BASE}/token", "adapter", SecretStr("pw"))
    result, _ = run(handler, upsert_all(entity(1)), auth=auth)
    assert isinstance(result.failed[ids(1)[0]], AuthError)


# -- attribute delete, get, query ------------------------------------------------------------------

def test_attribute_delete_uses_link_header_and_treats_404_as_done():
    answers = iter([httpx.Response(204), httpx.Response(404, json=problem(
        "ResourceNotFound", "Entity/Attribute not found"))])
    result, reqs = run(lambda r: next(answers), lambda c: c.delete_attrs([
        AttributeDelete(ids(1)[0], "p", CTX), AttributeDelete(ids(2)[0], "q", CTX)]))
    assert result.ok and result.succeeded == [(ids(1)[0], "p"), (ids(2)[0], "q")]
    assert reqs[0].method == "DELETE"
    assert reqs[0].url.raw_path.decode().endswith("/entities/urn%3Angsi-ld%3AT%3A1/attrs/p")
    assert reqs[0].headers["Link"] == ('<https://example.org/ctx.jsonld>; '
                                       'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')


def test_attribute_delete_expands_inline_terms_and_refuses_ambiguous_contexts():
    official = ["https://sdm.example/ctx.jsonld", {"p": "https://ex.org/p"}, CTX[1]]
    ambiguous = ["https://a.example/1.jsonld", "https://b.example/2.jsonld", CTX[1]]
    result, reqs = run(lambda r: httpx.Response(204), lambda c: c.delete_attrs([
        AttributeDelete(ids(1)[0], "p", official), AttributeDelete(ids(1)[0], "q", official),
        AttributeDelete(ids(2)[0], "q", ambiguous)]))
    assert result.succeeded == [(ids(1)[0], "p"), (ids(1)[0], "q")]
    assert isinstance(result.failed[(ids(2)[0], "q")], ConfigError)
    by_path = {r.url.raw_path.decode().rsplit("/", 1)[-1]: r for r in reqs}
    assert set(by_path) == {"https%3A%2F%2Fex.org%2Fp", "q"}
    assert "Link" not in by_path["https%3A%2F%2Fex.org%2Fp"].headers
    assert by_path["q"].headers["Link"].startswith("<https://sdm.example/ctx.jsonld>")


def test_get_entity_and_missing_entity():
    def handler(request):
        if request.url.path.endswith("T%3A1") or request.url.raw_path.endswith(b"T%3A1"):
            return httpx.Response(200, json={"id": ids(1)[0], "type": "T"})
        return httpx.Response(404, json=problem("ResourceNotFound", "Entity Not Found"))

    async def both(client):
        return await client.get_entity(ids(1)[0]), await client.get_entity(ids(2)[0])
    (found, missing), _ = run(handler, both)
    assert found == {"id": ids(1)[0], "type": "T"} and missing is None


def test_query_follows_pagination():
    data = [{"id": i, "type": "T"} for i in ids(*range(7))]

    def handler(request):
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(200, json=data[offset:offset + limit],
                              headers={"NGSILD-Results-Count": str(len(data))})
    result, reqs = run(handler, lambda c: c.query({"type": "T"}, context=CTX), page_size=3)
    assert result == data and len(reqs) == 3
    assert all(r.url.params["type"] == "T" for r in reqs) and "Link" in reqs[0].headers


def test_query_without_count_header_stops_on_short_page_and_unknown_tenant_is_empty():
    data = [{"id": i, "type": "T"} for i in ids(*range(4))]

    def handler(request):
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(200, json=data[offset:offset + limit])
    result, reqs = run(handler, lambda c: c.query({"type": "T"}), page_size=2)
    assert result == data and len(reqs) == 3  # 2 + 2 + empty
    body = problem("NonExistingTenant", "No such tenant")
    result, _ = run(lambda r: httpx.Response(404, json=body), lambda c: c.query({"type": "T"}), tenant="x")
    assert result == []


def test_query_refused_raises_config_error():
    body = problem("BadRequestData", "Too broad query")
    with pytest.raises(ConfigError, match="Too broad"):
        run(lambda r: httpx.Response(400, json=body), lambda c: c.query({}))


CTX_DOC = {"@context": {"Lamp": "https://example.org/Lamp"}}


@pytest.mark.parametrize("status,headers,expected", [
    (201, {"Location": "http://b:1026/ngsi-ld/v1/jsonldContexts/abc"}, "http://b:1026/ngsi-ld/v1/jsonldContexts/abc"),
    (201, {"Location": "/ngsi-ld/v1/jsonldContexts/abc"}, f"{BASE}/ngsi-ld/v1/jsonldContexts/abc"),
    (201, {}, None),
    (404, {}, None), (405, {}, None), (501, {}, None), (400, {}, None),
])
def test_host_context_gives_the_url_or_none_without_hosting(status, headers, expected):
    (url, why), requests = run(lambda r: httpx.Response(status, headers=headers, json={} if status >= 400 else None),
                               lambda c: c.with_tenant("burgas").host_context(CTX_DOC), tenant="burgas")
    assert url == expected and (why == "") == (expected is not None)
    assert requests[0].method == "POST" and requests[0].url.path == "/ngsi-ld/v1/jsonldContexts"
    assert "NGSILD-Tenant" not in requests[0].headers  # contexts are not per tenant
    assert orjson.loads(requests[0].content) == CTX_DOC


@pytest.mark.parametrize("status,error", [(401, AuthError), (503, BrokerUnavailableError)])
def test_host_context_refused_access_or_down_raises(status, error):
    with pytest.raises(error):
        run(lambda r: httpx.Response(status, json={}), lambda c: c.host_context(CTX_DOC))


def test_context_not_available_is_not_retried_by_the_client():
    body = {"type": "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable",
            "title": "Unable to download context", "detail": "http://b/ngsi-ld/v1/jsonldContexts/x"}
    result, requests = run(lambda r: httpx.Response(504, json=body), lambda c: c.upsert([entity(1)]),
                           context_mode="link")
    assert len(requests) == 1  # publishing again is the remedy (adapter.sync.hosting), not a retry
    error = result.failed[ids(1)[0]]
    assert isinstance(error, BrokerUnavailableError) and error.context["detail"] == body["detail"]
