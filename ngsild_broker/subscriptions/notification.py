"""The notification a subscription sends: rendered entities, pick/omit, body and headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ngsild_broker.changes import annotate
from ngsild_broker.contexts import link_header
from ngsild_broker.operations import Change
from ngsild_broker.protocol import JSONLD
from ngsild_broker.subscriptions.subscription import Subscription, timestamp

FORMAT_HEADER = {"normalized": "Normalized", "keyValues": "Simplified", "concise": "Concise"}
Render = Callable[..., dict[str, Any]]


def message(sub: Subscription, entities: list[dict[str, Any]], deleted: set[str],
            changes: dict[str, Change] | None, render: Render) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers notifying `entities` (`deleted`: ids notified as deleted; `changes`: the
    before/after of each, for deleted attributes and showChanges)."""
    notification = sub.doc["notification"]
    endpoint = notification["endpoint"]
    accept = endpoint.get("accept", "application/json")
    sys_attrs = bool(notification.get("sysAttrs"))
    show_changes = bool(notification.get("showChanges"))
    ctx = sub.notify_ctx or sub.ctx
    datasets = sub.doc.get("datasetId")
    data = []
    for entity in entities:
        change = (changes or {}).get(entity["id"])
        if entity["id"] in deleted:
            rendered = {"id": entity["id"], "type": _one([ctx.compact(t) for t in entity["type"]]),
                        "deletedAt": timestamp()}
        else:
            rendered = render(entity, ctx, sub.format, sys_attrs=sys_attrs, attrs=sub.attrs,
                              lang=sub.doc.get("lang"), **({"datasets": datasets} if datasets else {}))
        if change is not None:
            rendered = annotate(rendered, change.before, change.after, ctx.compact,
                                show_changes=show_changes, key_values=sub.format == "keyValues",
                                wanted=lambda iri: sub.attrs is None or iri in sub.attrs,
                                watched=sub.watched)
        data.append(project(rendered, sub.pick, sub.omit))
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
                            "subscriptionId": sub.id, "notifiedAt": timestamp(), "data": data}
    headers = {"Ngsild-Attribute-Format": FORMAT_HEADER[sub.format]}
    if accept == JSONLD:
        headers["Content-Type"] = JSONLD
        body["@context"] = ctx.body_value()
        for entity in data:  # each entity is a JSON-LD document (ETSI 046_14_01)
            entity["@context"] = ctx.body_value()
    else:
        headers["Content-Type"] = "application/json"
        headers["Link"] = link_header(ctx.link_url)
    if sub.tenant:
        headers["NGSILD-Tenant"] = sub.tenant
    for kv in endpoint.get("receiverInfo", []):
        headers[kv["key"]] = kv["value"]
    return body, headers


def project(entity: dict[str, Any], pick: set[str] | None, omit: set[str] | None) -> dict[str, Any]:
    """A notified entity with the subscription's pick/omit applied (id and type are members too)."""
    if pick is not None:
        entity = {k: v for k, v in entity.items() if k in pick}
    if omit is not None:
        entity = {k: v for k, v in entity.items() if k not in omit}
    return entity


def _one(types: list[str]) -> str | list[str]:
    return types[0] if len(types) == 1 else types
