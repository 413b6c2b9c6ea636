"""Subscription payloads checked the way Orion-LD checks them (GS CIM 009 5.2.12)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from ngsild_broker.entities import check_uri
from ngsild_broker.errors import NgsiError, bad_request
from ngsild_broker.geo import GeoQuery, GeoQueryError, parse_geoquery
from ngsild_broker.limits import MAX_NESTING, too_deep
from ngsild_broker.q import QSyntaxError, parse_q
from ngsild_broker.regex import RegexError, compile_pattern

FIELDS = frozenset({"id", "type", "subscriptionName", "name", "description", "entities",
                    "watchedAttributes", "timeInterval", "q", "geoQ", "csf", "isActive", "notification",
                    "expiresAt", "expires", "throttling", "lang", "temporalQ", "scopeQ",
                    "notificationTrigger", "@context", "status", "createdAt", "modifiedAt",
                    "jsonldContext", "datasetId"})
IGNORED = ("status", "createdAt", "modifiedAt", "@context")
TRIGGERS = frozenset({"entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
                      "attributeUpdated", "attributeDeleted"})
# GS CIM 009 5.2.12: without notificationTrigger, attribute creations and updates notify (entity
# creation creates attributes); Orion-LD notifies every change, deletions included.
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues",
           "concise": "concise"}
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")


def _missing(what: str) -> NgsiError:
    return bad_request("Mandatory field missing", f"Subscription::{what}")


def _not_implemented(title: str, detail: str) -> NgsiError:
    return NgsiError(501, "OperationNotSupported", title, detail)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise bad_request("Not a JSON Array", f"Subscription::{what}")
    if not value:
        raise bad_request("Empty Array", f"Subscription::{what}")
    if not all(isinstance(v, str) and v for v in value):
        raise bad_request("Invalid value", f"Subscription::{what} items must be non-empty strings")
    return value


def parse_datetime(value: Any, what: str) -> float:
    """An ISO 8601 date-time member as a POSIX timestamp; 400 naming the member otherwise."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad_request("Invalid DateTime", f"Subscription::{what}") from None


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")  # no controls (CR, LF, NUL), Latin-1


