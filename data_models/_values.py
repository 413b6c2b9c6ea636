"""Compound Property values that several Smart Data Models share (schema.org ContactPoint, spot counts).

Each is a closed pydantic model (unknown keys are refused, as everywhere in ``data_models``) whose
field names follow the official schema; they serialise to plain JSON objects.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from data_models._base import SDM
from data_models._formats import IsoDate
from data_models._types import NonNegative, Text, Uri

_VALUE = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

# Compound values the official schemas leave open ("type": "object" without properties, or
# any JSON value): kept as parsed JSON, never coerced.
JsonObject = dict[str, Any]
_ID = Annotated[str, Field(strict=True)] | Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]


class MunicipalityInfo(BaseModel):
    """``municipalityInfo`` as Parking and Streetlighting spell it (``cityId``, ``wardId``, ``zoneId``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    term_iris: ClassVar[dict[str, str | None]] = {"district": SDM + "district", **dict.fromkeys((
        "ulbName", "cityId", "wardId", "stateName", "cityName", "zoneName", "zoneId", "wardName",
        "wardNum"))}

    district: Text | None = None
    ulb_name: Text | None = Field(None, alias="ulbName")
    city_id: _ID | None = Field(None, alias="cityId")
    ward_id: _ID | None = Field(None, alias="wardId")
    state_name: Text | None = Field(None, alias="stateName")
    city_name: Text | None = Field(None, alias="cityName")
    zone_name: Text | None = Field(None, alias="zoneName")
    zone_id: _ID | None = Field(None, alias="zoneId")
    ward_name: Text | None = Field(None, alias="wardName")
    ward_num: _ID | None = Field(None, alias="wardNum")


class PoiMunicipalityInfo(BaseModel):
    """``municipalityInfo`` as PointOfInterest spells it (``cityID``, ``wardID``, ``zoneID``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    term_iris: ClassVar[dict[str, str | None]] = {"district": SDM + "district", **dict.fromkeys((
        "ulbName", "cityID", "wardID", "stateName", "cityName", "zoneName", "zoneID", "wardName",
        "wardNum"))}

    district: Text | None = None
    ulb_name: Text | None = Field(None, alias="ulbName")
    city_id: _ID | None = Field(None, alias="cityID")
    ward_id: _ID | None = Field(None, alias="wardID")
    state_name: Text | None = Field(None, alias="stateName")
    city_name: Text | None = Field(None, alias="cityName")
    zone_name: Text | None = Field(None, alias="zoneName")
    zone_id: _ID | None = Field(None, alias="zoneID")
    ward_name: Text | None = Field(None, alias="wardName")
    ward_num: _ID | None = Field(None, alias="wardNum")


class ContactPoint(BaseModel):
    """schema.org ContactPoint (GSMA Contact-Commons ``contactPoint``)."""

    model_config = _VALUE
    # IRIs of the keys inside the value (JSON-LD expands them too); None = the entity's subject
    # namespace. Both @context modes carry these (adapter.ngsi.context).
    term_iris: ClassVar[dict[str, str | None]] = {k: SDM + k for k in (
        "contactType", "email", "telephone", "name", "url", "areaServed", "availableLanguage",
        "contactOption", "faxNumber", "productSupported")}

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
    term_iris: ClassVar[dict[str, str | None]] = dict.fromkeys(
        ("availableSpotNumber", "totalSpotNumber", "occupiedSpotNumber"))

    available_spot_number: NonNegative | None = None
    total_spot_number: NonNegative | None = None
    occupied_spot_number: NonNegative | None = None


class SlotAvailability(BaseModel):
    """Slot counts of four-wheelers (``fourWheelerSlots``: the schema says *Slot*, not *Spot*)."""

    model_config = _VALUE
    term_iris: ClassVar[dict[str, str | None]] = dict.fromkeys(
        ("availableSlotNumber", "totalSlotNumber", "occupiedSlotNumber"))

    available_slot_number: NonNegative | None = None
    total_slot_number: NonNegative | None = None
    occupied_slot_number: NonNegative | None = None


class DatePeriod(BaseModel):
    """A period of whole days, ``{"from": "2016-06-01", "to": "2016-06-30"}``."""

    model_config = _VALUE
    term_iris: ClassVar[dict[str, str | None]] = dict.fromkeys(("from", "to"))

    from_: IsoDate | None = Field(default=None, alias="from")
    to: IsoDate | None = None
