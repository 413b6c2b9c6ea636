"""The API key of the admin endpoints: header X-API-Key, compared in constant time.

Without BURGAS_API_KEY the admin endpoints are disabled and answer 503 (an operator has not
enabled them); with it, a missing or wrong key answers 401.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

if TYPE_CHECKING:
    from adapter.service.app import Service

HEADER = "X-API-Key"
_scheme = APIKeyHeader(name=HEADER, auto_error=False,
                       description="The value of BURGAS_API_KEY; without it set, admin endpoints answer 503")


async def require_api_key(request: Request, supplied: str | None = Depends(_scheme)) -> None:
    """Let the request through only with the configured key."""
    service: Service = request.app.state.service
    key = service.settings.api_key
    expected = key.get_secret_value().encode() if key is not None else b""
    if not expected:
        raise HTTPException(503, "admin endpoints are disabled: set BURGAS_API_KEY")
    # compare_digest on bytes: the time taken does not depend on how much of the key matched.
    if supplied is None or not hmac.compare_digest(supplied.encode(), expected):
        raise HTTPException(401, f"missing or wrong {HEADER}", headers={"WWW-Authenticate": HEADER})
