"""Smart Burgas administrative districts (``cau.json``) -> AdministrativeArea (project extension).

Id: ``urn:ngsi-ld:AdministrativeArea:smartburgas:<slug of CAU>``, e.g. ``ДЦАУ "ПРИМОРИЕ"`` ->
``...:dtsau-primorie``: the layer has no id, a district is known by its name, and a polygon has no
single position to add. ``name`` is the ``CAU`` label as published (quotes kept, spaces cleaned);
``location`` the Polygon or MultiPolygon, checked and repaired by :mod:`adapter.geometry`.
"""

from __future__ import annotations

from typing import Any

from adapter.errors import MappingError
from adapter.mapping import parse
from adapter.mapping.base import FeedMapper, Mapped, build
from adapter.mapping.smartburgas_common import area, properties, smartburgas_id
from adapter.ngsi.ids import slug
from adapter.sources.base import RawRecord
from data_models import AdministrativeArea


def district_id(name: str) -> str:
    """``urn:ngsi-ld:AdministrativeArea:smartburgas:<slug(name)>``."""
    key = slug(name)
    if not key:
        raise MappingError(f"CAU {parse.show(name)} has no letters or digits to key the id on")
    return smartburgas_id("AdministrativeArea", key)


def map_district(record: RawRecord) -> Mapped:
    """One district polygon."""
    props = properties(record.payload)
    raw: Any = props.get("CAU")
    try:
        name = parse.name(raw) if not parse.is_blank(raw) else None
    except ValueError as exc:
        raise MappingError(f"CAU: {exc}") from None
    if name is None:
        raise MappingError(f"missing CAU (got {parse.show(raw)})")
    shape = area(record.payload.get("geometry"))
    entity = build(AdministrativeArea, {"id": district_id(name), "name": name,
                                        "location": shape.geometry})
    return Mapped(entity, (), shape.source_crs, shape.fixes, record.key)


DISTRICTS = FeedMapper(
    "admin_regions", AdministrativeArea, map_district,
    "urn:ngsi-ld:AdministrativeArea:smartburgas:<slug(properties.CAU)>",
)
