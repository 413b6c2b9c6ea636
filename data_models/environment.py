"""dataModel.Environment: air quality, noise, water and flood observations."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from data_models._base import BURGAS, SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import Degrees
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
    air_quality_level: Annotated[Literal["good", "moderate", "unhealthyForSensitiveGroups", "unhealthy",
                                         "veryUnhealthy", "hazardous"] | None,
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
    # to_camel would make the wire name "c6H6".
    c6h6: Annotated[NonNegative | None, Property(ENVIRONMENT + "c6h6", unit="GQ", observed=True),
                    Field(alias="c6h6")] = None
    styrene: Annotated[NonNegative | None, Property(BURGAS + "styrene", unit="GQ", observed=True)] = None
    tsp: Annotated[NonNegativeInt | None, Property(ENVIRONMENT + "tsp", unit="GQ", observed=True)] = None
    tpc: Annotated[NonNegativeInt | None, Property(ENVIRONMENT + "tpc", observed=True)] = None
    temperature: Annotated[Number | None, Property(ENVIRONMENT + "temperature", unit="CEL", observed=True)] = None
    relative_humidity: Annotated[Ratio | None,
                                 Property(ENVIRONMENT + "relativeHumidity", unit="P1", observed=True)] = None
    pressure: Annotated[NonNegative | None, Property(ENVIRONMENT + "pressure", observed=True)] = None
    precipitation: Annotated[NonNegative | None, Property(ENVIRONMENT + "precipitation", observed=True)] = None
    wind_direction: Annotated[Number | None, Property(ENVIRONMENT + "windDirection", unit="DD", observed=True)] = None
    wind_speed: Annotated[NonNegative | None, Property(ENVIRONMENT + "windSpeed", unit="MTS", observed=True)] = None
    volatile_organic_compounds_total: Annotated[NonNegative | None,
                                                Property(ENVIRONMENT + "volatileOrganicCompoundsTotal", unit="GQ",
                                                         observed=True)] = None
    co_level: Annotated[Text | None, Property(ENVIRONMENT + "coLevel", observed=True)] = None
    arsenic: Annotated[NonNegative | None, Property(ENVIRONMENT + "as", unit="GQ", observed=True),
                       Field(alias="as")] = None
    cd: Annotated[NonNegative | None, Property(ENVIRONMENT + "cd", unit="GQ", observed=True)] = None
    ni: Annotated[NonNegative | None, Property(ENVIRONMENT + "ni", unit="GQ", observed=True)] = None
    pb: Annotated[NonNegative | None, Property(ENVIRONMENT + "pb", unit="GQ", observed=True)] = None
    charge: Annotated[NonNegative | None, Property(ENVIRONMENT + "charge")] = None
    ref_device: Annotated[Uri | None, Relationship(ENVIRONMENT + "refDevice")] = None
    ref_point_of_interest: Annotated[Uri | None, Relationship(ENVIRONMENT + "refPointOfInterest")] = None
    ref_weather_observed: Annotated[Uri | None, Relationship(ENVIRONMENT + "refWeatherObserved")] = None


class NoiseLevelObserved(SmartDataModel):
    """An observation of acoustic parameters that estimate noise pressure levels at a place and time.

    Sound levels are A-weighted decibels (2N). The schema allows ``dateObserved`` to be an ISO 8601
    interval; the period lives in ``dateObservedFrom``/``dateObservedTo`` and ``dateObserved`` is
    kept as an instant, so that it can be an observedAt. Observed values default to the period end.
    """

    entity_type: ClassVar[str] = "NoiseLevelObserved"
    type_iri: ClassVar[str] = ENVIRONMENT + "NoiseLevelObserved"
    subject: ClassVar[str] = "dataModel.Environment"
    observed_at_field: ClassVar[str] = "date_observed_to"

    date_observed_from: Annotated[UtcDateTime, Property(ENVIRONMENT + "dateObservedFrom")]
    date_observed_to: Annotated[UtcDateTime, Property(ENVIRONMENT + "dateObservedTo")]
    location: Annotated[Geometry, GeoProperty()]
    date_observed: Annotated[UtcDateTime | None, Property(SDM + "dateObserved")] = None
    sonometer_class: Annotated[Literal["0", "1", "2"] | None, Property(ENVIRONMENT + "sonometerClass")] = None
    las: Annotated[Number | None, Property(ENVIRONMENT + "LAS", unit="2N", observed=True), Field(alias="LAS")] = None
    l_aeq: Annotated[Number | None, Property(ENVIRONMENT + "LAeq", unit="2N", observed=True),
                     Field(alias="LAeq")] = None
    l_aeq_d: Annotated[Number | None, Property(ENVIRONMENT + "LAeq_d", unit="2N", observed=True),
                       Field(alias="LAeq_d")] = None
    l_amax: Annotated[Number | None, Property(ENVIRONMENT + "LAmax", unit="2N", observed=True),
                      Field(alias="LAmax")] = None
    obstacles: Annotated[Text | None, Property(ENVIRONMENT + "obstacles")] = None
    # The schema types these two as strings while giving them in metres.
    height_average: Annotated[Text | None, Property(ENVIRONMENT + "heightAverage", unit="MTR")] = None
    distance_average: Annotated[Text | None, Property(ENVIRONMENT + "distanceAverage", unit="MTR")] = None
    ref_device: Annotated[Uri | None, Relationship(ENVIRONMENT + "refDevice")] = None
    ref_point_of_interest: Annotated[Uri | None, Relationship(ENVIRONMENT + "refPointOfInterest")] = None
    ref_weather_observed: Annotated[Uri | None, Relationship(ENVIRONMENT + "refWeatherObserved")] = None


class WaterObserved(SmartDataModel):
    """An observation of water flow, level and volume, and of swell, over a fixed or variable area."""

    entity_type: ClassVar[str] = "WaterObserved"
    type_iri: ClassVar[str] = ENVIRONMENT + "WaterObserved"
    subject: ClassVar[str] = "dataModel.Environment"
    observed_at_field: ClassVar[str] = "date_observed"

    date_observed: Annotated[UtcDateTime, Property(SDM + "dateObserved")]
    location: Annotated[Geometry, GeoProperty()]
    date_observed_from: Annotated[UtcDateTime | None, Property(ENVIRONMENT + "dateObservedFrom")] = None
    date_observed_to: Annotated[UtcDateTime | None, Property(ENVIRONMENT + "dateObservedTo")] = None
    # The model gives no unit for flow: none is claimed.
    flow: Annotated[NonNegative | None, Property(ENVIRONMENT + "flow", observed=True)] = None
    height: Annotated[NonNegative | None, Property(ENVIRONMENT + "height", unit="MTR", observed=True)] = None
    swell_height: Annotated[NonNegative | None, Property(ENVIRONMENT + "swellHeight", unit="MTR", observed=True)] = None
    swell_period: Annotated[NonNegative | None, Property(ENVIRONMENT + "swellPeriod", unit="SEC", observed=True)] = None
    swell_direction: Annotated[Degrees | None,
                               Property(ENVIRONMENT + "swellDirection", unit="DD", observed=True)] = None
    wave_length: Annotated[NonNegative | None, Property(ENVIRONMENT + "waveLength", unit="MTR", observed=True)] = None
    measured_area: Annotated[NonNegative | None, Property(ENVIRONMENT + "measuredArea", unit="MTK")] = None
    object_area: Annotated[NonNegative | None, Property(ENVIRONMENT + "objectArea", unit="P1", observed=True)] = None
    object_height_average: Annotated[NonNegative | None,
                                     Property(ENVIRONMENT + "objectHeightAverage", unit="MTR", observed=True)] = None
    object_height_max: Annotated[NonNegative | None,
                                 Property(ENVIRONMENT + "objectHeightMax", unit="MTR", observed=True)] = None
    object_volume: Annotated[NonNegative | None,
                             Property(ENVIRONMENT + "objectVolume", unit="MTQ", observed=True)] = None
    water_level: Annotated[NonNegative | None, Property(ENVIRONMENT + "waterLevel", unit="MTR", observed=True)] = None
    water_discharge: Annotated[NonNegative | None,
                               Property(ENVIRONMENT + "waterDischarge", unit="MTQ", observed=True)] = None
    ref_device: Annotated[Uri | None, Relationship(ENVIRONMENT + "refDevice")] = None


class FloodMonitoring(SmartDataModel):
    """The flooding level of a water body (river, lake, ...) at a sensing station.

    Levels and distances carry no unitCode: the official model names none.
    """

    entity_type: ClassVar[str] = "FloodMonitoring"
    type_iri: ClassVar[str] = ENVIRONMENT + "FloodMonitoring"
    subject: ClassVar[str] = "dataModel.Environment"
    observed_at_field: ClassVar[str] = "observation_date_time"

    observation_date_time: Annotated[UtcDateTime | None, Property(ENVIRONMENT + "observationDateTime")] = None
    station_id: Annotated[Text | None, Property(ENVIRONMENT + "stationID"), Field(alias="stationID")] = None
    alert_level: Annotated[Number | None, Property(ENVIRONMENT + "alertLevel")] = None
    danger_level: Annotated[Number | None, Property(ENVIRONMENT + "dangerLevel")] = None
    reference_level: Annotated[Number | None, Property(ENVIRONMENT + "referenceLevel")] = None
    current_level: Annotated[Number | None, Property(ENVIRONMENT + "currentLevel", observed=True)] = None
    measured_distance: Annotated[Number | None, Property(ENVIRONMENT + "measuredDistance", observed=True)] = None
    flood_level_status: Annotated[Text | None, Property(ENVIRONMENT + "floodLevelStatus", observed=True)] = None
