"""Project extension types: what Burgas publishes and no Smart Data Model covers.

Types here live under the project namespace (``BURGAS``), not under smartdatamodels.org, and
belong to no official subject: their @context is the inline/generated extension terms only.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from data_models._base import BURGAS, SDM, GeoProperty, Property
from data_models._commons import SmartDataModel
from data_models._formats import NonEmptyText
from data_models._types import MultiPolygon, NonNegative, Polygon, Text

AreaGeometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class AdministrativeArea(SmartDataModel):
    """An administrative area of the municipality, e.g. a Burgas district (ДЦАУ "ПРИМОРИЕ").

    No Smart Data Model describes administrative areas: the closest standard concepts are
    schema.org ``AdministrativeArea`` and the GSMA-Commons/Location-Commons attributes every Smart
    Data Model shares. As OASC MIM2 asks, this type keeps those common attributes with their
    official IRIs (``name``, ``description``, ``address``, ``location``, ...) and adds the rest
    under the project namespace: the type itself, ``districtCode`` (the city's code for the area)
    and ``areaSize`` (m², MTK). ``location`` is required and is the area's Polygon or
    MultiPolygon in WGS84.
    """

    entity_type: ClassVar[str] = "AdministrativeArea"
    type_iri: ClassVar[str] = BURGAS + "AdministrativeArea"
    subject: ClassVar[str] = "burgas.Extensions"

    name: Annotated[NonEmptyText, Property(SDM + "name")]
    location: Annotated[AreaGeometry, GeoProperty()]
    district_code: Annotated[Text | None, Property(BURGAS + "districtCode")] = None
    area_size: Annotated[NonNegative | None, Property(BURGAS + "areaSize", unit="MTK")] = None
