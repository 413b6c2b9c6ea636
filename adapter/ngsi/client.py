"""The NGSI-LD broker client: batched upserts and deletes with per-entity results, retries and auth.

Context placement (setting `context_mode`):
- "body" (default): `Content-Type: application/ld+json`, every entity carries its own @context.
  Works for any context (lists, inline objects) and lets entities with different contexts share
  a batch.
- "link": `Content-Type: application/json` plus one Link header per request (the form Orion-LD
  prefers for batches). A Link header holds a single URL, so the entity's context minus the core
  context (which brokers always apply) must be exactly one URL; anything else is a ConfigError.
  Entities with different context URLs go in different requests.
DELETE requests have no body: an attribute defined inline in the context is deleted by its
expanded IRI, any other by its term with the context's single remaining URL in a Link header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from adapter.backoff import TRANSIENT_STATUSES, Backoff, clock_sleep
from adapter.clock import Clock, SystemClock
from adapter.errors import AdapterError, BrokerUnavailableError, ConfigError, EntityRejectedError
from adapter.loopback import DIRECT
from adapter.ngsi.auth import BearerToken, BrokerAuth, OAuth2ClientCredentials
from adapter.ngsi.batching import (
    Batch,
    OutgoingEntity,
    attribute_target,
    build_batches,
    link_header,
    link_url,
    occurrence_rounds,
)
from adapter.ngsi.results import BatchResult, Operation, parse_problem, read_batch_answer, request_error, should_isolate
from adapter.settings import DEFAULT_BATCH_MAX_BYTES, Settings

logger = logging.getLogger(__name__)

API = "/ngsi-ld/v1"
MAX_PAGE_SIZE = 1000  # Orion-LD refuses limit > 1000 (summary item 12)
NO_HOSTING_STATUSES = frozenset({404, 405, 501})  # a broker without POST /jsonldContexts
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of transient failures: exponential backoff with jitter."""

    attempts: int = 5
    max_seconds: float = 120.0
    initial_wait: float = 0.5
    max_wait: float = 15.0

    @property
    def backoff(self) -> Backoff:
        """The wait between attempts (jitter: up to one initial wait)."""
        return Backoff(self.initial_wait, self.max_wait, jitter=self.initial_wait)


@dataclass(frozen=True)
class AttributeDelete:
    """One attribute to delete from one entity; `context` expands a short attribute name."""

    entity_id: str
    attr: str
    context: Any = None


class _RetryError(Exception):
    """A retryable answer, carried out of the tenacity loop when attempts run out."""

    def __init__(self, response: httpx.Response | None = None, error: Exception | None = None) -> None:
        self.response = response
        self.error = error


