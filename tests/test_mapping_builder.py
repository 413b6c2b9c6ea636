"""Builder: constants validated once, each record's own values per record; the entity is the one
build() gives, and a refusal has build()'s reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from adapter.errors import MappingError
from adapter.mapping.base import Builder, build
from adapter.ngsi.serialize import dumps
from data_models import Beach, Building, PointOfInterest

POINT = {"type": "Point", "coordinates": [27.47, 42.5]}
CONSTANTS: dict[str, Any] = {"category": ["highway=bus_stop"], "address": {"addressLocality": "Бургас"}}


def _same(builder: Builder, values: dict[str, Any]) -> None:
    expected = build(builder.model, values)
    got = builder(values)
    assert type(got) is type(expected)
    assert got == expected
    assert got.__pydantic_fields_set__ == expected.__pydantic_fields_set__
    assert got.__dict__ == expected.__dict__
    assert dumps(got) == dumps(expected)


def test_entities_equal_the_fully_validated_ones() -> None:
    builder = Builder(PointOfInterest, CONSTANTS)
    base = {"id": "urn:ngsi-ld:PointOfInterest:x:1", "name": "Спирка", "location": POINT}
    _same(builder, {**CONSTANTS, **base})
    _same(builder, {**CONSTANTS, **base, "address": {"addressLocality": "Бургас", "district": "Лазур"},
                    "date_modified": datetime(2024, 6, 1, tzinfo=UTC)})
    # An aware non-UTC time is normalised to UTC as the model does it.
    _same(builder, {**CONSTANTS, **base, "date_modified": datetime(2024, 6, 1, 3, tzinfo=timezone(timedelta(hours=3)))})
    _same(builder, {**base, "category": ["other"]})  # a record's own value for a constant field
    _same(builder, base)  # constants left out
    _same(Builder(Building, {"category": ["office"]}), {"category": ["office"], "id": "urn:ngsi-ld:Building:b:1",
                                                        "location": {"type": "Polygon", "coordinates": [[
                                                            [27.4, 42.4], [27.5, 42.4], [27.5, 42.5], [27.4, 42.4]]]},
                                                        "address": {"addressLocality": "Бургас"}})


def test_entities_do_not_share_mutable_constants() -> None:
    builder = Builder(PointOfInterest, CONSTANTS)
    values = {**CONSTANTS, "id": "urn:ngsi-ld:PointOfInterest:x:1", "name": "a", "location": POINT}
    first, second = builder(values), builder(values)
    assert first.category == second.category and first.category is not second.category
    assert first.attr_meta is not second.attr_meta


@pytest.mark.parametrize("values", [
    {"id": "urn:ngsi-ld:PointOfInterest:x:1", "location": POINT},  # name is required
    {"id": "urn:ngsi-ld:PointOfInterest:x:1", "name": 12, "location": POINT},  # not text
    {"id": "not a uri", "name": "a", "location": POINT},
    {"id": "urn:ngsi-ld:PointOfInterest:x:1", "name": "a", "location": {"type": "Point", "coordinates": [200.0, 1.0]}},
    {"id": "urn:ngsi-ld:PointOfInterest:x:1", "name": "a", "location": POINT, "date_modified": datetime(2024, 1, 1)},
    {"id": "urn:ngsi-ld:PointOfInterest:x:1", "name": "a", "location": POINT, "no_such_field": 1},
])
def test_refusals_have_builds_reason(values: dict[str, Any]) -> None:
    values = {**CONSTANTS, **values}
    with pytest.raises(MappingError) as expected:
        build(PointOfInterest, values)
    with pytest.raises(MappingError) as got:
        Builder(PointOfInterest, CONSTANTS)(values)
    assert got.value.reason == expected.value.reason


def test_constants_the_model_refuses_fail_every_record_with_the_reason() -> None:
    constants = {"beach_type": ["pebbles"]}  # not in the model's enum
    values = {**constants, "id": "urn:ngsi-ld:Beach:x:1", "name": "a", "location": POINT}
    with pytest.raises(MappingError, match="beach_type"):
        Builder(Beach, constants)(values)
