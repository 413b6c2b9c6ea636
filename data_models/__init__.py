"""Typed FIWARE Smart Data Models for Burgas: pydantic v2, no I/O, no wire formatting."""

from data_models._base import BURGAS, NGSI_LD, SDM, AttrKind, AttrMeta, AttrSpec, Entity, NgsiAttr, model_for
from data_models._commons import PostalAddress, SmartDataModel
from data_models._types import (
    Geometry,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)
from data_models._values import ContactPoint, DatePeriod, SlotAvailability, SpotAvailability
from data_models.building import Building
from data_models.device import Camera, CameraOrientation, Device
from data_models.environment import AirQualityObserved, FloodMonitoring, NoiseLevelObserved, WaterObserved
from data_models.extensions import AdministrativeArea
from data_models.kpi import KeyPerformanceIndicator
from data_models.parking import OffStreetParking, OnStreetParking, ParkingSpot
from data_models.point_of_interest import Beach, PointOfInterest, WasteQuantity
from data_models.streetlighting import Streetlight
from data_models.transportation import BikeHireDockingStation, EVChargingStation, TrafficFlowObserved
from data_models.urban_mobility import GtfsAgency, GtfsRoute, GtfsShape, GtfsStop, GtfsTrip
from data_models.waste import WasteContainer
from data_models.weather import WeatherObserved

__all__ = [
    "AdministrativeArea",
    "AirQualityObserved",
    "AttrKind",
    "AttrMeta",
    "AttrSpec",
    "BURGAS",
    "Beach",
    "BikeHireDockingStation",
    "Building",
    "Camera",
    "CameraOrientation",
    "ContactPoint",
    "DatePeriod",
    "Device",
    "EVChargingStation",
    "Entity",
    "FloodMonitoring",
    "Geometry",
    "GtfsAgency",
    "GtfsRoute",
    "GtfsShape",
    "GtfsStop",
    "GtfsTrip",
    "KeyPerformanceIndicator",
    "LineString",
    "MultiLineString",
    "MultiPoint",
    "MultiPolygon",
    "NGSI_LD",
    "NgsiAttr",
    "NoiseLevelObserved",
    "OffStreetParking",
    "OnStreetParking",
    "ParkingSpot",
    "Point",
    "PointOfInterest",
    "Polygon",
    "PostalAddress",
    "SDM",
    "SlotAvailability",
    "SmartDataModel",
    "SpotAvailability",
    "Streetlight",
    "TrafficFlowObserved",
    "WasteContainer",
    "WasteQuantity",
    "WaterObserved",
    "WeatherObserved",
    "model_for",
]
