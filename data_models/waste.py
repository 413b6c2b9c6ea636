"""dataModel.WasteManagement: waste containers."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from data_models._base import NGSI_LD, SDM, GeoProperty, Property, Relationship
from data_models._commons import SmartDataModel
from data_models._types import Geometry, NonNegative, Number, Ratio, Text, Uri, UtcDateTime

WASTE = SDM + "dataModel.WasteManagement/"

WasteContainerCategory = Literal[
    "fixed", "ground", "other", "portable", "underground"
]
WasteContainerStoredWasteKind = Literal[
    "organic", "inorganic", "glass", "oil", "plastic", "metal", "paper", "batteries",
    "electronics", "hazardous", "other"
]
WasteContainerStoredWasteOrigin = Literal[
    "household", "municipal", "industrial", "construction", "hostelry", "agriculture", "other"
]
WasteContainerStatus = Literal[
    "ok", "lidOpen", "dropped", "moved", "vandalized", "burning", "unknown"
]


class WasteContainer(SmartDataModel):
    """A waste container: where it is, what it holds, how full it is and its state.

    Weights are in kg (KGM) and temperatures in °C (CEL); the official model gives no unit for
    capacities, loads and the methane concentration, so none is claimed for them.
    """

    entity_type: ClassVar[str] = "WasteContainer"
    type_iri: ClassVar[str] = WASTE + "WasteContainer"
    subject: ClassVar[str] = "dataModel.WasteManagement"
    observed_at_field: ClassVar[str] = "time_instant"

    location: Annotated[Geometry, GeoProperty()]
    color: Annotated[Text | None, Property(SDM + "color")] = None
    image: Annotated[Uri | None, Property(SDM + "image")] = None
    annotations: Annotated[list[Text] | None, Property(SDM + "annotations")] = None
    filling_level: Annotated[Ratio | None, Property(WASTE + "fillingLevel", observed=True)] = None
    category: Annotated[list[WasteContainerCategory] | None, Field(min_length=1), Property(WASTE + "category")] = None
    cargo_weight: Annotated[NonNegative | None, Property(WASTE + "cargoWeight", unit="KGM", observed=True)] = None
    temperature: Annotated[Number | None, Property(WASTE + "temperature", unit="CEL", observed=True)] = None
    methane_concentration: Annotated[NonNegative | None, Property(WASTE + "methaneConcentration", observed=True)] = None
    stored_waste_kind: Annotated[WasteContainerStoredWasteKind | None, Property(WASTE + "storedWasteKind")] = None
    stored_waste_origin: Annotated[WasteContainerStoredWasteOrigin | None, Property(WASTE + "storedWasteOrigin")] = None
    stored_waste_code: Annotated[Text | None, Property(WASTE + "storedWasteCode")] = None
    serial_number: Annotated[Text | None, Property(WASTE + "serialNumber")] = None
    regulation: Annotated[Text | None, Property(WASTE + "regulation")] = None
    responsible: Annotated[Text | None, Property(WASTE + "responsible")] = None
    date_service_started: Annotated[UtcDateTime | None, Property(WASTE + "dateServiceStarted")] = None
    date_last_emptying: Annotated[UtcDateTime | None, Property(WASTE + "dateLastEmptying")] = None
    next_actuation_deadline: Annotated[UtcDateTime | None, Property(WASTE + "nextActuationDeadline")] = None
    actuation_hours: Annotated[Text | None, Property(WASTE + "actuationHours")] = None
    date_last_cleaning: Annotated[UtcDateTime | None, Property(WASTE + "dateLastCleaning")] = None
    next_cleaning_deadline: Annotated[UtcDateTime | None, Property(WASTE + "nextCleaningDeadline")] = None
    isle_id: Annotated[Text | None, Property(WASTE + "isleId")] = None
    status: Annotated[WasteContainerStatus | None, Property(NGSI_LD + "status", observed=True)] = None
    ref_waste_container_model: Annotated[Uri | None, Relationship(WASTE + "refWasteContainerModel")] = None
    ref_waste_container_isle: Annotated[Uri | None, Relationship(WASTE + "refWasteContainerIsle")] = None
    ref_device: Annotated[list[Uri] | None, Relationship(WASTE + "refDevice")] = None
    time_instant: Annotated[UtcDateTime | None, Property(SDM + "timeInstant")] = None
    bin_capacity: Annotated[Number | None, Property(WASTE + "binCapacity")] = None
    bin_color: Annotated[Text | None, Property(WASTE + "binColor")] = None
    ward_id: Annotated[Text | None, Property(WASTE + "wardId")] = None
    license_plate: Annotated[Text | None, Property(WASTE + "license_plate"), Field(alias="license_plate")] = None
    rfid: Annotated[Text | None, Property(WASTE + "RFID"), Field(alias="RFID")] = None
    bin_fullness_threshold: Annotated[Number | None, Property(WASTE + "binFullnessThreshold")] = None
    bin_recommended_load: Annotated[Number | None, Property(WASTE + "binRecommendedLoad")] = None
    bin_id: Annotated[Text | None, Property(WASTE + "binId")] = None
    bin_max_load: Annotated[Number | None, Property(WASTE + "binMaxLoad")] = None
    bin_logged_time: Annotated[UtcDateTime | None, Property(WASTE + "binLoggedTime")] = None
