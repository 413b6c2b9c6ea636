"""The ten Smart Burgas feeds in one table: name, env var, array key, languages, id key, sample.

The eight live feeds are translated (the upstream takes ``?lang=bg|en``); the two static layers
(paid-parking zones, administrative districts) are not. The URL of each feed comes from its
environment variable (the names the existing Burgas map client uses) and defaults to the bundled
sample under ``adapter/samples/smartburgas``. A ``{lang}`` placeholder in a URL or path is replaced by
the language instead of sending ``lang=`` (this is how the bundled per-language samples are found).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "smartburgas"
LANGS = ("bg", "en")
"""Languages of the translated feeds; the first is primary (its payload is ``RawRecord.payload``)."""


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One Smart Burgas feed as the adapter reads it."""

    name: str
    env_var: str
    file: str
    array_key: Literal["features", "features1"]
    translated: bool
    id_key: str | None
    """Property that identifies a feature (languages are paired on it); None: paired by position."""

    @property
    def source_name(self) -> str:
        """Name used in logs, errors and quarantine, e.g. ``smartburgas.air_quality``."""
        return f"smartburgas.{self.name}"

    @property
    def default_url(self) -> str:
        """Path of the bundled sample (with ``{lang}`` for translated feeds)."""
        folder = SAMPLES_DIR / "{lang}" if self.translated else SAMPLES_DIR
        return str(folder / self.file)

    def sample_path(self, lang: str | None = None) -> Path:
        """The bundled sample file for ``lang`` (ignored for untranslated feeds)."""
        return Path(self.default_url.replace("{lang}", lang or LANGS[0]))


FEEDS: Mapping[str, FeedSpec] = {spec.name: spec for spec in (
    FeedSpec("air_quality", "AIR_QUALITY_TIME_URL", "Air_quality_time.json", "features1", True, "id"),
    FeedSpec("traffic", "TRAFFIC_URL", "Cars_count.json", "features1", True, "detector_id"),
    FeedSpec("car_parks", "SMART_CAR_PARKS_TIME_URL", "SmartCarParks_time.json", "features1", True,
             "parking_id"),
    FeedSpec("waste", "WASTE_URL", "Mobiletrash.json", "features1", True, "MobileCenterId"),
    FeedSpec("cctv", "CCTV_URL", "CCTV.json", "features", True, None),
    FeedSpec("billing_machines", "BILLING_MACHINES_URL", "Billing_machines.json", "features", True,
             None),
    FeedSpec("ev_chargers", "EV_URL", "EVPoint.json", "features", True, None),
    FeedSpec("taxi_ranks", "TAXI_RANKS_URL", "Taxi_ranks.json", "features", True, None),
    FeedSpec("paid_parking_zones", "PAID_PARKING_ZONES_URL", "paid-parking-zones.json", "features",
             False, "Id"),
    FeedSpec("admin_regions", "ADMIN_REGIONS_URL", "cau.json", "features", False, None),
)}
