"""Smart Burgas pay machines, taxi ranks, mobile waste centres -> PointOfInterest; CCTV -> Camera.

``category`` tells the PointOfInterest kinds apart. The official model leaves its values open
(its examples use Factual taxonomy codes, which have no parking-ticket machine); we use
OpenStreetMap tags, which name all three exactly:

| feed | category | id (after ``urn:ngsi-ld:PointOfInterest:smartburgas:``) |
|---|---|---|
| Billing_machines | ``amenity=vending_machine``, ``vending=parking_tickets`` | ``pay-machine:<name_key>`` |
| Taxi_ranks | ``amenity=taxi`` | ``taxi-rank:<name_key>`` |
| Mobiletrash | ``amenity=recycling``, ``recycling_type=centre`` | ``waste-centre:<MobileCenterId>`` |

CCTV becomes a Camera, ``urn:ngsi-ld:Camera:smartburgas:<name_key>``.

``<name_key>`` is the Bulgarian name's slug plus the position to 4 decimals (these feeds have no
id). A taxi rank's ``vehicleCapacity`` (extension) is N in "<N> броя таксиметрови автомобила".

Waste centres: each ``data[]`` row is one deposit of one waste type (``Garbage_id``). The current
``wasteQuantities`` (extension) holds, per waste type, its newest deposit: name, colour, quantity,
unitCode (КГ -> KGM, БР/БРОЙ -> H87; another unit leaves that row out with the reason) and its own
``dateObserved``; the entity's ``dateObserved`` is the newest deposit's. ``wasteTotalWeight`` (kg)
and ``citizenCount`` are the centre's totals as published. History has one snapshot per deposit
date with that date's rows. ``MobileCenterPics`` is trimmed of its padding.

Cameras: ``publicname`` is the name, ``pic_url`` the ``imageSnapshot``, ``video_url2`` the
``streamURL`` and ``position`` (degrees) the ``heading`` extension.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from adapter.errors import MappingError
from adapter.mapping import parse
from adapter.mapping.base import Attr, FeedMapper, Mapped, build, read
from adapter.mapping.smartburgas_common import (
    feed_key,
    names,
    point,
    position_key,
    properties,
    readings,
    smartburgas_id,
)
from adapter.sources.base import RawRecord
from data_models import Camera, PointOfInterest, PostalAddress, WasteQuantity

PAY_MACHINE = ["amenity=vending_machine", "vending=parking_tickets"]
TAXI_RANK = ["amenity=taxi"]
WASTE_CENTRE = ["amenity=recycling", "recycling_type=centre"]

_TAXIS = re.compile(r"^\s*(\d{1,3})\s*(?:броя|бр\.?)?\s*(?:таксиметров|такси|taxi)", re.IGNORECASE)


def taxi_count(value: Any) -> int | None:
    """N from "<N> броя таксиметрови автомобила" (or "<N> taxi cars"); None when not that form."""
    match = _TAXIS.match(parse.text(value))
    return int(match.group(1)) if match else None


POINT_STATIC = (
    Attr("description", "description", parse.text),
    Attr("image", "pic_url", parse.url),
)
TAXI_STATIC = (
    *POINT_STATIC,
    Attr("vehicle_capacity", "description", taxi_count),
)


def poi_id(kind: str, key: str) -> str:
    """``urn:ngsi-ld:PointOfInterest:smartburgas:<kind>:<key>``."""
    return smartburgas_id("PointOfInterest", kind, key)


def _point_mapper(kind: str, category: list[str], table: tuple[Attr, ...]):
    def map_point(record: RawRecord) -> Mapped:
        props = properties(record.payload)
        location = point(record.payload.get("geometry"))
        label = names(record, "name")
        if label.name is None:
            raise MappingError("no name (PointOfInterest requires one)")
        static = read(table, props, strict=False)
        entity = build(PointOfInterest, {
            "id": poi_id(kind, position_key(label, location.geometry, record=record)),
            "location": location.geometry, "name": label.name,
            "multilingual_name": label.multilingual, "category": category, **static.values,
        })
        return Mapped(entity, (), location.source_crs, (*location.fixes, *static.problems), record.key)

    map_point.__doc__ = f"One {kind} (no time series)."
    return map_point


PAY_MACHINES = FeedMapper(
    "billing_machines", PointOfInterest, _point_mapper("pay-machine", PAY_MACHINE, POINT_STATIC),
    "urn:ngsi-ld:PointOfInterest:smartburgas:pay-machine:<slug(bg name)>:<lng>,<lat> (4 decimals)",
)
TAXI_RANKS = FeedMapper(
    "taxi_ranks", PointOfInterest, _point_mapper("taxi-rank", TAXI_RANK, TAXI_STATIC),
    "urn:ngsi-ld:PointOfInterest:smartburgas:taxi-rank:<slug(bg name)>:<lng>,<lat> (4 decimals)",
)


# --- mobile waste centres -------------------------------------------------------------------------

WASTE_CENTRE_STATIC = (
    Attr("description", "MobileCenterDescription", parse.text),
    Attr("image", "MobileCenterPics", parse.url),
    Attr("citizen_count", "Citizen_Number", parse.count),
    Attr("waste_total_weight", "Garbage_Weight", parse.non_negative),  # kg (KGM)
    Attr("street_address", "MobileCenterAddress", parse.text),
)
DEPOSIT = (
    Attr("waste_type_id", "Garbage_id", parse.text),
    Attr("waste_type_name", "Garbage_name", parse.text),
    Attr("color", "Garbage_Colour", parse.hex_colour),
    Attr("quantity", "Garbage_Weight", parse.non_negative),
    Attr("unit_code", "Garbage_Weight_type", parse.unit_code),
)
WASTE_UNITS = frozenset({"KGM", "H87"})


def waste_centre_id(props: Any) -> str:
    """``urn:ngsi-ld:PointOfInterest:smartburgas:waste-centre:<MobileCenterId>``."""
    return poi_id("waste-centre", feed_key(props, "MobileCenterId"))


def map_waste_centre(record: RawRecord) -> Mapped:
    """One mobile waste centre with its deposits."""
    props = properties(record.payload)
    entity_id = waste_centre_id(props)
    location = point(props.get("geometry"))
    label = names(record, "MobileCenterName")
    if label.name is None:
        raise MappingError("no MobileCenterName (PointOfInterest requires one)")
    static = read(WASTE_CENTRE_STATIC, props, strict=False)
    street = static.values.pop("street_address", None)
    address = PostalAddress(street_address=street, address_locality="Бургас",
                            address_country="BG") if street else None
    series = readings(props, unique=False)
    notes = [*location.fixes, *static.problems, *series.problems]
    by_date: dict[datetime, list[WasteQuantity]] = defaultdict(list)
    newest_per_type: dict[str, WasteQuantity] = {}
    for time, row in series.rows:
        deposit = read(DEPOSIT, row, strict=False, where=f"deposit {str(row.get('time'))[:25]}: ")
        values = deposit.values
        missing = {"waste_type_id", "quantity", "unit_code"} - values.keys()
        if deposit.problems or missing:
            notes.extend(deposit.problems or [f"deposit {str(row.get('time'))[:25]}: missing "
                                                f"{', '.join(sorted(missing))}"])
            continue
        if values["unit_code"] not in WASTE_UNITS:
            notes.append(f"deposit {str(row.get('time'))[:25]}: unit {values['unit_code']} is not "
                           "a weight or a count")
            continue
        quantity = WasteQuantity(**{"waste_type_name": "", **values}, date_observed=time)
        by_date[time].append(quantity)
        newest_per_type[quantity.waste_type_id] = quantity  # rows are oldest first
    common = {"id": entity_id, "location": location.geometry, "name": label.name,
              "category": WASTE_CENTRE}
    history = tuple(build(PointOfInterest, {**common, "date_observed": time,
                                            "waste_quantities": quantities})
                    for time, quantities in sorted(by_date.items()))
    current = sorted(newest_per_type.values(), key=lambda q: _type_order(q.waste_type_id))
    entity = build(PointOfInterest, {
        **common, "multilingual_name": label.multilingual, "address": address, **static.values,
        "date_observed": max(by_date) if by_date else None, "waste_quantities": current or None,
    })
    return Mapped(entity, history, location.source_crs, tuple(notes), record.key)


def _type_order(type_id: str) -> tuple[int, str]:
    return (int(type_id), type_id) if type_id.isdigit() else (1 << 30, type_id)


WASTE_CENTRES = FeedMapper(
    "waste", PointOfInterest, map_waste_centre,
    "urn:ngsi-ld:PointOfInterest:smartburgas:waste-centre:<properties.MobileCenterId>",
)


# --- CCTV ------------------------------------------------------------------------------------------

def heading(value: Any) -> float:
    """A compass heading in degrees, 0..360."""
    degrees = parse.number(value)
    if not 0 <= degrees <= 360:
        raise ValueError(f"heading {parse.show(value)} is outside 0..360 degrees")
    return degrees


CAMERA = (
    Attr("description", "description", parse.text),
    Attr("image_snapshot", "pic_url", parse.url),
    Attr("stream_url", "video_url2", parse.url),
    Attr("heading", "position", heading),
)


def camera_id(label_key: str) -> str:
    """``urn:ngsi-ld:Camera:smartburgas:<name slug>:<lng>,<lat>``."""
    return smartburgas_id("Camera", label_key)


def map_camera(record: RawRecord) -> Mapped:
    """One public camera (no time series)."""
    props = properties(record.payload)
    location = point(record.payload.get("geometry"))
    label = names(record, "publicname")
    static = read(CAMERA, props, strict=False)
    entity = build(Camera, {
        "id": camera_id(position_key(label, location.geometry, record=record)),
        "location": location.geometry, "name": label.name,
        "multilingual_name": label.multilingual, **static.values,
    })
    return Mapped(entity, (), location.source_crs, (*location.fixes, *static.problems), record.key)


CAMERAS = FeedMapper(
    "cctv", Camera, map_camera,
    "urn:ngsi-ld:Camera:smartburgas:<slug(bg publicname)>:<lng>,<lat> (4 decimals)",
)
