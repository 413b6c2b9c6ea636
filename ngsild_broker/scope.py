"""Entity scopes (GS CIM 009 4.18, 4.19): hierarchical tags such as `/Madrid/Gardens`, and `scopeQ`.

Stored as `doc["scope"]`, a list of strings (an entity member like createdAt, not an attribute);
rendered as a string when there is one, an array otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from ngsild_broker.errors import bad_request

KEY = "scope"
_LEVEL = r"[^/\s<>\"'=;()\\,#+]+"
_SCOPE = re.compile(rf"^(/{_LEVEL})+$")
_QUERY_TERM = re.compile(rf"^/(#|({_LEVEL}|\+)(/({_LEVEL}|\+))*(/#)?)$")


def parse_scope(raw: Any) -> list[str]:
    """The scopes of a payload's `scope` member (a string or an array of strings)."""
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, str) and _SCOPE.match(v) for v in values):
        raise bad_request("Invalid scope", "scope is a string or array of strings like /A/B")
    return list(dict.fromkeys(values))


def render_scope(scopes: list[str]) -> str | list[str]:
    """The `scope` member of an entity as the API returns it."""
    return scopes[0] if len(scopes) == 1 else list(scopes)


def merged(old: list[str] | None, new: list[str], overwrite: bool) -> list[str]:
    """Scopes after an append: replaced, or (noOverwrite) the union."""
    if overwrite or not old:
        return list(new)
    return list(dict.fromkeys([*old, *new]))


def _term_regex(term: str) -> str:
    if not _QUERY_TERM.match(term):
        raise bad_request("Invalid scopeQ", term)
    if term == "/#":
        return "^/.+$"
    tail = ""
    if term.endswith("/#"):
        term, tail = term[:-2], "(/.*)?"
    levels = ["[^/]+" if level == "+" else re.escape(level) for level in term.strip("/").split("/")]
    return "^/" + "/".join(levels) + tail + "$"


def parse_scope_query(text: str) -> list[list[str]]:
    """scopeQ as OR (`,`) of AND (`;`) of regexes over one scope each."""
    return [[_term_regex(t.strip()) for t in part.split(";")] for part in text.split(",")]


def matches(doc: dict[str, Any], query: list[list[str]]) -> bool:
    """scopeQ evaluated on a stored entity (subscriptions)."""
    scopes = doc.get(KEY) or []
    return any(all(any(re.search(regex, s) for s in scopes) for regex in terms) for terms in query)
