"""dataModel.Streetlighting: street lights."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from data_models._base import NGSI_LD, SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._types import Geometry, NonNegative, Number, Ratio, Text, Uri, UtcDateTime
from data_models._values import JsonObject, MunicipalityInfo

STREETLIGHTING = SDM + "dataModel.Streetlighting/"

StreetlightLocationCategory = Literal[
    "bridge", "centralIsland", "facade", "garden", "park", "parking", "pedestrianPath",
    "playground", "road", "sidewalk", "tunnel"
]


class Streetlight(SmartDataModel):
    """A street light: its state, power, lamp history and the group and cabinet it belongs to.

    The official model gives no units for its electrical values, so none is claimed.
    """

    entity_type: ClassVar[str] = "Streetlight"
    type_iri: ClassVar[str] = STREETLIGHTING + "Streetlight"
    subject: ClassVar[str] = "dataModel.Streetlighting"
    observed_at_field: ClassVar[str] = "observation_date_time"

    location: Annotated[Geometry, GeoProperty()]
    color: Annotated[Text | None, Property(SDM + "color")] = None
    image: Annotated[Uri | None, Property(SDM + "image")] = None
    annotations: Annotated[list[Text] | None, Property(SDM + "annotations")] = None
    circuit: Annotated[Text | None, Property(STREETLIGHTING + "circuit")] = None
    ref_streetlight_model: Annotated[Uri | None, Relationship(STREETLIGHTING + "refStreetlightModel")] = None
    ref_streetlight_control_cabinet: Annotated[Uri | None,
                                               Relationship(STREETLIGHTING + "refStreetlightControlCabinet")] = None
    status: Annotated[Literal["brokenLantern", "columnIssue", "defectiveLamp", "ok"],
                      Property(NGSI_LD + "status", observed=True)]
    power_state: Annotated[Literal["bootingUp", "low", "off", "on"] | None,
                           Property(STREETLIGHTING + "powerState", observed=True)] = None
    ref_device: Annotated[list[Uri] | None, Relationship(STREETLIGHTING + "refDevice")] = None
    ref_streetlight_group: Annotated[Uri | None, Relationship(STREETLIGHTING + "refStreetlightGroup")] = None
    date_last_lamp_change: Annotated[UtcDateTime | None, Property(STREETLIGHTING + "dateLastLampChange")] = None
    date_last_switching_on: Annotated[UtcDateTime | None, Property(STREETLIGHTING + "dateLastSwitchingOn")] = None
    date_last_switching_off: Annotated[UtcDateTime | None, Property(STREETLIGHTING + "dateLastSwitchingOff")] = None
    controlling_method: Annotated[Literal["group", "individual"] | None,
                                  Property(STREETLIGHTING + "controllingMethod")] = None
    date_service_started: Annotated[UtcDateTime | None, Property(STREETLIGHTING + "dateServiceStarted")] = None
    location_category: Annotated[StreetlightLocationCategory | None,
                                 Property(STREETLIGHTING + "locationCategory")] = None
    lantern_height: Annotated[NonNegative | None, Property(STREETLIGHTING + "lanternHeight")] = None
    lifetime_motion_detected: Annotated[Number | None, Property(STREETLIGHTING + "lifetimeMotionDetected")] = None
    lifetime_power_consumption: Annotated[Number | None, Property(STREETLIGHTING + "lifetimePowerConsumption")] = None
    illuminance_level: Annotated[Ratio | None, Property(STREETLIGHTING + "illuminanceLevel", observed=True)] = None
    power_consumption: Annotated[Number | None, Property(STREETLIGHTING + "powerConsumption", observed=True)] = None
    current: Annotated[Number | None, Property(STREETLIGHTING + "current", observed=True)] = None
    power_rating: Annotated[Number | None, Property(STREETLIGHTING + "powerRating")] = None
    power_factor: Annotated[Number | None, Property(STREETLIGHTING + "powerFactor", observed=True)] = None
    voltage: Annotated[Number | None, Property(STREETLIGHTING + "voltage", observed=True)] = None
    feeder_pillar_num: Annotated[Text | None, Property(STREETLIGHTING + "feederPillarNum")] = None
    street_pole_num: Annotated[Text | None, Property(STREETLIGHTING + "streetPoleNum")] = None
    observation_date_time: Annotated[UtcDateTime | None, Property(STREETLIGHTING + "observationDateTime")] = None
    feeder_id: Annotated[Uri | None, Relationship(STREETLIGHTING + "feederID"), Field(alias="feederID")] = None
    municipality_info: Annotated[MunicipalityInfo | None, Property(STREETLIGHTING + "municipalityInfo")] = None
    # Free-form device details (ids, battery status, model); the schema leaves them open.
    device_info: Annotated[JsonObject | None, Property(STREETLIGHTING + "deviceInfo")] = None
