"""Both @context modes expand every emitted term to the same IRI, the one each model declares."""

from __future__ import annotations

import re

import pytest
from pyld import jsonld

from adapter.ngsi.context import (
    CORE_CONTEXT_URL, ContextMode, context_for, generated_context_document, generated_context_url,
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


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_official_and_generated_contexts_expand_to_identical_iris(model):
    entity = sample_entity(model)
    official = _expand(to_dict(entity, Form.NORMALIZED, context_for(model, ContextMode.OFFICIAL)))
    generated = _expand(to_dict(entity, Form.NORMALIZED, context_for(model, ContextMode.GENERATED)))
    assert official == generated
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
