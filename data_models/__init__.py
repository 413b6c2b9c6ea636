"""Typed FIWARE Smart Data Models for Burgas: pydantic v2, no I/O, no wire formatting."""

from data_models._base import BURGAS, NGSI_LD, SDM, AttrKind, AttrMeta, AttrSpec, Entity, NgsiAttr, model_for
from data_models._commons import PostalAddress, SmartDataModel
from data_models._types import (
    Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
)
from data_models.environment import AirQualityObserved

__all__ = [
    "BURGAS", "NGSI_LD", "SDM",
    "AttrKind", "AttrMeta", "AttrSpec", "Entity", "NgsiAttr", "model_for",
    "PostalAddress", "SmartDataModel",
    "Geometry", "LineString", "MultiLineString", "MultiPoint", "MultiPolygon", "Point", "Polygon",
    "AirQualityObserved",
]
