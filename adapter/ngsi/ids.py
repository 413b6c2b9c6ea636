"""Entity ids: ``urn:ngsi-ld:<Type>:<stable source-qualified id>``.

Each mapper has one id function that calls :func:`entity_id` with the source's own stable key
(a feed id, a GIS object id, a GTFS id) or, where a feed has none, a normalised name plus a rounded
position (:func:`name_key`). The same record gives the same id in every run and every language,
and an observation never gets an id of its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote

from data_models._types import check_uri

_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# URN NSS characters (RFC 8141) that may stay as they are; everything else is percent-encoded.
_SAFE = "-._~!$&'()*+,;=:@"
_PLAIN = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$")
_SPACES = re.compile(r"\s+")
# Latin letters that Smart Burgas types inside Cyrillic words (homoglyphs); folded so that
# "Цвeтни" (Latin e) and "Цветни" give the same key.
_HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у",
                             "A": "А", "B": "В", "E": "Е", "K": "К", "M": "М", "H": "Н", "O": "О",
                             "P": "Р", "C": "С", "T": "Т", "X": "Х", "I": "І", "i": "і"})
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def entity_id(entity_type: str, *parts: str | int) -> str:
    """``urn:ngsi-ld:<entity_type>:<part>:<part>...`` with each part percent-encoded as needed."""
    if not _TYPE.match(entity_type):
        raise ValueError(f"entity type {entity_type!r} is not a valid NGSI-LD type name")
    if not parts:
        raise ValueError("an entity id needs at least one source key")
    encoded = []
    for part in parts:
        text = str(part).strip()
        if not text:
            raise ValueError(f"empty key in entity id for {entity_type}")
        if _PLAIN.match(text):  # the usual key (ASCII, nothing to escape): skip NFC and quote
            encoded.append(text)
        else:
            encoded.append(quote(unicodedata.normalize("NFC", text), safe=_SAFE))
    return check_uri(f"urn:ngsi-ld:{entity_type}:{':'.join(encoded)}")


def id_maker(entity_type: str, *prefix: str | int) -> Callable[[str | int], str]:
    """``key -> entity_id(entity_type, *prefix, key)``, with the prefix checked and encoded once."""
    head = entity_id(entity_type, *prefix, "x")[:-1]

    def make(key: str | int) -> str:
        text = key if type(key) is str else str(key)
        if _PLAIN.match(text):  # (plain URN characters: the id stays a valid URI)
            return head + text
        return entity_id(entity_type, *prefix, key)
    return make


def normalise_name(name: str) -> str:
    """A name reduced to a stable key: NFKC, no quotes, single spaces, Cyrillic homoglyphs folded."""
    text = unicodedata.normalize("NFKC", name)
    text = text.translate({ord(c): " " for c in "\"'„“”«»‚‘’`"})
    text = _SPACES.sub(" ", text).strip().casefold()
    if _CYRILLIC.search(text):
        # Fold only inside words that are Cyrillic anyway ("I-ви"), never in Latin words ("HDPE").
        text = " ".join(word.translate(_HOMOGLYPHS) if _CYRILLIC.search(word) else word
                        for word in text.split(" "))
    return text


# Bulgarian Streamlined System (the official transliteration, 2009 Transliteration Act).
_TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s",
    "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sht",
    "ъ": "a", "ь": "y", "ю": "yu", "я": "ya", "і": "i", "ё": "yo", "ы": "y", "э": "e"})
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """A readable ASCII slug of a (Bulgarian) name: normalised, transliterated, dashed."""
    return _NOT_SLUG.sub("-", normalise_name(name).translate(_TRANSLIT)).strip("-")


def name_key(name: str, lon: float, lat: float, digits: int = 4) -> str:
    """Key for id-less records: name slug plus position rounded to ~10 m (4 decimals)."""
    return f"{slug(name) or 'unnamed'}:{lon:.{digits}f},{lat:.{digits}f}"
