"""Bad input never becomes an entity: each case raises a ValidationError that names the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from data_models import (
    AdministrativeArea,
    AirQualityObserved,
    EVChargingStation,
    GtfsAgency,
    GtfsTrip,
    OffStreetParking,
    OnStreetParking,
    PointOfInterest,
    TrafficFlowObserved,
)

POINT = {"type": "Point", "coordinates": [27.4679, 42.5048]}
WHEN = "2026-02-27T13:00:05Z"


def _fails_on(model: type, data: dict[str, Any], field: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    locs = {str(err["loc"][0]) for err in info.value.errors()}
    assert locs == {field}, locs
    return info.value


def _air(**overrides: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:AirQualityObserved:smartburgas:1", "location": POINT,
            "dateObserved": WHEN, **overrides}


def test_valid_input_is_accepted() -> None:
    entity = AirQualityObserved.model_validate(_air(no2=29.6))
    assert entity.no2 == 29.6


@pytest.mark.parametrize("value", ["29.6", "", True, [29.6], {"value": 29.6}])
def test_a_number_given_as_anything_else_is_refused(value: Any) -> None:
    _fails_on(AirQualityObserved, _air(no2=value), "no2")


@pytest.mark.parametrize("value", [0.5, "3", True])
def test_an_integer_field_refuses_decimals_strings_and_booleans(value: Any) -> None:
    data = {"id": "urn:ngsi-ld:OffStreetParking:smartburgas:2", "location": POINT,
            "availableSpotNumber": value}
    _fails_on(OffStreetParking, data, "availableSpotNumber")


def test_a_negative_count_is_refused() -> None:
    _fails_on(OffStreetParking, {"id": "urn:ngsi-ld:OffStreetParking:x", "location": POINT,
                                 "totalSpotNumber": 0}, "totalSpotNumber")


def test_a_text_field_refuses_a_number() -> None:
    _fails_on(PointOfInterest, {"id": "urn:ngsi-ld:PointOfInterest:x", "name": 42}, "name")


def test_a_value_outside_the_enum_is_refused() -> None:
    _fails_on(AirQualityObserved, _air(typeofLocation="inside"), "typeofLocation")


@pytest.mark.parametrize("model,data,field", [
    (AirQualityObserved, {"id": "urn:ngsi-ld:AirQualityObserved:1", "location": POINT}, "dateObserved"),
    (AirQualityObserved, {"id": "urn:ngsi-ld:AirQualityObserved:1", "dateObserved": WHEN}, "location"),
    (EVChargingStation, {"id": "urn:ngsi-ld:EVChargingStation:1", "capacity": 2,
                         "allowedVehicleType": ["car"]}, "socketType"),
    (GtfsTrip, {"id": "urn:ngsi-ld:GtfsTrip:1", "hasService": "urn:ngsi-ld:GtfsService:1"}, "hasRoute"),
    (GtfsAgency, {"id": "urn:ngsi-ld:GtfsAgency:1", "source": "http://x.example"}, "agencyName"),
    (PointOfInterest, {"id": "urn:ngsi-ld:PointOfInterest:1"}, "name"),
    (AdministrativeArea, {"id": "urn:ngsi-ld:AdministrativeArea:1", "location": {
        "type": "Polygon", "coordinates": [[[27.4, 42.4], [27.5, 42.4], [27.5, 42.5], [27.4, 42.4]]]}},
     "name"),
])
def test_a_missing_required_field_is_named(model: type, data: dict[str, Any], field: str) -> None:
    error = _fails_on(model, data, field)
    assert error.errors()[0]["type"] == "missing"


@pytest.mark.parametrize("coordinates", [[27.46, 142.5], [227.46, 42.5], [27.46], ["27.46", "42.5"]])
def test_an_impossible_coordinate_is_refused(coordinates: list[Any]) -> None:
    _fails_on(AirQualityObserved, _air(location={"type": "Point", "coordinates": coordinates}), "location")


def test_a_district_must_be_an_area() -> None:
    _fails_on(AdministrativeArea, {"id": "urn:ngsi-ld:AdministrativeArea:1", "name": "Приморие",
                                   "location": POINT}, "location")


@pytest.mark.parametrize("model,data,field", [
    (AirQualityObserved, _air(dateObserved="2026-02-27T15:00:05"), "dateObserved"),
    (AirQualityObserved, _air(dateObserved="2026-02-27 15:00:05"), "dateObserved"),
    (TrafficFlowObserved, {"id": "urn:ngsi-ld:TrafficFlowObserved:1", "dateObserved": WHEN,
                           "dateObservedFrom": "2026-02-08T02:00:10"}, "dateObservedFrom"),
])
def test_a_naive_timestamp_is_refused(model: type, data: dict[str, Any], field: str) -> None:
    _fails_on(model, data, field)


def test_an_aware_timestamp_becomes_utc() -> None:
    entity = AirQualityObserved.model_validate(_air(dateObserved="2026-02-27T15:00:05+02:00"))
    assert entity.date_observed.isoformat() == "2026-02-27T13:00:05+00:00"


@pytest.mark.parametrize("bad_id", ["smartburgas-1", "", "urn:ngsi-ld:AirQualityObserved:a b", 7])
def test_an_id_that_is_not_a_uri_is_refused(bad_id: Any) -> None:
    _fails_on(AirQualityObserved, _air(id=bad_id), "id")


def test_a_relationship_object_that_is_not_a_uri_is_refused() -> None:
    _fails_on(AirQualityObserved, _air(refDevice="device-1"), "refDevice")


def test_an_unknown_attribute_is_refused_not_dropped() -> None:
    _fails_on(AirQualityObserved, _air(benzene=0.7), "benzene")


@pytest.mark.parametrize("field,value", [
    ("maximumParkingDuration", "2 hours"), ("permitActiveHours", {"blueZonePermit": 9}),
    ("pricePerHour", "2"),
])
def test_typed_strings_and_extensions_are_checked_too(field: str, value: Any) -> None:
    data = {"id": "urn:ngsi-ld:OnStreetParking:x", "location": POINT, field: value}
    _fails_on(OnStreetParking, data, field)


@pytest.mark.parametrize("field,value", [("timezone", "Europe/Burgas"), ("page", "www.x.bg")])
def test_gtfs_agency_checks_time_zone_and_url(field: str, value: str) -> None:
    data = {"id": "urn:ngsi-ld:GtfsAgency:1", "source": "http://x.example", "agencyName": "Бургасбус",
            field: value}
    _fails_on(GtfsAgency, data, field)


def test_nothing_is_coerced_to_zero_or_empty() -> None:
    for value in ("", None):
        data = _air(no2=value)
        if value is None:
            entity = AirQualityObserved.model_validate(data)
            assert entity.no2 is None  # absent, never 0
        else:
            _fails_on(AirQualityObserved, data, "no2")
