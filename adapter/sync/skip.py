"""Skipping work that cannot have changed, so that a no-change re-sync costs almost nothing.

Three levels, kept per source as one value (:class:`SourceState`, one row of the state file, saved
once a run's plan is applied):
- the **source version** a source publishes (``VersionedSource.version()``, e.g. an ArcGIS layer's
  last edit date): equal to the one of the last complete sync -> the fetch is skipped entirely;
- the **page key** of each page of a paged static source (``Fetch.skip_page``): a page whose
  records are byte for byte those of a page mapped before yields no records at all; its entities
  count as seen and unchanged. This is what makes a no-change re-sync cheap for layers that
  publish no version (WFS, OGC API Features, GeoJSON URLs without ETag): a page costs its download
  and one hash. When every page is known and the state holds nothing else, nothing is written;
- the **raw record hash** of each record of a static source (GIS layers, GTFS): a record whose
  exact content was mapped before, under the same mapping, is not mapped again; its entity counts
  as seen and unchanged (pages that shifted by an insertion still skip their records' mapping).
All are saved under a *salt* (the adapter version and the source's configuration), so a new mapping
invalidates them. They only ever save work: a record or entity the state does not hold is mapped,
and an entity built from several records is always built again from all of them.
Live feeds are never record-skipped: their mapping depends on the fetch time (stale sensors).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from adapter import __version__
from adapter.sources.base import RawRecord
from adapter.sync.state import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS source_state (
    tenant TEXT NOT NULL, source TEXT NOT NULL, salt TEXT NOT NULL, version TEXT, marks BLOB NOT NULL,
    PRIMARY KEY (tenant, source)
);
DROP TABLE IF EXISTS source_version;
DROP TABLE IF EXISTS raw_page;
DROP TABLE IF EXISTS raw_record;
"""
# The three tables dropped above kept the same state row by row before SourceState. A state file that
# has them loses them at open: each source's next run fetches and maps everything once (its entities
# are unchanged in entity_state, so nothing is sent again) and saves its SourceState.
_HASH_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def salt_for(source_config: Any) -> str:
    """What a skip depends on besides the data: adapter version and the source's configuration."""
    config = source_config.model_dump(mode="json") if hasattr(source_config, "model_dump") else source_config
    return hashlib.blake2b(orjson.dumps([__version__, config], option=_HASH_OPTIONS),
                           digest_size=8).hexdigest()


def raw_hash(record: RawRecord) -> str:
    """Hash of what a mapper reads from a record: its payload and translations."""
    try:
        body = orjson.dumps([record.payload, record.translations], option=_HASH_OPTIONS, default=str)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits: the mapper rejects it
        body = repr((record.payload, record.translations)).encode()
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceMarks:
    """Which source's incremental state a run uses: its key in the state file and the salt (the
    adapter version and the source's configuration) the state must have been saved under."""

    tenant: str
    source: str
    salt: str
    static: bool = True  # pages and records are skipped (GIS layers, GTFS); live feeds never are


class Page(NamedTuple):
    """Records remembered together (a page, or a source's others): their raw hashes and entity ids."""

    hashes: str  # hex, concatenated (_HEX characters each)
    ids: str  # newline-separated, in the same order

    def entries(self) -> Iterator[tuple[str, str]]:
        """(raw hash, entity id) of each record."""
        ids = self.ids.split("\n") if self.ids else ()
        return ((self.hashes[i * _HEX:(i + 1) * _HEX], entity_id) for i, entity_id in enumerate(ids))

    def raw_hashes(self) -> Iterator[str]:
        """The raw hash of each record (as ``entries`` gives them, without the ids)."""
        return (self.hashes[i:i + _HEX] for i in range(0, len(self.hashes), _HEX))


_HEX = 32  # characters of one raw hash
_NO_RECORDS = Page("", "")


