"""A GTFS static feed (zip, from a path or URL) as raw records: agency, routes, stops, trips, shapes.

Each row of ``agency.txt``, ``routes.txt``, ``stops.txt`` and ``trips.txt`` is one record; shapes
are grouped by ``shape_id`` into one record with its points ordered by ``shape_pt_sequence``::

    {"table": "stops", "row": {"stop_id": "S01", "stop_name": "Автогара Юг", ...}}
    {"table": "shapes", "row": {"shape_id": "SH1_0", "points": [{"shape_pt_lat": "42.49", ...}, ...]}}

Values stay the feed's strings (the mapper parses them). Files may sit in a folder inside the zip,
start with a UTF-8 BOM and use CRLF. Everything is bounded: the zip's bytes (the fetcher), each
member's uncompressed size (zip bombs), rows per file and characters per field. A file that cannot
be read (bad zip, bad CSV quoting, not UTF-8, a required file missing) fails the source with a
SourceFormatError naming the file and line; a row with the wrong number of fields is yielded with
``problem`` set, so the mapper quarantines just that row.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from adapter.errors import SourceFormatError
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.http import FetchOptions, PayloadFetcher

logger = logging.getLogger(__name__)

REQUIRED = ("agency", "routes", "stops", "trips")
OPTIONAL = ("shapes",)


@dataclass(frozen=True, slots=True)
class GTFSLimits:
    """Bounds for one feed."""

    max_member_bytes: int = 512 * 1024 * 1024
    max_rows_per_file: int = 2_000_000
    max_field_chars: int = 4_000


class GTFSSource:
    """A GTFS static zip as raw records (see the module docstring)."""

    def __init__(self, name: str, url: str, *, limits: GTFSLimits = GTFSLimits(),
                 client: httpx.AsyncClient | None = None, options: FetchOptions | None = None) -> None:
        self.name = name
        self.url = url
        self.limits = limits
        self._fetcher = PayloadFetcher(client, options)

    def fetch(self) -> Fetch:
        """One run over the feed."""
        return Fetch(self.name, self._produce)

    async def version(self) -> str | None:
        """The document's version (file size and time, or ETag / Last-Modified): an unchanged
        one lets the sync skip the fetch (adapter.sync.skip)."""
        try:
            return await self._fetcher.version(self.url, source=self.name)
        finally:
            await self._fetcher.aclose()

    async def _produce(self, fetch: Fetch) -> AsyncIterator[RawRecord]:
        try:
            payload = await self._fetcher.get(self.url, source=self.name)
        finally:
            await self._fetcher.aclose()
        try:
            archive = zipfile.ZipFile(io.BytesIO(payload.body))
        except zipfile.BadZipFile as exc:
            raise SourceFormatError(f"{payload.url} is not a GTFS zip: {exc}", source=self.name) from None
        with archive:
            members = self._members(archive)
            for table in (*REQUIRED, *OPTIONAL):
                info = members.get(table)
                if info is None:
                    if table in REQUIRED:
                        raise SourceFormatError(f"{table}.txt missing from {payload.url}", source=self.name)
                    continue
                rows = self._rows(archive, info)
                if table == "shapes":
                    for record in self._shapes(rows, info.filename, payload.fetched_at, payload.url):
                        yield record
                    continue
                for line, row, problem in rows:
                    key = f"{info.filename}:{line}"
                    ident = row.get(f"{table[:-1]}_id") or row.get("agency_id")
                    yield RawRecord(self.name, key + (f" id={ident}" if ident else ""),
                                    {"table": table, "row": row}, payload.fetched_at,
                                    origin=payload.url, problem=problem)

    def _members(self, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if info.is_dir() or not base.endswith(".txt") or base.startswith("."):
                continue
            table = base[:-4]
            if table in REQUIRED or table in OPTIONAL:
                if info.file_size > self.limits.max_member_bytes:
                    raise SourceFormatError(f"{info.filename} is {info.file_size} bytes uncompressed, "
                                            f"more than {self.limits.max_member_bytes}", source=self.name)
                members.setdefault(table, info)
        return members

    def _rows(self, archive: zipfile.ZipFile,
              info: zipfile.ZipInfo) -> Iterator[tuple[int, dict[str, str], str | None]]:
        """``(line, row, problem)`` for each data row; file-level damage raises, naming file and line."""
        limit = self.limits
        line = 1
        try:
            with archive.open(info) as raw:
                # utf-8-sig drops the BOM spreadsheet exports put in front of the header.
                text = io.TextIOWrapper(io.BufferedReader(_Bounded(raw, limit.max_member_bytes)),
                                        encoding="utf-8-sig", newline="")
                reader = csv.reader(text)
                header = [h.strip() for h in next(reader, [])]
                if not header or not any(header):
                    raise SourceFormatError(f"{info.filename} has no header line", source=self.name)
                count = 0
                for values in reader:
                    line = reader.line_num
                    if not values or values == [""]:
                        continue
                    count += 1
                    if count > limit.max_rows_per_file:
                        raise SourceFormatError(f"{info.filename} has more than {limit.max_rows_per_file} "
                                                "rows", source=self.name)
                    problem = None
                    if len(values) != len(header):
                        problem = (f"{info.filename} line {line}: {len(values)} fields, the header has "
                                   f"{len(header)}")
                    if any(len(v) > limit.max_field_chars for v in values):
                        problem = f"{info.filename} line {line}: a field longer than {limit.max_field_chars} chars"
                        values = [v[:limit.max_field_chars] for v in values]
                    yield line, dict(zip(header, (v.strip() for v in values), strict=False)), problem
        except csv.Error as exc:
            raise SourceFormatError(f"{info.filename} line {line + 1}: bad CSV ({exc})", source=self.name) from None
        except UnicodeDecodeError:
            raise SourceFormatError(f"{info.filename} near line {line + 1}: not UTF-8", source=self.name) from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise SourceFormatError(f"{info.filename}: damaged zip member ({exc})", source=self.name) from None

    def _shapes(self, rows: Iterator[tuple[int, dict[str, str], str | None]], filename: str,
                fetched_at: datetime, origin: str) -> Iterator[RawRecord]:
        shapes: dict[str, list[tuple[int, dict[str, str]]]] = {}
        problems: dict[str, str] = {}
        first_line: dict[str, int] = {}
        for line, row, problem in rows:
            shape_id = row.get("shape_id", "")
            first_line.setdefault(shape_id, line)
            if problem:
                problems.setdefault(shape_id, problem)
                continue
            try:
                sequence = int(row.get("shape_pt_sequence", ""))
            except ValueError:
                problems.setdefault(shape_id, f"{filename} line {line}: shape_pt_sequence "
                                              f"{row.get('shape_pt_sequence')!r} is not an integer")
                continue
            shapes.setdefault(shape_id, []).append((sequence, row))
        for shape_id in first_line:
            points = sorted(shapes.get(shape_id, []), key=lambda p: p[0])
            problem = problems.get(shape_id)
            sequences = [s for s, _ in points]
            if problem is None and len(set(sequences)) != len(sequences):
                problem = f"{filename}: shape {shape_id!r} repeats a shape_pt_sequence"
            shape: dict[str, Any] = {"shape_id": shape_id, "points": [
                {k: v for k, v in p.items() if k != "shape_id"} for _, p in points]}
            yield RawRecord(self.name, f"{filename}:{first_line[shape_id]} id={shape_id}",
                            {"table": "shapes", "row": shape}, fetched_at, origin=origin, problem=problem)


class _Bounded(io.RawIOBase):
    """A reader that fails past ``limit`` bytes: the zip header's size may lie."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw = raw
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise OSError("member larger than its declared bound")
        buffer[:len(data)] = data
        return len(data)
