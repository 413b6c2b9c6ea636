"""The base of every Smart Data Model: attribute metadata declared on fields, and the entity class.

A model field says what it is on the NGSI-LD wire through one ``Annotated`` marker::

    no2: Annotated[NonNegative | None, Property(ENVIRONMENT + "no2", unit="GQ", observed=True)] = None

The marker carries the NGSI-LD kind, the expanded IRI (as the official subject @context defines
it), the UN/CEFACT unit code and whether the value is an observation (its ``observedAt`` defaults
to the entity's observation time). Wire formatting itself lives in ``adapter.ngsi.serialize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from data_models._types import EntityId, Uri, UtcDateTime

SDM = "https://smartdatamodels.org/"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
# Terms that Smart Data Models lack (e.g. styrene, administrative districts) live here, as OASC
# MIM2 asks: the closest standard model, extended under the project's own namespace.
BURGAS = "https://burgas-ngsi-ld.github.io/ns#"


class AttrKind(StrEnum):
    """The four NGSI-LD attribute kinds."""

    PROPERTY = "Property"
    GEOPROPERTY = "GeoProperty"
    RELATIONSHIP = "Relationship"
    LANGUAGEPROPERTY = "LanguageProperty"


@dataclass(frozen=True, slots=True)
class NgsiAttr:
    """What a model field is on the NGSI-LD wire."""

    kind: AttrKind
    iri: str
    unit: str | None = None
    observed: bool = False
    name: str | None = None  # wire name when it is not the camelCase of the field name
    extension: bool = False  # not in the official model: a term under the BURGAS namespace


def Property(iri: str, *, unit: str | None = None, observed: bool = False,
             name: str | None = None) -> NgsiAttr:
    """A Property attribute."""
    return NgsiAttr(AttrKind.PROPERTY, iri, unit, observed, name, iri.startswith(BURGAS))


def GeoProperty(iri: str = NGSI_LD + "location", *, name: str | None = None) -> NgsiAttr:
    """A GeoProperty attribute (GeoJSON in WGS84)."""
    return NgsiAttr(AttrKind.GEOPROPERTY, iri, None, False, name, iri.startswith(BURGAS))


def Relationship(iri: str, *, name: str | None = None) -> NgsiAttr:
    """A Relationship attribute (its value is the object's URI)."""
    return NgsiAttr(AttrKind.RELATIONSHIP, iri, None, False, name, iri.startswith(BURGAS))


def LanguageProperty(iri: str, *, name: str | None = None) -> NgsiAttr:
    """A LanguageProperty attribute (its value is a language map, e.g. {"bg": .., "en": ..})."""
    return NgsiAttr(AttrKind.LANGUAGEPROPERTY, iri, None, False, name, iri.startswith(BURGAS))


class AttrMeta(BaseModel):
    """Per-attribute metadata that differs from the model's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    observed_at: UtcDateTime | None = None
    unit_code: str | None = None
    dataset_id: Uri | None = None


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """One attribute of a model: field name, wire name, NGSI-LD metadata and requiredness."""

    field: str
    wire: str
    ngsi: NgsiAttr
    required: bool

    @property
    def kind(self) -> AttrKind:
        return self.ngsi.kind

    @property
    def iri(self) -> str:
        return self.ngsi.iri

    @property
    def unit(self) -> str | None:
        return self.ngsi.unit


class Entity(BaseModel):
    """Base of every Smart Data Models entity: an id, a type, declared attributes."""

    # defer_build: a model's validator is built on its first use, so a CLI run builds the few
    # models it maps instead of every one (≈ 0.25 s of CPU at each start).
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel,
        validate_assignment=True, revalidate_instances="never", defer_build=True,
    )

    # Set by each model class.
    entity_type: ClassVar[str]
    type_iri: ClassVar[str]
    subject: ClassVar[str]  # e.g. "dataModel.Environment" (its official @context)
    observed_at_field: ClassVar[str | None] = None  # default observedAt of observed attributes
    attributes: ClassVar[tuple[AttrSpec, ...]] = ()
    attributes_by_wire: ClassVar[dict[str, AttrSpec]] = {}
    registry: ClassVar[dict[str, type[Entity]]] = {}

    id: EntityId
    # Metadata of single attributes that differ from the defaults (observedAt, unitCode,
    # datasetId), keyed by field name. Not an attribute itself.
    attr_meta: dict[str, AttrMeta] = Field(default_factory=dict, exclude=True, repr=False,
                                           alias="attr_meta")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "entity_type" not in cls.__dict__:
            return  # an abstract intermediate class
        specs = []
        for fname, info in cls.model_fields.items():
            marker = next((m for m in info.metadata if isinstance(m, NgsiAttr)), None)
            if marker is None:
                if fname not in ("id", "attr_meta"):
                    raise TypeError(f"{cls.__name__}.{fname} has no NGSI-LD attribute marker")
                continue
            wire = marker.name or info.alias or fname
            specs.append(AttrSpec(fname, wire, marker, info.is_required()))
        cls.attributes = tuple(specs)
        cls.attributes_by_wire = {s.wire: s for s in specs}
        Entity.registry[cls.entity_type] = cls

    def observation_time(self) -> datetime | None:
        """The entity's observation time (default observedAt of observed attributes), if any."""
        observed: datetime | None = getattr(self, self.observed_at_field) if self.observed_at_field else None
        return observed


def model_for(entity_type: str) -> type[Entity]:
    """The model class of an entity type given as short name or expanded IRI."""
    cls = Entity.registry.get(entity_type)
    if cls is None:
        for candidate in Entity.registry.values():
            if candidate.type_iri == entity_type:
                return candidate
        raise KeyError(f"no model for entity type {entity_type!r}")
    return cls
