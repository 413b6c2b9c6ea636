"""Entity type selection (GS CIM 009 4.17): `A,B` or `A|B` any of, `A;B` all of, parentheses.

Parsed into disjunctive normal form: a list of groups, an entity matches when it has every type of
some group.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ngsild_broker.errors import bad_request

_TOKEN = re.compile(r"\s*([(),;|]|[^(),;|\s]+)")
_MAX_GROUPS = 64


def parse_types(text: str, expand: Callable[[str], str]) -> list[list[str]]:
    """The type selection as OR-of-AND groups of expanded type names."""
    tokens = [t for t in _TOKEN.findall(text) if t]
    groups, at = _expr(tokens, 0, expand, text)
    if at != len(tokens):
        raise bad_request("Invalid type selection", text)
    return groups


def _expr(tokens: list[str], at: int, expand: Callable[[str], str], text: str) -> tuple[list[list[str]], int]:
    groups, at = _term(tokens, at, expand, text)
    while at < len(tokens) and tokens[at] in (",", "|"):
        more, at = _term(tokens, at + 1, expand, text)
        groups = groups + more
    return groups, at


def _term(tokens: list[str], at: int, expand: Callable[[str], str], text: str) -> tuple[list[list[str]], int]:
    groups, at = _factor(tokens, at, expand, text)
    while at < len(tokens) and tokens[at] == ";":
        more, at = _factor(tokens, at + 1, expand, text)
        groups = [list(dict.fromkeys([*a, *b])) for a in groups for b in more]
        if len(groups) > _MAX_GROUPS:
            raise bad_request("Invalid type selection", "too complex")
    return groups, at


def _factor(tokens: list[str], at: int, expand: Callable[[str], str], text: str) -> tuple[list[list[str]], int]:
    if at >= len(tokens):
        raise bad_request("Invalid type selection", text)
    if tokens[at] == "(":
        groups, at = _expr(tokens, at + 1, expand, text)
        if at >= len(tokens) or tokens[at] != ")":
            raise bad_request("Invalid type selection", text)
        return groups, at + 1
    if tokens[at] in "),;|":
        raise bad_request("Invalid type selection", text)
    return [[expand(tokens[at])]], at + 1
