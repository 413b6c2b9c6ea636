"""JSON-LD @context handling: the NGSI-LD subset of term expansion/compaction, remote and hosted contexts.

Only entity types and attribute names are expanded (values are not), which is what Orion-LD does.
The active context is `[user contexts..., core v1.8]` processed in order, so core terms (and the core
`@vocab`) win over user terms, as in Orion-LD.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from ngsild_broker.core_context import CORE_CONTEXT_URL, core_context
from ngsild_broker.errors import NgsiError, bad_request
from ngsild_broker.limits import too_deep
from ngsild_broker.settings import BrokerSettings

if TYPE_CHECKING:  # storage imports entities, which imports this module
    from ngsild_broker.storage import EntityStore

logger = logging.getLogger(__name__)

CORE_URL = CORE_CONTEXT_URL
LINK_REL = "http://www.w3.org/ns/json-ld#context"
_CORE_URL_RE = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/(v1/)?ngsi-ld-core-context(-v[\d.]+)?\.jsonld$")
_HOSTED_PATH_RE = re.compile(r"/ngsi-ld/v1/jsonldContexts/([^/]+)$")
# The official Smart Data Models subject context, on GitHub or on its GitHub Pages site.
_SDM_CONTEXT_RE = re.compile(
    r"^https://(?:raw\.githubusercontent\.com/smart-data-models/(?P<a>[\w.-]+)/(?:refs/heads/)?master"
    r"|smart-data-models\.github\.io/(?P<b>[\w.-]+))/context\.jsonld$")
_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")
_MAX_DEPTH = 8
# Levels of arrays/objects within one @context value (term definitions nest 2-3 levels).
_MAX_VALUE_NESTING = 16
_MAX_CACHED_CONTEXTS = 512


def is_core_url(url: str) -> bool:
    """True for any version of the ETSI core context URL (served built in, never downloaded)."""
    return bool(_CORE_URL_RE.match(url))


def _resolve(value: str, defs: dict[str, Any], vocab: str, seen: frozenset[str]) -> str | None:
    """The absolute IRI of a term definition value within the merged definitions."""
    if value.startswith("@"):
        return value
    prefix, colon, suffix = value.partition(":")
    if colon:
        if suffix.startswith("//") or prefix not in defs or prefix in seen:
            return value
        base = _definition_iri(prefix, defs, vocab, seen | {prefix})
        return value if base is None else base + suffix
    if value in defs and value not in seen:
        return _definition_iri(value, defs, vocab, seen | {value})
    return vocab + value


def _definition_iri(term: str, defs: dict[str, Any], vocab: str, seen: frozenset[str]) -> str | None:
    """The IRI a term is defined as (None for `"term": null` or non-IRI definitions)."""
    raw = defs[term]
    if isinstance(raw, dict):
        if "@id" not in raw:
            # An expanded definition without @id maps the term through a prefix or @vocab.
            return _resolve(term, defs, vocab, seen)
        raw = raw["@id"]
    if not isinstance(raw, str):
        return None
    return _resolve(raw, defs, vocab, seen)


class Context:
    """An active context: expands terms to IRIs and compacts IRIs back to terms."""

    def __init__(self, definitions: list[dict[str, Any]], user_value: Any = None) -> None:
        merged: dict[str, Any] = {}
        vocab = ""
        for local in definitions:
            for key, raw in local.items():
                if key == "@vocab":
                    vocab = raw if isinstance(raw, str) else vocab
                elif not key.startswith("@"):
                    merged[key] = raw
        self.vocab = vocab
        self.terms: dict[str, str] = {}
        prefixes: list[tuple[str, str]] = []
        for term in merged:
            iri = _definition_iri(term, merged, vocab, frozenset({term}))
            if iri is None or iri.startswith("@"):
                continue
            self.terms[term] = iri
            # JSON-LD 1.1: only simple definitions ending in a gen-delim may serve as prefixes.
            if isinstance(merged[term], str) and iri.endswith(_GEN_DELIMS) and ":" not in term:
                prefixes.append((iri, term))
        self._prefixes = sorted(prefixes, key=lambda p: -len(p[0]))
        self._prefix_map = {term: iri for iri, term in prefixes}
        self.inverse: dict[str, str] = {}
        for term, iri in self.terms.items():
            best = self.inverse.get(iri)
            if best is None or (len(term), term) < (len(best), best):
                self.inverse[iri] = term
        self.user_value = user_value
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}

    def expand(self, term: str) -> str:
        """The IRI of an entity type or attribute name."""
        hit = self._expanded.get(term)
        if hit is not None:
            return hit
        iri = self.terms.get(term)
        if iri is None:
            prefix, colon, suffix = term.partition(":")
            if colon:
                base = self._prefix_map.get(prefix)
                iri = base + suffix if base is not None and not suffix.startswith("//") else term
            else:
                iri = self.vocab + term
        if len(self._expanded) < 100_000:
            self._expanded[term] = iri
        return iri

    def compact(self, iri: str) -> str:
        """The shortest name for an IRI: a term, a @vocab-relative name, a compact IRI, else itself."""
        hit = self._compacted.get(iri)
        if hit is not None:
            return hit
        term = self.inverse.get(iri)
        if term is None:
            if self.vocab and iri.startswith(self.vocab) and len(iri) > len(self.vocab):
                suffix = iri[len(self.vocab):]
                if self.terms.get(suffix, iri) == iri and ":" not in suffix:
                    term = suffix
            if term is None:
                for base, prefix in self._prefixes:
                    if iri.startswith(base) and len(iri) > len(base):
                        term = f"{prefix}:{iri[len(base):]}"
                        break
            if term is None:
                term = iri
        if len(self._compacted) < 100_000:
            self._compacted[iri] = term
        return term

    @property
    def link_url(self) -> str:
        """The context URL for a response Link header: the request's single URL (alone or in an
        array), else the core."""
        value = self.user_value
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        return value if isinstance(value, str) else CORE_URL

    def body_value(self) -> Any:
        """The @context member of an application/ld+json response: the request's context unchanged.

        GS CIM 009 and the ETSI suite echo the context as given; Orion-LD appends the core context
        (`[userCtx, coreCtx]`), which means the same since the core is always in effect.
        """
        return CORE_URL if self.user_value is None else self.user_value


# Everything RFC 3986 allows in a URI stays as is (so do existing %XX escapes); the rest is escaped.
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"


def header_uri(iri: str) -> str:
    """An IRI as a URI fit for an HTTP header: non-ASCII (RFC 3987 section 3.1) and controls %-escaped.

    Ids may be IRIs (`urn:ngsi-ld:Stop:Бургас-9`) but header values are Latin-1 on the wire: writing
    the raw id there failed after the entity was committed.
    """
    return iri if iri.isascii() and iri.isprintable() and " " not in iri else quote(iri, safe=_URI_SAFE)


def link_header(url: str) -> str:
    """A well-formed JSON-LD context Link header value."""
    return f'<{header_uri(url)}>; rel="{LINK_REL}"; type="application/ld+json"'


def parse_link_header(value: str) -> str:
    """The context URL of a Link header, with Orion-LD's error texts."""
    text = value.strip()
    if not text.startswith("<"):
        raise bad_request("invalid Link HTTP header", "link doesn't start with '<'")
    end = text.find(">")
    if end < 0:
        raise bad_request("invalid Link HTTP header", "missing '>' at end of URL of link")
    url = text[1:end].strip()
    check_context_url(url)
    return url


