"""Linked-entity retrieval (GS CIM 009 4.5.23: `join=inline|flat`, `joinLevel`) and the `pick`/`omit`
projections (4.21) that can reach into linked entities: `pick=id,locatedAt{id,name}`.

The stored entities are rendered first (render.render_entity); this module fetches the entities
their Relationships point to and shapes the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ngsild_broker.errors import bad_request
from ngsild_broker.instances import instances

Projection = dict[str, "Projection | None"]
_MAX_JOIN_LEVEL = 5
_BAD_MEMBER = re.compile(r"[\s<>\"'=;()\\|]")
_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})
_MAX_LINKED = 1000


def parse_projection(text: str, name: str) -> Projection:
    """`a,b{c,d{e}}` as {"a": None, "b": {"c": None, "d": {"e": None}}}; 400 when malformed."""
    out, rest = _members(text, 0, name)
    if rest != len(text):
        raise bad_request(f"Invalid value for URI parameter /{name}/", text)
    return out


def _members(text: str, at: int, name: str) -> tuple[Projection, int]:
    out: Projection = {}
    while True:
        start = at
        while at < len(text) and text[at] not in ",{}":
            at += 1
        member = text[start:at].strip()
        if not member or _BAD_MEMBER.search(member):
            raise bad_request(f"Invalid value for URI parameter /{name}/", text)
        sub: Projection | None = None
        if at < len(text) and text[at] == "{":
            sub, at = _members(text, at + 1, name)
            if at >= len(text) or text[at] != "}":
                raise bad_request(f"Invalid value for URI parameter /{name}/", text)
            at += 1
        out[member] = sub
        if at < len(text) and text[at] == ",":
            at += 1
            continue
        return out, at


def check_pick_omit(pick: Projection | None, omit: Projection | None, has_attrs: bool) -> None:
    """pick and omit exclude attrs, and never name the same member (ETSI 028_08)."""
    if (pick is not None or omit is not None) and has_attrs:
        raise bad_request("Invalid parameters", "pick and omit cannot be combined with attrs")
    if pick is not None and omit is not None:
        same = {k for k, v in pick.items() if v is None} & {k for k, v in omit.items() if v is None}
        if same:
            raise bad_request("Invalid parameters", f"in both pick and omit: {', '.join(sorted(same))}")


def targets(doc: dict[str, Any]) -> list[str]:
    """Ids the entity's Relationships point to (every instance, every object)."""
    return [target for _, target in relationships(doc)]


def relationships(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(attribute IRI, target id) of every Relationship of a stored entity."""
    out: list[tuple[str, str]] = []
    for iri, value in doc.items():
        if iri in _MEMBERS:
            continue
        for item in instances(value):
            if isinstance(item, dict) and item.get("type") == "Relationship":
                obj = item.get("object")
                out.extend((iri, o) for o in (obj if isinstance(obj, list) else [obj]) if isinstance(o, str))
    return out


def fetch_linked(get_many: Callable[[list[str]], dict[str, dict[str, Any]]], docs: list[dict[str, Any]],
                 level: int) -> dict[str, dict[str, Any]]:
    """The entities reachable from `docs` in at most `level` hops, by id (blocking)."""
    found: dict[str, dict[str, Any]] = {d["id"]: d for d in docs}
    frontier = docs
    for _ in range(min(level, _MAX_JOIN_LEVEL)):
        wanted = [t for d in frontier for t in targets(d) if t not in found]
        wanted = list(dict.fromkeys(wanted))[: max(0, _MAX_LINKED - len(found))]
        if not wanted:
            break
        frontier = list(get_many(wanted).values())
        found.update((d["id"], d) for d in frontier)
    return found


@dataclass
class Shaper:
    """Turns rendered entities into the answer: projections, and inline or flat linked entities."""

    render: Callable[[dict[str, Any]], dict[str, Any]]  # stored -> rendered (no @context)
    compact: Callable[[str], str]
    key_values: bool = False
    pick: Projection | None = None
    omit: Projection | None = None
    join: str | None = None  # "inline", "flat" or None
    level: int = 1
    linked: dict[str, dict[str, Any]] = field(default_factory=dict)

    def entity(self, doc: dict[str, Any]) -> dict[str, Any]:
        """One entity, linked entities inline when join=inline."""
        return self._shape(doc, self.pick, self.omit, 1)

    def entities(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The answer's entities; with join=flat the linked ones follow, breadth first, once each."""
        out = [e for e in (self._shape(d, self.pick, self.omit, 1) for d in docs) if e]
        if self.join != "flat":
            return out
        seen = {d["id"] for d in docs}
        frontier = [(d, self.pick, self.omit) for d in docs]
        for _ in range(self.level):
            following = []
            for doc, pick, omit in frontier:
                for iri, target in relationships(doc):
                    name = self.compact(iri)
                    if target in seen or target not in self.linked or not _kept(name, pick, omit):
                        continue
                    seen.add(target)
                    sub_pick, sub_omit = _sub(pick, name), _sub(omit, name)
                    out.append(self._shape(self.linked[target], sub_pick, sub_omit, self.level + 1))
                    following.append((self.linked[target], sub_pick, sub_omit))
            frontier = following
        return out

    def _shape(self, doc: dict[str, Any], pick: Projection | None, omit: Projection | None,
               depth: int) -> dict[str, Any]:
        rendered = self.render(doc)
        if self.join == "inline" and depth <= self.level:
            for iri, target in relationships(doc):
                name = self.compact(iri)
                linked = self.linked.get(target)
                if linked is None or name not in rendered:
                    continue
                inner = self._shape(linked, _sub(pick, name), _sub(omit, name), depth + 1)
                if self.key_values:
                    rendered[name] = inner
                elif isinstance(rendered[name], dict):
                    rendered[name]["entity"] = inner
        if pick is not None:
            rendered = {k: v for k, v in rendered.items() if k in pick}
        if omit is not None:
            rendered = {k: v for k, v in rendered.items() if not (k in omit and omit[k] is None)}
        return rendered


def _kept(name: str, pick: Projection | None, omit: Projection | None) -> bool:
    """Whether a member survives pick and omit (a relationship followed by join=flat must)."""
    return (pick is None or name in pick) and not (omit is not None and name in omit and omit[name] is None)


def _sub(projection: Projection | None, name: str) -> Projection | None:
    """The projection of the entity linked through `name` (None: everything)."""
    if projection is None:
        return None
    return projection.get(name)
