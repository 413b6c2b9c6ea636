"""dataModel.Environment: air quality, noise, water and flood observations."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from data_models._base import BURGAS, SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._types import Geometry, NonNegative, NonNegativeInt, Number, Ratio, Text, Uri, UtcDateTime

ENVIRONMENT = SDM + "dataModel.Environment/"


class AirQualityObserved(SmartDataModel):
    """An observation of air quality conditions at a certain place and time.

    Units follow what Smart Burgas reports: µg/m³ (GQ) for gases and particles, mg/m³ (GP) for
    H2S (`sh2` in the official model). `styrene` is an extension: the official model has no term.
    """

    entity_type: ClassVar[str] = "AirQualityObserved"
    type_iri: ClassVar[str] = ENVIRONMENT + "AirQualityObserved"
    subject: ClassVar[str] = "dataModel.Environment"
    observed_at_field: ClassVar[str] = "date_observed"

    date_observed: Annotated[UtcDateTime, Property(SDM + "dateObserved")]
    location: Annotated[Geometry, GeoProperty()]
    air_quality_index: Annotated[NonNegativeInt | None, Property(ENVIRONMENT + "airQualityIndex")] = None
    air_quality_level: Annotated[Literal["good", "moderate", "unhealthyForSensitiveGroups", "unhealthy", "veryUnhealthy", "hazardous"] | None,
                                 Property(ENVIRONMENT + "airQualityLevel")] = None
    reliability: Annotated[Ratio | None, Property(ENVIRONMENT + "reliability")] = None
    type_of_location: Annotated[Literal["indoor", "outdoor"] | None,
                                Property(ENVIRONMENT + "typeofLocation", name="typeofLocation")] = None
    so2: Annotated[NonNegative | None, Property(ENVIRONMENT + "so2", unit="GQ", observed=True)] = None
    no2: Annotated[NonNegative | None, Property(ENVIRONMENT + "no2", unit="GQ", observed=True)] = None
    no: Annotated[NonNegative | None, Property(ENVIRONMENT + "no", unit="GQ", observed=True)] = None
    nox: Annotated[NonNegative | None, Property(ENVIRONMENT + "nox", unit="GQ", observed=True)] = None
    o3: Annotated[NonNegative | None, Property(ENVIRONMENT + "o3", unit="GQ", observed=True)] = None
    co: Annotated[NonNegative | None, Property(ENVIRONMENT + "co", unit="GP", observed=True)] = None
    co2: Annotated[NonNegative | None, Property(ENVIRONMENT + "co2", unit="GQ", observed=True)] = None
    sh2: Annotated[NonNegative | None, Property(ENVIRONMENT + "sh2", unit="GP", observed=True)] = None
    pm1: Annotated[Number | None, Property(ENVIRONMENT + "pm1", unit="GQ", observed=True)] = None
    pm10: Annotated[NonNegative | None, Property(ENVIRONMENT + "pm10", unit="GQ", observed=True)] = None
    pm25: Annotated[NonNegative | None, Property(ENVIRONMENT + "pm25", unit="GQ", observed=True)] = None
    pm4: Annotated[NonNegative | None, Property(ENVIRONMENT + "pm4", unit="GQ", observed=True)] = None
    c6h6: Annotated[NonNegative | None, Property(ENVIRONMENT + "c6h6", unit="GQ", observed=True)] = None
    styrene: Annotated[NonNegative | None, Property(BURGAS + "styrene", unit="GQ", observed=True)] = None
    tsp: Annotated[NonNegativeInt | None, Property(ENVIRONMENT + "tsp", unit="GQ", observed=True)] = None
    tpc: Annotated[NonNegativeInt | None, Property(ENVIRONMENT + "tpc", observed=True)] = None
    temperature: Annotated[Number | None, Property(ENVIRONMENT + "temperature", unit="CEL", observed=True)] = None
    relative_humidity: Annotated[Ratio | None, Property(ENVIRONMENT + "relativeHumidity", unit="P1", observed=True)] = None
    pressure: Annotated[NonNegative | None, Property(ENVIRONMENT + "pressure", observed=True)] = None
    precipitation: Annotated[NonNegative | None, Property(ENVIRONMENT + "precipitation", observed=True)] = None
    wind_direction: Annotated[Number | None, Property(ENVIRONMENT + "windDirection", unit="DD", observed=True)] = None
    wind_speed: Annotated[NonNegative | None, Property(ENVIRONMENT + "windSpeed", unit="MTS", observed=True)] = None
    volatile_organic_compounds_total: Annotated[NonNegative | None, Property(ENVIRONMENT + "volatileOrganicCompoundsTotal", unit="GQ", observed=True)] = None
    co_level: Annotated[Text | None, Property(ENVIRONMENT + "coLevel", observed=True)] = None
    charge: Annotated[NonNegative | None, Property(ENVIRONMENT + "charge")] = None
    ref_device: Annotated[Uri | None, Relationship(ENVIRONMENT + "refDevice")] = None
    ref_point_of_interest: Annotated[Uri | None, Relationship(ENVIRONMENT + "refPointOfInterest")] = None
    ref_weather_observed: Annotated[Uri | None, Relationship(ENVIRONMENT + "refWeatherObserved")] = None
