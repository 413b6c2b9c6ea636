"""SmartBurgasSource: one Smart Burgas feed, fetched in each language, one raw record per feature.

URL: given explicitly, else the feed's environment variable (``AIR_QUALITY_TIME_URL`` ...), else the
bundled sample (see ``smartburgas_feeds.py``). For translated feeds the URL is fetched once per
language: a ``{lang}`` placeholder in the URL is replaced by the language, otherwise ``lang=<code>``
is set in the query string (kept alongside any query the URL already has).

Language pairing: ``RawRecord.payload`` is the Bulgarian feature (the feed's own language) and
``translations["en"]`` its English twin. Twins are found by the feed's id key (the k-th feature with
an id in one language pairs with the k-th feature with that id in the other, so duplicated ids
pair up in order); features without an id key, and feeds with none, pair by position, but only
when both languages have the same number of features, because a shifted list would attach the wrong
names. English features whose id has no Bulgarian twin are yielded on their own (``lang="en"``,
key prefixed ``en:``). If the
English fetch fails, Bulgarian records are yielded without translations and a warning is logged.

The envelope is checked (an object whose array key, ``features`` or ``features1``, is a list); a
missing or wrong array key is a SourceFormatError naming the source. Each feature is yielded as it
is, even a broken one: the mapper quarantines it, and the other features go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from adapter.errors import AdapterError, SourceFormatError
from adapter.redaction import scrub_url
from adapter.sources.base import Fetch, RawRecord, utcnow
from adapter.sources.http import FetchOptions, PayloadFetcher, with_params
from adapter.sources.smartburgas_feeds import FEEDS, LANGS, FeedSpec

logger = logging.getLogger(__name__)

DEFAULT_MAX_FEATURES = 100_000


class SmartBurgasSource:
    """One Smart Burgas feed as a :class:`adapter.sources.base.Source`."""

    def __init__(self, feed: FeedSpec | str, url: str | None = None, *,
                 client: httpx.AsyncClient | None = None, fetcher: PayloadFetcher | None = None,
                 options: FetchOptions | None = None, langs: Sequence[str] = LANGS,
                 env: Mapping[str, str] | None = None,
                 max_features: int = DEFAULT_MAX_FEATURES) -> None:
        self.spec = FEEDS[feed] if isinstance(feed, str) else feed
        self.name = self.spec.source_name
        environ = os.environ if env is None else env
        self.url = url or environ.get(self.spec.env_var) or self.spec.default_url
        self.langs: tuple[str, ...] = tuple(langs) if self.spec.translated else (LANGS[0],)
        self.fetcher = fetcher or PayloadFetcher(client, options)
        self.max_features = max_features

    def url_for(self, lang: str) -> tuple[str, dict[str, str]]:
        """The URL to fetch for ``lang`` and the query parameters to set on it."""
        if "{lang}" in self.url:
            return self.url.replace("{lang}", lang), {}
        return self.url, ({"lang": lang} if self.spec.translated else {})

    def fetch(self) -> Fetch:
        """One run over the feed in every language."""
        return Fetch(self.name, self._produce)

    async def _produce(self, fetch: Fetch) -> AsyncIterator[RawRecord]:
        primary, *others = self.langs
        results = await asyncio.gather(*(self._features(lang) for lang in self.langs),
                                       return_exceptions=True)
        first = results[0]
        if isinstance(first, BaseException):
            raise first
        features, origin = first
        fetched_at = utcnow()
        translations: dict[str, list[Any] | None] = {}
        for lang, result in zip(others, results[1:], strict=True):
            if isinstance(result, AdapterError):
                # The records are all there; only their other-language names are missing.
                logger.warning("source %s: %s variant failed, records without it: %s",
                               self.name, lang, result)
                translations[lang] = None
            elif isinstance(result, BaseException):
                raise result
            else:
                translations[lang] = result[0]

        if len(features) > self.max_features:
            fetch.mark_incomplete(f"{len(features)} features, only the first "
                                  f"{self.max_features} read")
            features = features[: self.max_features]
        pairs = {lang: pair_features(self.spec.id_key, features, others_features[: self.max_features])
                 for lang, others_features in translations.items() if others_features is not None}
        if any(p.unpaired_positions for p in pairs.values()):
            logger.warning("source %s: languages differ in feature count; id-less features "
                           "are left without translation", self.name)

        for index, feature in enumerate(features):
            twins = {lang: p.twin_of[index] for lang, p in pairs.items() if index in p.twin_of}
            yield self._record(index, feature, primary, twins, origin, fetched_at)
        for lang, pairing in pairs.items():
            other = translations[lang] or []
            for index in pairing.orphans:
                yield self._record(index, other[index], lang, {}, origin, fetched_at)

    async def _features(self, lang: str) -> tuple[list[Any], str]:
        url, params = self.url_for(lang)
        payload = await self.fetcher.get_json(url, source=self.name, params=params)
        full_url = scrub_url(with_params(url, params))  # records' origin: without credentials
        return self._envelope(payload, full_url), full_url

    def _envelope(self, payload: Any, url: str) -> list[Any]:
        key = self.spec.array_key
        if not isinstance(payload, dict):
            raise SourceFormatError(f"expected a JSON object with {key!r}, got "
                                    f"{type(payload).__name__} (from {url})",
                                    source=self.name, url=url)
        if key not in payload:
            found = ", ".join(repr(k) for k in list(payload)[:5]) or "no keys"
            raise SourceFormatError(f"missing {key!r} array (found {found}) (from {url})",
                                    source=self.name, url=url)
        features = payload[key]
        if not isinstance(features, list):
            raise SourceFormatError(f"{key!r} is {type(features).__name__}, not an array "
                                    f"(from {url})", source=self.name, url=url)
        return features

    def _record(self, index: int, feature: Any, lang: str, twins: Mapping[str, Any],
                origin: str, fetched_at: datetime) -> RawRecord:
        key = f"{self.spec.array_key}[{index}]"
        feature_id = _feature_id(self.spec.id_key, feature)
        if feature_id is not None:
            key += f" {self.spec.id_key}={feature_id}"
        if lang != self.langs[0]:
            key = f"{lang}:{key}"
        if not isinstance(feature, dict):
            return RawRecord(self.name, key, {}, fetched_at, lang, {}, origin,
                             problem=f"feature is {type(feature).__name__}, not an object")
        translations = {k: v for k, v in twins.items() if isinstance(v, dict)}
        return RawRecord(self.name, key, feature, fetched_at, lang, translations, origin)


def _feature_id(id_key: str | None, feature: Any) -> str | None:
    """The feature's id as a string (``properties[id_key]``), or None."""
    if id_key is None or not isinstance(feature, dict):
        return None
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        return None
    value = properties.get(id_key)
    return None if value is None or value == "" else str(value)


