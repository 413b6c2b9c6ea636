"""The ``samples:`` URL scheme: bundled files by path, GIS layers through one lazily started server."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.samples.serving import SAMPLES_DIR, SampleServers


class _FakeServer:
    base_url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.stopped = False

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def started() -> list[_FakeServer]:
    return []


@pytest.fixture
def samples(started: list[_FakeServer]) -> SampleServers:
    def start() -> _FakeServer:
        started.append(_FakeServer())
        return started[-1]
    return SampleServers(start=start)


def test_gis_samples_start_one_server_on_first_use(samples, started):
    assert started == [] and not samples.running
    beaches = samples.resolve("samples:gis/beaches")
    stops = samples.resolve("samples:gis/bus_stops")
    parks = samples.resolve("samples:gis/parks")
    assert len(started) == 1 and samples.running
    assert beaches == "http://127.0.0.1:1/arcgis/rest/services/Burgas/Beaches/FeatureServer/0"
    assert stops == "http://127.0.0.1:1/geoserver/wfs"
    assert parks == "http://127.0.0.1:1/ogc"


def test_close_stops_the_server_and_a_later_use_starts_a_new_one(samples, started):
    samples.resolve("samples:gis/parks")
    samples.close()
    assert started[0].stopped and not samples.running
    samples.close()  # closing twice is harmless
    samples.resolve("samples:gis/parks")
    assert len(started) == 2


def test_bundled_files_resolve_to_their_path_without_a_server(samples, started):
    path = samples.resolve("samples:gtfs/burgasbus.zip")
    assert Path(path) == SAMPLES_DIR / "gtfs" / "burgasbus.zip" and Path(path).is_file()
    assert started == []


def test_other_urls_are_unchanged(samples):
    assert samples.resolve("https://gis.burgas.bg/arcgis/rest/x") == "https://gis.burgas.bg/arcgis/rest/x"


@pytest.mark.parametrize("url", ["samples:gis/schools", "samples:../../pyproject.toml", "samples:",
                                 "samples:gis"])
def test_unknown_samples_and_paths_outside_the_samples_are_config_errors(samples, url):
    with pytest.raises(ConfigError, match="unknown sample"):
        samples.resolve(url)
