"""dataModel.Weather: weather observations."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from data_models._base import SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import Degrees
from data_models._types import Geometry, NonNegative, Number, Ratio, Text, Uri, UtcDateTime
from data_models._values import JsonObject

WEATHER = SDM + "dataModel.Weather/"


class WeatherObserved(SmartDataModel):
    """An observation of weather conditions at a certain place and time.

    Units as the model states them: °C (CEL), hPa (A97), m/s (MTS), degrees (DD), lux (LUX),
    W/m² (D54), cm (CMT); precipitation in l/m², i.e. mm (MMT). Humidity is a 0..1 ratio.
    """

    entity_type: ClassVar[str] = "WeatherObserved"
    type_iri: ClassVar[str] = WEATHER + "WeatherObserved"
    subject: ClassVar[str] = "dataModel.Weather"
    observed_at_field: ClassVar[str] = "date_observed"

    date_observed: Annotated[UtcDateTime, Property(SDM + "dateObserved")]
    location: Annotated[Geometry, GeoProperty()]
    weather_type: Annotated[Text | None, Property(WEATHER + "weatherType", observed=True)] = None
    temperature: Annotated[Number | None, Property(WEATHER + "temperature", unit="CEL", observed=True)] = None
    feels_like_temperature: Annotated[Number | None,
                                      Property(WEATHER + "feelsLikeTemperature", unit="CEL", observed=True)] = None
    dew_point: Annotated[Number | None, Property(WEATHER + "dewPoint", unit="CEL", observed=True)] = None
    relative_humidity: Annotated[Ratio | None, Property(WEATHER + "relativeHumidity", observed=True)] = None
    atmospheric_pressure: Annotated[NonNegative | None,
                                    Property(WEATHER + "atmosphericPressure", unit="A97", observed=True)] = None
    pressure_tendency: Annotated[Literal["falling", "raising", "steady"] | Number | None,
                                 Property(WEATHER + "pressureTendency", observed=True)] = None
    wind_direction: Annotated[Degrees | None, Property(WEATHER + "windDirection", unit="DD", observed=True)] = None
    wind_speed: Annotated[NonNegative | None, Property(WEATHER + "windSpeed", unit="MTS", observed=True)] = None
    gust_speed: Annotated[Number | None, Property(WEATHER + "gustSpeed", unit="MTS", observed=True)] = None
    precipitation: Annotated[NonNegative | None, Property(WEATHER + "precipitation", unit="MMT", observed=True)] = None
    illuminance: Annotated[NonNegative | None, Property(WEATHER + "illuminance", unit="LUX", observed=True)] = None
    solar_radiation: Annotated[NonNegative | None,
                               Property(WEATHER + "solarRadiation", unit="D54", observed=True)] = None
    direct_irradiation: Annotated[NonNegative | None,
                                  Property(WEATHER + "directIrradiation", unit="D54", observed=True)] = None
    diffuse_irradiation: Annotated[NonNegative | None,
                                   Property(WEATHER + "diffuseIrradiation", unit="D54", observed=True)] = None
    visibility: Annotated[Literal["veryPoor", "poor", "moderate", "good", "veryGood", "excellent"] | NonNegative | None,
                          Property(WEATHER + "visibility", observed=True)] = None
    stream_gauge: Annotated[NonNegative | None, Property(WEATHER + "streamGauge", unit="CMT", observed=True)] = None
    snow_height: Annotated[NonNegative | None, Property(WEATHER + "snowHeight", unit="CMT", observed=True)] = None
    uv_index_max: Annotated[NonNegative | None, Property(WEATHER + "uVIndexMax", observed=True),
                            Field(alias="uVIndexMax")] = None
    air_quality_index: Annotated[Number | None, Property(WEATHER + "airQualityIndex", observed=True)] = None
    aqi_major_pollutant: Annotated[Text | None, Property(WEATHER + "aqiMajorPollutant", observed=True)] = None
    air_temperature_forecast: Annotated[Number | None, Property(WEATHER + "airTemperatureForecast", unit="CEL")] = None
    precipitation_forecast: Annotated[Number | None, Property(WEATHER + "precipitationForecast", unit="MMT")] = None
    relative_humidity_forecast: Annotated[Number | None, Property(WEATHER + "relativeHumidityForecast")] = None
    air_quality_index_forecast: Annotated[Number | None, Property(WEATHER + "airQualityIndexForecast")] = None
    aqi_major_pollutant_forecast: Annotated[Text | None, Property(WEATHER + "aqiMajorPollutantForecast")] = None
    # A TimeSeriesAggregation (avgOverTime, minOverTime, ...), kept as the JSON object it is.
    air_temperature_tsa: Annotated[JsonObject | None, Property(WEATHER + "airTemperatureTSA"),
                                   Field(alias="airTemperatureTSA")] = None
    ref_device: Annotated[Uri | None, Relationship(WEATHER + "refDevice")] = None
    ref_point_of_interest: Annotated[Uri | None, Relationship(WEATHER + "refPointOfInterest")] = None