def _key_values(value: Any, what: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(
            isinstance(kv, dict) and set(kv) == {"key", "value"}
            and isinstance(kv["key"], str) and isinstance(kv["value"], str) and kv["key"] for kv in value):
        raise bad_request("Invalid value", f"{what} must be an array of {{key, value}} strings")
    return value


def _check_endpoint(endpoint: Any) -> None:
    if not isinstance(endpoint, dict):
        raise _missing("notification::endpoint")
    uri = endpoint.get("uri")
    if not isinstance(uri, str) or not uri:
        raise _missing("notification::endpoint::uri")
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if scheme == "mqtts":
        raise _not_implemented("Not Implemented", "MQTT over TLS (mqtts) is not supported")
    if scheme not in ("http", "https", "mqtt") or "//" not in uri or len(uri) > 2048:
        raise bad_request("Invalid Endpoint", f"not a valid http, https or mqtt URI: {uri[:200]}")
    accept = endpoint.get("accept", "application/json")
    if accept not in ACCEPTS:
        raise bad_request("Invalid value for Subscription::notification::endpoint::accept", str(accept))
    if "receiverInfo" in endpoint:
        # Sent as HTTP headers with every notification: a value no header can carry is refused now,
        # not at each delivery.
        for kv in _key_values(endpoint["receiverInfo"], "receiverInfo"):
            if not _HEADER_NAME.match(kv["key"]) or not _HEADER_VALUE.match(kv["value"]):
                raise bad_request("Invalid value", f"receiverInfo {kv['key']!r}: not a valid HTTP header")
    if "notifierInfo" in endpoint:
        # Only the MQTT keys (S/payloadCheck/pcheckNotifierInfo.cpp:85-125).
        for kv in _key_values(endpoint["notifierInfo"], "notifierInfo"):
            key, value = kv["key"], kv["value"]
            if key == "MQTT-Version" and value not in ("mqtt5.0", "mqtt3.1.1"):
                raise bad_request("Invalid value for notifierInfo::MQTT-Version", value)
            if key == "MQTT-QoS" and value not in ("0", "1", "2"):
                raise bad_request("Invalid value for notifierInfo::MQTT-QoS", value)
            if key not in ("MQTT-Version", "MQTT-QoS"):
                raise bad_request("Invalid key in notifierInfo", key)


def validate(doc: Any) -> dict[str, Any]:
    """Check a (possibly merged) subscription payload the way Orion-LD does; returns it cleaned."""
    if not isinstance(doc, dict):
        raise bad_request("Invalid Payload Body", "a subscription is a JSON object")
    for key in doc:
        if key not in FIELDS:
            raise bad_request("Invalid field for Subscription", key)
    out = {k: v for k, v in doc.items() if k not in IGNORED}
    if "id" in out and (not isinstance(out["id"], str) or ":" not in out["id"]):
        raise bad_request("Invalid Subscription::id", "not a URI")
    if "id" in out:
        check_uri(out["id"], "Subscription::id")
    if too_deep(out):
        raise bad_request("Invalid Payload Body", f"the subscription nests deeper than {MAX_NESTING} levels")
    if out.get("type", "Subscription") != "Subscription":
        raise bad_request("Invalid value for Subscription::type", str(out.get("type")))
    if "csf" in out:
        raise _not_implemented("Not Implemented", "Subscription::csf")
    if "timeInterval" in out:
        interval = out["timeInterval"]
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise bad_request("Invalid value for Subscription::timeInterval", "must be a number > 0")
        if "watchedAttributes" in out:
            raise bad_request("Invalid Subscription", "timeInterval and watchedAttributes exclude each other")
    if "entities" in out:
        _check_entities(out["entities"])
    if "watchedAttributes" in out:
        _strings(out["watchedAttributes"], "watchedAttributes")
    if "datasetId" in out:
        _strings(out["datasetId"], "datasetId")
    if "jsonldContext" in out:
        ctx_url = out["jsonldContext"]
        if not isinstance(ctx_url, str) or ":" not in ctx_url or any(c in ctx_url for c in ' <>"'):
            raise bad_request("Invalid value for Subscription::jsonldContext", "not a URI")
    if "entities" not in out and "watchedAttributes" not in out:
        raise bad_request("Invalid Subscription", "at least one of entities and watchedAttributes")
    if "q" in out:
        _check_q(out["q"])
    if "geoQ" in out:
        parse_geo(out["geoQ"])
    if "isActive" in out and not isinstance(out["isActive"], bool):
        raise bad_request("Invalid value for Subscription::isActive", "must be true or false")
    if "expires" in out:  # the old name
        out["expiresAt"] = out.pop("expires")
    if "expiresAt" in out:
        parse_datetime(out["expiresAt"], "expiresAt")
    if "throttling" in out and (isinstance(out["throttling"], bool) or not isinstance(
            out["throttling"], (int, float)) or out["throttling"] < 0):
        raise bad_request("Invalid value for Subscription::throttling", "must be a number >= 0")
    if "notificationTrigger" in out:
        triggers = _strings(out["notificationTrigger"], "notificationTrigger")
        if not set(triggers) <= TRIGGERS:
            raise bad_request("Invalid value for Subscription::notificationTrigger",
                              ", ".join(sorted(set(triggers) - TRIGGERS)))
    _check_notification(out.get("notification"))
    return out


def _check_entities(selectors: Any) -> None:
    """Subscription::entities: a non-empty array of selectors, each with a type."""
    if not isinstance(selectors, list):
        raise bad_request("Not a JSON Array", "Subscription::entities")
    if not selectors:
        raise bad_request("Empty Array", "Subscription::entities")
    for sel in selectors:
        if not isinstance(sel, dict) or not isinstance(sel.get("type"), str) or not sel["type"]:
            raise _missing("entities::type")
        if "id" in sel and (not isinstance(sel["id"], str) or ":" not in sel["id"]):
            raise bad_request("Invalid Entity ID", "Subscription::entities::id is not a URI")
        if "idPattern" in sel:
            if not isinstance(sel["idPattern"], str):
                raise bad_request("Invalid idPattern", "Subscription::entities::idPattern is not a string")
            try:
                compile_pattern(sel["idPattern"])
            except RegexError as exc:
                raise bad_request("Invalid idPattern", f"{sel['idPattern']}: {exc}") from None


def _check_q(q: Any) -> None:
    if not isinstance(q, str):
        raise bad_request("Invalid Q-Filter", "q must be a string")
    try:
        parse_q(unquote(q))  # percent-encoded as in a URL (ETSI 046_05_01)
    except QSyntaxError as exc:
        raise bad_request("Invalid Q-Filter", str(exc)) from None


def _check_notification(notification: Any) -> None:
    """Subscription::notification: format, the attribute selections and the endpoint."""
    if notification is None:
        raise _missing("notification")
    if not isinstance(notification, dict):
        raise bad_request("Invalid value", "Subscription::notification must be an object")
    fmt = notification.get("format", "normalized")
    if fmt not in FORMATS:
        raise bad_request("Invalid value for Subscription::notification::format", str(fmt))
    if "attributes" in notification:
        _strings(notification["attributes"], "notification::attributes")
    for member in ("pick", "omit"):
        if member in notification:
            _strings(notification[member], f"notification::{member}")
    if ("pick" in notification or "omit" in notification) and "attributes" in notification:
        raise bad_request("Invalid Subscription", "notification pick/omit exclude attributes (ETSI 028_08)")
    if set(notification.get("pick", ())) & set(notification.get("omit", ())):
        raise bad_request("Invalid Subscription", "a member is both in notification pick and omit")
    _check_endpoint(notification.get("endpoint"))


def parse_geo(geo_q: Any) -> GeoQuery:
    """The geoQ member as a GeoQuery; 400 (501 for geometries Orion-LD refuses) otherwise."""
    if not isinstance(geo_q, dict):
        raise bad_request("Invalid value", "Subscription::geoQ must be an object")
    geometry = geo_q.get("geometry")
    if isinstance(geometry, str) and geometry != "Point" and geo_q.get("coordinates") is not None:
        # Orion-LD supports only Point in subscription geoQ (S/payloadCheck/pCheckGeometry.cpp:58-62).
        raise _not_implemented("Not Implemented", f"geoQ geometry {geometry[:32]} in subscriptions")
    try:
        return parse_geoquery(geo_q.get("georel"), geometry, geo_q.get("coordinates"),
                              geo_q.get("geoproperty", "location"))
    except GeoQueryError as exc:
        raise bad_request(exc.title, exc.detail) from None