class BrokerClient:
    """Talks to one NGSI-LD broker (one tenant) over an injectable `httpx.AsyncClient`."""

    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None,
                 tenant: str | None = None, auth: BrokerAuth | None = None,
                 upsert_mode: Literal["update", "replace"] = "update",
                 context_mode: Literal["link", "body"] = "body",
                 batch_max_entities: int = 1000, batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES,
                 concurrency: int = 4, retry: RetryPolicy = RetryPolicy(),
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 max_response_bytes: int = 64 * 1024 * 1024, page_size: int = MAX_PAGE_SIZE,
                 max_query_results: int = 1_000_000, clock: Clock | None = None) -> None:
        if upsert_mode not in ("update", "replace") or context_mode not in ("link", "body"):
            raise ConfigError(f"bad upsert_mode {upsert_mode!r} or context_mode {context_mode!r}")
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.auth = auth
        self.upsert_mode = upsert_mode
        self.context_mode = context_mode
        self.batch_max_entities = batch_max_entities
        self.batch_max_bytes = batch_max_bytes
        self.retry = retry
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_response_bytes = max_response_bytes
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self.max_query_results = max_query_results
        self.clock = clock or SystemClock()  # what retries wait on
        self._owns_http = http is None
        # Keep-alive pool sized for the batches in flight.
        self._http = http or httpx.AsyncClient(
            timeout=self.timeout, mounts=DIRECT, limits=httpx.Limits(max_connections=concurrency,
                                                      max_keepalive_connections=concurrency))
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)

    @classmethod
    def from_settings(cls, settings: Settings, *, base_url: str | None = None,
                      http: httpx.AsyncClient | None = None) -> BrokerClient:
        """A client configured from Settings (base_url overrides settings.broker_url)."""
        url = base_url or settings.broker_url
        if not url:
            raise ConfigError("no broker URL (BURGAS_BROKER_URL) and none given")
        auth: BrokerAuth | None = None
        if settings.broker_token is not None:
            auth = BearerToken(settings.broker_token)
        elif settings.oauth_token_url and settings.oauth_client_id and settings.oauth_client_secret:
            auth = OAuth2ClientCredentials(settings.oauth_token_url, settings.oauth_client_id,
                                           settings.oauth_client_secret, scope=settings.oauth_scope)
        return cls(url, http=http, tenant=settings.tenant, auth=auth, upsert_mode=settings.upsert_mode,
                   context_mode=settings.context_mode, batch_max_entities=settings.batch_max_entities,
                   batch_max_bytes=settings.batch_max_bytes, concurrency=settings.concurrency,
                   retry=RetryPolicy(settings.retry_attempts, settings.retry_max_seconds,
                                     settings.retry_initial_wait, settings.retry_max_wait),
                   timeout=httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout))

    def with_tenant(self, tenant: str | None) -> BrokerClient:
        """The same client (connections, auth, concurrency slots) for another tenant."""
        clone = object.__new__(BrokerClient)
        clone.__dict__.update(self.__dict__)
        clone.tenant = tenant
        clone._owns_http = False
        return clone

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> BrokerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- batch operations -------------------------------------------------------------------

    async def upsert(self, entities: Iterable[OutgoingEntity]) -> BatchResult[str]:
        """Create or update entities (`options=update|replace`); one result per entity id."""
        entities = list(entities)
        ids = [e.id for e in entities]
        if len(set(ids)) == len(ids):  # the usual case: every id once, one round
            return await self._upsert_round(entities)
        result: BatchResult[str] = BatchResult()
        # A repeated id goes out in a later round so each request holds an id once, in order.
        for round_ in occurrence_rounds(ids):
            result.merge(await self._upsert_round([entities[i] for i in round_]))
        return result

    async def _upsert_round(self, entities: Sequence[OutgoingEntity]) -> BatchResult[str]:
        result: BatchResult[str] = BatchResult()
        in_body = self.context_mode == "body"
        groups: dict[str | None, list[OutgoingEntity]] = {}
        links: dict[Any, str | None] = {}  # a snapshot shares a handful of contexts
        by_object: dict[int, str | None] = {}  # ... mostly as the very same objects
        for entity in entities:
            try:
                link = None
                if not in_body:
                    context = entity.context
                    if id(context) in by_object:  # (``entities`` keeps each object, so its id, alive)
                        link = by_object[id(context)]
                    else:
                        key = _context_key(context)
                        if key is None:
                            link = link_url(context)
                        elif key in links:
                            link = links[key]
                        else:
                            link = links[key] = link_url(context)
                        by_object[id(context)] = link
            except AdapterError as exc:
                exc.entity_id = exc.entity_id or entity.id
                result.failed[entity.id] = exc
                continue
            groups.setdefault(link, []).append(entity)

        def encoded(group: list[OutgoingEntity]) -> Iterator[tuple[str, bytes]]:
            for entity in group:
                try:
                    yield entity.id, entity.encode(with_context=in_body)
                except AdapterError as exc:
                    exc.entity_id = exc.entity_id or entity.id
                    result.failed[entity.id] = exc

        # Entities are encoded batch by batch as slots free up, so only the batches in flight
        # (and the next one) are held as bytes, whatever the number of entities.
        window = asyncio.Semaphore(self.concurrency + 1)

        async def send(batch: Batch[str], headers: Mapping[str, str]) -> BatchResult[str]:
            try:
                return await self._send_batch("upsert", "/entityOperations/upsert", batch, headers,
                                              {"options": self.upsert_mode})
            finally:
                window.release()

        tasks: list[asyncio.Future[BatchResult[str]]] = []
        try:
            for link, group in groups.items():
                headers = self._content_headers(link)
                for batch, oversize in build_batches(encoded(group), self.batch_max_entities,
                                                     self.batch_max_bytes):
                    for key in oversize:
                        result.failed[key] = _too_large(key, self.batch_max_bytes)
                    if batch.items:
                        await window.acquire()
                        tasks.append(asyncio.ensure_future(send(batch, headers)))
            for partial in await asyncio.gather(*tasks):
                result.merge(partial)
        finally:
            for task in tasks:
                task.cancel()  # only unfinished ones (an error above): finished tasks ignore it
        return result

    async def delete(self, entity_ids: Iterable[str]) -> BatchResult[str]:
        """Delete entities by id; an entity that does not exist counts as deleted."""
        ids = list(dict.fromkeys(entity_ids))
        result: BatchResult[str] = BatchResult()
        headers = {"Content-Type": "application/json"}
        items = [(i, orjson.dumps(i)) for i in ids]
        tasks = []
        for batch, oversize in build_batches(items, self.batch_max_entities, self.batch_max_bytes):
            for key in oversize:
                result.failed[key] = _too_large(key, self.batch_max_bytes)
            if batch.items:
                tasks.append(self._send_batch("delete", "/entityOperations/delete", batch, headers, {}))
        for partial in await asyncio.gather(*tasks):
            result.merge(partial)
        return result

    async def delete_attrs(self, deletes: Iterable[AttributeDelete]) -> BatchResult[tuple[str, str]]:
        """Delete attributes (one request each, concurrently); one already gone counts as deleted."""
        deletes = list(deletes)
        results = await asyncio.gather(*(self._delete_attr(d) for d in deletes))
        result: BatchResult[tuple[str, str]] = BatchResult()
        for item, error in zip(deletes, results, strict=True):
            key = (item.entity_id, item.attr)
            if error is None:
                result.succeeded.append(key)
            else:
                result.failed[key] = error
        return result

    async def _delete_attr(self, item: AttributeDelete) -> AdapterError | None:
        try:
            name, link = attribute_target(item.attr, item.context)
        except ConfigError as exc:
            exc.entity_id = item.entity_id
            return exc
        headers = {"Link": link_header(link)} if link else {}
        path = f"/entities/{quote(item.entity_id, safe='')}/attrs/{quote(name, safe='')}"
        try:
            response = await self._request("DELETE", path, headers=headers)
        except AdapterError as exc:
            return exc
        if response.status_code < 300:
            return None
        problem = parse_problem(response.status_code, response.content)
        if response.status_code == 404:
            return None  # entity, attribute or tenant already gone: the goal is reached
        error = request_error(problem, "delete_attr")
        if isinstance(error, ConfigError) and response.status_code in (400, 422):
            return EntityRejectedError(f"broker rejected the attribute delete: {problem.describe()}",
                                       entity_id=item.entity_id, status=problem.status,
                                       title=problem.title, detail=problem.detail, problem_type=problem.type)
        if error is not None:
            error.entity_id = item.entity_id
        return error

    async def _send_batch(self, op: Operation, path: str, batch: Batch[str], headers: Mapping[str, str],
                          params: Mapping[str, str]) -> BatchResult[str]:
        """Send one batch; 413 and entity-specific refusals split it to isolate the culprit."""
        result: BatchResult[str] = BatchResult()
        try:
            response = await self._request("POST", path, content=batch.body(), headers=headers, params=params)
        except AdapterError as exc:
            result.fail(batch.keys, exc)
            return result
        status = response.status_code
        if 200 <= status < 300:
            return read_batch_answer(status, response.content, batch.keys, op)
        problem = parse_problem(status, response.content)
        if should_isolate(problem):
            if len(batch.items) > 1:
                logger.info("broker answered %s to a batch of %d; splitting", problem.describe(),
                            len(batch.items))
                first, second = batch.halves()
                parts = await asyncio.gather(self._send_batch(op, path, first, headers, params),
                                             self._send_batch(op, path, second, headers, params))
                return parts[0].merge(parts[1])
            key = batch.keys[0]
            result.failed[key] = EntityRejectedError(
                f"broker rejected the entity: {problem.describe()}", entity_id=str(key),
                status=problem.status, title=problem.title, detail=problem.detail, problem_type=problem.type)
            return result
        error = request_error(problem, op)
        if error is None:
            result.succeeded.extend(batch.keys)
        else:
            logger.warning("broker refused a %s batch of %d: %s", op, len(batch.keys), problem.describe())
            result.fail(batch.keys, error)
        return result

    # -- hosted @context documents (NGSI-LD clause 5.13) ----------------------------------------

    async def host_context(self, document: Mapping[str, Any]) -> tuple[str | None, str]:
        """POST a @context document to /jsonldContexts: (the URL the broker serves it at, "") or,
        for a broker that does not host contexts (404, 405, 501, or refuses the document),
        (None, its answer). Unreachable or refusing access: the usual errors."""
        response = await self.with_tenant(None)._request(  # contexts are not per tenant
            "POST", "/jsonldContexts", content=orjson.dumps(document),
            headers={"Content-Type": "application/json"})
        status = response.status_code
        location = response.headers.get("Location", "")
        if status == 201 and location.startswith("/"):  # relative: on this broker
            location = f"{self.base_url}{location}"
        if status == 201 and "://" in location:
            return location, ""
        if status < 300:
            return None, f"{status} without the context's absolute URL (Location: {location[:200]!r})"
        problem = parse_problem(status, response.content)
        if status in NO_HOSTING_STATUSES or (400 <= status < 500 and status not in (401, 403, 408, 429)):
            return None, problem.describe()
        self._raise_for_status(response, "host_context")
        raise BrokerUnavailableError(f"broker answered POST /jsonldContexts with {problem.describe()}")

    async def has_context(self, url: str, *, retry: bool = True) -> bool:
        """Whether the broker still hosts the context it gave `url` for (GET /jsonldContexts/{id});
        `retry=False`: one attempt (a check that may be skipped when the broker is down)."""
        local_id = url.rstrip("/").rsplit("/", 1)[-1]
        client = self.with_tenant(None)
        if not retry:
            client.retry = RetryPolicy(attempts=1)
        response = await client._request(
            "GET", f"/jsonldContexts/{quote(local_id, safe='')}", headers={"Accept": "application/ld+json"})
        if response.status_code == 200:
            return True
        if response.status_code in (404, 422):  # gone, or known only as a downloaded copy
            return False
        self._raise_for_status(response, "host_context")
        return False

    # -- reads ---------------------------------------------------------------------------------

    async def get_entity(self, entity_id: str, *, context: Any = None,
                         params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """One entity (normalized unless `params` say otherwise), None when it does not exist."""
        return await self._get_one("/entities/", entity_id, context, params)

    async def get_temporal_entity(self, entity_id: str, *, context: Any = None,
                                  params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """One entity's history (GET /temporal/entities/{id}), None when the broker has none."""
        return await self._get_one("/temporal/entities/", entity_id, context, params)

    async def _get_one(self, collection: str, entity_id: str, context: Any,
                       params: Mapping[str, str] | None) -> dict[str, Any] | None:
        response = await self._request("GET", collection + quote(entity_id, safe=""),
                                       headers=self._read_headers(context), params=params or {})
        if response.status_code == 404:
            return None
        self._raise_for_status(response, "get")
        entity: dict[str, Any] = self._json(response)
        return entity

    async def count(self, params: Mapping[str, Any], *, context: Any = None) -> int:
        """How many entities match a GET /entities query (NGSILD-Results-Count), without reading them."""
        response = await self._request("GET", "/entities", headers=self._read_headers(context),
                                       params={**params, "count": "true", "limit": "0"})
        if response.status_code == 404 and parse_problem(404, response.content).type.endswith(
                "NonExistingTenant"):
            return 0
        self._raise_for_status(response, "query")
        count = response.headers.get("NGSILD-Results-Count", "")
        if not count.isdigit():
            raise BrokerUnavailableError("broker answered count=true without NGSILD-Results-Count")
        return int(count)

    async def query(self, params: Mapping[str, Any], *, context: Any = None) -> list[dict[str, Any]]:
        """All entities matching a GET /entities query, following limit/offset pagination."""
        return [entity async for entity in self.iter_query(params, context=context)]

    async def iter_query(self, params: Mapping[str, Any], *,
                         context: Any = None) -> AsyncIterator[dict[str, Any]]:
        """Entities matching a GET /entities query, page by page (bounded by max_query_results)."""
        headers = self._read_headers(context)
        base = {k: v for k, v in params.items() if k not in ("limit", "offset")}
        limit = min(int(params.get("limit", self.page_size)), self.page_size)
        offset = int(params.get("offset", 0))
        base["count"] = "true"
        total: int | None = None
        seen = 0
        while True:
            response = await self._request("GET", "/entities", headers=headers,
                                           params={**base, "limit": str(limit), "offset": str(offset)})
            if response.status_code == 404 and parse_problem(404, response.content).type.endswith(
                    "NonExistingTenant"):
                return  # a tenant nobody wrote to yet holds no entities (issue #1228)
            self._raise_for_status(response, "query")
            page = self._json(response)
            if not isinstance(page, list):
                raise BrokerUnavailableError("broker answered a query with something other than an array")
            count = response.headers.get("NGSILD-Results-Count")
            if count is not None and count.isdigit():
                total = int(count)
            for entity in page:
                if seen >= self.max_query_results:
                    logger.warning("query stopped at max_query_results=%d", self.max_query_results)
                    return
                seen += 1
                yield entity
            offset += len(page)
            if len(page) < limit or not page or (total is not None and offset >= total):
                return

    def _read_headers(self, context: Any) -> dict[str, str]:
        link = link_url(context) if context is not None else None
        headers = {"Accept": "application/json"}
        if link:
            headers["Link"] = link_header(link)
        return headers

    def _raise_for_status(self, response: httpx.Response, op: Operation) -> None:
        if response.status_code < 300:
            return
        problem = parse_problem(response.status_code, response.content)
        error = request_error(problem, op)
        if error is not None:
            raise error

    def _json(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise BrokerUnavailableError(f"broker answered {response.status_code} with invalid JSON") from None

    # -- transport -------------------------------------------------------------------------------

    def _content_headers(self, link: str | None) -> dict[str, str]:
        if self.context_mode == "body":
            return {"Content-Type": "application/ld+json"}
        headers = {"Content-Type": "application/json"}
        if link:
            headers["Link"] = link_header(link)
        return headers

    async def request(self, method: str, path: str, *, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None,
                      params: Mapping[str, str] | None = None) -> httpx.Response:
        """One request to `path` under /ngsi-ld/v1 with this client's tenant, auth and retries
        (for APIs the client has no method for, e.g. adapter.ngsi.temporal)."""
        return await self._request(method, path, content=content, headers=headers, params=params)

    async def _request(self, method: str, path: str, *, content: bytes | None = None,
                       headers: Mapping[str, str] | None = None,
                       params: Mapping[str, str] | None = None) -> httpx.Response:
        """One request with retries of transient failures and one token refresh on 401.

        Returns the final response whatever its status (read, bounded); raises
        BrokerUnavailableError when the broker stays unreachable, AuthError when auth fails.
        """
        url = f"{self.base_url}{API}{path}"
        base_headers = {"Accept": "application/json", **(headers or {})}
        if self.tenant:
            base_headers["NGSILD-Tenant"] = self.tenant
        refreshed = False
        while True:
            response = await self._with_retries(method, url, content, base_headers, params)
            if response.status_code == 401 and self.auth is not None and self.auth.can_refresh \
                    and not refreshed:
                logger.info("broker answered 401; fetching a fresh token and retrying once")
                self.auth.invalidate()
                refreshed = True
                continue
            return response

    async def _with_retries(self, method: str, url: str, content: bytes | None,
                            headers: Mapping[str, str], params: Mapping[str, str] | None) -> httpx.Response:
        policy = self.retry
        # The time limit reads the injected clock, as the waits do (tenacity's stop_after_delay
        # would read the real one).
        started = self.clock.time()

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= policy.attempts or self.clock.time() - started >= policy.max_seconds

        retrying = AsyncRetrying(
            stop=stop,
            wait=policy.backoff.tenacity_wait(), sleep=clock_sleep(self.clock),
            retry=retry_if_exception_type(_RetryError), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(method, url, content, headers, params)
        except _RetryError as exhausted:
            if exhausted.response is not None:
                return exhausted.response
            error = exhausted.error
            raise BrokerUnavailableError(f"broker unreachable at {self.base_url}: "
                                         f"{type(error).__name__}: {error}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, method: str, url: str, content: bytes | None,
                       headers: Mapping[str, str], params: Mapping[str, str] | None) -> httpx.Response:
        all_headers = dict(headers)
        async with self._slots:
            if self.auth is not None:
                # Taken once a slot is ours: a token read before waiting for one may expire meanwhile.
                all_headers.update(await self.auth.headers(self._http))
            try:
                request = self._http.build_request(method, url, content=content, headers=all_headers,
                                                   params=params, timeout=self.timeout)
                response = await self._http.send(request, stream=True)
                try:
                    body = await self._read_bounded(response)
                finally:
                    await response.aclose()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                logger.debug("broker request failed: %s %s: %s", method, url, type(exc).__name__)
                raise _RetryError(error=exc) from None
            except httpx.HTTPError as exc:
                raise BrokerUnavailableError(f"broker request failed: {type(exc).__name__}: {exc}") from None
        final = httpx.Response(response.status_code, headers=response.headers, content=body,
                               request=request)
        if response.status_code in TRANSIENT_STATUSES and not context_unavailable(final):
            logger.debug("broker answered %d to %s %s; will retry", response.status_code, method, url)
            raise _RetryError(response=final)
        return final

    async def _read_bounded(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise BrokerUnavailableError(f"broker answer larger than {self.max_response_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def context_unavailable(response: httpx.Response) -> bool:
    """A 503/504 LdContextNotAvailable: the broker already tried to fetch the @context (Orion-LD
    three times); the adapter's remedy is publishing it again (adapter.ngsi.hosting), not a retry."""
    return response.status_code in (503, 504) and b"LdContextNotAvailable" in response.content[:2000]


def _too_large(entity_id: str, max_bytes: int) -> EntityRejectedError:
    return EntityRejectedError(f"entity is larger than the batch byte limit ({max_bytes} bytes)",
                               entity_id=entity_id, status=413, title="Entity too large",
                               detail=f"max {max_bytes} bytes", problem_type="")


def _context_key(context: Any) -> Any:
    """A hashable stand-in for a @context made of URLs (the usual case), else None."""
    if isinstance(context, str):
        return context
    if isinstance(context, (list, tuple)) and all(isinstance(c, str) for c in context):
        return tuple(context)
    return None
