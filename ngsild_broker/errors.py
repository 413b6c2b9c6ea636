"""NGSI-LD ProblemDetails errors (ETSI GS CIM 009 error types) raised by the broker."""

from __future__ import annotations

from typing import Any

import orjson

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiError(Exception):
    """An error answered as ProblemDetails: `type`, `title`, `detail` and the HTTP status."""

    def __init__(self, status: int, kind: str, title: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail or title
        self.headers = headers or {}
        super().__init__(f"{status} {kind}: {title} ({detail})")

    @property
    def type_uri(self) -> str:
        """The full ETSI error type URI."""
        return ERROR_BASE + self.kind

    def problem(self) -> dict[str, Any]:
        """Top-level ProblemDetails (no `status` member, as Orion-LD)."""
        return {"type": self.type_uri, "title": self.title, "detail": self.detail}

    def item(self) -> dict[str, Any]:
        """The error inside a batch result, which does carry `status`."""
        return {"type": self.type_uri, "title": self.title, "detail": self.detail,
                "status": self.status}

    def body(self) -> bytes:
        """Serialized top-level ProblemDetails."""
        return orjson.dumps(self.problem())


def bad_request(title: str, detail: str) -> NgsiError:
    """400 BadRequestData."""
    return NgsiError(400, "BadRequestData", title, detail)


def invalid_request(title: str, detail: str) -> NgsiError:
    """400 InvalidRequest."""
    return NgsiError(400, "InvalidRequest", title, detail)


def not_found(title: str, detail: str) -> NgsiError:
    """404 ResourceNotFound."""
    return NgsiError(404, "ResourceNotFound", title, detail)


def already_exists(title: str, detail: str) -> NgsiError:
    """409 AlreadyExists."""
    return NgsiError(409, "AlreadyExists", title, detail)
