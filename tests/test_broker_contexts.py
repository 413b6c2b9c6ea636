"""Embedded broker conformance: @context handling (reference summary items 8, 16, 24; section 5)."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.broker_fixtures import BASE, CORE, assert_problem, entity, free_port, link, new_id
from tests.servers import PayloadServer, Reply

pytestmark = pytest.mark.integration
LD = {"Content-Type": "application/ld+json"}


def test_ld_json_with_link_header_is_400(client: httpx.Client) -> None:
    body = {**entity(new_id()), "@context": CORE}
    assert_problem(client.post("/entities", json=body, headers={**LD, **link("http://x.org/c.jsonld")}), 400,
                   "BadRequestData", "invalid combination of HTTP headers Content-Type and Link")


def test_ld_json_without_context_is_400(client: httpx.Client) -> None:
    assert_problem(client.post("/entities", json=entity(new_id()), headers=LD), 400, "BadRequestData",
                   "@context missing in JSON payload")


def test_json_with_context_in_body_is_400(client: httpx.Client) -> None:
    assert_problem(client.post("/entities", json={**entity(new_id()), "@context": CORE}), 400,
                   "BadRequestData",
                   "Mismatch between /Content-Type/ and contents of the request payload body")


def test_malformed_link_header_is_400(client: httpx.Client) -> None:
    assert_problem(client.post("/entities", json=entity(new_id()), headers={"Link": "http://x.org/c"}),
                   400, "BadRequestData", "invalid Link HTTP header")


def test_bad_context_forms_are_400(client: httpx.Client) -> None:
    for ctx, title in ((42, "Invalid @context"), ("nocolon", "Invalid @context"), ([], "Invalid @context")):
        assert_problem(client.post("/entities", json={**entity(new_id()), "@context": ctx}, headers=LD), 400,
                       "BadRequestData", title)


def test_remote_context_is_downloaded_once_and_used_for_expansion_and_compaction(client: httpx.Client) -> None:
    with PayloadServer({"/ctx.jsonld": {"@context": {"Bin": "https://example.org/waste#Bin",
                                                     "fill": "https://example.org/waste#fillLevel"}}}) as srv:
        url = srv.url("/ctx.jsonld")
        ident = new_id("Bin")
        assert client.post("/entities", json={"id": ident, "type": "Bin", "fill": 0.5},
                           headers=link(url)).status_code == 201
        got = client.get(f"/entities/{ident}", headers=link(url))
        assert got.json()["type"] == "Bin" and got.json()["fill"]["value"] == 0.5
        assert got.headers["link"].startswith(f"<{url}>")
        core_view = client.get(f"/entities/{ident}").json()
        assert core_view["type"] == "https://example.org/waste#Bin"
        assert "https://example.org/waste#fillLevel" in core_view
        assert client.get("/entities", params={"type": "Bin"}, headers=link(url)).json()[0]["id"] == ident
        assert len(srv.requests_to("/ctx.jsonld")) == 1
        assert srv.requests_to("/ctx.jsonld")[0].headers.get("Accept", "").startswith("application/ld+json")
        listed = client.get("/jsonldContexts").json()
        assert listed[0] == CORE and url in listed
        assert_problem(client.get(f"/jsonldContexts/{url}"), 422, "OperationNotSupported",
                       "Not serving cached JSON-LD @context")


def test_core_terms_win_over_user_terms(client: httpx.Client) -> None:
    ident = new_id()
    ctx = {"location": "http://evil.example/location", "T": "http://example.org/T"}
    assert client.post("/entities", headers=LD, json={
        "@context": ctx, "id": ident, "type": "T",
        "location": {"type": "Point", "coordinates": [27.4, 42.5]}}).status_code == 201
    stored = client.get(f"/entities/{ident}").json()
    assert "location" in stored and stored["location"]["type"] == "GeoProperty"


def test_unreachable_context_is_504_and_failures_are_not_cached(client: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ctx.jsonld"
    body = assert_problem(client.post("/entities", json=entity(new_id()), headers=link(dead)), 504,
                          "LdContextNotAvailable", "Unable to download context")
    assert body["detail"] == dead
    calls = {"n": 0}

    def flaky(_request: object) -> Reply:
        calls["n"] += 1
        if calls["n"] <= 3:  # every attempt of the first request fails
            return Reply(b"down", status=503)
        return Reply(orjson.dumps({"@context": {"Flaky": "http://example.org/Flaky"}}))

    with PayloadServer({"/flaky.jsonld": flaky}) as srv:
        url = srv.url("/flaky.jsonld")
        assert_problem(client.post("/entities", json=entity(new_id(), "Flaky"), headers=link(url)), 504,
                       "LdContextNotAvailable")
        assert calls["n"] == 3
        assert client.post("/entities", json=entity(new_id(), "Flaky"), headers=link(url)).status_code == 201


def test_hosted_contexts_crud(client: httpx.Client, broker: EmbeddedBroker) -> None:
    created = client.post("/jsonldContexts", json={"@context": {"Lamp": "http://example.org/Lamp"}})
    assert created.status_code == 201
    # A relative Location (ETSI suite 050_01; Orion-LD sends the absolute URL); the context's URL is
    # the broker's address + that path.
    assert created.headers["location"].startswith(f"{BASE}/jsonldContexts/")
    location = broker.url + created.headers["location"]
    local_id = location.rsplit("/", 1)[1]
    assert client.get(f"/jsonldContexts/{local_id}").json() == {"@context": {"Lamp": "http://example.org/Lamp"}}
    assert location in client.get("/jsonldContexts", params={"kind": "Hosted"}).json()
    details = client.get("/jsonldContexts", params={"details": "true"}).json()
    assert any(d["URL"] == location and d["kind"] == "Hosted" for d in details)
    assert_problem(client.get("/jsonldContexts", params={"kind": "Bogus"}), 400, "BadRequestData")
    ident = new_id("Lamp")
    assert client.post("/entities", json=entity(ident, "Lamp"), headers=link(location)).status_code == 201
    assert client.get(f"/entities/{ident}").json()["type"] == "http://example.org/Lamp"
    assert client.delete(f"/jsonldContexts/{local_id}").status_code == 204
    assert_problem(client.get(f"/jsonldContexts/{local_id}"), 404, "ResourceNotFound", "Context Not Found")
    assert_problem(client.delete(f"/jsonldContexts/{CORE}"), 400, "BadRequestData")


def test_offline_contexts_directory_and_mapping(tmp_path: Path) -> None:
    url = "http://offline.example/contexts/parking.jsonld"
    (tmp_path / "offline.example" / "contexts").mkdir(parents=True)
    (tmp_path / "offline.example" / "contexts" / "parking.jsonld").write_bytes(
        orjson.dumps({"@context": {"Spot": "https://example.org/parking#Spot"}}))
    mapped = tmp_path / "mapped.jsonld"
    mapped.write_bytes(orjson.dumps({"@context": {"Meter": "https://example.org/parking#Meter"}}))
    settings = BrokerSettings(port=0, contexts_dir=tmp_path,
                              context_files={"http://mapped.example/m.jsonld": mapped})
    with EmbeddedBroker(settings) as running, httpx.Client(base_url=running.url + BASE) as http:
        ident = new_id("Spot")
        assert http.post("/entities", json=entity(ident, "Spot"), headers=link(url)).status_code == 201
        assert http.get(f"/entities/{ident}").json()["type"] == "https://example.org/parking#Spot"
        meter = new_id("Meter")
        assert http.post("/entities", json=entity(meter, "Meter"),
                         headers=link("http://mapped.example/m.jsonld")).status_code == 201
        assert http.get(f"/entities/{meter}").json()["type"] == "https://example.org/parking#Meter"


def test_reference_dirs_answer_official_smart_data_models_context_urls(tmp_path: Path) -> None:
    """`reference_dirs` (`broker serve --reference-dir`): `<dir>/<subject>/context.jsonld` is the
    official subject context, on GitHub or its Pages site; nothing outside the directory is read."""
    (tmp_path / "refs" / "dataModel.Lamps").mkdir(parents=True)
    (tmp_path / "refs" / "dataModel.Lamps" / "context.jsonld").write_bytes(
        orjson.dumps({"@context": {"Lamp": "https://smartdatamodels.org/dataModel.Lamps/Lamp"}}))
    (tmp_path / "context.jsonld").write_bytes(orjson.dumps({"@context": {"Lamp": "https://evil.example/Lamp"}}))
    settings = BrokerSettings(port=0, reference_dirs=[tmp_path / "nowhere", tmp_path / "refs"],
                              context_attempts=1, context_timeout=0.5)
    official = ["https://raw.githubusercontent.com/smart-data-models/dataModel.Lamps/master/context.jsonld",
                "https://smart-data-models.github.io/dataModel.Lamps/context.jsonld"]
    with EmbeddedBroker(settings) as running, httpx.Client(base_url=running.url + BASE) as http:
        for url in official:
            ident = new_id("Lamp")
            assert http.post("/entities", json=entity(ident, "Lamp"), headers=link(url)).status_code == 201
            assert http.get(f"/entities/{ident}").json()["type"] == "https://smartdatamodels.org/dataModel.Lamps/Lamp"
        escaping = "https://raw.githubusercontent.com/smart-data-models/../master/context.jsonld"
        answer = http.post("/entities", json=entity(new_id("Lamp"), "Lamp"), headers=link(escaping))
        assert answer.status_code >= 400 and "evil" not in answer.text