def check_context_url(url: str) -> None:
    """400 unless `url` parses as an absolute URL (`http://[::1` made urlsplit raise, a 500)."""
    if ":" not in url:
        raise bad_request("Invalid @context", "Not a URI")
    try:
        _ = urlsplit(url).port  # .port raises on a port out of range
    except ValueError as exc:
        raise bad_request("Invalid @context", f"Not a URI: {exc}") from None


@dataclass
class ContextRecord:
    """A known context document: downloaded (Cached) or posted to /jsonldContexts (Hosted)."""

    url: str
    local_id: str
    kind: str
    value: Any
    created_at: str
    hits: int = 0
    last_usage: str | None = None
    origin: str = "Downloaded"

    def details(self) -> dict[str, Any]:
        """The `details=true` view of GET /jsonldContexts."""
        # No `extraInfo` (optional in GS CIM 009; Orion-LD sends {origin, ...}): the ETSI suite's
        # detail checks cannot evaluate an object member (052_05_02).
        out: dict[str, Any] = {"URL": self.url, "localId": self.local_id, "kind": self.kind,
                               "createdAt": self.created_at, "numberOfHits": self.hits}
        if self.last_usage:
            out["lastUsage"] = self.last_usage
        return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


class ContextResolver:
    """Turns Link headers and body @context values into `Context`s; owns the context store."""

    def __init__(self, settings: BrokerSettings, store: EntityStore,
                 client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._owns_client = client is None
        self._core_doc = core_context()["@context"]
        self.core = Context([self._core_doc])
        self._records: dict[str, ContextRecord] = {}
        for url, local_id, kind, body, created in store.load_contexts():
            self._records[url] = ContextRecord(url, local_id, kind, orjson.loads(body), created,
                                               origin="Downloaded" if kind == "Cached" else "UserCreated")
        self._contexts: dict[bytes, Context] = {}
        self._downloads: dict[str, asyncio.Future[Any]] = {}
        # At most this many downloads at once, each holding at most max_context_bytes.
        self._download_slots = asyncio.Semaphore(settings.max_context_downloads)

    async def aclose(self) -> None:
        """Close the HTTP client if this resolver created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()

    # -- building active contexts ----------------------------------------------------------------
    async def from_link(self, header: str | None) -> Context:
        """The active context of a request with an optional Link header."""
        if header is None:
            return self.core
        return await self.from_value(parse_link_header(header))

    async def from_value(self, value: Any) -> Context:
        """The active context for a body @context value (URL, object or array)."""
        if value is None:
            return self.core
        if too_deep(value, _MAX_VALUE_NESTING):
            raise bad_request("Invalid @context", "@context nested too deeply")
        key = orjson.dumps(value)
        ctx = self._contexts.get(key)
        if ctx is not None:
            self._touch(value)
            return ctx
        definitions: list[dict[str, Any]] = []
        await self._collect(value, definitions, 0, set())
        ctx = Context([*definitions, self._core_doc],
                      None if isinstance(value, str) and is_core_url(value) else value)
        if len(self._contexts) >= _MAX_CACHED_CONTEXTS:
            self._contexts.clear()
        self._contexts[key] = ctx
        self._touch(value)  # after the download: a first use counts too (ETSI 053_06_01)
        return ctx

    async def _collect(self, value: Any, out: list[dict[str, Any]], depth: int, seen: set[str]) -> None:
        if depth > _MAX_DEPTH:
            raise bad_request("Invalid @context", "@context nested too deeply")
        if isinstance(value, str):
            check_context_url(value)
            if is_core_url(value) or value in seen:
                return
            seen.add(value)
            await self._collect(await self.document(value), out, depth + 1, seen)
        elif isinstance(value, list):
            if not value and depth == 0:
                raise bad_request("Invalid @context", "Empty @context")
            for item in value:
                await self._collect(item, out, depth + 1, seen)
        elif isinstance(value, dict):
            if "@context" in value and depth > 0 and len(value) == 1:
                await self._collect(value["@context"], out, depth + 1, seen)
                return
            for key, raw in value.items():
                if not isinstance(raw, (str, dict)) and raw is not None and not key.startswith("@"):
                    raise bad_request("Invalid key-value in @context", key)
            out.append(value)
        elif value is None:
            return
        else:
            raise bad_request("Invalid @context", "Not a JSON Array nor Object nor a String")

    # -- documents ------------------------------------------------------------------------------
    async def document(self, url: str) -> Any:
        """The @context value of the document at `url` (hosted, cached, offline or downloaded)."""
        if is_core_url(url):
            return self._core_doc
        record = self._lookup(url)
        if record is not None:
            return record.value
        local = self._offline(url)
        if local is not None:  # listed and detailed as a cached context, as a download would be
            self._remember(url, local)
            return local
        pending = self._downloads.get(url)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._downloads[url] = pending
            try:
                value = await self._download(url)
                self._remember(url, value)
                pending.set_result(value)
            except BaseException as exc:  # waiters get the same error; nothing is cached
                pending.set_exception(exc)
                pending.exception()  # mark retrieved when nobody else waits
                raise
            finally:
                del self._downloads[url]
            return value
        return await asyncio.shield(pending)

    def _touch(self, value: Any) -> None:
        """Count a use of the known contexts a request names (numberOfHits, lastUsage)."""
        for url in value if isinstance(value, list) else [value]:
            try:
                record = self._lookup(url) if isinstance(url, str) else None
            except ValueError:  # not a URL at all: _collect answers 400 for it
                continue
            if record is not None:
                self.touch(record)

    @staticmethod
    def touch(record: ContextRecord) -> None:
        """Count one use of a context (numberOfHits, lastUsage)."""
        if record.url != CORE_URL:
            record.hits += 1
            record.last_usage = _now()

    def _lookup(self, url: str) -> ContextRecord | None:
        record = self._records.get(url)
        if record is None:
            match = _HOSTED_PATH_RE.search(urlsplit(url).path)
            if match:
                record = self.by_id(match.group(1))
                if record is not None and record.kind != "Hosted":
                    record = None
        return record

    def by_id(self, ident: str) -> ContextRecord | None:
        """A known context by local id or URL."""
        if ident in self._records:
            return self._records[ident]
        return next((r for r in self._records.values() if r.local_id == ident), None)

    def _offline(self, url: str) -> Any:
        path = self._settings.context_files.get(url)  # the operator's own mapping
        if path is None and self._settings.contexts_dir is not None and _is_web_url(url):
            path = _offline_file(self._settings.contexts_dir, url)
        if path is None and self._settings.reference_dirs:
            path = _reference_file(self._settings.reference_dirs, url)
        if path is None:
            return None
        try:
            doc = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            logger.warning("offline context %s for %s unreadable: %s", path, url, exc)
            raise NgsiError(504, "LdContextNotAvailable", "Unable to download context", url) from exc
        return _context_of(doc, url)

    async def _download(self, url: str) -> Any:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise NgsiError(504, "LdContextNotAvailable", "Unable to download context", url)
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=True)
        last: Exception | None = None
        async with self._download_slots:
            for attempt in range(1, self._settings.context_attempts + 1):
                try:
                    # A whole-download deadline too: a server trickling bytes would hold a slot.
                    async with asyncio.timeout(2 * self._settings.context_timeout):
                        body = await self._fetch(url)
                    break
                except (httpx.HTTPError, TimeoutError) as exc:
                    last = exc
                    logger.info("context download %s attempt %d failed: %s", url, attempt, exc)
                except zlib.error as exc:
                    raise bad_request("Invalid @context", f"context {url}: corrupt compressed body") from exc
            else:
                raise NgsiError(504, "LdContextNotAvailable", "Unable to download context", url) from last
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_request("JSON Parse Error in @context", url) from None
        finally:
            del body
        return _context_of(doc, url)

    async def _fetch(self, url: str) -> bytes:
        """The body at `url`, decompressed here so that no more than max_context_bytes is inflated.

        httpx inflates each network chunk whole: one 64 KiB chunk of a gzip bomb is 64 MiB.
        """
        assert self._client is not None
        limit = self._settings.max_context_bytes
        body = bytearray()
        async with self._client.stream(
                "GET", url, timeout=self._settings.context_timeout,
                headers={"Accept": "application/ld+json, application/json",
                         "Accept-Encoding": "gzip, deflate"}) as response:
            if response.status_code >= 400:
                raise httpx.HTTPStatusError(f"status {response.status_code}",
                                            request=response.request, response=response)
            inflate = _inflater(response.headers.get("content-encoding", ""), url)
            async for raw in response.aiter_raw():
                room = limit - len(body)
                chunk = inflate.decompress(raw, room + 1) if inflate is not None else raw
                if len(chunk) > room:
                    raise bad_request("Invalid @context", f"context {url} is larger than {limit} bytes")
                body += chunk
            if inflate is not None:
                body += inflate.flush()
                if len(body) > limit:
                    raise bad_request("Invalid @context", f"context {url} is larger than {limit} bytes")
        return bytes(body)

    def _remember(self, url: str, value: Any) -> None:
        record = ContextRecord(url, uuid.uuid4().hex, "Cached", value, _now())
        self._records[url] = record
        self._store.put_context(url, record.local_id, "Cached", orjson.dumps(value), record.created_at)
        self._contexts.clear()

    # -- /jsonldContexts -----------------------------------------------------------------------------
    def host(self, value: Any, base_url: str) -> ContextRecord:
        """Store a posted context and return its record (URL served by this broker)."""
        local_id = str(uuid.uuid4())
        url = f"{base_url.rstrip('/')}/ngsi-ld/v1/jsonldContexts/{local_id}"
        record = ContextRecord(url, local_id, "Hosted", value, _now(), origin="UserCreated")
        self._records[url] = record
        self._store.put_context(url, local_id, "Hosted", orjson.dumps(value), record.created_at)
        return record

    def records(self) -> list[ContextRecord]:
        """Every stored context (cached and hosted), oldest first."""
        return sorted(self._records.values(), key=lambda r: r.created_at)

    def core_record(self) -> ContextRecord:
        """The built-in core context as a record."""
        return ContextRecord(CORE_URL, "core", "Cached", self._core_doc, "1970-01-01T00:00:00.000Z",
                             origin="Builtin")

    def forget(self, record: ContextRecord) -> None:
        """Remove a context from memory and storage."""
        self._records.pop(record.url, None)
        self._store.delete_context(record.url)
        self._contexts.clear()

    async def reload(self, record: ContextRecord) -> None:
        """Download a cached context again (DELETE ...?reload=true)."""
        value = await self._download(record.url)
        self.forget(record)
        self._remember(record.url, value)


def _inflater(encoding: str, url: str) -> Any:
    """A zlib decompressor for the response's Content-Encoding (None for identity)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise bad_request("Invalid @context", f"context {url}: unsupported Content-Encoding {encoding}")


def _context_of(doc: Any, url: str) -> Any:
    """The @context member of a downloaded document."""
    if isinstance(doc, dict) and "@context" in doc:
        return doc["@context"]
    raise bad_request("Invalid @context", f"no @context member in {url}")


def _is_web_url(url: str) -> bool:
    """http(s) only: a request never names a local file (`file:///../secret.jsonld`)."""
    return urlsplit(url).scheme in ("http", "https")


def _inside(directory: Path, candidate: Path) -> Path | None:
    """`candidate` if it resolves to a file inside `directory` (no `..` or symlink escapes)."""
    resolved = candidate.resolve()
    return resolved if resolved.is_relative_to(directory.resolve()) and resolved.is_file() else None


def _reference_file(directories: list[Path], url: str) -> Path | None:
    """The local copy of an official Smart Data Models subject context, if a directory has it."""
    match = _SDM_CONTEXT_RE.match(url)
    if match is None:
        return None
    subject = match.group("a") or match.group("b")
    if subject.startswith("."):
        return None
    return next((d / subject / "context.jsonld" for d in directories
                 if (d / subject / "context.jsonld").is_file()), None)


def _offline_file(directory: Path, url: str) -> Path | None:
    """A local copy of `url`: `<dir>/index.json` mapping, `<dir>/<host>/<path>`, or `<dir>/<basename>`.

    Whatever the URL says, only files inside `directory` are ever read.
    """
    index = directory / "index.json"
    if index.is_file():
        try:
            mapping = orjson.loads(index.read_bytes())
        except orjson.JSONDecodeError:
            mapping = {}
        if isinstance(mapping, dict) and isinstance(mapping.get(url), str):
            return _inside(directory, directory / mapping[url])
    parts = urlsplit(url)
    if not parts.path.strip("/"):
        return None
    candidates = [directory / parts.netloc / parts.path.lstrip("/"), directory / Path(parts.path).name]
    return next((found for c in candidates if (found := _inside(directory, c)) is not None), None)
