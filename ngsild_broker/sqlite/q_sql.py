"""The q filter tree (ngsild_broker.q) as an exact SQLite WHERE fragment over a JSON document column.

Semantics are those of `QNode.matches` (see ngsild_broker/q.py); a node SQL cannot express exactly
(a regex, a key JSON paths cannot quote) makes `to_sql` return None and the caller filters in Python.
"""

from __future__ import annotations

from typing import Any

from ngsild_broker.q import DT_GLOB, And, Compare, Exists, Expand, Item, Literal, Or, QNode, branch_items


class _UntranslatableError(Exception):
    pass


def _json_path(keys: tuple[str, ...]) -> str:
    for k in keys:
        if '"' in k or "\\" in k or any(ord(c) < 32 for c in k):
            raise _UntranslatableError
    path = "$" + "".join(f'."{k}"' for k in keys)
    return "'" + path.replace("'", "''") + "'"


_SQL_TYPE = {"num": "je.type IN ('integer','real')", "str": "je.type = 'text'"}


def _julian_day(lit: Literal) -> float:
    return lit.value / 86400000.0


def _plain(lit: Literal) -> Any:
    return lit.value


def _item_sql(item: Item, op: str, params: list) -> str:
    kind = item.lo.kind
    if kind == "bool":
        if op != "==":
            return "0"
        return f"je.type = '{'true' if item.lo.value else 'false'}'"
    if kind == "dt":
        # julianday() of the same iJD gives the same double: the Python side compares iJDs.
        guard = f"je.type = 'text' AND je.atom GLOB '{DT_GLOB}'"
        operand = "julianday(je.atom)"
        conv = _julian_day
    else:
        guard = _SQL_TYPE[kind]
        operand = "je.atom"
        conv = _plain
    if item.hi is not None:
        params.extend((conv(item.lo), conv(item.hi)))
        return f"({guard} AND {operand} BETWEEN ? AND ?)"
    params.append(conv(item.lo))
    return f"({guard} AND {operand} {'=' if op == '==' else op} ?)"


def _node_sql(node: QNode, expand: Expand, doc: str, params: list) -> str:
    if isinstance(node, (And, Or)):
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(_node_sql(c, expand, doc, params) for c in node.children) + ")"
    if isinstance(node, Exists):
        _, nodes = node.path.branches(expand)
        found = " OR ".join(_found(doc, k) for k in nodes)
        return f"(NOT ({found}))" if node.negated else f"({found})"
    if isinstance(node, Compare):
        if node.regex is not None:
            raise _UntranslatableError  # patterns are matched in Python (Compare.matches), not in SQL
        branches, nodes = node.path.branches(expand)
        conds = []
        for keys, mode, tried in branch_items(branches, node.items):
            key_filter = "typeof(je.key) = 'text'" if mode == "members" else "typeof(je.key) <> 'text'"
            items = " OR ".join(_item_sql(item, node.op, params) for item in tried)
            conds.append(f"EXISTS (SELECT 1 FROM json_each({doc}, {_json_path(keys)}) AS je "
                         f"WHERE {key_filter} AND ({items}))")
            if len(keys) > 1:  # a multi-attribute (an array of instances): any instance
                items = " OR ".join(_item_sql(item, node.op, params) for item in tried)
                conds.append(f"(json_type({doc}, {_json_path(keys[:1])}) = 'array' AND EXISTS "
                             f"(SELECT 1 FROM json_each({doc}, {_json_path(keys[:1])}) AS inst, "
                             f"json_each(inst.value, {_json_path(keys[1:])}) AS je "
                             f"WHERE {key_filter} AND ({items})))")
        positive = "(" + (" OR ".join(conds) or "0") + ")"
        if not node.negated:
            return positive
        found = " OR ".join(_found(doc, k) for k in nodes)
        return f"(({found}) AND NOT {positive})"
    raise _UntranslatableError


def _found(doc: str, keys: tuple[str, ...]) -> str:
    """The path exists, in the attribute or (multi-attribute) in any of its instances."""
    single = f"json_type({doc}, {_json_path(keys)}) IS NOT NULL"
    if len(keys) < 2:
        return single
    return (f"({single} OR (json_type({doc}, {_json_path(keys[:1])}) = 'array' AND EXISTS "
            f"(SELECT 1 FROM json_each({doc}, {_json_path(keys[:1])}) AS inst "
            f"WHERE json_type(inst.value, {_json_path(keys[1:])}) IS NOT NULL)))")


def to_sql(node: QNode, expand: Expand, doc_column: str = "doc") -> tuple[str, list] | None:
    """A SQLite WHERE fragment equivalent to `node.matches`, with its parameters; None if impossible."""
    params: list = []
    try:
        return _node_sql(node, expand, doc_column, params), params
    except _UntranslatableError:
        return None
