"""Bounds on what clients send that the size limit alone does not catch: nesting depth and id text."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Levels of arrays/objects in one attribute value (sub-attributes count as levels too). orjson
# refuses to encode documents deeper than 254 levels, and a stored entity adds a few around the
# value: without this bound such a value failed a whole batch at commit time with a 500.
MAX_NESTING = 64

# Characters that make an id render as another id, or as nothing, in logs, UIs and audit trails
# (ETSI test 451_02): control, format (bidi controls, zero-width, BOM), separators (no-break space,
# line separator), surrogates and private use, plus the default-ignorable and blank code points
# whose category says letter or symbol (Hangul fillers, variation selectors, Braille blank).
_REJECTED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"})
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INVISIBLE_RANGES = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
                     (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0),
                     (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether arrays/objects in `value` nest more than `limit` levels (a scalar is level 0)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if type(current) is dict:
            children: Any = current.values()
        elif type(current) is list:
            children = current
        else:
            continue
        if depth > limit:
            return True
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def invisible_character(text: str) -> str | None:
    """The first character of `text` that has no visible rendering in an IRI, as `U+XXXX`."""
    if text.isascii():
        control = _ASCII_CONTROL.search(text)
        return None if control is None else f"U+{ord(control.group()):04X}"
    for ch in text:
        code = ord(ch)
        if code < 0x80:
            if ch < " " or ch == "\x7f":
                return f"U+{code:04X}"
            continue
        if (unicodedata.category(ch) in _REJECTED_CATEGORIES
                or (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF  # noncharacters
                or any(lo <= code <= hi for lo, hi in _INVISIBLE_RANGES)):
            return f"U+{code:04X}"
    return None
