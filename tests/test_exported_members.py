"""data_models' public surface is exactly the curated ``__all__``, kept sorted (as httpx pins its own)."""

import data_models

EXPORTED = [
    "AdministrativeArea", "AirQualityObserved", "AttrKind", "AttrMeta", "AttrSpec", "BURGAS",
    "Beach", "BikeHireDockingStation", "Building", "Camera", "CameraOrientation", "ContactPoint",
    "DatePeriod", "Device", "EVChargingStation", "Entity", "FloodMonitoring", "Geometry",
    "GtfsAgency", "GtfsRoute", "GtfsShape", "GtfsStop", "GtfsTrip", "KeyPerformanceIndicator",
    "LineString", "MultiLineString", "MultiPoint", "MultiPolygon", "NGSI_LD", "NgsiAttr",
    "NoiseLevelObserved", "OffStreetParking", "OnStreetParking", "ParkingSpot", "Point",
    "PointOfInterest", "Polygon", "PostalAddress", "SDM", "SlotAvailability", "SmartDataModel",
    "SpotAvailability", "Streetlight", "TrafficFlowObserved", "WasteContainer", "WasteQuantity",
    "WaterObserved", "WeatherObserved", "model_for",
]


def test_all_is_the_pinned_public_surface() -> None:
    assert data_models.__all__ == EXPORTED


def test_all_is_sorted() -> None:
    assert data_models.__all__ == sorted(data_models.__all__)


def test_every_exported_name_exists() -> None:
    for name in data_models.__all__:
        assert hasattr(data_models, name), name


def test_every_entity_model_is_exported() -> None:
    models = {m.__name__ for m in data_models.Entity.registry.values()}
    assert models <= set(data_models.__all__)
