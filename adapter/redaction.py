"""Redaction by declaration: secrets are replaced before anything is logged or shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretBytes, SecretStr

REDACTED = "**REDACTED**"

# Keys (lower-cased) whose values are never shown, wherever they appear in a mapping.
SECRET_KEYS = frozenset({
    "authorization", "proxy-authorization", "access_token", "refresh_token", "id_token",
    "token", "broker_token", "client_secret", "oauth_client_secret", "password", "secret",
    "api_key", "apikey", "x-auth-token", "cookie", "set-cookie",
})


def redact(value: Any, keys: frozenset[str] = SECRET_KEYS) -> Any:
    """Return a copy of `value` with secret keys and SecretStr values replaced by a marker."""
    if isinstance(value, (SecretStr, SecretBytes)):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and k.lower() in keys and v not in (None, "")
                    else redact(v, keys)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, keys) for v in value)
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: credentials replaced by a marker."""
    return {k: (REDACTED if k.lower() in SECRET_KEYS else v) for k, v in headers.items()}
