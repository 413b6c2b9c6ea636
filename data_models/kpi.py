"""dataModel.KeyPerformanceIndicator: key performance indicators."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from data_models._base import SDM, Property
from data_models._commons import SmartDataModel
from data_models._formats import IsoDate
from data_models._types import Flag, Number, Text, UtcDateTime
from data_models._values import DatePeriod, JsonObject

KPI = SDM + "dataModel.KeyPerformanceIndicator/"

KeyPerformanceIndicatorCategory = Literal[
    "actionable", "directional", "financial", "input", "lagging", "leading", "output",
    "practical", "process", "qualitative", "quantitative"
]
KeyPerformanceIndicatorCalculationFrequency = Literal[
    "hourly", "daily", "weekly", "monthly", "yearly", "quarterly", "bimonthly", "biweekly"
]
KeyPerformanceIndicatorCurrentStanding = Literal[
    "veryGood", "good", "fair", "bad", "veryBad"
]


class KeyPerformanceIndicator(SmartDataModel):
    """A key performance indicator: its value, standing, period and how it is calculated."""

    entity_type: ClassVar[str] = "KeyPerformanceIndicator"
    type_iri: ClassVar[str] = KPI + "KeyPerformanceIndicator"
    subject: ClassVar[str] = "dataModel.KeyPerformanceIndicator"

    category: Annotated[list[KeyPerformanceIndicatorCategory] | None, Field(min_length=1),
                        Property(KPI + "category")] = None
    organization: Annotated[Text | None, Property(KPI + "organization")] = None
    process: Annotated[Text | None, Property(KPI + "process")] = None
    product: Annotated[Text | None, Property(KPI + "product")] = None
    provider: Annotated[Text | None, Property(KPI + "provider")] = None
    business_target: Annotated[Text | None, Property(KPI + "businessTarget")] = None
    calculation_frequency: Annotated[KeyPerformanceIndicatorCalculationFrequency | None,
                                     Property(KPI + "calculationFrequency")] = None
    calculated_by: Annotated[Text | None, Property(KPI + "calculatedBy")] = None
    calculation_method: Annotated[Literal["manual", "automatic", "semiautomatic"] | None,
                                  Property(KPI + "calculationMethod")] = None
    calculation_formula: Annotated[Text | None, Property(KPI + "calculationFormula")] = None
    # [{"entityType": ..., "attrs": [...]}]
    aggregated_data: Annotated[list[JsonObject] | None, Field(min_length=1), Property(KPI + "aggregatedData")] = None
    calculation_period: Annotated[DatePeriod | None, Property(KPI + "calculationPeriod")] = None
    current_standing: Annotated[KeyPerformanceIndicatorCurrentStanding | None, Property(KPI + "currentStanding")] = None
    # Any JSON value, as the schema allows.
    kpi_value: Annotated[Flag | Number | Text | JsonObject | list[Any] | None, Property(KPI + "kpiValue")] = None
    effective_since: Annotated[UtcDateTime | None, Property(KPI + "effectiveSince")] = None
    date_next_calculation: Annotated[IsoDate | None, Property(KPI + "dateNextCalculation")] = None
    date_expires: Annotated[UtcDateTime | None, Property(KPI + "dateExpires")] = None
    updated_at: Annotated[UtcDateTime | None, Property(KPI + "updatedAt")] = None
    area: Annotated[Text | None, Property(KPI + "area")] = None
