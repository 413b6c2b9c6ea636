"""Fixtures for the embedded-broker conformance suite: a broker on a free loopback port, an HTTP client.

`broker` and `client` reach every test module through conftest.py's `pytest_plugins`; import the helpers
(`new_id`, `entity`, `assert_problem`...) from here.
With BURGAS_TEST_BROKER_URL set (e.g. http://localhost:1026, the compose Orion-LD; docs/orion-ld.md)
`broker` is that external broker instead of an embedded one.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ngsild_broker import BrokerSettings, EmbeddedBroker

BASE = "/ngsi-ld/v1"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


@dataclass(frozen=True)
class ExternalBroker:
    """A broker the tests did not start (BURGAS_TEST_BROKER_URL): only its URL is known."""

    url: str


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker | ExternalBroker]:
    """One in-memory broker per test module, or the external one named by BURGAS_TEST_BROKER_URL."""
    external = os.environ.get("BURGAS_TEST_BROKER_URL")
    if external:  # the same tests, unchanged, against e.g. Orion-LD (make up)
        yield ExternalBroker(external.rstrip("/"))
        return
    with EmbeddedBroker(BrokerSettings(port=0, context_timeout=2.0)) as running:
        yield running


@pytest.fixture
def client(broker: EmbeddedBroker) -> Iterator[httpx.Client]:
    """A client whose base URL is the broker's /ngsi-ld/v1."""
    with httpx.Client(base_url=broker.url + BASE, timeout=30.0) as http:
        yield http


def new_id(kind: str = "Thing") -> str:
    """A fresh entity id, so tests sharing a broker never collide."""
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:12]}"


def entity(entity_id: str, kind: str = "Thing", **attrs: Any) -> dict[str, Any]:
    """A normalized entity with Property attributes."""
    body: dict[str, Any] = {"id": entity_id, "type": kind}
    for name, value in attrs.items():
        body[name] = {"type": "Property", "value": value}
    return body


def assert_problem(response: httpx.Response, status: int, kind: str, title: str | None = None) -> dict:
    """A ProblemDetails answer: status, application/json, no Link, type, non-empty title/detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "link" not in response.headers
    body = response.json()
    assert body["type"] == ERRORS + kind
    assert body["title"] and body["detail"]
    assert "status" not in body
    if title is not None:
        assert body["title"] == title
    return body


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def link(url: str) -> dict[str, str]:
    """A Link header carrying a JSON-LD context."""
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}