@dataclass(frozen=True, slots=True)
class SourceState:
    """One source's incremental state, as one value: loaded at the start of a run, saved once after
    its plan is applied. Everything in it was saved under ``salt``."""

    salt: str
    version: str | None = None  # the source's version at its last complete run (None: fetch)
    pages: Mapping[bytes, Page] = field(default_factory=lambda: MappingProxyType({}))  # by page key
    # The records mapped before whose entity was built from it alone, but for those on ``pages``;
    # sorted by hash, so that an unchanged source gives an equal value whatever the record order.
    records: Page = _NO_RECORDS

    def under(self, salt: str) -> SourceState:
        """This state if it was saved under ``salt``, else an empty one (a new mapping maps all)."""
        return self if salt == self.salt else SourceState(salt)

    def record_entities(self) -> dict[str, str]:
        """Raw hash -> entity id of every record mapped before (on a page or not)."""
        return {h: entity_id for page in (*self.pages.values(), self.records) for h, entity_id in page.entries()}

    def encode_marks(self) -> bytes:
        """Pages and records as stored: one blob of hex hashes and entity ids (~60 bytes a record)."""
        return orjson.dumps({"pages": [[key.hex(), *page] for key, page in self.pages.items()],
                             "records": list(self.records)})

    @classmethod
    def decode(cls, salt: str, version: str | None, marks: bytes) -> SourceState:
        """The value of a stored row."""
        data = orjson.loads(marks)
        return cls(salt, version, MappingProxyType({bytes.fromhex(key): Page(hashes, ids)
                                                    for key, hashes, ids in data["pages"]}),
                   Page(*data["records"]))


