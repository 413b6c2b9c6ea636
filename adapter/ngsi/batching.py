"""Outgoing entities and their batches: encoded once, grouped by @context, capped in count and bytes."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from adapter.errors import ConfigError

# Any version of the core context: brokers always apply their own core context, so it never
# needs to travel in a Link header (NGSI-LD clause 5.5.7).
CORE_CONTEXT_MARK = "/ngsi-ld-core-context"
LINK_REL = "http://www.w3.org/ns/json-ld#context"

K = TypeVar("K", bound=Hashable)
_NOT_ATTRIBUTES = frozenset(("id", "type", "@context"))


@dataclass(frozen=True, slots=True)
class OutgoingEntity:
    """One already-serialised normalized NGSI-LD entity on its way to the broker.

    `body` is the entity without "@context", as a dict or as JSON bytes of an object;
    `context` is its @context (URL, object, or a list of them).
    """

    id: str
    type: str
    body: bytes | Mapping[str, Any]
    context: Any = None
    # The attribute names, when the producer knows them (saves parsing `body` bytes again).
    attrs: frozenset[str] | None = field(default=None, compare=False)

    def encode(self, with_context: bool) -> bytes:
        """JSON of the entity, with its @context inside when `with_context`."""
        if isinstance(self.body, (bytes, bytearray, memoryview)):
            raw = bytes(self.body)
            if not with_context or self.context is None:
                return raw
            # Splice "@context" in front of the first member instead of parsing the body again.
            head = raw.lstrip()
            if not head.startswith(b"{"):
                raise ConfigError("entity body is not a JSON object", entity_id=self.id)
            rest = head[1:].lstrip()
            ctx = b'{"@context":' + orjson.dumps(self.context)
            return ctx + (rest if rest.startswith(b"}") else b"," + rest)
        if with_context and self.context is not None:
            return orjson.dumps({**self.body, "@context": self.context})
        return orjson.dumps(self.body)

    def attribute_names(self) -> frozenset[str]:
        """Names of the attributes the body carries (everything but id, type and @context)."""
        if self.attrs is not None:
            return self.attrs
        body = self.body if isinstance(self.body, Mapping) else orjson.loads(self.body)
        return frozenset(k for k in body if k not in _NOT_ATTRIBUTES)


def link_url(context: Any) -> str | None:
    """The one URL to send in a Link header for `context`, None when only the core context remains.

    Raises ConfigError when the context cannot travel in a Link header (inline objects or several
    non-core URLs): use context_mode "body" or a served context then.
    """
    items = context if isinstance(context, (list, tuple)) else [context] if context is not None else []
    rest = [c for c in items if not (isinstance(c, str) and CORE_CONTEXT_MARK in c)]
    if not rest:
        return None
    if len(rest) == 1 and isinstance(rest[0], str):
        return rest[0]
    raise ConfigError("this @context cannot be sent in a Link header (it has inline terms or several "
                      "URLs); set BURGAS_CONTEXT_MODE=body or serve one combined context URL")


def attribute_target(attr: str, context: Any) -> tuple[str, str | None]:
    """How to name an attribute in a URL path: (name, Link URL or None).

    Bodiless requests (DELETE) can carry a context only in a Link header. A term defined in an
    inline object of the context is sent expanded (its IRI); any other term is expanded by the
    broker with the context's single remaining URL (e.g. the Smart Data Models subject context).
    """
    items = context if isinstance(context, (list, tuple)) else [context] if context is not None else []
    for item in reversed(items):  # later definitions win, as in JSON-LD processing
        if isinstance(item, Mapping) and attr in item:
            definition = item[attr]
            iri = definition.get("@id") if isinstance(definition, Mapping) else definition
            if isinstance(iri, str) and ":" in iri:
                return iri, None
    urls = [c for c in items if isinstance(c, str)]
    if ":" in attr:
        return attr, None
    return attr, link_url(urls)


def link_header(url: str) -> str:
    """A well-formed JSON-LD context Link header value (strictly parsed since Orion-LD PR #1761)."""
    return f'<{url}>; rel="{LINK_REL}"; type="application/ld+json"'


@dataclass(slots=True)
class Batch(Generic[K]):
    """Encoded array items of one request plus the keys they answer for."""

    keys: list[K] = field(default_factory=list)
    items: list[bytes] = field(default_factory=list)
    size: int = 2  # the enclosing brackets

    def body(self) -> bytes:
        """The request body: a JSON array of the items."""
        return b"[" + b",".join(self.items) + b"]"

    def halves(self) -> tuple[Batch[K], Batch[K]]:
        """Two batches with the first and second half of the items."""
        mid = len(self.items) // 2
        return (_batch(self.keys[:mid], self.items[:mid]), _batch(self.keys[mid:], self.items[mid:]))


def _batch(keys: list[K], items: list[bytes]) -> Batch[K]:
    return Batch(keys, items, 2 + sum(map(len, items)) + max(len(items) - 1, 0))


def build_batches(items: Iterable[tuple[K, bytes]], max_entities: int,
                  max_bytes: int) -> Iterator[tuple[Batch[K], list[K]]]:
    """Cut encoded items into batches of at most `max_entities` and `max_bytes` bytes of body.

    Yields (batch, oversize keys): an item that alone exceeds `max_bytes` is never sent and is
    reported with the next batch (possibly an empty one) so that the caller can reject it.
    """
    batch: Batch[K] = Batch()
    oversize: list[K] = []
    for key, item in items:
        if len(item) + 2 > max_bytes:
            oversize.append(key)
            continue
        extra = len(item) + (1 if batch.items else 0)  # the separating comma
        if batch.items and (len(batch.items) >= max_entities or batch.size + extra > max_bytes):
            yield batch, oversize
            batch, oversize = Batch(), []
            extra = len(item)
        batch.keys.append(key)
        batch.items.append(item)
        batch.size += extra
    if batch.items or oversize:
        yield batch, oversize


def occurrence_rounds(keys: Sequence[K]) -> list[list[int]]:
    """Indices grouped so that no key repeats in a round; rounds keep each key's order.

    Brokers disagree on duplicate ids inside one batch (merged with a 207 error in Orion-LD legacy,
    silently in experimental), so a repeated id goes out in a later request instead.
    """
    seen: dict[K, int] = {}
    rounds: list[list[int]] = []
    for index, key in enumerate(keys):
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(index)
    return rounds
