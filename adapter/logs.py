"""Logging set-up: plain lines for people, JSON lines for log collectors (BURGAS_LOG_FORMAT)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from adapter.redaction import redact, scrub_text


class JSONFormatter(logging.Formatter):
    """One JSON object per record, with the error context attributes when present."""

    def format(self, record: logging.LogRecord) -> str:
        body = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return scrub_text(orjson.dumps(redact(body), default=str).decode())


class PlainFormatter(logging.Formatter):
    """One line per record for people; credentials in URLs are scrubbed as in JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


def setup_logging(fmt: str = "plain", level: int = logging.INFO) -> None:
    """Configure the root logger once (stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else
                         PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
