"""Every model accepts its official key-values example once each NAMED defect of the example is repaired.

The defect table is kept truthful: without a defect's repair (all others applied), validation
fails and names exactly that attribute; with every repair the model accepts the example and
keeps every attribute of it (none silently dropped, except the few listed with a reason).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from adapter.ngsi.serialize import Form, from_key_values, to_dict
from adapter.reference import reference_path
from data_models import Entity

Example = dict[str, Any]


@dataclass(frozen=True)
class Defect:
    """One way an official example breaks its own schema (or our stricter, documented reading)."""

    attribute: str  # wire name as the example spells it ("id" for the entity id)
    problem: str
    repair: str
    apply: Callable[[Example], None]


def _urn_id(example: Example) -> None:
    example["id"] = f"urn:ngsi-ld:{example['type']}:{example['id']}"


def _assume_utc(attribute: str) -> Callable[[Example], None]:
    def apply(example: Example) -> None:
        example[attribute] += "Z"
    return apply


def _rename(old: str, new: str) -> Callable[[Example], None]:
    def apply(example: Example) -> None:
        example[new] = example.pop(old)
    return apply


def _drop(attribute: str) -> Callable[[Example], None]:
    def apply(example: Example) -> None:
        del example[attribute]
    return apply


def _urn_ref(attribute: str, target_type: str) -> Callable[[Example], None]:
    def fix(value: str) -> str:
        return value if ":" in value else f"urn:ngsi-ld:{target_type}:{value}"

    def apply(example: Example) -> None:
        value = example[attribute]
        example[attribute] = [fix(v) for v in value] if isinstance(value, list) else fix(value)
    return apply


def _slot_keys(example: Example) -> None:
    slots = example["fourWheelerSlots"]
    example["fourWheelerSlots"] = {k.replace("Spot", "Slot"): v for k, v in slots.items()}


def _interval_end(example: Example) -> None:
    example["dateObserved"] = example["dateObservedTo"]


def _round(attribute: str) -> Callable[[Example], None]:
    def apply(example: Example) -> None:
        example[attribute] = round(example[attribute])
    return apply


ID_NOT_URI = "id is not a URI (NGSI-LD ids are URIs)"
ID_REPAIR = "prefix urn:ngsi-ld:<Type>:"

DEFECTS: dict[str, list[Defect]] = {
    "AirQualityObserved": [
        Defect("dateObserved", "naive date-time (no zone)", "assume UTC", _assume_utc("dateObserved")),
        Defect("typeOfLocation", "not a schema attribute: the schema (and context) spell it typeofLocation",
               "rename to typeofLocation", _rename("typeOfLocation", "typeofLocation")),
        Defect("tsp", "decimal (73.3) where the schema says integer", "round to 73", _round("tsp")),
        Defect("refPointOfInterest", "relationship object is not a URI",
               "prefix urn:ngsi-ld:PointOfInterest:", _urn_ref("refPointOfInterest", "PointOfInterest")),
    ],
    "Beach": [Defect("id", ID_NOT_URI, ID_REPAIR, _urn_id)],
    "BikeHireDockingStation": [
        Defect("observationDate", "not a schema attribute: the schema names it observationDateTime",
               "rename to observationDateTime", _rename("observationDate", "observationDateTime")),
        Defect("agency_fare_url", "empty string where a URL is meant", "drop the attribute",
               _drop("agency_fare_url")),
    ],
    "Building": [
        Defect("id", ID_NOT_URI, ID_REPAIR, _urn_id),
        Defect("owner", "owners are bare UUIDs, not URIs", "prefix urn:ngsi-ld:Person:",
               _urn_ref("owner", "Person")),
        Defect("occupier", "relationship objects are bare UUIDs, not URIs", "prefix urn:ngsi-ld:Person:",
               _urn_ref("occupier", "Person")),
    ],
    "Device": [
        Defect("id", ID_NOT_URI, ID_REPAIR, _urn_id),
        Defect("controlledAsset", "asset ids are not URIs", "prefix urn:ngsi-ld:WasteContainer:",
               _urn_ref("controlledAsset", "WasteContainer")),
        Defect("refDeviceModel", "relationship object is not a URI", "prefix urn:ngsi-ld:DeviceModel:",
               _urn_ref("refDeviceModel", "DeviceModel")),
    ],
    "KeyPerformanceIndicator": [Defect("id", ID_NOT_URI, ID_REPAIR, _urn_id)],
    "OffStreetParking": [
        Defect("id", ID_NOT_URI, ID_REPAIR, _urn_id),
        Defect("fourWheelerSlots", "uses *SpotNumber keys where the schema says *SlotNumber",
               "rename the keys", _slot_keys),
    ],
    "OnStreetParking": [
        Defect("refParkingGroup", "relationship objects are not URIs", "prefix urn:ngsi-ld:ParkingGroup:",
               _urn_ref("refParkingGroup", "ParkingGroup")),
        Defect("fourWheelerSlots", "uses *SpotNumber keys where the schema says *SlotNumber",
               "rename the keys", _slot_keys),
    ],
    "PointOfInterest": [
        Defect("refSeeAlso", "relationship object is not a URI", "prefix urn:ngsi-ld:Beach:",
               _urn_ref("refSeeAlso", "Beach")),
    ],
    "Streetlight": [
        Defect("feederID", "relationship object is not a URI", "prefix urn:ngsi-ld:StreetlightFeeder:",
               _urn_ref("feederID", "StreetlightFeeder")),
    ],
    "TrafficFlowObserved": [
        Defect("id", ID_NOT_URI, ID_REPAIR, _urn_id),
        Defect("dateObserved", "a naive ISO 8601 interval; the model keeps an aware instant "
               "(it is the observedAt of the measured values)",
               "take dateObservedTo, the end of the period", _interval_end),
    ],
    "WeatherObserved": [
        Defect("refDevice", "relationship object is not a URI", "prefix urn:ngsi-ld:Device:",
               _urn_ref("refDevice", "Device")),
    ],
}

# Attributes of an official example that a model deliberately does not declare.
NOT_MODELLED: dict[str, dict[str, str]] = {
    "Device": {"value": "the NGSI-LD core term for every Property's value (ngsi-ld:hasValue): "
                        "an attribute of that name cannot be told apart once expanded"},
}

OFFICIAL = sorted((m for m in Entity.registry.values() if m.subject.startswith("dataModel.")),
                  key=lambda m: m.entity_type)


def _example(model: type[Entity]) -> Example:
    path = reference_path(f"smart-data-models/{model.subject}/{model.entity_type}/examples/example.json")
    example = orjson.loads(path.read_bytes())
    for attribute in NOT_MODELLED.get(model.entity_type, {}):
        del example[attribute]
    return example


def _repaired(model: type[Entity], skip: Defect | None = None) -> Example:
    example = copy.deepcopy(_example(model))
    for defect in DEFECTS.get(model.entity_type, []):
        if defect is not skip:
            defect.apply(example)
    return example


def _names(model: type[Entity], attribute: str) -> set[str]:
    spec = model.attributes_by_wire.get(attribute)
    return {attribute} | ({spec.field} if spec else set())


@pytest.mark.parametrize("model", OFFICIAL, ids=lambda m: m.entity_type)
def test_model_accepts_its_repaired_official_example(model: type[Entity]) -> None:
    example = _repaired(model)
    entity = from_key_values(example, model)
    kept = to_dict(entity, Form.KEY_VALUES)
    assert set(kept) == set(example), "attributes lost or invented on the way through the model"


@pytest.mark.parametrize("model", OFFICIAL, ids=lambda m: m.entity_type)
def test_every_example_attribute_maps_to_a_model_field(model: type[Entity]) -> None:
    example = _repaired(model)
    unmapped = set(example) - {"id", "type"} - set(model.attributes_by_wire)
    assert not unmapped
    for attribute in NOT_MODELLED.get(model.entity_type, {}):
        raw = orjson.loads(reference_path(
            f"smart-data-models/{model.subject}/{model.entity_type}/examples/example.json").read_bytes())
        assert attribute in raw and attribute not in model.attributes_by_wire


CASES = [(m, d) for m in OFFICIAL for d in DEFECTS.get(m.entity_type, [])]


@pytest.mark.parametrize("model,defect", CASES,
                         ids=[f"{m.entity_type}-{d.attribute}" for m, d in CASES])
def test_each_named_defect_is_real(model: type[Entity], defect: Defect) -> None:
    example = _repaired(model, skip=defect)
    with pytest.raises(ValueError) as info:
        from_key_values(example, model)
    expected = _names(model, defect.attribute)
    if isinstance(info.value, ValidationError):
        failing = {str(err["loc"][0]) for err in info.value.errors()}
        assert failing and failing <= expected, (failing, defect.problem)
    else:  # an attribute the model does not declare
        assert defect.attribute in str(info.value)


def test_defect_table_names_only_known_models() -> None:
    known = {m.entity_type for m in OFFICIAL}
    assert set(DEFECTS) <= known and set(NOT_MODELLED) <= known
    for defects in DEFECTS.values():
        for defect in defects:
            assert defect.problem and defect.repair
