"""The factory's table of source kinds, and the boundary between production code and the demo data."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import httpx
import pytest

from adapter.config import PipelineConfig, SourceConfig
from adapter.errors import ConfigError
from adapter.samples.serving import SampleServers
from adapter.sources.arcgis import ArcGISSource
from adapter.sources.gtfs import GTFSSource
from adapter.sync.factory import KINDS, build_mapper, build_source, is_static, is_stream

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"model": "Beach", "id_field": "id"}


def _config(**entry: typing.Any) -> typing.Any:
    return PipelineConfig.model_validate({"sources": [{"name": "x", "group": "g", **entry}]}).sources[0]


def test_every_config_type_has_a_row_and_every_row_a_config_type():
    union = typing.get_args(SourceConfig)[0]
    types = {typing.get_args(cls.model_fields["type"].annotation)[0] for cls in typing.get_args(union)}
    assert set(KINDS) == types


def test_the_rows_say_which_kinds_skip_unchanged_records_and_which_are_streams():
    assert {t for t, kind in KINDS.items() if kind.static} == {"arcgis", "wfs", "ogcapi", "geojson", "gtfs"}
    mqtt = _config(type="mqtt", topics={"burgas/#": "river.level"})
    assert is_stream(mqtt) and not is_static(mqtt)
    assert callable(build_mapper(mqtt))
    with pytest.raises(ConfigError, match="is a stream"):
        build_source(mqtt, httpx.AsyncClient())


def test_configured_urls_go_through_the_resolver_given():
    layer = _config(type="arcgis", url="samples:gis/beaches", mapping=LAYER)
    started: list[str] = []

    class _Server:
        base_url = "http://127.0.0.1:1"

        def url(self, path: str) -> str:
            started.append(path)
            return "http://127.0.0.1:1" + path

        def stop(self) -> None:
            pass

    source = build_source(layer, httpx.AsyncClient(), urls=SampleServers(start=_Server))
    assert isinstance(source, ArcGISSource)
    assert source.url == "http://127.0.0.1:1/arcgis/rest/services/Burgas/Beaches/FeatureServer/0"
    assert len(started) == 1
    gtfs = build_source(_config(type="gtfs", url="https://example.org/gtfs.zip"), httpx.AsyncClient())
    assert isinstance(gtfs, GTFSSource) and gtfs.url == "https://example.org/gtfs.zip"


def test_without_the_cli_resolver_a_samples_url_is_a_config_error_that_says_so():
    layer = _config(type="gtfs", url="samples:gtfs/burgasbus.zip")
    with pytest.raises(ConfigError, match="names bundled sample data"):
        build_source(layer, httpx.AsyncClient())


def test_the_sync_and_the_service_do_not_import_the_sample_servers_or_generators():
    # A fresh interpreter: this test process has imported the samples already.
    code = ("import sys\n"
            "import adapter.sync.factory, adapter.runtime, adapter.exporter, adapter.sync.retry\n"
            "import adapter.service.app, adapter.cli\n"
            "print(sorted(m for m in sys.modules if m.startswith('adapter.samples')))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"
