"""Transforms for mapping-table rows: feed strings -> clean typed values, each failure a clear reason.

Smart Burgas sends every number as a string, a missing value as ``""``, names with stray and double
spaces, URLs padded with spaces, and coordinates as numbers or strings. Every transform here takes
one raw value and returns the typed value, or raises ``ValueError`` with a reason naming the value;
the callers decide whether a bad value rejects the record or only drops that value.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

MAX_TEXT = 4000
"""Longest text kept (descriptions are ~420 characters); longer is refused, not cut."""
MAX_NUMBER_TEXT = 40

# Names the feeds use when they have none (observed: "" and "ddd" on traffic detectors).
PLACEHOLDER_NAMES = frozenset({"", "ddd"})

# Unit strings of the feeds -> UN/CEFACT common codes (what NGSI-LD unitCode carries).
UNIT_CODES: Mapping[str, str] = {
    "ug/m3": "GQ", "µg/m3": "GQ", "μg/m3": "GQ", "mcg/m3": "GQ",  # micrograms per cubic metre
    "mg/m3": "GP",                                                 # milligrams per cubic metre
    "кг": "KGM", "kg": "KGM",                                      # kilograms
    "бр": "H87", "брой": "H87", "бр.": "H87", "pcs": "H87",        # pieces
}


def show(value: Any) -> str:
    """A value as it may appear in a reason (repr, cut to 60 characters)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_blank(value: Any) -> bool:
    """True for the feeds' 'no value': None or an empty/whitespace string."""
    return value is None or (isinstance(value, str) and not value.strip())


def text(value: Any) -> str:
    """A string with whitespace trimmed and runs collapsed (NFC); refuses non-strings and huge text."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__} {show(value)}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"text of {len(value)} characters is longer than {MAX_TEXT}")
    # (split() splits at the very characters ``\s`` matches and drops the ends: runs of
    # whitespace become one space, trimmed, ~3x faster than a regex substitution)
    return " ".join(unicodedata.normalize("NFC", value).split())


def name(value: Any) -> str | None:
    """A cleaned name, or None for an empty or placeholder one ("", "ddd")."""
    cleaned = text(value)
    return None if cleaned.casefold() in PLACEHOLDER_NAMES else cleaned


def number(value: Any) -> float:
    """A finite number from a JSON number or a decimal string ("32", "0.0026", " 141.3 ")."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {show(value)}")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT:
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"{show(value)} is not a number") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__} {show(value)}")
    if not math.isfinite(result):
        raise ValueError(f"{show(value)} is not a finite number")
    return result


def non_negative(value: Any) -> float:
    """A number >= 0 (concentrations, speeds, counts as measured values)."""
    result = number(value)
    if result < 0:
        raise ValueError(f"{show(value)} is negative")
    return result


def integer(value: Any) -> int:
    """A whole number ("211", 211, "211.0")."""
    result = number(value)
    if not result.is_integer():
        raise ValueError(f"{show(value)} is not a whole number")
    return int(result)


def count(value: Any) -> int:
    """A whole number >= 0 (lots, places)."""
    result = integer(value)
    if result < 0:
        raise ValueError(f"{show(value)} is negative")
    return result


def url(value: Any) -> str | None:
    """An absolute http(s) URL with padding trimmed and non-ASCII percent-encoded; None when blank."""
    if is_blank(value):
        return None
    cleaned = text(value)
    if " " in cleaned:
        raise ValueError(f"URL {show(value)} contains spaces")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{show(value)} is not an absolute http(s) URL")
    # Smart Burgas writes Cyrillic paths; a URI (what the schemas check) wants them encoded.
    return quote(cleaned, safe=":/?#[]@!$&'()*+,;=%-._~")


# Transforms that, for the feeds' usual value (a numeric string of at most MAX_NUMBER_TEXT
# characters), are float(value) when it is finite and at least the floor. Mapping tables read such
# values inline (see adapter.mapping.base.read): a series reads thousands of them. float() ignores
# surrounding whitespace as the strip in number() does; anything else goes through the transform.
NUMBER_FLOORS: Mapping[Any, float] = {number: -math.inf, non_negative: 0.0}


def unit_code(value: Any) -> str:
    """The UN/CEFACT code of a feed unit string ("ug/m3" -> GQ, "КГ" -> KGM, "БРОЙ" -> H87)."""
    if isinstance(value, str) and (code := UNIT_CODES.get(value)) is not None:
        return code  # the feeds' usual spelling: no cleaning needed
    cleaned = text(value).casefold() if isinstance(value, str) else value
    code = UNIT_CODES.get(cleaned) if isinstance(cleaned, str) else None
    if code is None:
        raise ValueError(f"unknown unit {show(value)}")
    return code


def hex_colour(value: Any) -> str:
    """A ``#rrggbb`` colour (lower case)."""
    cleaned = text(value)
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", cleaned):
        raise ValueError(f"{show(value)} is not a #rrggbb colour")
    return cleaned.lower()