class SkipIndex:
    """The incremental state of every source of one state file: one SourceState row per source."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.conn.executescript(SCHEMA)

    def load(self, marks: SourceMarks) -> SourceState | None:
        """The source's stored state (under whatever salt it was saved), or None."""
        row = self.store.conn.execute(
            "SELECT salt, version, marks FROM source_state WHERE tenant=? AND source=?",
            (marks.tenant, marks.source)).fetchone()
        return SourceState.decode(*row) if row else None

    def save(self, marks: SourceMarks, stored: SourceState | None, state: SourceState) -> None:
        """Replace the ``stored`` state (as ``load`` gave it) with ``state``; writes nothing when
        they are equal, and only the version when the pages and records are."""
        if state == (stored or SourceState(state.salt)):
            return
        key = (marks.tenant, marks.source)
        with self.store.transaction() as db:
            if stored is not None and (state.pages, state.records) == (stored.pages, stored.records):
                db.execute("UPDATE source_state SET salt=?, version=? WHERE tenant=? AND source=?",
                           (state.salt, state.version, *key))
            else:
                db.execute("INSERT OR REPLACE INTO source_state VALUES (?, ?, ?, ?, ?)",
                           (*key, state.salt, state.version, state.encode_marks()))

    def forget(self) -> None:
        """Forget the state of every source: the next runs fetch and map everything (after the
        broker lost its data, see StateStore.forget_confirmed)."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM source_state")

    def held(self, tenant: str, source: str) -> set[str]:
        """The entities the state holds for a source (not pending deletion)."""
        return {row[0] for row in self.store.conn.execute(
            "SELECT entity_id FROM entity_state WHERE tenant=? AND source=? AND want_hash IS NOT NULL",
            (tenant, source))}


class RecordSkipper:
    """One run's view of its source's state: which pages and raw records need not be mapped again,
    and what this run saw, for the next one. The record index is built only when a run needs it: a
    run that skips every page never builds it."""

    def __init__(self, state: SourceState, held: Callable[[], set[str]]) -> None:
        self.state = state
        self._load_held = held
        self._known: dict[str, str] | None = None
        self._held: set[str] | None = None
        self.pages = dict(state.pages)  # page key -> (raw hashes, entity ids), from the last runs
        self.reset()

    @classmethod
    def empty(cls) -> RecordSkipper:
        """Skips nothing (a ``full`` run), but remembers what it saw."""
        return cls(SourceState(""), set)

    @property
    def known(self) -> dict[str, str]:
        """Raw hash -> entity id of the records mapped before whose entity the state still holds
        (anything else must be mapped again)."""
        if self._known is None:
            held = self._held_entities()
            self._known = {h: eid for h, eid in self.state.record_entities().items() if eid in held}
        return self._known

    def _held_entities(self) -> set[str]:
        if self._held is None:
            self._held = self._load_held()
        return self._held

    def reset(self, *, pages: bool = True) -> None:
        """Forget this run (to read the source again); ``pages=False`` also stops page skipping."""
        if not pages:
            self.pages = {}
        self.seen: dict[str, str] = {}  # raw hash -> entity id of this run's records (not pages)
        self.skipped: dict[str, list[RawRecord]] = {}  # entity id -> its unchanged records
        self.page_ids: set[str] = set()  # entities of the pages skipped whole
        self.page_records = 0
        self.run_pages: dict[bytes, Page] = {}  # this run's pages whose every record mapped
        self._page: tuple[bytes, int, list[str], list[str]] | None = None  # page being read

    def skip_page(self, key: bytes, count: int) -> bool:
        """The page filter of a fetch (``Fetch.skip_page``): skip a page mapped before, whose
        entities the state still holds; otherwise start following its records."""
        self._close_page()
        page = self.pages.get(key)
        if page is not None:
            ids = page.ids.split("\n")
            if len(ids) == count and self._held_entities().issuperset(ids):
                self.page_ids.update(ids)
                self.run_pages[key] = page
                self.page_records += count
                return True
        self._page = (key, count, [], [])
        return False

    def skip(self, record: RawRecord) -> tuple[str, bool]:
        """(raw hash, whether the record need not be mapped)."""
        digest = raw_hash(record)
        entity_id = self.known.get(digest)
        if self._page is not None:
            self._page[2].append(digest)
            if entity_id is not None:
                self._page[3].append(entity_id)
        if entity_id is None:
            return digest, False
        self.seen[digest] = entity_id
        self.skipped.setdefault(entity_id, []).append(record)
        return digest, True

    def mapped(self, digest: str, result: Any) -> None:
        """A record of this run was mapped (Mapped or Rejected): remember its entity, or that its
        page cannot be skipped."""
        entity = getattr(result, "entity", None)
        if entity is None:
            self._page = None
            return
        self.seen[digest] = entity.id
        if self._page is not None:
            self._page[3].append(entity.id)

    def mapping(self, mapper: Callable[[RawRecord], Any]) -> Callable[[RawRecord], Any]:
        """``mapper`` for the records that need it; None for a record skipped."""
        def map_changed(record: RawRecord) -> Any:
            digest, skip = self.skip(record)
            if skip:
                return None
            result = mapper(record)
            self.mapped(digest, result)
            return result
        return map_changed

    @property
    def saw_entities(self) -> bool:
        """The run saw entities without mapping them (skipped records or pages)."""
        return bool(self.skipped or self.page_ids)

    def finish(self, mapped: Mapping[str, Any]) -> list[RawRecord]:
        """The fetch is over: the skipped records of entities that were ``mapped`` from changed
        records too; they must be mapped again, as a merge needs all of an entity's records."""
        self._close_page()
        return [record for entity_id in [i for i in self.skipped if i in mapped]
                for record in self.skipped.pop(entity_id)]

    def _close_page(self) -> None:
        page = self._page
        if page is not None and len(page[2]) == len(page[3]) == page[1]:
            self.run_pages[page[0]] = Page("".join(page[2]), "\n".join(page[3]))
        self._page = None

    def all_seen(self) -> dict[str, str]:
        """Raw hash -> entity id of every record this run saw, skipped pages included (not to be
        changed: without such pages, it is the run's own record of what it saw)."""
        skipped = [page for key, page in self.run_pages.items() if key in self.pages]
        if not skipped:  # (a first run: no copy of a value as large as the source)
            return self.seen
        seen = dict(self.seen)
        for page in skipped:  # skipped whole; a page read record by record is in seen
            seen.update(page.entries())
        return seen

    def unchanged_everywhere(self, fetch: Any, state_count: int) -> bool:
        """Every page of a complete fetch was skipped and the state holds nothing else."""
        return (fetch.complete and fetch.record_count == 0 and self.page_records > 0
                and not self.skipped and len(self.page_ids) == state_count)

    def after(self, state: SourceState, *, complete: bool) -> SourceState:
        """``state`` with the pages and records of this run: a complete run replaces them, a
        partial one adds to them.

        A record whose entity was built from several records is left out, and so is its page, so
        that it is always mapped again: a change to any of them must rebuild the entity from all.
        """
        # (Built for a whole layer at the end of its run: no more copies of that size than needed.)
        seen = self.all_seen()
        records = seen  # the records of entities built from one record each: usually all
        once = set(seen.values())  # those entities
        if len(once) < len(seen):  # some entity was built from several records
            per_entity = Counter(seen.values())
            records = {h: eid for h, eid in seen.items() if per_entity[eid] == 1}
            once = set(records.values())
        pages = {key: page for key, page in self.run_pages.items() if once.issuperset(page.ids.split("\n"))}
        if not complete:
            records = {**state.record_entities(), **records}
            pages = {**state.pages, **pages}
        off_pages = set(records)
        for page in pages.values():
            off_pages.difference_update(page.raw_hashes())
        ordered = sorted((h, records[h]) for h in off_pages)
        return replace(state, pages=MappingProxyType(pages),
                       records=Page("".join(h for h, _ in ordered), "\n".join(eid for _, eid in ordered)))
