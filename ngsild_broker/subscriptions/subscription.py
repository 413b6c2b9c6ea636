"""A subscription as held in memory: its payload, context, compiled filters, counters and views."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from ngsild_broker.contexts import Context
from ngsild_broker.geo import GeoQuery
from ngsild_broker.q import QNode, parse_q
from ngsild_broker.regex import compile_pattern
from ngsild_broker.subscriptions.validation import DEFAULT_TRIGGERS, FORMATS, parse_datetime, parse_geo
from ngsild_broker.type_query import parse_types as parse_type_selection

_PLAIN_TERM = re.compile(r"^[^(),;|]+$")  # a type name, not a type selection expression


def timestamp() -> str:
    """Now as NGSI-LD writes it (UTC, milliseconds)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class Subscription:
    """A subscription as matched: its payload, context, compiled filters and delivery counters."""

    tenant: str
    id: str
    doc: dict[str, Any]
    ctx: Context
    created_at: str
    modified_at: str
    counters: dict[str, Any] = field(default_factory=dict)
    last_sent: float = 0.0
    # The context notifications are compacted with: the jsonldContext member's, else `ctx`.
    notify_ctx: Context | None = None

    def __post_init__(self) -> None:
        expand = self.ctx.expand
        # Each selector's type is a type selection (`(A;B)|C`, GS CIM 009 4.17) as OR-of-AND groups.
        self.selectors = [(parse_type_selection(s["type"], expand), s.get("id"),
                           compile_pattern(s["idPattern"]) if "idPattern" in s else None)
                          for s in self.doc.get("entities", [])]
        watched = self.doc.get("watchedAttributes")
        self.watched = {expand(a) for a in watched} if watched else None
        self.q: QNode | None = parse_q(unquote(self.doc["q"])) if "q" in self.doc else None
        self.geo: GeoQuery | None = parse_geo(self.doc["geoQ"]) if "geoQ" in self.doc else None
        self.expires = parse_datetime(self.doc["expiresAt"], "expiresAt") if "expiresAt" in self.doc else None
        notification = self.doc["notification"]
        self.format = FORMATS[notification.get("format", "normalized")]
        attrs = notification.get("attributes")
        self.attrs = {expand(a) for a in attrs} if attrs else None
        self.pick = set(notification["pick"]) if "pick" in notification else None
        self.omit = set(notification["omit"]) if "omit" in notification else None
        self.triggers = set(self.doc.get("notificationTrigger", DEFAULT_TRIGGERS))

    @property
    def status(self) -> str:
        """active, paused or expired (GS CIM 009 5.2.12)."""
        if self.expires is not None and self.expires <= time.time():
            return "expired"
        return "active" if self.doc.get("isActive", True) else "paused"

    def _terms(self, ctx: Context) -> dict[str, Any]:
        """entities[].type, watchedAttributes and notification attributes re-compacted with `ctx`."""
        out: dict[str, Any] = {}
        expand, compact = self.ctx.expand, ctx.compact
        if "entities" in self.doc:
            out["entities"] = [{**s, "type": compact(expand(s["type"]))}
                               if _PLAIN_TERM.match(s.get("type", "")) else s for s in self.doc["entities"]]
        if "watchedAttributes" in self.doc:
            out["watchedAttributes"] = [compact(expand(a)) for a in self.doc["watchedAttributes"]]
        return out

    def view(self, sys_attrs: bool = False, ctx: Context | None = None) -> dict[str, Any]:
        """The subscription as GET answers it, with status and delivery counters.

        `isActive` only when it was given and createdAt/modifiedAt only with sysAttrs (ETSI 028_01;
        Orion-LD always sends all three).
        """
        out: dict[str, Any] = {"id": self.id, "type": "Subscription"}
        out.update({k: v for k, v in self.doc.items() if k not in ("id", "type", "notification")})
        if ctx is not None:  # terms as the reader's context names them (ETSI 029_05_02)
            out.update(self._terms(ctx))
        out.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
        out["status"] = self.status
        out["jsonldContext"] = self.doc.get("jsonldContext", self.ctx.link_url)
        notification = dict(self.doc["notification"])
        notification.setdefault("format", "normalized")
        notification["endpoint"] = {"accept": "application/json", **notification["endpoint"]}
        notification.update(self.counters)
        out["notification"] = notification
        if sys_attrs:
            out["createdAt"] = self.created_at
            out["modifiedAt"] = self.modified_at
        return out

    def stored(self) -> dict[str, Any]:
        """The persisted document."""
        return {"doc": self.doc, "context": self.ctx.user_value, "createdAt": self.created_at,
                "modifiedAt": self.modified_at, "counters": self.counters}
