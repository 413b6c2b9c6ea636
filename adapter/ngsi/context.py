"""@context for emitted entities, in two modes that expand every term to the same IRI.

``official``: the Smart Data Models subject context URL, an inline object for our extension
terms, then the ETSI core context v1.8 (what Orion-LD with internet access uses).
``generated``: one context document per subject generated from the models' attribute IRIs,
served by this project (and preloaded into the embedded broker), then the core context.
The core context comes last in both, so its terms (location, description, ...) win, as they do
in Orion-LD.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Any, get_args

from pydantic import BaseModel

from data_models import SDM, Entity

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
SDM_CONTEXT_URL = "https://raw.githubusercontent.com/smart-data-models/{subject}/master/context.jsonld"
DEFAULT_CONTEXT_BASE_URL = "http://127.0.0.1:8080/contexts/"


class ContextMode(StrEnum):
    """Which @context entities are sent with."""

    OFFICIAL = "official"
    GENERATED = "generated"


def is_extension_subject(subject: str) -> bool:
    """Subjects of our own extension types: there is no official context for them."""
    return subject.startswith("burgas.")


def official_context(model: type[Entity]) -> list[Any]:
    """``[SDM subject URL, {inline terms}?, core URL]`` for a model.

    The inline object holds what the official subject context cannot: our extension terms and
    the keys inside compound values (the subject context leaves some undefined, e.g. contactPoint
    keys in dataModel.Parking, which would otherwise fall to the default vocabulary). For our own
    extension types there is no official context, so every term is inline.
    """
    if is_extension_subject(model.subject):
        return [dict(_model_terms(model)), CORE_CONTEXT_URL]
    inline = {s.wire: s.iri for s in model.attributes if s.ngsi.extension}
    for spec in model.attributes:
        inline.update(_compound_terms(model.model_fields[spec.field].annotation, model.subject))
    ctx: list[Any] = [SDM_CONTEXT_URL.format(subject=model.subject)]
    if inline:
        ctx.append(dict(sorted(inline.items())))
    ctx.append(CORE_CONTEXT_URL)
    return ctx


def generated_context_url(subject: str, base_url: str = DEFAULT_CONTEXT_BASE_URL) -> str:
    """Where the generated context of a subject is served."""
    return f"{base_url.rstrip('/')}/{subject}.jsonld"


def generated_context(model: type[Entity], base_url: str = DEFAULT_CONTEXT_BASE_URL) -> list[str]:
    """``[generated subject context URL, core URL]`` for a model."""
    return [generated_context_url(model.subject, base_url), CORE_CONTEXT_URL]


def context_for(model: type[Entity], mode: ContextMode,
                base_url: str = DEFAULT_CONTEXT_BASE_URL) -> list[Any]:
    """The @context entities of this model are sent with."""
    if mode is ContextMode.OFFICIAL:
        return official_context(model)
    return generated_context(model, base_url)


def _compound_terms(annotation: Any, subject: str) -> dict[str, str]:
    """Keys used inside compound values (sub-models declaring ``term_iris``) and their IRIs."""
    found: dict[str, str] = {}
    stack = [annotation]
    while stack:
        tp = stack.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for term, iri in getattr(tp, "term_iris", {}).items():
                found[term] = iri if iri is not None else f"{SDM}{subject}/{term}"
        stack.extend(get_args(tp))
    return found


def _model_terms(model: type[Entity]) -> tuple[tuple[str, str], ...]:
    terms = {model.entity_type: model.type_iri}
    for spec in model.attributes:
        terms[spec.wire] = spec.iri
        terms.update(_compound_terms(model.model_fields[spec.field].annotation, model.subject))
    return tuple(sorted(terms.items()))


@lru_cache(maxsize=64)
def _subject_terms(subject: str) -> tuple[tuple[str, str], ...]:
    terms: dict[str, str] = {}
    for model in Entity.registry.values():
        if model.subject != subject:
            continue
        for term, iri in _model_terms(model):
            known = terms.setdefault(term, iri)
            if known != iri:
                raise ValueError(f"term {term!r} of {subject} maps to both {known} and {iri}")
    return tuple(sorted(terms.items()))


def generated_context_document(subject: str) -> dict[str, Any]:
    """The generated @context document of a subject: every type and attribute term to its IRI."""
    return {"@context": dict(_subject_terms(subject))}


def subjects() -> list[str]:
    """Every subject that has at least one model."""
    return sorted({m.subject for m in Entity.registry.values()})
