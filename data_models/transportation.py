"""dataModel.Transportation: traffic flow, EV charging stations, bike-hire docking stations."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from data_models._base import BURGAS, NGSI_LD, SDM, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import PositiveInt
from data_models._types import (
    Flag,
    NonNegative,
    NonNegativeInt,
    Number,
    Ratio,
    Text,
    Uri,
    UtcDateTime,
)
from data_models._values import ContactPoint

TRANSPORTATION = SDM + "dataModel.Transportation/"

TrafficFlowObservedVehicleType = Literal[
    "agriculturalVehicle", "bicycle", "bus", "minibus", "car", "caravan", "tram", "tanker",
    "carWithCaravan", "carWithTrailer", "lorry", "moped", "motorcycle", "motorcycleWithSideCar",
    "motorscooter", "trailer", "van", "constructionOrMaintenanceVehicle", "trolley", "binTrolley",
    "sweepingMachine", "cleaningTrolley"
]
EVChargingStationAllowedVehicleType = Literal[
    "bicycle", "bus", "car", "caravan", "motorcycle", "motorscooter", "truck"
]
EVChargingStationSocketType = Literal[
    "Caravan_Mains_Socket", "CHAdeMO", "CCS/SAE", "Dual_CHAdeMO", "Dual_J-1772", "Dual_Mennekes",
    "J-1772", "Mennekes", "Other", "Tesla", "Type2", "Type3", "Wall_Euro"
]
StationStatus = Literal[
    "almostEmpty", "almostFull", "empty", "full", "outOfService", "withIncidence", "working"
]
EVChargingStationChargeType = Literal[
    "annualPayment", "flat", "free", "monthlyPayment", "other"
]
EVChargingStationAcceptedPaymentMethod = Literal[
    "ByBankTransferInAdvance", "ByInvoice", "Cash", "CheckInAdvance", "COD", "DirectDebit",
    "GoogleCheckout", "PayPal", "PaySwarm"
]
EVChargingStationVehicleType = Literal[
    "agriculturalVehicle", "ambulance", "articulatedVehicle", "autorickshaw", "bicycle",
    "binTrolley", "BRT bus", "BRT minibus", "bus", "car", "caravan", "carOrLightVehicle",
    "carWithCaravan", "carWithTrailer", "cleaningTrolley", "compactor",
    "constructionOrMaintenanceVehicle", "dumper", "e-moped", "e-scooter", "e-motorcycle",
    "fire tender", "fourWheelDrive", "highSidedVehicle", "hopper", "lorry", "minibus", "moped",
    "motorcycle", "motorcycleWithSideCar", "motorscooter", "police van", "sweepingMachine",
    "tanker", "tempo", "threeWheeledVehicle", "tipper", "trailer", "tram", "twoWheeledVehicle",
    "trolley", "van"
]


class TrafficFlowObserved(SmartDataModel):
    """An observation of traffic flow conditions at a certain place and time.

    The schema allows ``dateObserved`` to be an ISO 8601 interval; the period lives in
    ``dateObservedFrom``/``dateObservedTo`` and ``dateObserved`` is kept as an aware instant (the
    observedAt of the measured values). Speeds in km/h (KMH), lengths in metres (MTR).
    """

    entity_type: ClassVar[str] = "TrafficFlowObserved"
    type_iri: ClassVar[str] = TRANSPORTATION + "TrafficFlowObserved"
    subject: ClassVar[str] = "dataModel.Transportation"
    observed_at_field: ClassVar[str] = "date_observed"

    date_observed: Annotated[UtcDateTime, Property(SDM + "dateObserved")]
    date_observed_from: Annotated[UtcDateTime | None, Property(TRANSPORTATION + "dateObservedFrom")] = None
    date_observed_to: Annotated[UtcDateTime | None, Property(TRANSPORTATION + "dateObservedTo")] = None
    lane_id: Annotated[PositiveInt | None, Property(TRANSPORTATION + "laneId")] = None
    lane_direction: Annotated[Literal["forward", "backward"] | None, Property(TRANSPORTATION + "laneDirection")] = None
    reversed_lane: Annotated[Flag | None, Property(TRANSPORTATION + "reversedLane", observed=True)] = None
    # Vehicles counted in the period (dateObservedFrom..dateObservedTo): a count, no unit.
    intensity: Annotated[NonNegative | None, Property(TRANSPORTATION + "intensity", observed=True)] = None
    occupancy: Annotated[Ratio | None, Property(TRANSPORTATION + "occupancy", observed=True)] = None
    average_vehicle_speed: Annotated[NonNegative | None,
                                     Property(TRANSPORTATION + "averageVehicleSpeed", unit="KMH", observed=True)] = None
    average_vehicle_length: Annotated[NonNegative | None,
                                      Property(TRANSPORTATION + "averageVehicleLength", unit="MTR",
                                               observed=True)] = None
    average_gap_distance: Annotated[NonNegative | None,
                                    Property(TRANSPORTATION + "averageGapDistance", unit="MTR", observed=True)] = None
    average_headway_time: Annotated[NonNegative | None,
                                    Property(TRANSPORTATION + "averageHeadwayTime", unit="SEC", observed=True)] = None
    congested: Annotated[Flag | None, Property(TRANSPORTATION + "congested", observed=True)] = None
    vehicle_type: Annotated[TrafficFlowObservedVehicleType | None, Property(TRANSPORTATION + "vehicleType")] = None
    vehicle_sub_type: Annotated[Text | None, Property(TRANSPORTATION + "vehicleSubType")] = None
    ref_road_segment: Annotated[Uri | None, Relationship(TRANSPORTATION + "refRoadSegment")] = None


class EVChargingStation(SmartDataModel):
    """A public charging station for electric vehicles.

    Smart Burgas describes its chargers in free text ("Една бързо зарядна станция с мощност 50 kW
    DC"): capacity, socketType and chargeType are official attributes; the rated power (kW) and
    the kind of current (AC/DC) have no official term and are extensions (``ratedPower``,
    ``currentType``).
    """

    entity_type: ClassVar[str] = "EVChargingStation"
    type_iri: ClassVar[str] = TRANSPORTATION + "EVChargingStation"
    subject: ClassVar[str] = "dataModel.Transportation"

    capacity: Annotated[PositiveInt, Property(TRANSPORTATION + "capacity")]
    socket_type: Annotated[list[EVChargingStationSocketType], Field(min_length=1),
                           Property(TRANSPORTATION + "socketType")]
    allowed_vehicle_type: Annotated[list[EVChargingStationAllowedVehicleType], Field(min_length=1),
                                    Property(TRANSPORTATION + "allowedVehicleType")]
    socket_number: Annotated[PositiveInt | None, Property(TRANSPORTATION + "socketNumber")] = None
    available_capacity: Annotated[NonNegativeInt | None, Property(TRANSPORTATION + "availableCapacity")] = None
    charge_type: Annotated[list[EVChargingStationChargeType] | None, Field(min_length=1),
                           Property(TRANSPORTATION + "chargeType")] = None
    accepted_payment_method: Annotated[list[EVChargingStationAcceptedPaymentMethod] | None, Field(min_length=1),
                                       Property(TRANSPORTATION + "acceptedPaymentMethod")] = None
    opening_hours: Annotated[Text | None, Property(SDM + "openingHours")] = None
    status: Annotated[StationStatus | None, Property(NGSI_LD + "status")] = None
    network: Annotated[Text | None, Property(TRANSPORTATION + "network")] = None
    operator: Annotated[Text | None, Property(TRANSPORTATION + "operator")] = None
    contact_point: Annotated[ContactPoint | None, Property(SDM + "contactPoint")] = None
    amperage: Annotated[NonNegative | None, Property(TRANSPORTATION + "amperage", unit="AMP")] = None
    voltage: Annotated[NonNegative | None, Property(TRANSPORTATION + "voltage", unit="VLT")] = None
    # Extension: the highest rated charging power of the station's points, in kW.
    rated_power: Annotated[NonNegative | None, Property(BURGAS + "ratedPower", unit="KWT")] = None
    # Extension: the kinds of current the station delivers.
    current_type: Annotated[list[Literal["AC", "DC"]] | None, Field(min_length=1),
                            Property(BURGAS + "currentType")] = None
    # The official model gives no unit for the consumed power.
    power_consumption: Annotated[Number | None, Property(TRANSPORTATION + "powerConsumption")] = None
    station_name: Annotated[Text | None, Property(TRANSPORTATION + "stationName")] = None
    charging_unit_id: Annotated[Text | None, Property(TRANSPORTATION + "chargingUnitId")] = None
    transaction_id: Annotated[Text | None, Property(TRANSPORTATION + "transactionId")] = None
    transaction_type: Annotated[Text | None, Property(TRANSPORTATION + "transactionType")] = None
    amount_collected: Annotated[Number | None, Property(TRANSPORTATION + "amountCollected")] = None
    tax_amount_collected: Annotated[Number | None, Property(TRANSPORTATION + "taxAmountCollected")] = None
    start_date_time: Annotated[UtcDateTime | None, Property(TRANSPORTATION + "startDateTime")] = None
    end_date_time: Annotated[UtcDateTime | None, Property(TRANSPORTATION + "endDateTime")] = None
    vehicle_type: Annotated[EVChargingStationVehicleType | None, Property(TRANSPORTATION + "vehicleType")] = None
    observation_date_time: Annotated[UtcDateTime | None, Property(TRANSPORTATION + "observationDateTime")] = None
    data_descriptor: Annotated[Uri | None, Relationship(TRANSPORTATION + "dataDescriptor")] = None


class BikeHireDockingStation(SmartDataModel):
    """A bike-hire docking station: slots, available bikes, status."""

    entity_type: ClassVar[str] = "BikeHireDockingStation"
    type_iri: ClassVar[str] = TRANSPORTATION + "BikeHireDockingStation"
    subject: ClassVar[str] = "dataModel.Transportation"
    observed_at_field: ClassVar[str] = "observation_date_time"

    observation_date_time: Annotated[UtcDateTime | None, Property(TRANSPORTATION + "observationDateTime")] = None
    total_slot_number: Annotated[NonNegativeInt | None, Property(TRANSPORTATION + "totalSlotNumber")] = None
    free_slot_number: Annotated[NonNegativeInt | None,
                                Property(TRANSPORTATION + "freeSlotNumber", observed=True)] = None
    available_bike_number: Annotated[NonNegativeInt | None,
                                     Property(TRANSPORTATION + "availableBikeNumber", observed=True)] = None
    out_of_service_slot_number: Annotated[NonNegativeInt | None,
                                          Property(TRANSPORTATION + "outOfServiceSlotNumber", observed=True)] = None
    status: Annotated[StationStatus | None, Property(NGSI_LD + "status", observed=True)] = None
    opening_hours: Annotated[Text | None, Property(SDM + "openingHours")] = None
    provider: Annotated[Text | None, Property(TRANSPORTATION + "provider")] = None
    contact_point: Annotated[ContactPoint | None, Property(SDM + "contactPoint")] = None
    station_name: Annotated[Text | None, Property(TRANSPORTATION + "stationName")] = None
    station_code: Annotated[Text | None, Property(TRANSPORTATION + "stationCode")] = None
    media_url: Annotated[Uri | None, Property(TRANSPORTATION + "mediaURL"), Field(alias="mediaURL")] = None
    agency_name: Annotated[Text | None, Property(TRANSPORTATION + "agency_name"), Field(alias="agency_name")] = None
    agency_url: Annotated[Uri | None, Property(TRANSPORTATION + "agency_url"), Field(alias="agency_url")] = None
    agency_fare_url: Annotated[Uri | None, Property(TRANSPORTATION + "agency_fare_url"),
                               Field(alias="agency_fare_url")] = None
