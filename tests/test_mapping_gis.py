"""GIS layer mapper: the bundled layers through their configured tables, golden entities, schemas,
CRS metadata, bad features quarantined, arbitrary input never crashing, and a sync into the broker.

Unit tests run the real sources over the sample endpoints through ``httpx.MockTransport`` (no
sockets); the integration test serves them on loopback and syncs the ``gis`` and ``gtfs`` groups
into the embedded broker.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.config import LayerMapping, load_config
from adapter.errors import ConfigError
from adapter.mapping import Mapped, Rejected, iter_mapped, map_one
from adapter.mapping.gis import boolean, epoch_ms, feature_key, layer_mapper, text, timestamp
from adapter.ngsi.serialize import Form, dumps, to_dict
from adapter.samples.gis.server import BEACHES_PATH, OGC_PATH, WFS_PATH, sample_routes
from adapter.samples.serving import SampleServers
from adapter.sources.base import RawRecord
from adapter.sync.factory import build_mapper, build_source
from data_models import Beach, PointOfInterest
from tests.golden import assert_golden
from tests.schema_validation import schema_errors

GOLDEN = Path(__file__).parent / "golden" / "mapping"
LAYERS = ("gis.beaches", "gis.bus_stops", "gis.parks")
CONFIG = load_config(env={})  # the bundled file with every ${VAR:-default} at its default
FETCHED = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def source_config(name: str) -> Any:
    return next(s for s in CONFIG.sources if s.name == name)


# --- the sample endpoints without sockets -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Request:
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


class _InMemoryServer:
    """What SampleServers needs of a server (url, stop), answering through a MockTransport."""

    base_url = "http://gis.samples.test"

    def __init__(self) -> None:
        self.routes = sample_routes()
        self.requests: list[str] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> None:
        pass

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        self.requests.append(path)
        route = self.routes.get(path)
        if route is None:
            return httpx.Response(404, text="<html>404</html>")
        answer = route(_Request(path, parse_qs(request.url.query.decode(), keep_blank_values=True),
                                {"Host": request.url.netloc.decode()}))
        return httpx.Response(200, content=orjson.dumps(answer),
                              headers={"Content-Type": "application/json"})


def fetch_layer(name: str) -> tuple[list[RawRecord], list[str]]:
    """Every raw record of a bundled layer through its configured source, and the paths asked."""
    server = _InMemoryServer()
    samples = SampleServers(start=lambda: server)

    async def run() -> list[RawRecord]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server.handle)) as client:
            fetch = build_source(source_config(name), client, urls=samples).fetch()
            records = [record async for record in fetch]
            assert fetch.complete, fetch.incomplete_reasons
            return records

    return asyncio.run(run()), server.requests


_RECORDS: dict[str, list[RawRecord]] = {}


def layer_records(name: str) -> list[RawRecord]:
    if name not in _RECORDS:
        _RECORDS[name] = fetch_layer(name)[0]
    return _RECORDS[name]


def golden_document(mapped: Mapped) -> bytes:
    doc = {"entity": to_dict(mapped.entity, Form.NORMALIZED), "source_crs": mapped.source_crs,
           "notes": list(mapped.notes)}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


# --- golden entities and official schemas -----------------------------------------------------------

@pytest.mark.parametrize("layer", LAYERS)
def test_first_feature_of_each_bundled_layer_maps_to_the_golden_entity(layer):
    result = build_mapper(source_config(layer))(layer_records(layer)[0])
    assert isinstance(result, Mapped), result
    produced = golden_document(result)
    assert_golden(GOLDEN / f"{layer}.json", produced)


@pytest.mark.parametrize(("layer", "model", "count", "crs"), [
    ("gis.beaches", Beach, 6, "EPSG:7801"),
    ("gis.bus_stops", PointOfInterest, 40, "EPSG:32635"),
    ("gis.parks", PointOfInterest, 6, "EPSG:4326"),
])
def test_every_bundled_feature_maps_validates_and_keeps_its_source_crs(layer, model, count, crs):
    mapper = build_mapper(source_config(layer))
    results = list(iter_mapped(mapper, layer_records(layer)))
    assert [r for r in results if isinstance(r, Rejected)] == []
    assert len({r.entity.id for r in results}) == count
    for mapped in results:
        assert type(mapped.entity) is model
        assert mapped.source_crs == crs
        assert mapped.notes == ()
        wire = orjson.loads(dumps(mapped.entity, Form.KEY_VALUES))
        assert schema_errors(model, wire) == [], mapped.entity.id
        lon, lat = _first_position(wire["location"]["coordinates"])
        assert 27.3 < lon < 27.7 and 42.4 < lat < 42.7  # Burgas, in WGS84 [lon, lat]


def _first_position(coords: Any) -> list[float]:
    while isinstance(coords[0], list):
        coords = coords[0]
    return coords


def test_the_bundled_layers_page_over_several_requests():
    _, beaches = fetch_layer("gis.beaches")
    _, stops = fetch_layer("gis.bus_stops")
    _, parks = fetch_layer("gis.parks")
    assert beaches.count(BEACHES_PATH + "/query") >= 2
    assert stops.count(WFS_PATH) >= 10
    assert parks.count(OGC_PATH + "/collections/parks/items") == 2


def test_ids_come_from_the_configured_field_and_prefix():
    ids = {layer: build_mapper(source_config(layer))(layer_records(layer)[0]).entity.id
           for layer in LAYERS}
    assert ids == {
        "gis.beaches": "urn:ngsi-ld:Beach:gis-burgas:6b1d3c2a-0f4e-4e8a-9c11-000000000001",
        "gis.bus_stops": "urn:ngsi-ld:PointOfInterest:gis-burgas:bus-stop:S01",
        "gis.parks": "urn:ngsi-ld:PointOfInterest:gis-burgas:park:park-01",
    }


def test_names_are_bulgarian_with_both_languages_kept():
    entity = build_mapper(source_config("gis.bus_stops"))(layer_records("gis.bus_stops")[0]).entity
    assert entity.name == "Автогара Юг"
    assert entity.multilingual_name == {"bg": "Автогара Юг", "en": "Bus Station South"}
    assert entity.category == ["highway=bus_stop", "public_transport=platform"]
    assert entity.address.district == "Център" and entity.address.address_locality == "Бургас"
    assert entity.date_modified == datetime(2025, 3, 2, 9, 30, tzinfo=UTC)


# --- bad features -----------------------------------------------------------------------------------

def _with(record: RawRecord, **changes: Any) -> RawRecord:
    payload = copy.deepcopy(dict(record.payload))
    props = changes.pop("properties", None)
    if isinstance(props, Mapping):
        payload["properties"] = {**payload["properties"], **props}
    elif props is not None:
        payload["properties"] = props
    payload.update(changes)
    return dataclasses.replace(record, payload=payload, key=f"{record.key} (edited)")


def test_bad_features_are_rejected_with_their_reasons_and_the_others_pass():
    mapper = build_mapper(source_config("gis.beaches"))
    good = layer_records("gis.beaches")
    outside = {"rings": [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 0.0]]]}
    bad = [
        _with(good[0], properties={"GlobalID": None}),
        _with(good[1], geometry=outside, crs="EPSG:4326"),
        _with(good[2], properties={"NAME": "  ", "NAME_EN": None}),  # Beach requires a name
        _with(good[3], crs="EPSG:123456"),
        _with(good[4], geometry=None),
        _with(good[5], properties="not an object"),
    ]
    results = [mapper(r) for r in [*bad, *good]]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [isinstance(r, Mapped) for r in results[len(bad):]] == [True] * len(good)
    assert len(rejected) == len(bad)
    reasons = [r.reason for r in rejected]
    assert "no id in GlobalID" in reasons[0]
    assert "outside the expected area" in reasons[1]
    assert reasons[2].startswith("Beach refused name")
    assert "unknown CRS" in reasons[3]
    assert reasons[4] == "no geometry"
    assert "no properties object" in reasons[5]
    assert all(r.source == "gis.beaches" and r.record.endswith("(edited)") for r in rejected)


def test_an_unreadable_value_is_left_out_with_a_note_and_the_feature_still_maps():
    mapper = build_mapper(source_config("gis.beaches"))
    result = mapper(_with(layer_records("gis.beaches")[0], properties={"LENGTH_M": "long"}))
    assert isinstance(result, Mapped)
    assert result.entity.length is None
    assert result.notes == ("LENGTH_M: 'long' is not a number",)


def test_a_value_the_model_refuses_rejects_the_feature_with_the_pydantic_reason():
    mapping = LayerMapping(model="Beach", id_field="GlobalID", name_field="NAME",
                           attributes={"beachType": "BEACH_TYPE"})
    result = layer_mapper("gis.beaches", mapping)(layer_records("gis.beaches")[0])
    assert isinstance(result, Rejected)
    assert result.reason.startswith("Beach refused beach_type: Input should be a valid list")


def test_swapped_lat_lon_is_fixed_and_noted():
    mapper = build_mapper(source_config("gis.parks"))
    record = layer_records("gis.parks")[0]
    ring = record.payload["geometry"]["coordinates"][0]
    swapped = {"type": "Polygon", "coordinates": [[[lat, lon] for lon, lat in ring]]}
    result = mapper(_with(record, geometry=swapped))
    assert isinstance(result, Mapped)
    assert result.notes == ("swapped axes (lat/lon or northing/easting)",)
    assert result.entity.location == mapper(record).entity.location


# --- configuration errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("mapping", "message"), [
    (LayerMapping(model="Lighthouse", id_field="id"), "unknown Smart Data Models type 'Lighthouse'"),
    (LayerMapping(model="Beach", id_field="id", attributes={"depth": "DEPTH"}),
     "Beach has no attribute 'depth'"),
    (LayerMapping(model="Beach", id_field="id", constants={"address.": "x"}), "ends with a dot"),
    (LayerMapping(model="Beach", id_field="id", id_prefix="::"), "empty id_prefix"),
])
def test_a_table_that_does_not_fit_the_model_is_a_config_error(mapping, message):
    with pytest.raises(ConfigError, match=message):
        layer_mapper("gis.test", mapping)


def test_targets_may_be_field_names_or_wire_names():
    mapping = LayerMapping(model="PointOfInterest", id_field="stop_id", name_field="name",
                           attributes={"opening_hours": "routes", "dateModified": {
                               "source": "updated", "transform": "datetime"}})
    entity = layer_mapper("gis.x", mapping)(layer_records("gis.bus_stops")[0]).entity
    assert entity.opening_hours == "1 4 11 17"
    assert entity.date_modified == datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
    assert entity.id == "urn:ngsi-ld:PointOfInterest:gis.x:S01"  # default prefix: the layer name


# --- transforms -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    (True, True), (False, False), (1, True), (0, False), ("Y", True), ("n", False),
    ("да", True), ("НЕ", False), ("1", True), ("0", False), ("true", True), (" False ", False),
    ("yes", True), ("no", False),
])
def test_boolean_reads_the_usual_spellings(raw, expected):
    assert boolean(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", 2, -1, "", None, [1]])
def test_boolean_refuses_anything_else(raw):
    with pytest.raises(ValueError):
        boolean(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-03-02T09:30:00Z", datetime(2025, 3, 2, 9, 30, tzinfo=UTC)),
    ("2025-07-02T12:00:00+03:00", datetime(2025, 7, 2, 9, 0, tzinfo=UTC)),
    ("2025-07-02T12:00:00", datetime(2025, 7, 2, 9, 0, tzinfo=UTC)),   # Sofia summer time
    ("2025-01-02 12:00:00", datetime(2025, 1, 2, 10, 0, tzinfo=UTC)),  # Sofia winter time
    ("2019-05-11", datetime(2019, 5, 10, 21, 0, tzinfo=UTC)),          # local midnight
])
def test_datetime_gives_utc_and_reads_zoneless_times_as_sofia_time(raw, expected):
    assert timestamp(raw) == expected


def test_datetime_refuses_a_time_the_spring_change_skips():
    with pytest.raises(ValueError, match="does not exist"):
        timestamp("2025-03-30T03:30:00")


@pytest.mark.parametrize(("raw", "expected"), [
    (1746910800000, datetime(2025, 5, 10, 21, 0, tzinfo=UTC)),
    ("1746910800000", datetime(2025, 5, 10, 21, 0, tzinfo=UTC)),
    (datetime(2025, 5, 10, 21, 0, tzinfo=UTC), datetime(2025, 5, 10, 21, 0, tzinfo=UTC)),
])
def test_epoch_ms_reads_esri_dates_raw_or_already_converted(raw, expected):
    assert epoch_ms(raw) == expected


def test_text_accepts_numeric_codes_and_cleans_spaces():
    assert text(1001) == "1001"
    assert text("  Бул.  „Демокрация“ ") == "Бул. „Демокрация“"


@pytest.mark.parametrize(("raw", "expected"), [
    ("{6B1D3C2A-0F4E-4E8A-9C11-000000000001}", "6b1d3c2a-0f4e-4e8a-9c11-000000000001"),
    (12, "12"), (12.0, "12"), (" S01 ", "S01"),
])
def test_feature_keys_are_normalised(raw, expected):
    assert feature_key(raw, "id") == expected


# --- arbitrary input never crashes --------------------------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
            | st.sampled_from(["", " ", "1", "да", "2025-03-30T03:30:00", "9" * 30, "http://x/ y"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
_NUM = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**20, 10**20) | st.text(max_size=5)
_POS = st.lists(_NUM, min_size=0, max_size=3)
_GEOMETRY = st.one_of(
    _JSON,
    st.builds(lambda t, c: {"type": t, "coordinates": c},
              st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon", "Circle", ""]),
              st.recursive(_POS, lambda inner: st.lists(inner, max_size=4), max_leaves=20)),
    st.builds(lambda x, y: {"x": x, "y": y}, _NUM, _NUM),
    st.builds(lambda rings: {"rings": rings}, st.lists(st.lists(_POS, max_size=5), max_size=3)),
)
_CRS = st.one_of(_JSON, st.sampled_from(["EPSG:7801", "EPSG:32635", "CRS84", "EPSG:4978",
                                         "urn:ogc:def:crs:EPSG::4326", "EPSG:999999", "bogus"]))
_FIELDS = ["GlobalID", "NAME", "NAME_EN", "LENGTH_M", "stop_id", "name", "name_en", "district",
           "updated", "id", "nameEn", "category", "openingHours", "n", "b", "t", "e", "u", "i"]
_PROPS = st.one_of(_JSON, st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=4), _JSON,
                                          max_size=8))

EVERY_TRANSFORM = LayerMapping(
    model="PointOfInterest", id_field="id", name_field="name", name_en_field="nameEn",
    attributes={"relevance": {"source": "n", "transform": "number"},
                "capacity": {"source": "i", "transform": "integer"},
                "description": {"source": "b", "transform": "boolean"},
                "dateModified": {"source": "t", "transform": "datetime"},
                "dateCreated": {"source": "e", "transform": "epoch_ms"},
                "image": {"source": "u", "transform": "url"},
                "address.district": "district"},
    constants={"category": ["x"]})
MAPPERS = [build_mapper(source_config(layer)) for layer in LAYERS] + [
    layer_mapper("gis.any", EVERY_TRANSFORM)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAPPERS), _JSON, _PROPS, _GEOMETRY, _CRS)
def test_arbitrary_features_give_an_entity_or_a_rejection_never_an_exception(
        mapper, fid, props, geometry, crs):
    record = RawRecord("gis.any", "features[0]", {"type": "Feature", "id": fid, "properties": props,
                                                  "geometry": geometry, "crs": crs}, FETCHED)
    result = map_one(mapper, record)
    assert isinstance(result, Mapped | Rejected)
    if isinstance(result, Mapped):
        to_dict(result.entity, Form.NORMALIZED)  # what the broker gets is always writable
    else:
        assert result.reason and result.source == "gis.any"


# --- end to end: the gis and gtfs groups into the embedded broker -----------------------------------

@pytest.mark.integration
def test_runtime_syncs_gis_and_gtfs_from_the_loopback_samples_into_the_embedded_broker(tmp_path):
    from adapter.runtime import Runtime
    from adapter.settings import Settings

    settings = Settings(broker_url=None, state_dir=tmp_path, embedded_broker_persist=False,
                        tenant=None)
    patterns = {
        "Beach": "urn:ngsi-ld:Beach:gis-burgas:.*", "bus stops":
        "urn:ngsi-ld:PointOfInterest:gis-burgas:bus-stop:.*",
        "parks": "urn:ngsi-ld:PointOfInterest:gis-burgas:park:.*",
        **{t: f"urn:ngsi-ld:{t}:burgasbus:.*" for t in
           ("GtfsStop", "GtfsRoute", "GtfsTrip", "GtfsShape", "GtfsAgency")},
    }

    samples = SampleServers()

    async def run() -> tuple[list[Any], list[Any], dict[str, int], bool]:
        async with Runtime(settings, CONFIG, urls=samples) as runtime:
            first = await runtime.sync(["gis", "gtfs"])
            assert samples.running
            again = await runtime.sync(["gis", "gtfs"])
            counts = {}
            async with httpx.AsyncClient(base_url=runtime.broker_url + "/ngsi-ld/v1") as http:
                for label, pattern in patterns.items():
                    response = await http.get("/entities", params={
                        "idPattern": pattern, "count": "true", "limit": "1"})
                    assert response.status_code == 200, response.text
                    counts[label] = int(response.headers["NGSILD-Results-Count"])
        return first, again, counts, samples.running

    first, again, counts, still_running = asyncio.run(run())
    assert [(r.source, r.records_in, r.mapped, r.sent, r.records_rejected, r.complete) for r in first] == [
        ("gis.beaches", 6, 6, 6, 0, True), ("gis.bus_stops", 40, 40, 40, 0, True),
        ("gis.parks", 6, 6, 6, 0, True), ("gtfs.burgasbus", 136, 136, 136, 0, True)]
    assert [(r.sent, r.unchanged) for r in again] == [(0, 6), (0, 40), (0, 6), (0, 136)]
    assert counts == {"Beach": 6, "bus stops": 40, "parks": 6, "GtfsStop": 40, "GtfsRoute": 5,
                      "GtfsTrip": 80, "GtfsShape": 10, "GtfsAgency": 1}
    assert not still_running  # the runtime stopped the sample server on exit


def test_value_maps_turn_code_lists_into_the_models_enumerations():
    mapping = LayerMapping(model="Beach", id_field="id", name_field="name", attributes={
        "beachType": {"source": "flag", "transform": "boolean",
                      "values": {"true": ["blueFlag"], "false": None}},
        "facilities": {"source": "kind", "values": {"спасител": ["lifeGuard"]}}})
    mapper = layer_mapper("gis.beaches", mapping)

    def feature(props: dict[str, Any]) -> Mapped:
        record = RawRecord("gis.beaches", "features[0]", {
            "type": "Feature", "id": 7, "properties": {"id": 7, "name": "Крайморие", **props},
            "geometry": {"type": "Point", "coordinates": [27.48, 42.49]}, "crs": "EPSG:4326"}, FETCHED)
        result = map_one(mapper, record)
        assert isinstance(result, Mapped), result
        return result

    flagged = feature({"flag": "Y", "kind": "спасител"})
    assert flagged.entity.beach_type == ["blueFlag"] and flagged.entity.facilities == ["lifeGuard"]
    assert flagged.notes == ()
    plain = feature({"flag": "N", "kind": "друго"})
    assert plain.entity.beach_type is None and plain.entity.facilities is None
    # "false" maps to null (nothing to say, quietly); an unknown code is left out with a note.
    assert [n for n in plain.notes if "not in the value map" in n] == [
        "kind: 'друго' is not in the value map (спасител)"]


def test_text_collapses_every_unicode_whitespace_run_to_one_space_and_trims():
    """As the ``\\s+`` regex would: every character ``\\s`` matches, no other."""
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c)))
    assert text(f"{spaces}Спирка{spaces}1 {spaces}") == "Спирка 1"
    assert text("a\u200bb") == "a\u200bb"  # a zero-width space is not whitespace
    assert text("Е\u0308") == "Ё"  # NFC
