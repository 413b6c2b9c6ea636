"""Attributes every Smart Data Model shares (GSMA-Commons, Location-Commons) plus our name map."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from data_models._base import BURGAS, SDM, Entity, GeoProperty, LanguageProperty, Property
from data_models._types import Geometry, LanguageMap, Text, Uri, UtcDateTime


class PostalAddress(BaseModel):
    """schema.org PostalAddress, as Smart Data Models use it for `address`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel,
                              frozen=True)

    # IRIs of the keys inside the compound value (JSON-LD expands them too), as the subject
    # contexts define them; the generated @context carries them.
    term_iris: ClassVar[dict[str, str | None]] = {
        k: SDM + k for k in ("addressCountry", "addressLocality", "addressRegion", "district",
                             "postalCode", "postOfficeBoxNumber", "streetAddress", "streetNr")}

    address_country: Text | None = None
    post_office_box_number: Text | None = None
    address_locality: Text | None = None
    address_region: Text | None = None
    district: Text | None = None
    postal_code: Text | None = None
    street_address: Text | None = None
    street_nr: Text | None = None
    type: Text | None = Field(default=None, description="'PostalAddress' in some official examples")


class SmartDataModel(Entity):
    """GSMA-Commons and Location-Commons attributes, shared by every model."""

    name: Annotated[Text | None, Property(SDM + "name")] = None
    alternate_name: Annotated[Text | None, Property(SDM + "alternateName")] = None
    description: Annotated[Text | None, Property("http://purl.org/dc/terms/description")] = None
    data_provider: Annotated[Text | None, Property(SDM + "dataProvider")] = None
    source: Annotated[Text | None, Property(SDM + "source")] = None
    date_created: Annotated[UtcDateTime | None, Property(SDM + "dateCreated")] = None
    date_modified: Annotated[UtcDateTime | None, Property(SDM + "dateModified")] = None
    owner: Annotated[list[Uri] | None, Property(SDM + "owner")] = None
    see_also: Annotated[list[Uri] | Uri | None, Property(SDM + "seeAlso")] = None
    address: Annotated[PostalAddress | None, Property(SDM + "address")] = None
    area_served: Annotated[Text | None, Property(SDM + "areaServed")] = None
    location: Annotated[Geometry | None, GeoProperty()] = None
    # Extension: Smart Burgas publishes names in Bulgarian and English; `name` keeps the
    # Bulgarian one (the schema wants a string), this keeps both as an NGSI-LD LanguageProperty.
    multilingual_name: Annotated[LanguageMap | None, LanguageProperty(BURGAS + "multilingualName")] = None
