"""Compound Property values that several Smart Data Models share (schema.org ContactPoint, spot counts).

Each is a closed pydantic model (unknown keys are refused, as everywhere in ``data_models``) whose
field names follow the official schema; they serialise to plain JSON objects.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from data_models._formats import IsoDate
from data_models._types import NonNegative, Text, Uri

_VALUE = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

# Compound values the official schemas leave open ("type": "object" without properties, or
# any JSON value): kept as parsed JSON, never coerced.
JsonObject = dict[str, Any]
# municipalityInfo: the key spelling differs between models (cityId in Parking, cityID in
# PointOfInterest), so it stays a mapping of strict scalars.
MunicipalityInfo = dict[str, Annotated[str, Field(strict=True)] | Annotated[int, Field(strict=True)]]


class ContactPoint(BaseModel):
    """schema.org ContactPoint (GSMA Contact-Commons ``contactPoint``)."""

    model_config = _VALUE

    contact_type: Text | None = None
    email: Text | None = None
    telephone: Text | None = None
    name: Text | None = None
    url: Uri | None = None
    area_served: Text | None = None
    available_language: Text | list[Text] | None = None
    contact_option: Text | list[Text] | None = None
    fax_number: Text | None = None
    product_supported: Text | None = None


class SpotAvailability(BaseModel):
    """Spot counts of one vehicle class (``twoWheelerSlots``, ``unclassifiedSlots``)."""

    model_config = _VALUE

    available_spot_number: NonNegative | None = None
    total_spot_number: NonNegative | None = None
    occupied_spot_number: NonNegative | None = None


class SlotAvailability(BaseModel):
    """Slot counts of four-wheelers (``fourWheelerSlots``: the schema says *Slot*, not *Spot*)."""

    model_config = _VALUE

    available_slot_number: NonNegative | None = None
    total_slot_number: NonNegative | None = None
    occupied_slot_number: NonNegative | None = None


class DatePeriod(BaseModel):
    """A period of whole days, ``{"from": "2016-06-01", "to": "2016-06-30"}``."""

    model_config = _VALUE

    from_: IsoDate | None = Field(default=None, alias="from")
    to: IsoDate | None = None
