"""Liveness and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from adapter.service.app import Service

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: every polled source has run once",
            responses={503: {"description": "Starting: a polled source has not run yet"}})
async def ready(request: Request) -> JSONResponse:
    """200 once the first refresh of every polled source is done, else 503 with those still waiting."""
    service: Service = request.app.state.service
    if service.running and service.ready:
        return JSONResponse({"status": "ready"})
    waiting = [] if service.coordinator is None else sorted(
        name for name, s in service.coordinator.status.items() if s.runs == 0)
    return JSONResponse({"status": "starting", "waiting_for": waiting}, status_code=503)
