"""Each model's IRIs are the official subject context's, and its required fields are the schema's."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.reference import core_context, load_json
from data_models import BURGAS, Entity, SmartDataModel

OFFICIAL = sorted((m for m in Entity.registry.values() if m.subject.startswith("dataModel.")),
                  key=lambda m: m.entity_type)
EXTENSIONS = sorted((m for m in Entity.registry.values() if not m.subject.startswith("dataModel.")),
                    key=lambda m: m.entity_type)


def _terms(subject: str) -> dict[str, Any]:
    """Term definitions of ``[subject context, core context]``: the core, last, wins."""
    subject_ctx = load_json(f"smart-data-models/{subject}/context.jsonld")["@context"]  # type: ignore[index]
    return {**subject_ctx, **core_context()["@context"]}


def _expand(term: str, terms: dict[str, Any]) -> str | None:
    definition = terms.get(term)
    if isinstance(definition, dict):
        definition = definition.get("@id")
    if not isinstance(definition, str):
        return None
    prefix, sep, rest = definition.partition(":")
    if sep and not rest.startswith("//") and isinstance(terms.get(prefix), str):
        return terms[prefix] + rest  # a compact IRI such as ngsi-ld:status
    return definition


@pytest.mark.parametrize("model", OFFICIAL, ids=lambda m: m.entity_type)
def test_attribute_iris_are_the_official_context_ones(model: type[Entity]) -> None:
    terms = _terms(model.subject)
    assert model.type_iri == _expand(model.entity_type, terms)
    for spec in model.attributes:
        if spec.ngsi.extension:
            # An extension must not shadow a term the official contexts already define.
            assert spec.iri.startswith(BURGAS) and spec.wire not in terms, spec.wire
        else:
            assert spec.iri == _expand(spec.wire, terms), spec.wire


def _schema_required(model: type[Entity]) -> set[str]:
    schema = load_json(f"smart-data-models/{model.subject}/{model.entity_type}/schema.json")
    required = set(schema.get("required", []))  # type: ignore[union-attr]
    for part in schema.get("allOf", []):  # type: ignore[union-attr]
        required |= set(part.get("required", []))
    return required - {"id", "type"}


@pytest.mark.parametrize("model", OFFICIAL, ids=lambda m: m.entity_type)
def test_required_fields_are_the_schema_required_ones(model: type[Entity]) -> None:
    required = {spec.wire for spec in model.attributes if spec.required}
    assert required == _schema_required(model)


@pytest.mark.parametrize("model", EXTENSIONS, ids=lambda m: m.entity_type)
def test_extension_types_live_in_the_project_namespace(model: type[Entity]) -> None:
    assert model.type_iri == BURGAS + model.entity_type
    inherited = set(SmartDataModel.model_fields)
    for spec in model.attributes:
        # Own attributes are extension terms; shared ones keep their official IRIs.
        assert spec.ngsi.extension or spec.field in inherited, spec.wire
    assert model.attributes_by_wire["location"].required


def test_every_extension_term_is_documented_in_its_model() -> None:
    for model in Entity.registry.values():
        own = {s.wire for s in model.attributes if s.ngsi.extension} - {"multilingualName"}
        for wire in own:
            assert wire in (model.__doc__ or "") or _commented(model, wire), (model.entity_type, wire)


def _commented(model: type[Entity], wire: str) -> bool:
    import inspect
    source = inspect.getsource(model)
    line = next(row for row in source.splitlines() if f'BURGAS + "{wire}"' in row)
    previous = source.splitlines()[source.splitlines().index(line) - 1]
    return previous.strip().startswith("# Extension")
