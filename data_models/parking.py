"""dataModel.Parking: off-street car parks, on-street (paid) parking zones, single parking spots."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from data_models._base import BURGAS, NGSI_LD, SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import IsoDuration, PositiveInt
from data_models._types import (
    Flag,
    Geometry,
    Integer,
    NonNegative,
    NonNegativeInt,
    Number,
    Ratio,
    Text,
    Uri,
    UtcDateTime,
)
from data_models._values import (
    ContactPoint,
    JsonObject,
    MunicipalityInfo,
    SlotAvailability,
    SpotAvailability,
)

PARKING = SDM + "dataModel.Parking/"

OffStreetParkingCategory = Literal[
    "barrierAccess", "feeCharged", "forCustomers", "forDisabled", "forElectricalCharging",
    "forEmployees", "forMembers", "forResidents", "forStudents", "forVisitors", "free",
    "freeAccess", "gateAccess", "guarded", "ground", "longTerm", "mediumTerm", "onlyResidents",
    "onlyWithPermit", "parkingGarage", "parkingLot", "private", "public", "publicPrivate",
    "shortTerm", "staffed", "underground", "urbanDeterrentParking", "other"
]
OffStreetParkingAllowedVehicleType = Literal[
    "agriculturalVehicle", "anyVehicle", "bicycle", "bus", "car", "caravan", "carWithCaravan",
    "carWithTrailer", "constructionOrMaintenanceVehicle", "lorry", "moped", "motorcycle",
    "motorcycleWithSideCar", "motorscooter", "tanker", "trailer", "van"
]
OffStreetParkingChargeType = Literal[
    "additionalIntervalPrice", "annualPayment", "firstIntervalPrice", "flat", "free", "minimum",
    "maximum", "monthlyPayment", "other", "seasonTicket", "temporaryPrice"
]
OffStreetParkingRequiredPermit = Literal[
    "employeePermit", "fairPermit", "governmentPermit", "noPermitNeeded", "residentPermit",
    "specificIdentifiedVehiclePermit", "studentPermit", "visitorPermit"
]
OffStreetParkingOccupancyDetectionType = Literal[
    "balancing", "manual", "modelBased", "none", "singleSpaceDetection"
]
OffStreetParkingAcceptedPaymentMethod = Literal[
    "ByBankTransferInAdvance", "ByInvoice", "Cash", "CheckInAdvance", "COD", "DirectDebit",
    "GoogleCheckout", "PayPal", "PaySwarm"
]
OffStreetParkingLayout = Literal[
    "automatedParkingGarage", "carports", "covered", "field", "garageBoxes", "multiLevel",
    "multiStorey", "nested", "openSpace", "rooftop", "sheds", "singleLevel", "surface", "other"
]
OffStreetParkingUsageScenario = Literal[
    "automaticParkingGuidance", "carSharing", "dropOffWithValet", "dropOffMechanical", "dropOff",
    "eventParking", "kissAndRide", "liftShare", "loadingBay", "overnightParking", "parkAndCycle",
    "parkAndRide", "parkAndWalk", "restArea", "serviceArea", "staffGuidesToSpace", "truckParking",
    "vehicleLift", "other"
]
OffStreetParkingFacilities = Literal[
    "bikeParking", "cashMachine", "copyMachineOrService", "defibrillator", "dumpingStation",
    "electricChargingStation", "elevator", "faxMachineOrService", "fireHose", "fireExtinguisher",
    "fireHydrant", "firstAidEquipment", "freshWater", "iceFreeScaffold", "informationPoint",
    "internetWireless", "luggageLocker", "payDesk", "paymentMachine", "playground", "publicPhone",
    "refuseBin", "safeDeposit", "shower", "toilet", "tollTerminal", "vendingMachine",
    "wasteDisposal"
]
OffStreetParkingSecurity = Literal[
    "areaSeparatedFromSurroundings", "cctv", "dog", "externalSecurity", "fences", "floodLight",
    "guard24hours", "lighting", "patrolled", "securityStaff"
]
OffStreetParkingSpecialLocation = Literal[
    "airportTerminal", "cableCarStation", "campground", "cinema", "coachStation",
    "conventionCentre", "exhibitionCentre", "ferryTerminal", "hotel", "market",
    "publicTransportStation", "religiousCentre", "shoppingCentre", "skilift", "specificFacility",
    "themePark", "trainStation", "vehicleOnRailTerminal", "other"
]
OffStreetParkingStatus = Literal[
    "almostFull", "closed", "closedAbnormal", "full", "fullAtEntrance", "open",
    "openingTimesInForce", "spacesAvailable"
]
OnStreetParkingCategory = Literal[
    "barrierAccess", "blueZone", "feeCharged", "forDisabled", "forElectricalCharging",
    "forLoadUnload", "forResidents", "free", "greenZone", "mediumTerm", "onlyWithPermit", "public",
    "shortTerm", "taxiStop", "underground"
]
OnStreetParkingAllowedVehicleType = Literal[
    "agriculturalVehicle", "anyVehicle", "articulatedVehicle", "bicycle", "bus", "car", "caravan",
    "carOrLightVehicle", "carWithCaravan", "carWithTrailer", "constructionOrMaintenanceVehicle",
    "fourWheelDrive", "highSidedVehicle", "lorry", "moped", "motorcycle", "motorcycleWithSideCar",
    "motorscooter", "tanker", "threeWheeledVehicle", "trailer", "tram", "twoWheeledVehicle", "van",
    "vehicleWithCatalyticConverter", "vehicleWithoutCatalyticConverter", "vehicleWithCaravan",
    "vehicleWithTrailer", "withEvenNumberedRegistrationPlates",
    "withOddNumberedRegistrationPlates", "other"
]
OnStreetParkingChargeType = Literal[
    "additionalIntervalPrice", "annualPayment", "firstIntervalPrice", "flat", "free", "minimum",
    "maximum", "monthlyPayment", "seasonTicket", "temporaryFee", "temporaryPrice", "unknown",
    "other"
]
OnStreetParkingUsageScenario = Literal[
    "carSharing", "dropOff", "kissAndRide", "liftShare", "loadingBay", "overnightParking",
    "parkAndRide", "parkAndCycle", "parkAndWalk", "vehicleLift", "other"
]


class OffStreetParking(SmartDataModel):
    """A site off the street where vehicles park (a car park, a garage), with its current occupancy.

    Occupancy values are observations: their observedAt defaults to ``observationDateTime``, so a
    stale sensor keeps its old time instead of looking current.
    """

    entity_type: ClassVar[str] = "OffStreetParking"
    type_iri: ClassVar[str] = PARKING + "OffStreetParking"
    subject: ClassVar[str] = "dataModel.Parking"
    observed_at_field: ClassVar[str] = "observation_date_time"

    location: Annotated[Geometry, GeoProperty()]
    category: Annotated[list[OffStreetParkingCategory] | None, Field(min_length=1),
                        Property(PARKING + "category")] = None
    ext_category: Annotated[list[Text] | None, Field(min_length=1), Property(PARKING + "extCategory")] = None
    allowed_vehicle_type: Annotated[list[OffStreetParkingAllowedVehicleType] | None, Field(min_length=1),
                                    Property(PARKING + "allowedVehicleType")] = None
    charge_type: Annotated[list[OffStreetParkingChargeType] | None, Field(min_length=1),
                           Property(PARKING + "chargeType")] = None
    required_permit: Annotated[list[OffStreetParkingRequiredPermit] | None, Property(PARKING + "requiredPermit")] = None
    occupancy_detection_type: Annotated[list[OffStreetParkingOccupancyDetectionType] | None, Field(min_length=1),
                                        Property(PARKING + "occupancyDetectionType")] = None
    occupied_spot_number: Annotated[NonNegativeInt | None,
                                    Property(PARKING + "occupiedSpotNumber", observed=True)] = None
    occupancy_modified: Annotated[UtcDateTime | None, Property(PARKING + "occupancyModified")] = None
    occupancy: Annotated[Ratio | None, Property(PARKING + "occupancy", observed=True)] = None
    accepted_payment_method: Annotated[list[OffStreetParkingAcceptedPaymentMethod] | None, Field(min_length=1),
                                       Property(PARKING + "acceptedPaymentMethod")] = None
    price_rate_per_minute: Annotated[Number | None, Property(PARKING + "priceRatePerMinute")] = None
    price_currency: Annotated[Text | None, Property(PARKING + "priceCurrency")] = None
    layout: Annotated[list[OffStreetParkingLayout] | None, Field(min_length=1), Property(PARKING + "layout")] = None
    usage_scenario: Annotated[list[OffStreetParkingUsageScenario] | None, Field(min_length=1),
                              Property(PARKING + "usageScenario")] = None
    parking_mode: Annotated[list[Literal["echelonParking", "parallelParking", "perpendicularParking"]] | None,
                            Field(min_length=1), Property(PARKING + "parkingMode")] = None
    facilities: Annotated[list[OffStreetParkingFacilities] | None, Field(min_length=1),
                          Property(PARKING + "facilities")] = None
    security: Annotated[list[OffStreetParkingSecurity] | None, Field(min_length=1),
                        Property(PARKING + "security")] = None
    highest_floor: Annotated[Integer | None, Property(PARKING + "highestFloor")] = None
    lowest_floor: Annotated[Integer | None, Property(PARKING + "lowestFloor")] = None
    maximum_parking_duration: Annotated[IsoDuration | None, Property(PARKING + "maximumParkingDuration")] = None
    total_spot_number: Annotated[PositiveInt | None, Property(PARKING + "totalSpotNumber")] = None
    available_spot_number: Annotated[NonNegativeInt | None,
                                     Property(PARKING + "availableSpotNumber", observed=True)] = None
    extra_spot_number: Annotated[NonNegativeInt | None, Property(PARKING + "extraSpotNumber", observed=True)] = None
    opening_hours: Annotated[Text | None, Property(SDM + "openingHours")] = None
    first_available_floor: Annotated[Integer | None, Property(PARKING + "firstAvailableFloor", observed=True)] = None
    special_location: Annotated[list[OffStreetParkingSpecialLocation] | None, Field(min_length=1),
                                Property(PARKING + "specialLocation")] = None
    status: Annotated[list[OffStreetParkingStatus] | None, Field(min_length=1),
                      Property(NGSI_LD + "status", observed=True)] = None
    reservation_type: Annotated[list[Literal["mandatory", "notAvailable", "optional", "partly"]] | None,
                                Field(min_length=1), Property(PARKING + "reservationType")] = None
    provider: Annotated[JsonObject | None, Property(PARKING + "provider")] = None
    measures_period: Annotated[Number | None, Property(PARKING + "measuresPeriod")] = None
    measures_period_unit: Annotated[Text | None, Property(PARKING + "measuresPeriodUnit")] = None
    contact_point: Annotated[ContactPoint | None, Property(SDM + "contactPoint")] = None
    average_spot_width: Annotated[NonNegative | None, Property(PARKING + "averageSpotWidth", unit="MTR")] = None
    average_spot_length: Annotated[NonNegative | None, Property(PARKING + "averageSpotLength", unit="MTR")] = None
    maximum_allowed_height: Annotated[NonNegative | None, Property(PARKING + "maximumAllowedHeight", unit="MTR")] = None
    maximum_allowed_width: Annotated[NonNegative | None, Property(PARKING + "maximumAllowedWidth", unit="MTR")] = None
    ref_parking_access: Annotated[Uri | None, Relationship(PARKING + "refParkingAccess")] = None
    ref_parking_group: Annotated[Uri | None, Relationship(PARKING + "refParkingGroup")] = None
    ref_parking_spot: Annotated[Uri | None, Relationship(PARKING + "refParkingSpot")] = None
    aggregate_rating: Annotated[JsonObject | None, Property(PARKING + "aggregateRating")] = None
    vehicle_entrance_count: Annotated[NonNegative | None,
                                      Property(PARKING + "vehicleEntranceCount", observed=True)] = None
    vehicle_exit_count: Annotated[NonNegative | None, Property(PARKING + "vehicleExitCount", observed=True)] = None
    access_modified: Annotated[Text | None, Property(PARKING + "accessModified")] = None
    images: Annotated[list[Uri] | None, Property(PARKING + "images")] = None
    out_of_service_slot_number: Annotated[Number | None,
                                          Property(PARKING + "outOfServiceSlotNumber", observed=True)] = None
    parking_site_id: Annotated[Text | None, Property(PARKING + "parkingSiteId")] = None
    observation_date_time: Annotated[UtcDateTime | None, Property(PARKING + "observationDateTime")] = None
    four_wheeler_slots: Annotated[SlotAvailability | None, Property(PARKING + "fourWheelerSlots", observed=True)] = None
    unclassified_slots: Annotated[SpotAvailability | None,
                                  Property(PARKING + "unclassifiedSlots", observed=True)] = None
    two_wheeler_slots: Annotated[SpotAvailability | None, Property(PARKING + "twoWheelerSlots", observed=True)] = None
    municipality_info: Annotated[MunicipalityInfo | None, Property(PARKING + "municipalityInfo")] = None


class OnStreetParking(SmartDataModel):
    """A stretch or zone of street where vehicles park, e.g. a paid blue or green zone (Polygon).

    Burgas paid zones carry their hourly price and the SMS number to pay by. The hourly price has
    no official term and is an extension (``pricePerHour``, in ``priceCurrency``); the currency
    reuses the Parking vocabulary's ``priceCurrency`` (OffStreetParking's term, same @context).
    Hours when a permit (payment) is needed go in the official ``permitActiveHours``.
    """

    entity_type: ClassVar[str] = "OnStreetParking"
    type_iri: ClassVar[str] = PARKING + "OnStreetParking"
    subject: ClassVar[str] = "dataModel.Parking"
    observed_at_field: ClassVar[str] = "observation_date_time"

    location: Annotated[Geometry, GeoProperty()]
    category: Annotated[list[OnStreetParkingCategory] | None, Property(PARKING + "category")] = None
    allowed_vehicle_type: Annotated[list[OnStreetParkingAllowedVehicleType] | None,
                                    Property(PARKING + "allowedVehicleType")] = None
    required_permit: Annotated[list[Text] | None, Property(PARKING + "requiredPermit")] = None
    # Permit (e.g. "blueZonePermit") -> opening-hours text ("Mo-Fr 09:00-18:00").
    permit_active_hours: Annotated[dict[str, Text] | None, Property(PARKING + "permitActiveHours")] = None
    # Extension: the price of one hour, in price_currency.
    price_per_hour: Annotated[NonNegative | None, Property(BURGAS + "pricePerHour")] = None
    # ISO 4217 code, e.g. "EUR".
    price_currency: Annotated[Text | None, Property(PARKING + "priceCurrency")] = None
    # Extension: the short number that pays for the zone by SMS (Burgas: 1356 blue, 1357 green).
    sms_payment_number: Annotated[Text | None, Property(BURGAS + "smsPaymentNumber")] = None
    maximum_parking_duration: Annotated[IsoDuration | None, Property(PARKING + "maximumParkingDuration")] = None
    occupied_spot_number: Annotated[Number | None, Property(PARKING + "occupiedSpotNumber", observed=True)] = None
    occupancy_modified: Annotated[UtcDateTime | None, Property(PARKING + "occupancyModified")] = None
    layout: Annotated[list[Text] | None, Property(PARKING + "layout")] = None
    charge_type: Annotated[list[OnStreetParkingChargeType] | None, Property(PARKING + "chargeType")] = None
    accepted_payment_method: Annotated[OffStreetParkingAcceptedPaymentMethod | None,
                                       Property(PARKING + "acceptedPaymentMethod")] = None
    usage_scenario: Annotated[OnStreetParkingUsageScenario | None, Property(PARKING + "usageScenario")] = None
    total_spot_number: Annotated[NonNegativeInt | None, Property(PARKING + "totalSpotNumber")] = None
    available_spot_number: Annotated[NonNegativeInt | None,
                                     Property(PARKING + "availableSpotNumber", observed=True)] = None
    extra_spot_number: Annotated[NonNegativeInt | None, Property(PARKING + "extraSpotNumber", observed=True)] = None
    occupancy_detection_type: Annotated[list[OffStreetParkingOccupancyDetectionType] | None,
                                        Property(PARKING + "occupancyDetectionType")] = None
    parking_mode: Annotated[Literal["echelonParking", "parallelParking", "perpendicularParking"] | None,
                            Property(PARKING + "parkingMode")] = None
    are_borders_marked: Annotated[Flag | None, Property(PARKING + "areBordersMarked")] = None
    average_spot_width: Annotated[NonNegative | None, Property(PARKING + "averageSpotWidth")] = None
    average_spot_length: Annotated[NonNegative | None, Property(PARKING + "averageSpotLength")] = None
    ref_parking_spot: Annotated[list[Uri] | None, Relationship(PARKING + "refParkingSpot")] = None
    ref_parking_group: Annotated[list[Uri] | None, Relationship(PARKING + "refParkingGroup")] = None
    out_of_service_slot_number: Annotated[Number | None,
                                          Property(PARKING + "outOfServiceSlotNumber", observed=True)] = None
    parking_site_id: Annotated[Text | None, Property(PARKING + "parkingSiteId")] = None
    observation_date_time: Annotated[UtcDateTime | None, Property(PARKING + "observationDateTime")] = None
    four_wheeler_slots: Annotated[SlotAvailability | None, Property(PARKING + "fourWheelerSlots", observed=True)] = None
    unclassified_slots: Annotated[SpotAvailability | None,
                                  Property(PARKING + "unclassifiedSlots", observed=True)] = None
    two_wheeler_slots: Annotated[SpotAvailability | None, Property(PARKING + "twoWheelerSlots", observed=True)] = None
    municipality_info: Annotated[MunicipalityInfo | None, Property(PARKING + "municipalityInfo")] = None


class ParkingSpot(SmartDataModel):
    """One parking spot, on or off street, and whether it is free."""

    entity_type: ClassVar[str] = "ParkingSpot"
    type_iri: ClassVar[str] = PARKING + "ParkingSpot"
    subject: ClassVar[str] = "dataModel.Parking"
    observed_at_field: ClassVar[str] = "time_instant"

    location: Annotated[Geometry, GeoProperty()]
    color: Annotated[Text | None, Property(SDM + "color")] = None
    image: Annotated[Uri | None, Property(SDM + "image")] = None
    annotations: Annotated[list[Text] | None, Property(SDM + "annotations")] = None
    status: Annotated[Literal["closed", "free", "occupied", "unknown"], Property(NGSI_LD + "status", observed=True)]
    width: Annotated[NonNegative | None, Property(PARKING + "width", unit="MTR")] = None
    length: Annotated[NonNegative | None, Property(PARKING + "length", unit="MTR")] = None
    ref_parking_group: Annotated[Uri | None, Relationship(PARKING + "refParkingGroup")] = None
    ref_parking_site: Annotated[Uri, Relationship(PARKING + "refParkingSite")]
    category: Annotated[list[Literal["onStreet", "offStreet"]], Field(min_length=1), Property(PARKING + "category")]
    ref_device: Annotated[list[Uri] | None, Relationship(PARKING + "refDevice")] = None
    time_instant: Annotated[UtcDateTime | None, Property(SDM + "timeInstant")] = None
