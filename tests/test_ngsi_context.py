"""Both @context modes expand every emitted term to the same IRI, the one each model declares."""

from __future__ import annotations

import re
from typing import get_args, get_origin

import pytest
from pyld import jsonld

from adapter.ngsi.context import (
    CORE_CONTEXT_URL,
    ContextMode,
    context_for,
    generated_context_document,
    generated_context_url,
    subjects,
)
from adapter.ngsi.serialize import Form, to_dict
from adapter.reference import core_context, load_json
from data_models import Entity
from tests.model_samples import sample_entity

MODELS = sorted(Entity.registry.values(), key=lambda m: m.entity_type)
_SDM = re.compile(r"^https://raw\.githubusercontent\.com/smart-data-models/([^/]+)/master/context\.jsonld$")
NGSI = "https://uri.etsi.org/ngsi-ld/"


def _offline_loader(url: str, options=None):
    """pyld document loader that never touches the network."""
    if url == CORE_CONTEXT_URL:
        document = core_context()
    elif m := _SDM.match(url):
        document = load_json(f"smart-data-models/{m[1]}/context.jsonld")
    else:
        for subject in subjects():
            if url == generated_context_url(subject):
                document = generated_context_document(subject)
                break
        else:
            raise AssertionError(f"test tried to load {url} from the network")
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": document}


def _expand(document: dict) -> dict:
    [expanded] = jsonld.expand(document, {"documentLoader": _offline_loader})
    return expanded


def _free_form(model) -> set[str]:
    """IRIs of attributes whose value is free-form JSON (the official schema leaves its keys open).

    Their inner keys are data, not vocabulary we declare: each mode expands them as its context
    happens to define them, so they are left out of the comparison.
    """
    def is_dict(tp) -> bool:
        return tp is dict or get_origin(tp) is dict or any(is_dict(a) for a in get_args(tp))
    return {s.iri for s in model.attributes if is_dict(model.model_fields[s.field].annotation)}


def _without_free_form_values(expanded: dict, iris: set[str]) -> dict:
    return {k: ([{a: b for a, b in v[0].items() if a != NGSI + "hasValue"}] if k in iris else v)
            for k, v in expanded.items()}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_official_and_generated_contexts_expand_to_identical_iris(model):
    entity = sample_entity(model)
    official = _expand(to_dict(entity, Form.NORMALIZED, context_for(model, ContextMode.OFFICIAL)))
    generated = _expand(to_dict(entity, Form.NORMALIZED, context_for(model, ContextMode.GENERATED)))
    free = _free_form(model)
    assert _without_free_form_values(official, free) == _without_free_form_values(generated, free)
    assert official["@type"] == [model.type_iri]
    attribute_keys = {k for k in official if not k.startswith("@")}
    declared = {s.iri for s in model.attributes if getattr(entity, s.field) is not None}
    assert attribute_keys == declared


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_core_terms_expand_as_the_core_context_says(model):
    entity = sample_entity(model)
    expanded = _expand(to_dict(entity, Form.NORMALIZED, context_for(model, ContextMode.OFFICIAL)))
    core = core_context()["@context"]
    assert core["Property"] == "ngsi-ld:Property" and core["ngsi-ld"] == NGSI
    for key, instances in expanded.items():
        if key.startswith("@"):
            continue
        [attribute] = instances
        assert attribute["@type"][0] in {NGSI + k for k in
                                         ("Property", "GeoProperty", "Relationship", "LanguageProperty")}
        if NGSI + "observedAt" in attribute:
            assert attribute[NGSI + "observedAt"][0]["@type"] == NGSI + "DateTime"
        if NGSI + "hasObject" in attribute:
            assert "@id" in attribute[NGSI + "hasObject"][0]
    if entity.location is not None:
        assert NGSI + "location" in expanded


@pytest.mark.parametrize("model", [m for m in MODELS if not m.subject.startswith("burgas.")],
                         ids=lambda m: m.entity_type)
def test_keys_inside_compound_values_use_the_official_iris_where_the_subject_defines_them(model):
    official = load_json(f"smart-data-models/{model.subject}/context.jsonld")["@context"]
    [inline] = [c for c in context_for(model, ContextMode.OFFICIAL) if isinstance(c, dict)] or [{}]
    attribute_terms = {s.wire for s in model.attributes}
    for term, iri in inline.items():
        if term in attribute_terms:
            continue  # extension attributes: checked against the BURGAS namespace elsewhere
        defined = official.get(term)
        defined = defined.get("@id") if isinstance(defined, dict) else defined
        assert defined in (None, iri), f"{term}: {iri} but the official context says {defined}"


def test_extension_types_carry_all_their_terms_inline():
    from data_models import AdministrativeArea

    ctx = context_for(AdministrativeArea, ContextMode.OFFICIAL)
    assert ctx[-1] == CORE_CONTEXT_URL and isinstance(ctx[0], dict)
    assert ctx[0]["AdministrativeArea"] == AdministrativeArea.type_iri
    assert ctx[0]["name"] == "https://smartdatamodels.org/name"
