"""dataModel.UrbanMobility: GTFS static feeds (agency, stops, routes, trips, shapes).

GTFS ids become entity ids (``urn:ngsi-ld:GtfsStop:<feed>:<stop_id>``); GTFS references
(route_id, shape_id, parent_station, ...) become Relationships to those ids.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, Strict

from data_models._base import SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import GtfsColor, TimeZoneName
from data_models._types import Geometry, NonNegative, NonNegativeInt, Text, Uri

URBAN_MOBILITY = SDM + "dataModel.UrbanMobility/"
# GTFS 0/1/2: no information, yes, no (wheelchair_accessible, bikes_allowed).
GtfsTristate = Annotated[int, Strict(), Field(ge=0, le=2)]

GtfsRouteRouteType = Literal[
    "0", "1", "2", "3", "4", "5", "6", "7"
]


class GtfsAgency(SmartDataModel):
    """A transit agency (GTFS ``agency.txt``)."""

    entity_type: ClassVar[str] = "GtfsAgency"
    type_iri: ClassVar[str] = URBAN_MOBILITY + "GtfsAgency"
    subject: ClassVar[str] = "dataModel.UrbanMobility"

    source: Annotated[Text, Property(SDM + "source")]
    entity_source: Annotated[Uri | None, Property(URBAN_MOBILITY + "entitySource")] = None
    agency_name: Annotated[Text, Property(URBAN_MOBILITY + "agencyName")]
    page: Annotated[Uri | None, Property(URBAN_MOBILITY + "page")] = None
    phone: Annotated[Text | None, Property(URBAN_MOBILITY + "phone")] = None
    timezone: Annotated[TimeZoneName | None, Property(URBAN_MOBILITY + "timezone")] = None
    language: Annotated[Text | None, Property(URBAN_MOBILITY + "language")] = None


class GtfsStop(SmartDataModel):
    """A stop or station (GTFS ``stops.txt``)."""

    entity_type: ClassVar[str] = "GtfsStop"
    type_iri: ClassVar[str] = URBAN_MOBILITY + "GtfsStop"
    subject: ClassVar[str] = "dataModel.UrbanMobility"

    name: Annotated[Text, Property(SDM + "name")]
    location: Annotated[Geometry, GeoProperty()]
    code: Annotated[Text | None, Property(URBAN_MOBILITY + "code")] = None
    page: Annotated[Uri | None, Property(URBAN_MOBILITY + "page")] = None
    zone_code: Annotated[Text | None, Property(URBAN_MOBILITY + "zoneCode")] = None
    wheel_chair_accessible: Annotated[Literal["0", "1", "2"] | None,
                                      Property(URBAN_MOBILITY + "wheelChairAccessible")] = None
    has_parent_station: Annotated[Uri | None, Relationship(URBAN_MOBILITY + "hasParentStation")] = None
    stop_desc: Annotated[Text | None, Property(URBAN_MOBILITY + "stop_desc"), Field(alias="stop_desc")] = None
    has_service: Annotated[Uri | None, Relationship(URBAN_MOBILITY + "hasService")] = None
    has_trip: Annotated[Uri | None, Relationship(URBAN_MOBILITY + "hasTrip")] = None
    has_stop: Annotated[list[Uri] | None, Relationship(URBAN_MOBILITY + "hasStop")] = None
    operated_by: Annotated[list[Uri] | None, Relationship(URBAN_MOBILITY + "operatedBy")] = None


class GtfsRoute(SmartDataModel):
    """A transit route (GTFS ``routes.txt``).

    ``routeType`` takes the official enum, GTFS's basic types "0".."7": the extended types (e.g.
    11, trolleybus) are not in it, so a mapper has to map them onto a basic type.
    """

    entity_type: ClassVar[str] = "GtfsRoute"
    type_iri: ClassVar[str] = URBAN_MOBILITY + "GtfsRoute"
    subject: ClassVar[str] = "dataModel.UrbanMobility"

    page: Annotated[Uri | None, Property(URBAN_MOBILITY + "page")] = None
    route_color: Annotated[GtfsColor | None, Property(URBAN_MOBILITY + "routeColor")] = None
    route_text_color: Annotated[GtfsColor | None, Property(URBAN_MOBILITY + "routeTextColor")] = None
    route_type: Annotated[GtfsRouteRouteType | None, Property(URBAN_MOBILITY + "routeType")] = None
    route_sort_order: Annotated[NonNegativeInt | None, Property(URBAN_MOBILITY + "routeSortOrder")] = None
    operated_by: Annotated[Uri | None, Relationship(URBAN_MOBILITY + "operatedBy")] = None
    short_name: Annotated[Text | None, Property(URBAN_MOBILITY + "shortName")] = None


class GtfsTrip(SmartDataModel):
    """A trip of a route (GTFS ``trips.txt``)."""

    entity_type: ClassVar[str] = "GtfsTrip"
    type_iri: ClassVar[str] = URBAN_MOBILITY + "GtfsTrip"
    subject: ClassVar[str] = "dataModel.UrbanMobility"

    short_name: Annotated[Text | None, Property(URBAN_MOBILITY + "shortName")] = None
    head_sign: Annotated[Text | None, Property(URBAN_MOBILITY + "headSign")] = None
    has_route: Annotated[Uri, Relationship(URBAN_MOBILITY + "hasRoute")]
    has_shape: Annotated[Uri | None, Relationship(URBAN_MOBILITY + "hasShape")] = None
    block: Annotated[Text | None, Property(URBAN_MOBILITY + "block")] = None
    has_service: Annotated[Uri, Relationship(URBAN_MOBILITY + "hasService")]
    direction: Annotated[Annotated[int, Strict(), Field(ge=0, le=1)] | None,
                         Property(URBAN_MOBILITY + "direction")] = None
    wheel_chair_accessible: Annotated[GtfsTristate | None, Property(URBAN_MOBILITY + "wheelChairAccessible")] = None
    bikes_allowed: Annotated[GtfsTristate | None, Property(URBAN_MOBILITY + "bikesAllowed")] = None


class GtfsShape(SmartDataModel):
    """The path a vehicle travels (GTFS ``shapes.txt``), as a LineString or MultiLineString."""

    entity_type: ClassVar[str] = "GtfsShape"
    type_iri: ClassVar[str] = URBAN_MOBILITY + "GtfsShape"
    subject: ClassVar[str] = "dataModel.UrbanMobility"

    location: Annotated[Geometry, GeoProperty()]
    distance_travelled: Annotated[list[NonNegative] | None, Field(min_length=1),
                                  Property(URBAN_MOBILITY + "distanceTravelled")] = None
