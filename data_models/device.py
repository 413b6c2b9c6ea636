"""dataModel.Device: cameras and generic IoT devices."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from data_models._base import BURGAS, SDM, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._formats import Degrees
from data_models._types import Flag, Number, Text, Uri, UtcDateTime
from data_models._values import JsonObject

DEVICE = SDM + "dataModel.Device/"

CameraCameraType = Literal[
    "FIXED", "PTZ", "DOME", "DAY/NIGHT", "C-MOUNT", "BULLET"
]
DeviceCategory = Literal[
    "actuator", "beacon", "endgun", "HVAC", "implement", "irrSection", "irrSystem", "meter",
    "multimedia", "network", "sensor"
]
DeviceControlledProperty = Literal[
    "airPollution", "atmosphericPressure", "averageVelocity", "batteryLife", "batterySupply",
    "cdom", "conductance", "conductivity", "depth", "eatingActivity", "electricityConsumption",
    "energy", "fillingLevel", "freeChlorine", "gasConsumption", "gateOpening", "heading",
    "humidity", "light", "location", "milking", "motion", "movementActivity", "noiseLevel",
    "occupancy", "orp", "pH", "power", "precipitation", "pressure", "refractiveIndex", "salinity",
    "smoke", "soilMoisture", "solarRadiation", "speed", "tds", "temperature", "trafficFlow", "tss",
    "turbidity", "uvLampIntensity", "uvOrganicLoad", "waterConsumption", "waterFlow", "waterLevel",
    "waterPollution", "weatherConditions", "weight", "windDirection", "windSpeed"
]
DeviceSupportedProtocol = Literal[
    "3g", "bluetooth", "bluetooth LE", "cat-m", "coap", "ec-gsm-iot", "gprs", "http", "lwm2m",
    "lora", "lte-m", "mqtt", "nb-iot", "onem2m", "sigfox", "ul20", "websocket"
]


MacAddress = Annotated[str, Strict(), Field(pattern=r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$")]


class CameraOrientation(BaseModel):
    """Where a camera looks, in words and on a map (``cameraOrientation``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    term_iris: ClassVar[dict[str, str | None]] = dict.fromkeys(("comments", "annotatedMap"))

    comments: Text | None = None
    annotated_map: Uri | None = Field(default=None, alias="annotatedMap")


class Camera(SmartDataModel):
    """A (CCTV) camera: its stream and snapshot URLs, type, usage and orientation.

    Smart Burgas gives each camera's heading in degrees (``position``); the official model only
    has a free-text ``cameraOrientation``, so the heading is an extension (``heading``, DD).
    """

    entity_type: ClassVar[str] = "Camera"
    type_iri: ClassVar[str] = DEVICE + "Camera"
    subject: ClassVar[str] = "dataModel.Device"
    observed_at_field: ClassVar[str] = "end_date_time"

    camera_name: Annotated[Text | None, Property(DEVICE + "cameraName")] = None
    camera_usage: Annotated[Text | None, Property(DEVICE + "cameraUsage")] = None
    stream_url: Annotated[Uri | None, Property(DEVICE + "streamURL"), Field(alias="streamURL")] = None
    camera_type: Annotated[CameraCameraType | None, Property(DEVICE + "cameraType")] = None
    end_date_time: Annotated[UtcDateTime | None, Property(DEVICE + "endDateTime")] = None
    camera_orientation: Annotated[CameraOrientation | None, Property(DEVICE + "cameraOrientation")] = None
    camera_num: Annotated[Number | None, Property(DEVICE + "cameraNum")] = None
    media_url: Annotated[Uri | None, Property(DEVICE + "mediaURL"), Field(alias="mediaURL")] = None
    stream_name: Annotated[Text | None, Property(DEVICE + "streamName")] = None
    start_date_time: Annotated[UtcDateTime | None, Property(DEVICE + "startDateTime")] = None
    on: Annotated[Flag | None, Property(DEVICE + "on")] = None
    # Extension: compass heading of the camera's view, 0..360 degrees clockwise from north.
    heading: Annotated[Degrees | None, Property(BURGAS + "heading", unit="DD")] = None
    image_snapshot: Annotated[Uri | None, Property(DEVICE + "imageSnapshot")] = None


class Device(SmartDataModel):
    """An apparatus (sensor, actuator, meter, ...) with its state, identity and connectivity.

    The official ``value`` attribute is not modelled: ``value`` is the NGSI-LD core term for the
    value of every Property (ngsi-ld:hasValue), so an attribute of that name cannot be told apart
    from an attribute's value once expanded.
    """

    entity_type: ClassVar[str] = "Device"
    type_iri: ClassVar[str] = DEVICE + "Device"
    subject: ClassVar[str] = "dataModel.Device"
    observed_at_field: ClassVar[str] = "date_observed"

    category: Annotated[list[DeviceCategory] | None, Property(DEVICE + "category")] = None
    device_category: Annotated[list[DeviceCategory] | None, Property(DEVICE + "deviceCategory")] = None
    controlled_property: Annotated[list[DeviceControlledProperty], Property(DEVICE + "controlledProperty")]
    supported_protocol: Annotated[list[DeviceSupportedProtocol] | None, Property(DEVICE + "supportedProtocol")] = None
    mac_address: Annotated[MacAddress | None, Property(DEVICE + "macAddress")] = None
    controlled_asset: Annotated[list[Uri] | None, Property(DEVICE + "controlledAsset")] = None
    mnc: Annotated[Text | None, Property(DEVICE + "mnc")] = None
    mcc: Annotated[Text | None, Property(DEVICE + "mcc")] = None
    ip_address: Annotated[list[Text] | None, Property(DEVICE + "ipAddress")] = None
    configuration: Annotated[list[JsonObject] | None, Property(DEVICE + "configuration")] = None
    date_installed: Annotated[UtcDateTime | None, Property(DEVICE + "dateInstalled")] = None
    date_first_used: Annotated[UtcDateTime | None, Property(DEVICE + "dateFirstUsed")] = None
    date_manufactured: Annotated[UtcDateTime | None, Property(DEVICE + "dateManufactured")] = None
    hardware_version: Annotated[Text | None, Property(DEVICE + "hardwareVersion")] = None
    software_version: Annotated[Text | None, Property(DEVICE + "softwareVersion")] = None
    firmware_version: Annotated[Text | None, Property(DEVICE + "firmwareVersion")] = None
    os_version: Annotated[Text | None, Property(DEVICE + "osVersion")] = None
    distance: Annotated[Number | None, Property(DEVICE + "distance")] = None
    dst_aware: Annotated[Flag | None, Property(DEVICE + "dstAware")] = None
    depth: Annotated[Number | None, Property(DEVICE + "depth")] = None
    relative_position: Annotated[Text | None, Property(DEVICE + "relativePosition")] = None
    direction: Annotated[Literal["Inlet", "Outlet", "Entry", "Exit"] | None, Property(DEVICE + "direction")] = None
    date_last_calibration: Annotated[UtcDateTime | None, Property(DEVICE + "dateLastCalibration")] = None
    serial_number: Annotated[Text | None, Property(DEVICE + "serialNumber")] = None
    provider: Annotated[Text | None, Property(DEVICE + "provider")] = None
    ref_device_model: Annotated[Uri | None, Relationship(DEVICE + "refDeviceModel")] = None
    # 1.0 full, 0.0 empty, -1 when it cannot be determined.
    battery_level: Annotated[Annotated[float, Strict(), Field(ge=-1, le=1)] | None,
                             Property(DEVICE + "batteryLevel", observed=True)] = None
    # dBm or mW: the unit is per device (attr_meta unit_code), none is assumed.
    rssi: Annotated[Number | None, Property(DEVICE + "rssi", observed=True)] = None
    device_state: Annotated[Text | None, Property(DEVICE + "deviceState", observed=True)] = None
    date_last_value_reported: Annotated[UtcDateTime | None, Property(DEVICE + "dateLastValueReported")] = None
    date_observed: Annotated[UtcDateTime | None, Property(SDM + "dateObserved")] = None
