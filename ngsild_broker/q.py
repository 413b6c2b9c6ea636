"""The NGSI-LD q filter: parser (a tree of QNode) and in-memory matcher; storage back-ends translate the
tree themselves (the SQLite one: ngsild_broker/sqlite/q_sql.py).

Grammar (GS CIM 009 4.9, as Orion-LD implements it, S/q/qNode.h):

    q        := or
    or       := and ('|' and)*          -- ';' binds tighter than '|'
    and      := term (';' term)*
    term     := '(' or ')' | '!' path | path | path op values
    path     := attr ('.' sub)* ('[' key ('.' key)* ']')?
    op       := '==' | '!=' | '>' | '>=' | '<' | '<=' | '~=' | '!~='
    values   := item (',' item)*        -- lists only with == and !=
    item     := value ('..' value)?     -- ranges only with == and !=

Comparison semantics, shared by `matches()` and the stores' translations:
- the target of `A` is the attribute's `value` (Property), `object` (Relationship) or any value of its
  `languageMap` (LanguageProperty); `A.observedAt|createdAt|modifiedAt|unitCode|datasetId` is that
  member of the attribute, `A.B` is sub-attribute B, `P[k1.k2]` walks a compound value (or picks a
  language of a LanguageProperty);
- an array target matches when one of its elements matches (as MongoDB, hence Orion-LD, does);
- values of different types never compare: numbers with numbers, strings with strings, booleans
  only for (in)equality, DateTimes (quoted or not) with strings that are DateTimes, compared as
  instants with millisecond precision the way SQLite's julianday() reads them;
- `!=` and `!~=` match when the target exists and `==` / `~=` does not match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ngsild_broker.regex import Pattern, RegexError, compile_pattern

__all__ = ["QNode", "QSyntaxError", "parse_q"]

MAX_Q_LENGTH = 8192
MAX_DEPTH = 32
MAX_ITEMS = 256
MAX_REGEX_LENGTH = 256

# Attribute members addressed with `A.<member>`; core terms, never expanded.
META_MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId"})
# Entity-level system attributes usable alone in q (e.g. `modifiedAt>2024-01-01T00:00:00Z`).
ENTITY_MEMBERS = frozenset({"createdAt", "modifiedAt"})

Expand = Callable[[str], str]


class QSyntaxError(ValueError):
    """The q expression does not follow the NGSI-LD q grammar."""


# --- DateTimes: read exactly as SQLite 3.x julianday() reads them (S/q compares instants) ----------

_DT_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?"
    r"[ \t\n\v\f\r]*(?:([Zz])|([+-])(\d\d):(\d\d))?[ \t\n\v\f\r]*\Z")
# A SQL translation only hands strings of this shape to julianday(); the regex above requires it too.
DT_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]*"


def _c_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as C does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def datetime_ijd(text: str) -> int | None:
    """Milliseconds since the Julian epoch, as SQLite computes them; None if SQLite would refuse."""
    m = _DT_RE.match(text)
    if m is None:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    sec = int(m.group(6)) if m.group(6) else 0
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 24 and mi <= 59 and sec <= 59):
        return None
    frac = 0.0
    if m.group(7):
        scale = 1.0
        for ch in m.group(7):  # same float steps as SQLite's parseHhMmSs, so the same rounding
            frac = frac * 10.0 + (ord(ch) - 48)
            scale *= 10.0
        frac /= scale
    tz = 0
    if m.group(9):
        tz_h, tz_m = int(m.group(10)), int(m.group(11))
        if tz_h > 14 or tz_m > 59:
            return None
        tz = (tz_m + tz_h * 60) * (1 if m.group(9) == "+" else -1)
    if mo <= 2:
        y -= 1
        mo += 12
    a = _c_div(y, 100)
    b = 2 - a + _c_div(a, 4)
    x1 = _c_div(36525 * (y + 4716), 100)
    x2 = _c_div(306001 * (mo + 1), 10000)
    ijd = int((x1 + x2 + d + b - 1524.5) * 86400000)
    ijd += h * 3600000 + mi * 60000 + int((sec + frac) * 1000 + 0.5)
    ijd -= tz * 60000
    # SQLite's validJulianDay(): 0000-01-01 .. 9999-12-31 23:59:59.999 only.
    return ijd if 0 <= ijd <= 464269060799999 else None


# --- literals ----------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?\Z")


@dataclass(frozen=True)
class Literal:
    """One right-hand-side value: kind is num, str, bool or dt (then `value` is SQLite's iJD)."""

    kind: str
    value: Any
    text: str


def _literal(text: str, quoted: bool) -> Literal:
    ijd = datetime_ijd(text)
    if ijd is not None:
        return Literal("dt", ijd, text)
    if quoted:
        return Literal("str", text, text)
    if text in ("true", "false"):
        return Literal("bool", text == "true", text)
    if _NUMBER_RE.match(text):
        is_float = any(c in text for c in ".eE")
        return Literal("num", float(text) if is_float else int(text), text)
    if not text:
        raise QSyntaxError("empty value")
    return Literal("str", text, text)  # unquoted URIs (Relationship objects) and plain words


# --- paths ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Path:
    """`attr(.sub)*(.meta)?([k1.k2])?` as written in q, before expansion."""

    attr: str
    subs: tuple[str, ...] = ()
    meta: str | None = None
    keys: tuple[str, ...] = ()

    def branches(self, expand: Expand) -> tuple[list[tuple[tuple[str, ...], str]], list[tuple[str, ...]]]:
        """(compare branches as (json key path, mode), existence paths) for this path.

        Modes: `each` (a scalar, or each element of an array), `text` (the same, for Relationship
        objects: only string and DateTime literals are tried there, which keeps the SQL for numeric
        filters to one JSON scan per row), `members` (each value of a LanguageProperty languageMap,
        also only for string and DateTime literals).
        """
        if not self.subs and self.meta is None and not self.keys and self.attr in ENTITY_MEMBERS:
            node: tuple[str, ...] = (self.attr,)
            return [(node, "each")], [node]
        node = (expand(self.attr), *(expand(s) for s in self.subs))
        if self.meta is not None:
            node = (*node, self.meta)
            return [(node, "each")], [node]
        if self.keys:
            compound = (*node, "value", *self.keys)
            if len(self.keys) == 1:  # L[bg] on a LanguageProperty
                lang = (*node, "languageMap", self.keys[0])
                return [(compound, "each"), (lang, "each")], [compound, lang]
            return [(compound, "each")], [compound]
        return ([((*node, "value"), "each"), ((*node, "object"), "text"),
                 ((*node, "languageMap"), "members")], [node])


_MISSING = object()


def _walk(doc: Any, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if not isinstance(doc, dict):
            return _MISSING
        doc = doc.get(k, _MISSING)
        if doc is _MISSING:
            return _MISSING
    return doc


def _candidates(entity: dict, keys: tuple[str, ...], mode: str) -> Iterator[Any]:
    attr = entity.get(keys[0], _MISSING) if keys else _MISSING
    if isinstance(attr, list):  # a multi-attribute: every instance is a candidate
        for item in attr:
            yield from _candidates({keys[0]: item}, keys, mode)
        return
    v = _walk(entity, keys)
    if v is _MISSING:
        return
    if mode == "members":
        if isinstance(v, dict):
            yield from v.values()
    elif isinstance(v, list):
        yield from v
    elif not isinstance(v, dict):
        yield v


def branch_items(branches: list[tuple[tuple[str, ...], str]], items: list[Item]
                  ) -> list[tuple[tuple[str, ...], str, list[Item]]]:
    """Each branch with the items tried on it (strings and DateTimes only on text branches)."""
    out = []
    for keys, mode in branches:
        tried = items if mode == "each" else [i for i in items if i.lo.kind in ("str", "dt")]
        if tried or not items:  # `not items`: a regex, tried on every branch
            out.append((keys, mode, tried))
    return out


# --- comparison of one candidate with one literal ---------------------------------------------------

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _typed(value: Any, kind: str) -> Any:
    """The candidate as a value comparable with a literal of `kind`, or _MISSING."""
    if kind == "num":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _MISSING
    if kind == "str":
        return value if isinstance(value, str) else _MISSING
    if kind == "bool":
        return value if isinstance(value, bool) else _MISSING
    if isinstance(value, str):  # dt
        ijd = datetime_ijd(value)
        return _MISSING if ijd is None else ijd
    return _MISSING


@dataclass(frozen=True)
class Item:
    """A single literal or an inclusive range lo..hi of one kind."""

    lo: Literal
    hi: Literal | None = None

    def matches(self, value: Any, op: str) -> bool:
        v = _typed(value, self.lo.kind)
        if v is _MISSING:
            return False
        if self.hi is not None:
            return self.lo.value <= v <= self.hi.value
        if self.lo.kind == "bool" and op != "==":
            return False
        return _OPS[op](v, self.lo.value)


# --- AST -----------------------------------------------------------------------------------------

class QNode:
    """A node of a parsed q expression."""

    def matches(self, entity: dict, expand: Expand) -> bool:
        """Whether the stored (expanded) entity satisfies this expression."""
        raise NotImplementedError


@dataclass
class And(QNode):
    """Every child matches (`;`)."""

    children: list[QNode]

    def matches(self, entity: dict, expand: Expand) -> bool:
        return all(c.matches(entity, expand) for c in self.children)


@dataclass
class Or(QNode):
    """Some child matches (`|`)."""

    children: list[QNode]

    def matches(self, entity: dict, expand: Expand) -> bool:
        return any(c.matches(entity, expand) for c in self.children)


@dataclass
class _PathNode(QNode):
    path: Path
    _bound: tuple[Expand, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def _branches(self, expand: Expand) -> Any:
        # One request calls matches() once per entity with the same expand: expand paths once.
        bound = self._bound
        if bound is None or bound[0] is not expand:
            bound = self._bound = (expand, self._bind(expand))
        return bound[1]

    def _bind(self, expand: Expand) -> Any:
        return self.path.branches(expand)


@dataclass
class Exists(_PathNode):
    """`A` (the path exists) or `!A` (it does not)."""

    negated: bool = False

    def matches(self, entity: dict, expand: Expand) -> bool:
        _, nodes = self._branches(expand)
        found = any(_walk(entity, keys) is not _MISSING for keys in nodes)
        return found != self.negated


@dataclass
class Compare(_PathNode):
    """`path op values`; `!=` and `!~=` are stored as the negation of `==` / `~=`."""

    op: str = "=="
    items: list[Item] = field(default_factory=list)
    regex: Pattern | None = None
    negated: bool = False

    def _bind(self, expand: Expand) -> Any:
        branches, nodes = self.path.branches(expand)
        return branch_items(branches, self.items), nodes

    def _positive(self, entity: dict, branches: Any) -> bool:
        for keys, mode, items in branches:
            for value in _candidates(entity, keys, mode):
                if self.regex is not None:
                    if isinstance(value, str) and self.regex.search(value):
                        return True
                elif any(item.matches(value, self.op) for item in items):
                    return True
        return False

    def matches(self, entity: dict, expand: Expand) -> bool:
        branches, nodes = self._branches(expand)
        if not self.negated:
            return self._positive(entity, branches)
        exists = any(_walk(entity, keys) is not _MISSING for keys in nodes)
        return exists and not self._positive(entity, branches)


# --- parser --------------------------------------------------------------------------------------

_PATH_STOP = set(";|()!=<>~,[]\"")
_COMPARATORS = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    def error(self, msg: str) -> QSyntaxError:
        return QSyntaxError(f"{msg} at position {self.i}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> QNode:
        node = self.parse_or()
        if self.i != len(self.s):
            raise self.error(f"unexpected {self.peek()!r}")
        return node

    def parse_or(self) -> QNode:
        children = [self.parse_and()]
        while self.peek() == "|":
            self.i += 1
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(children)

    def parse_and(self) -> QNode:
        children = [self.parse_term()]
        while self.peek() == ";":
            self.i += 1
            children.append(self.parse_term())
        return children[0] if len(children) == 1 else And(children)

    def parse_term(self) -> QNode:
        if self.peek() == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error("too deeply nested")
            self.i += 1
            node = self.parse_or()
            if self.peek() != ")":
                raise self.error("missing ')'")
            self.i += 1
            self.depth -= 1
            return node
        if self.peek() == "!" and not self.s.startswith("!=", self.i) and not self.s.startswith("!~=", self.i):
            self.i += 1
            return Exists(self.parse_path(), negated=True)
        path = self.parse_path()
        op = next((o for o in _COMPARATORS if self.s.startswith(o, self.i)), None)
        if op is None:
            if self.peek() in ("", ";", "|", ")"):
                return Exists(path)
            raise self.error(f"unexpected {self.peek()!r} after attribute path")
        self.i += len(op)
        if op in ("~=", "!~="):
            pattern = self.parse_scalar()[0]
            if len(pattern) > MAX_REGEX_LENGTH:
                raise self.error("regular expression too long")
            try:
                regex = compile_pattern(pattern)
            except RegexError as exc:
                raise self.error(f"invalid regular expression: {exc}") from None
            return Compare(path, op="~=", regex=regex, negated=op == "!~=")
        items = self.parse_items()
        if op not in ("==", "!=") and (len(items) > 1 or items[0].hi is not None):
            raise self.error(f"value lists and ranges need == or !=, not {op}")
        return Compare(path, op="==" if op == "!=" else op, items=items, negated=op == "!=")

    def parse_path(self) -> Path:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in _PATH_STOP:
            self.i += 1
        text = self.s[start:self.i]
        if not text:
            raise self.error("attribute name expected")
        keys: tuple[str, ...] = ()
        if self.peek() == "[":
            end = self.s.find("]", self.i)
            if end < 0:
                raise self.error("missing ']'")
            keys = tuple(self.s[self.i + 1:end].split("."))
            if not all(keys):
                raise self.error("empty key in compound-value path")
            self.i = end + 1
        if "://" in text:  # a full IRI may contain dots: only a trailing member is split off
            head, _, last = text.rpartition(".")
            if last in META_MEMBERS and "://" in head:
                return Path(head, (), last, keys)
            return Path(text, (), None, keys)
        parts = text.split(".")
        if not all(parts):
            raise self.error("empty segment in attribute path")
        meta = parts.pop() if len(parts) > 1 and parts[-1] in META_MEMBERS else None
        return Path(parts[0], tuple(parts[1:]), meta, keys)

    def parse_scalar(self) -> tuple[str, bool]:
        if self.peek() == '"':
            out: list[str] = []
            self.i += 1
            while True:
                c = self.peek()
                if c == "":
                    raise self.error("unterminated string")
                self.i += 1
                if c == '"':
                    return "".join(out), True
                if c == "\\" and self.peek() in ('"', "\\"):
                    c = self.peek()
                    self.i += 1
                out.append(c)
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in ";|),\"" \
                and not self.s.startswith("..", self.i):
            self.i += 1
        text = self.s[start:self.i]
        if not text or text[0] in "=<>~!(":
            raise self.error("value expected")
        return text, False

    def parse_items(self) -> list[Item]:
        items = []
        while True:
            lo = _literal(*self.parse_scalar())
            hi = None
            if self.s.startswith("..", self.i):
                self.i += 2
                hi = _literal(*self.parse_scalar())
                if hi.kind != lo.kind or lo.kind == "bool":
                    raise self.error("range bounds must be two numbers, strings or DateTimes")
            items.append(Item(lo, hi))
            if len(items) > MAX_ITEMS:
                raise self.error("too many values")
            if self.peek() != ",":
                return items
            self.i += 1


def parse_q(text: str) -> QNode:
    """Parse an (already URL-decoded) q expression; raises QSyntaxError."""
    if not text or not text.strip():
        raise QSyntaxError("empty q expression")
    if len(text) > MAX_Q_LENGTH:
        raise QSyntaxError(f"q expression longer than {MAX_Q_LENGTH} characters")
    return _Parser(text.strip()).parse()
