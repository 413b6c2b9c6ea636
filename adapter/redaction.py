"""Redaction by declaration: secrets are replaced before anything is logged or shown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretBytes, SecretStr

REDACTED = "**REDACTED**"

# Keys (lower-cased) whose values are never shown, wherever they appear in a mapping.
SECRET_KEYS = frozenset({
    "authorization", "proxy-authorization", "access_token", "refresh_token", "id_token",
    "token", "broker_token", "client_secret", "oauth_client_secret", "password", "secret",
    "api_key", "apikey", "x-auth-token", "cookie", "set-cookie",
})


def redact(value: Any, keys: frozenset[str] = SECRET_KEYS) -> Any:
    """Return a copy of `value` safe to show or store: secret keys and SecretStr values replaced
    by a marker, and credentials in URLs inside strings (``user:pass@``, ``?token=``) too.

    The one redaction of the project: logs, reports, `--json`, /status and the state file."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (SecretStr, SecretBytes)):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and k.lower() in keys and v not in (None, "")
                    else redact(v, keys)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, keys) for v in value)
    return value


# Query parameters that carry credentials in URLs (ArcGIS `token`, API keys, signed URLs).
SECRET_QUERY_KEYS = SECRET_KEYS | frozenset({"key", "sig", "signature", "auth", "code", "passwd", "pwd",
                                             "x-amz-signature", "x-amz-credential", "sas", "sv"})
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")


def scrub_url(url: str) -> str:
    """A URL with its user:password and credential-bearing query values replaced by a marker."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_QUERY_KEYS for k, _ in pairs):
            query = urlencode([(k, REDACTED if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs],
                              safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def scrub_text(text: str) -> str:
    """Text (an error message, a log line) with every URL in it scrubbed."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: scrub_url(m.group(0)), text)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: credentials replaced by a marker."""
    return {k: (REDACTED if k.lower() in SECRET_KEYS else v) for k, v in headers.items()}
