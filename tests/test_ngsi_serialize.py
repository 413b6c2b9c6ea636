"""Serialisation of every model to the three NGSI-LD forms, and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from adapter.ngsi.serialize import Form, dumps, format_datetime, from_dict, to_dict, to_key_values
from data_models import AirQualityObserved, AttrMeta, Entity
from tests.golden import assert_golden
from tests.model_samples import sample_entity
from tests.schema_validation import schema_errors

MODELS = sorted(Entity.registry.values(), key=lambda m: m.entity_type)
GOLDEN = Path(__file__).parent / "golden" / "ngsi"


def _without_metadata(entity: Entity) -> Entity:
    return entity.model_copy(update={"attr_meta": {}})


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
@pytest.mark.parametrize("form", [Form.NORMALIZED, Form.CONCISE])
def test_round_trip_through_normalized_and_concise_is_lossless(model, form):
    entity = sample_entity(model)
    wire = orjson.loads(dumps(entity, form))
    assert from_dict(wire, form=form) == entity


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_round_trip_through_key_values_is_lossless_for_default_metadata(model):
    # keyValues carries no metadata by definition; with default metadata nothing is lost.
    entity = _without_metadata(sample_entity(model))
    wire = orjson.loads(dumps(entity, Form.KEY_VALUES))
    assert from_dict(wire, form=Form.KEY_VALUES) == entity


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_emitted_key_values_validate_against_the_official_schema(model):
    if model.subject.startswith("burgas."):
        pytest.skip("extension type: no official schema")
    assert schema_errors(model, orjson.loads(dumps(sample_entity(model), Form.KEY_VALUES))) == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_normalized_bytes_match_the_golden_file(model):
    produced = dumps(sample_entity(model), Form.NORMALIZED)
    assert_golden(GOLDEN / f"{model.entity_type}.normalized.json", produced + b"\n")


def _aqo(**extra) -> AirQualityObserved:
    return AirQualityObserved(
        id="urn:ngsi-ld:AirQualityObserved:smartburgas:1", name="Долно Езерово",
        multilingual_name={"bg": "Долно Езерово", "en": "Dolno Ezerovo"},
        date_observed="2026-02-27T15:00:05+02:00",
        location={"type": "Point", "coordinates": [27.44877635217933, 42.52149131553802]},
        no2=29.6, sh2=0.0026, ref_device="urn:ngsi-ld:Device:smartburgas:aq-1", **extra)


def test_normalized_form_carries_units_observed_at_and_relationship_objects():
    wire = to_dict(_aqo(), Form.NORMALIZED)
    assert wire["no2"] == {"type": "Property", "value": 29.6, "unitCode": "GQ",
                           "observedAt": "2026-02-27T13:00:05Z"}
    assert wire["sh2"]["unitCode"] == "GP"  # H2S is reported in mg/m3
    assert wire["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:smartburgas:aq-1"}
    assert wire["location"] == {"type": "GeoProperty", "value": {
        "type": "Point", "coordinates": [27.44877635217933, 42.52149131553802]}}
    assert wire["multilingualName"] == {"type": "LanguageProperty",
                                        "languageMap": {"bg": "Долно Езерово", "en": "Dolno Ezerovo"}}
    assert "pm10" not in wire  # absent values are absent, never null or 0


def test_attribute_metadata_overrides_defaults_and_survives_the_round_trip():
    entity = _aqo(attr_meta={"no2": AttrMeta(observed_at="2026-02-27T10:00:00+00:00",
                                             unit_code="GP", dataset_id="urn:ngsi-ld:Dataset:hourly")})
    wire = to_dict(entity, Form.NORMALIZED)
    assert wire["no2"] == {"type": "Property", "value": 29.6, "unitCode": "GP",
                           "observedAt": "2026-02-27T10:00:00Z",
                           "datasetId": "urn:ngsi-ld:Dataset:hourly"}
    assert from_dict(wire) == entity


def test_concise_form_drops_type_and_keeps_metadata_objects():
    wire = to_dict(_aqo(), Form.CONCISE)
    assert wire["name"] == "Долно Езерово"
    assert wire["no2"] == {"value": 29.6, "unitCode": "GQ", "observedAt": "2026-02-27T13:00:05Z"}
    assert wire["refDevice"] == {"object": "urn:ngsi-ld:Device:smartburgas:aq-1"}
    assert wire["location"]["type"] == "Point"


def test_key_values_form_is_plain_values():
    wire = to_key_values(_aqo())
    assert wire["no2"] == 29.6
    assert wire["dateObserved"] == "2026-02-27T13:00:05Z"
    assert wire["refDevice"] == "urn:ngsi-ld:Device:smartburgas:aq-1"


def test_context_is_added_when_given():
    ctx = ["https://example.org/ctx.jsonld"]
    assert to_dict(_aqo(), context=ctx)["@context"] == ctx


def test_parse_accepts_expanded_attribute_names_from_a_broker():
    wire = to_dict(_aqo(), Form.NORMALIZED)
    expanded = {("https://smartdatamodels.org/dataModel.Environment/no2" if k == "no2" else k): v
                for k, v in wire.items()}
    expanded["type"] = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
    assert from_dict(expanded) == _aqo()


def test_parse_ignores_broker_system_attributes():
    wire = to_dict(_aqo(), Form.NORMALIZED)
    wire["createdAt"] = "2026-02-27T13:00:06.123Z"
    wire["no2"]["modifiedAt"] = "2026-02-27T13:00:06.123Z"
    assert from_dict(wire) == _aqo()


def test_parse_rejects_unknown_attributes_and_wrong_kinds():
    wire = to_dict(_aqo(), Form.NORMALIZED)
    with pytest.raises(ValueError, match="noSuchThing"):
        from_dict({**wire, "noSuchThing": {"type": "Property", "value": 1}})
    with pytest.raises(ValueError, match="refDevice"):
        from_dict({**wire, "refDevice": {"type": "Property", "value": "urn:x:y"}})
    with pytest.raises(ValueError, match="not AirQualityObserved"):
        from_dict({**wire, "type": "WeatherObserved"}, AirQualityObserved)


@pytest.mark.parametrize("moment", [
    datetime(2024, 6, 1, 0, 0, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2024, 6, 1, 0, 0, 1, 5000, tzinfo=UTC),
    datetime(2024, 6, 1, 0, 0, 1, 999999, tzinfo=UTC),
    datetime(2024, 6, 1, 2, 0, 1, tzinfo=timezone(timedelta(hours=2)))])
def test_times_are_written_as_orion_ld_writes_them(moment):
    """UTC with a Z, milliseconds only when there are any (whole seconds take a faster path, which
    a datetime subclass, e.g. a test clock's, must not break)."""
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    expected = text.removesuffix("+00:00") + ("Z" if text.endswith("+00:00") else "")
    assert format_datetime(moment) == expected
    assert format_datetime(_Clock.fromisoformat(moment.isoformat())) == expected


class _Clock(datetime):
    """A datetime subclass, as test clocks make them."""
