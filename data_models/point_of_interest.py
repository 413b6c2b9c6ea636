"""dataModel.PointOfInterest: points of interest (pay machines, taxi ranks, waste centres) and beaches."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from data_models._base import BURGAS, SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import HexColor, NonEmptyText
from data_models._types import Geometry, NonNegative, NonNegativeInt, Number, Text, Uri, UtcDateTime
from data_models._values import ContactPoint, PoiMunicipalityInfo

POI = SDM + "dataModel.PointOfInterest/"

BeachBeachType = Literal[
    "whiteSand", "urban", "isolated", "calmWaters", "blueFlag", "Q-Quality", "strongWaves",
    "windy", "blackSand"
]
BeachFacilities = Literal[
    "promenade", "showers", "cleaningServices", "lifeGuard", "sunshadeRental", "sunLoungerRental",
    "waterCraftRental", "toilets", "touristOffice", "litterBins", "telephone", "surfPracticeArea",
    "accessforDisabled"
]


WasteUnit = Literal["KGM", "H87"]  # UN/CEFACT: kilogram, piece


class WasteQuantity(BaseModel):
    """How much of one waste type a mobile waste centre collected (Smart Burgas ``data[]``).

    ``unitCode`` is KGM for weighed types ("КГ") and H87 for counted ones ("БРОЙ", "БР").
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel,
                              frozen=True)

    waste_type_id: NonEmptyText
    waste_type_name: Text
    quantity: NonNegative
    unit_code: WasteUnit
    date_observed: UtcDateTime
    color: HexColor | None = None


class PointOfInterest(SmartDataModel):
    """A point of interest: Burgas parking pay machines, taxi ranks and mobile waste centres.

    Each kind is told apart by ``category``. What Smart Burgas publishes and the official model
    lacks is an extension, as OASC MIM2 asks: per-waste-type quantities of a mobile waste centre
    (``wasteQuantities``, a compound Property), its total collected weight (``wasteTotalWeight``,
    kg), how many citizens brought waste (``citizenCount``), and how many taxis a rank holds
    (``vehicleCapacity``; the official ``capacity`` counts people). ``dateObserved`` and
    ``openingHours`` are terms of the official PointOfInterest @context that this schema does not
    list; they carry when the quantities were read and a waste centre's working hours.
    """

    entity_type: ClassVar[str] = "PointOfInterest"
    type_iri: ClassVar[str] = POI + "PointOfInterest"
    subject: ClassVar[str] = "dataModel.PointOfInterest"
    observed_at_field: ClassVar[str] = "date_observed"

    name: Annotated[Text, Property(SDM + "name")]
    category: Annotated[list[Text] | None, Property(POI + "category")] = None
    contact_point: Annotated[ContactPoint | None, Property(SDM + "contactPoint")] = None
    ref_see_also: Annotated[list[Uri] | None, Relationship(POI + "refSeeAlso")] = None
    ward_id: Annotated[Text | None, Property(POI + "wardId")] = None
    zone_id: Annotated[Text | None, Property(POI + "zoneId")] = None
    additional_info_url: Annotated[Uri | None, Relationship(POI + "additionalInfoURL"),
                                   Field(alias="additionalInfoURL")] = None
    zone_name: Annotated[Text | None, Property(POI + "zoneName")] = None
    municipality_info: Annotated[PoiMunicipalityInfo | None, Property(POI + "municipalityInfo")] = None
    title: Annotated[Text | None, Property("http://purl.org/dc/terms/title")] = None
    relevance: Annotated[Number | None, Property(POI + "relevance")] = None
    image: Annotated[Uri | None, Property(SDM + "image")] = None
    price_range: Annotated[Text | None, Property(POI + "priceRange")] = None
    capacity: Annotated[Number | None, Property(POI + "capacity")] = None
    occupancy: Annotated[Number | None, Property(POI + "occupancy", observed=True)] = None
    opening_hours: Annotated[Text | None, Property(SDM + "openingHours")] = None
    date_observed: Annotated[UtcDateTime | None, Property(SDM + "dateObserved")] = None
    # Extensions (see the class docstring).
    waste_quantities: Annotated[list[WasteQuantity] | None, Property(BURGAS + "wasteQuantities", observed=True)] = None
    waste_total_weight: Annotated[NonNegative | None,
                                  Property(BURGAS + "wasteTotalWeight", unit="KGM", observed=True)] = None
    citizen_count: Annotated[NonNegativeInt | None, Property(BURGAS + "citizenCount", observed=True)] = None
    vehicle_capacity: Annotated[NonNegativeInt | None, Property(BURGAS + "vehicleCapacity")] = None


class Beach(SmartDataModel):
    """A beach: its kind, facilities, access and typical occupation; sizes in metres (MTR)."""

    entity_type: ClassVar[str] = "Beach"
    type_iri: ClassVar[str] = POI + "Beach"
    subject: ClassVar[str] = "dataModel.PointOfInterest"

    name: Annotated[Text, Property(SDM + "name")]
    location: Annotated[Geometry, GeoProperty()]
    width: Annotated[Number | None, Property(POI + "width", unit="MTR")] = None
    length: Annotated[Number | None, Property(POI + "length", unit="MTR")] = None
    beach_type: Annotated[list[BeachBeachType] | None, Field(min_length=1), Property(POI + "beachType")] = None
    occupation_rate: Annotated[Literal["high", "medium", "low", "none"] | None, Property(POI + "occupationRate")] = None
    people_occupancy: Annotated[NonNegative | None, Property(POI + "peopleOccupancy", observed=True)] = None
    facilities: Annotated[list[BeachFacilities] | None, Field(min_length=1), Property(POI + "facilities")] = None
    access_type: Annotated[list[Literal["privateVehicle", "boat", "onFoot", "publicTransport"]] | None,
                           Field(min_length=1), Property(POI + "accessType")] = None
    ref_see_also: Annotated[list[Uri] | None, Relationship(POI + "refSeeAlso")] = None