class Pairing:
    """How the features of two languages pair up: primary index -> twin, and unpaired others."""

    def __init__(self) -> None:
        self.twin_of: dict[int, Any] = {}
        self.orphans: list[int] = []
        self.unpaired_positions = False


def pair_features(id_key: str | None, primary: Sequence[Any], other: Sequence[Any]) -> Pairing:
    """Pair two languages' features by id (k-th occurrence with k-th), else by position."""
    pairing = Pairing()
    by_id: dict[str, list[int]] = defaultdict(list)
    without_id_other = []
    for j, feature in enumerate(other):
        fid = _feature_id(id_key, feature)
        if fid is None:
            without_id_other.append(j)
        else:
            by_id[fid].append(j)
    without_id_primary = []
    for i, feature in enumerate(primary):
        fid = _feature_id(id_key, feature)
        if fid is None:
            without_id_primary.append(i)
        elif by_id.get(fid):
            pairing.twin_of[i] = other[by_id[fid].pop(0)]
    pairing.orphans = sorted(j for js in by_id.values() for j in js)
    if len(without_id_primary) == len(without_id_other):
        for i, j in zip(without_id_primary, without_id_other, strict=True):
            pairing.twin_of[i] = other[j]
    else:
        # Id-less features shifted between languages would get the wrong names: pair none.
        pairing.unpaired_positions = True
    return pairing
