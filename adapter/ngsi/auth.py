"""Broker authentication: a static bearer token or OAuth2 client credentials with a cached token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import httpx
import orjson
from pydantic import SecretStr

from adapter.errors import AuthError, BrokerUnavailableError

logger = logging.getLogger(__name__)

MAX_TOKEN_RESPONSE_BYTES = 64 * 1024


class BrokerAuth(Protocol):
    """What the broker client needs from an authentication scheme."""

    can_refresh: bool

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """Headers to add to a broker request."""

    def invalidate(self) -> None:
        """Forget the current credential (after a 401) so the next call fetches a fresh one."""


class BearerToken:
    """A static bearer token; a 401 cannot be fixed by refreshing it."""

    can_refresh = False

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerToken(**REDACTED**)"

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    def invalidate(self) -> None:
        """Nothing to forget: the token is static."""


class OAuth2ClientCredentials:
    """OAuth2 client-credentials grant (RFC 6749 4.4); the token is cached and refreshed early."""

    can_refresh = True

    def __init__(self, token_url: str, client_id: str, client_secret: SecretStr, *,
                 scope: str | None = None, refresh_margin: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """The Authorization header with a token that is valid for at least `refresh_margin` seconds."""
        if self._token is None or self._clock() >= self._expires_at - self.refresh_margin:
            async with self._lock:  # one token request for all batches in flight
                if self._token is None or self._clock() >= self._expires_at - self.refresh_margin:
                    await self._fetch(http)
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """Drop the cached token."""
        self._token = None

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        try:
            # client_secret_basic: the method every RFC 6749 server must support (section 2.3.1).
            response = await http.post(self.token_url, data=data, headers={"Accept": "application/json"},
                                       auth=(self.client_id, self._secret.get_secret_value()))
        except httpx.HTTPError as exc:
            raise BrokerUnavailableError(f"token endpoint unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise BrokerUnavailableError(f"token endpoint answered {response.status_code}")
        if response.status_code != 200:
            # The body of a refusal names the problem (invalid_client...), never the secret.
            raise AuthError(f"token endpoint refused the client credentials ({response.status_code}): "
                            f"{response.text[:200]}")
        if len(response.content) > MAX_TOKEN_RESPONSE_BYTES:
            raise AuthError("token endpoint answer too large")
        try:
            payload = orjson.loads(response.content)
            token = payload["access_token"]
            expires_in = float(payload.get("expires_in", 300))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise AuthError("token endpoint answer has no access_token") from None
        self._token = token
        self._expires_at = self._clock() + expires_in
        logger.info("fetched a broker access token valid for %.0f s", expires_in)
