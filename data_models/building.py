"""dataModel.Building: buildings."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from data_models._base import SDM, GeoProperty, Property, Relationship
from data_models._commons import PostalAddress, SmartDataModel
from data_models._types import Geometry, Integer, NonNegative, Ratio, Text, Uri

BUILDING = SDM + "dataModel.Building/"

BuildingCategory = Literal[
    "apartments", "bakehouse", "barn", "bridge", "bungalow", "bunker", "cathedral", "cabin",
    "carport", "cemetery", "chapel", "church", "civic", "commercial", "conservatory",
    "construction", "cowshed", "detached", "digester", "dormitory", "farm", "farm_auxiliary",
    "garage", "garages", "garbage_shed", "grandstand", "greenhouse", "hangar", "hospital", "hotel",
    "house", "houseboat", "hut", "industrial", "kindergarten", "kiosk", "mosque", "office",
    "parking", "pavilion", "public", "residential", "retail", "riding_hall", "roof", "ruins",
    "school", "service", "shed", "shrine", "stable", "stadium", "static_caravan", "sty",
    "synagogue", "temple", "terrace", "train_station", "transformer_tower", "transportation",
    "university", "warehouse", "water_tower"
]


class Building(SmartDataModel):
    """A building: its use (category), address, floors, occupants and opening hours."""

    entity_type: ClassVar[str] = "Building"
    type_iri: ClassVar[str] = BUILDING + "Building"
    subject: ClassVar[str] = "dataModel.Building"
    observed_at_field: ClassVar[str] = "date_modified"

    address: Annotated[PostalAddress, Property(SDM + "address")]
    category: Annotated[list[BuildingCategory], Property(BUILDING + "category")]
    contained_in_place: Annotated[Geometry | None, GeoProperty(BUILDING + "containedInPlace")] = None
    occupier: Annotated[list[Uri] | None, Relationship(BUILDING + "occupier")] = None
    floors_above_ground: Annotated[Integer | None, Property(BUILDING + "floorsAboveGround")] = None
    floors_below_ground: Annotated[Integer | None, Property(BUILDING + "floorsBelowGround")] = None
    map_url: Annotated[Uri | None, Relationship(BUILDING + "mapUrl")] = None
    # Opening-hours strings, e.g. ["Mo-Fr 10:00-19:00", "Sa 10:00-22:00"].
    opening_hours: Annotated[list[Text] | None, Property(SDM + "openingHours")] = None
    collapse_risk: Annotated[Ratio | None, Property(BUILDING + "collapseRisk")] = None
    people_capacity: Annotated[NonNegative | None, Property(BUILDING + "peopleCapacity")] = None
    people_occupancy: Annotated[NonNegative | None, Property(BUILDING + "peopleOccupancy", observed=True)] = None
