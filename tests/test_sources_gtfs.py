"""GTFS static zip: rows as raw records, shapes grouped and ordered, bounded, clear errors."""

from __future__ import annotations

import asyncio
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from adapter.errors import SourceFormatError
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.gtfs import GTFSLimits, GTFSSource
from adapter.sources.http import FetchOptions
from tests.servers import PayloadServer, Reply

SAMPLE = Path(__file__).resolve().parent.parent / "adapter" / "samples" / "gtfs" / "burgasbus.zip"
MINIMAL = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nBB,Бургасбус,https://x,Europe/Sofia\n",
    "routes.txt": "route_id,route_short_name,route_type\nR1,1,3\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,Автогара Юг,42.4907,27.4717\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\n",
}


def collect(source: GTFSSource) -> tuple[Fetch, list[RawRecord]]:
    async def run() -> tuple[Fetch, list[RawRecord]]:
        fetch = source.fetch()
        return fetch, [record async for record in fetch]
    return asyncio.run(run())


def make_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_bundled_feed_yields_every_table() -> None:
    fetch, records = collect(GTFSSource("gtfs", str(SAMPLE)))
    assert fetch.complete and not [r for r in records if r.problem]
    assert Counter(r.payload["table"] for r in records) == {
        "agency": 1, "routes": 5, "stops": 40, "trips": 80, "shapes": 10}
    agency = records[0].payload["row"]
    assert agency["agency_name"] == "Бургасбус" and "agency_id" in agency  # the BOM is gone


def test_shapes_are_grouped_and_ordered_by_sequence(tmp_path: Path) -> None:
    shapes = ("shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
              "A,42.1,27.1,3\nB,42.5,27.5,1\nA,42.0,27.0,1\nA,42.05,27.05,2\n")
    _, records = collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", {**MINIMAL, "shapes.txt": shapes}))))
    by_id = {r.payload["row"]["shape_id"]: r for r in records if r.payload["table"] == "shapes"}
    assert [p["shape_pt_sequence"] for p in by_id["A"].payload["row"]["points"]] == ["1", "2", "3"]
    assert len(by_id["B"].payload["row"]["points"]) == 1


def test_bom_crlf_and_folder_inside_the_zip(tmp_path: Path) -> None:
    files = {f"feed/{name}": b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode() for name, text in MINIMAL.items()}
    _, records = collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", files))))
    stop = next(r for r in records if r.payload["table"] == "stops")
    assert stop.payload["row"]["stop_id"] == "S1" and stop.key == "feed/stops.txt:2 id=S1"


def test_row_with_wrong_field_count_is_yielded_with_a_problem(tmp_path: Path) -> None:
    files = {**MINIMAL, "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,A,42.4,27.4\nS2,B,42.5\n"}
    fetch, records = collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", files))))
    bad = [r for r in records if r.problem]
    assert fetch.complete and len(bad) == 1 and "stops.txt line 3" in bad[0].problem


def test_missing_required_file_names_it(tmp_path: Path) -> None:
    files = {k: v for k, v in MINIMAL.items() if k != "trips.txt"}
    with pytest.raises(SourceFormatError, match="trips.txt missing"):
        collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", files))))


def test_unterminated_quote_flags_the_row_naming_the_file(tmp_path: Path) -> None:
    files = {**MINIMAL, "routes.txt": 'route_id,route_short_name,route_type\nR1,"1,3\n' + "x" * 10}
    limits = GTFSLimits(max_field_chars=5)
    _, records = collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", files)), limits=limits))
    # An unterminated quote swallows the rest of the file: the row is there, flagged as too long/short.
    assert any(r.problem and "routes.txt" in r.problem for r in records)


def test_not_utf8_names_the_file(tmp_path: Path) -> None:
    files = {**MINIMAL, "stops.txt": "stop_id,stop_name\nS1,Автогара\n".encode("cp1251")}
    with pytest.raises(SourceFormatError, match="stops.txt .*not UTF-8"):
        collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", files))))


def test_not_a_zip_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "f.zip").write_text("<html>moved</html>")
    with pytest.raises(SourceFormatError, match="not a GTFS zip"):
        collect(GTFSSource("g", str(tmp_path / "f.zip")))


def test_row_count_is_bounded(tmp_path: Path) -> None:
    stops = "stop_id,stop_name\n" + "".join(f"S{i},x\n" for i in range(20))
    with pytest.raises(SourceFormatError, match="stops.txt has more than 10 rows"):
        collect(GTFSSource("g", str(make_zip(tmp_path / "f.zip", {**MINIMAL, "stops.txt": stops})),
                           limits=GTFSLimits(max_rows_per_file=10)))


@pytest.mark.integration
def test_feed_over_http() -> None:
    with PayloadServer({"/gtfs.zip": Reply(SAMPLE.read_bytes(), content_type="application/zip")}) as server:
        fetch, records = collect(GTFSSource("gtfs", server.url("/gtfs.zip"),
                                            options=FetchOptions(attempts=1)))
    assert fetch.complete and len(records) == 136
