"""The embedded broker's FastAPI application.

Hook points for other modules of this package:
- `request.app.state.broker` is the `BrokerState` (settings, `store`, `contexts`, `run()` for
  blocking work, `changed()`); routers use `protocol.begin()` for the common request checks and raise
  `errors.NgsiError` for ProblemDetails answers.
- After every committed entity write the routes call `BrokerState.changed(tenant, changes)` with
  `operations.Change(before, after)` in stored form (expanded names; before=None on create,
  after=None on delete). It schedules `BrokerState.on_change(tenant, changes)` as a background
  task, so a slow subscriber never delays the write's answer.
- `subscriptions.router` (when the module is present) is mounted as is (its paths carry
  /ngsi-ld/v1), and `SubscriptionManager(broker_state)` (which registers itself as
  `broker_state.subscriptions`) is started and stopped with the app's lifespan and set as `on_change`.
- Rendering for notifications: `render.render_entity(doc, ctx, fmt, sys_attrs=..., attrs=...)` with a
  `Context` from `broker.contexts.from_value(subscription_context)`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ngsild_broker import api_batch, api_entities, api_meta, api_temporal, csource
from ngsild_broker.contexts import ContextResolver
from ngsild_broker.errors import NgsiError, bad_request, not_found
from ngsild_broker.settings import BrokerSettings
from ngsild_broker.sqlite import SqliteStore
from ngsild_broker.state import BrokerState
from ngsild_broker.storage import EntityStore
from ngsild_broker.temporal_retention import start_retention, stop_retention
from ngsild_broker.temporal_store import TemporalStore

logger = logging.getLogger(__name__)


def _problem(err: NgsiError) -> Response:
    # On error the Content-Type is application/json and there is no Link header (Orion-LD).
    return Response(err.body(), status_code=err.status, media_type="application/json",
                    headers=err.headers)


async def _ngsi_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NgsiError)
    return _problem(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _problem(not_found("Service Not Found", request.url.path))
    if exc.status_code == 405:
        allowed = sorted({m for regex, methods in request.app.state.allow
                          if regex.match(request.url.path) for m in methods} - {"HEAD"})
        return _problem(NgsiError(405, "OperationNotSupported", "Method not allowed",
                                  f"{request.method} is not supported on {request.url.path}",
                                  headers={"Allow": ",".join(allowed)}))
    return _problem(NgsiError(exc.status_code, "InvalidRequest", "HTTP error", str(exc.detail)))


async def _validation_error(_: Request, exc: Exception) -> Response:
    return _problem(bad_request("Invalid request", str(exc)))


class TenantEchoAndInternalErrorMiddleware:
    """Echo the request's tenant as `NGSILD-Tenant` (Orion-LD does); unexpected errors become 500s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tenant = None
        for name, value in scope["headers"]:
            if name in (b"ngsild-tenant", b"fiware-service") and value:
                tenant = value.lower()
                break
        started = False

        async def echo(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if tenant is not None:
                    message["headers"] = [*message.get("headers", []), (b"ngsild-tenant", tenant)]
            await send(message)

        try:
            await self.app(scope, receive, echo)
        except Exception as exc:  # the one place that turns a bug into a ProblemDetails 500
            logger.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _problem(NgsiError(500, "InternalError", "Internal Error",
                                     type(exc).__name__))(scope, receive, echo)


class TrailingSlash:
    """`/entities/`, `/subscriptions/`, `.../attrs/` mean the resource without the slash.

    The ETSI conformance suite writes collection URLs with a trailing slash, and every broker it is
    run against accepts them; NGSI-LD ids never end with '/', so nothing is lost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/") \
                and path.startswith("/ngsi-ld/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/")
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/")
        await self.app(scope, receive, send)


def _subscriptions_module() -> Any:
    try:
        return importlib.import_module("ngsild_broker.subscriptions")
    except ModuleNotFoundError as exc:
        if exc.name != "ngsild_broker.subscriptions":
            raise
        return None


def create_app(settings: BrokerSettings | None = None, store: EntityStore | None = None) -> FastAPI:
    """The broker as an ASGI app; storage opens now, subscriptions start with the app's lifespan.

    `store`: another EntityStore than the SQLite one at `settings.db_path` (without history, unless
    it brings its own)."""
    settings = settings or BrokerSettings()
    if store is None:
        store = SqliteStore(settings.db_path)
        if settings.temporal:
            store.history = TemporalStore(store, settings.temporal_retention_days)
    broker = BrokerState(settings, store, ContextResolver(settings, store))
    subscriptions = _subscriptions_module()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        manager = subscriptions.SubscriptionManager(broker) if subscriptions is not None else None
        if manager is not None:
            await manager.start()
            broker.on_change = manager.entities_changed
        pruning = start_retention(broker)
        try:
            yield
        finally:
            await stop_retention(pruning)
            await broker.drain()
            if manager is not None:
                await manager.stop()
            await broker.contexts.aclose()
            store.close()

    app = FastAPI(title="Burgas embedded NGSI-LD broker", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.broker = broker
    app.state.csource = {}  # csource.py's registrations and subscriptions (in memory)
    app.add_exception_handler(NgsiError, _ngsi_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    routers = [api_entities.router, api_batch.router, api_meta.router, api_temporal.router]
    if subscriptions is not None:
        routers += [subscriptions.router, csource.router]
    for router in routers:
        app.include_router(router)
    # (path regex, methods) of every route, for the Allow header of 405 answers.
    app.state.allow = [(r.path_regex, r.methods) for router in routers for r in router.routes
                       if isinstance(r, Route)]
    app.add_middleware(TrailingSlash)
    app.add_middleware(TenantEchoAndInternalErrorMiddleware)  # added last: it wraps every other layer
    return app
