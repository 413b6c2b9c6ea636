"""The `lang` URI parameter (GS CIM 009 4.15): a LanguageProperty answered in one language.

`lang` is a language range list as in Accept-Language: `fr-CH,fr;q=0.9,*;q=0.5`.
"""

from __future__ import annotations

from typing import Any


def ranked(lang: str) -> list[str]:
    """The values of a q-ranked header (Accept, `lang`) by preference: quality, then order."""
    prefs: list[tuple[float, int, str]] = []
    for index, part in enumerate(lang.split(",")):
        tag, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            prefs.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(prefs)]


def pick(language_map: dict[str, Any], lang: str) -> tuple[str | None, Any]:
    """(tag, text) of the best match; `*` takes the first language; else @none, else the first."""
    for tag in ranked(lang):
        if tag == "*":
            break
        if tag in language_map:
            return tag, language_map[tag]
    if "@none" in language_map and "*" not in ranked(lang):
        return None, language_map["@none"]
    for tag, text in language_map.items():
        return (None if tag == "@none" else tag), text
    return None, None
