"""`make demo`: embedded broker, every bundled Burgas source synced, the result and real queries.

Each demo starts from a fresh state directory and an in-memory broker, so what it prints is a first
sync, followed by a second one that shows the incremental sync sends nothing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapter.config import load_config
from adapter.ngsi.context import ContextMode, context_for
from adapter.runtime import Runtime
from adapter.samples.serving import SampleServers
from adapter.settings import Settings
from adapter.sync.quarantine import Quarantine
from data_models import model_for

CENTRE = (27.4678, 42.5048)  # Burgas, Тройката / the Municipality building


def _context(entity_type: str, settings: Settings) -> Any:
    return context_for(model_for(entity_type), ContextMode(settings.ngsi_context), settings.context_base_url)


async def _query(runtime: Runtime, console: Console, title: str, entity_type: str,
                 params: dict[str, str]) -> list[dict[str, Any]]:
    assert runtime.client is not None
    params = {"type": entity_type, "options": "keyValues", **params}
    answer = await runtime.client.query(params, context=_context(entity_type, runtime.settings))
    shown = "&".join(f"{k}={v if len(v) < 90 else v[:60] + '...' + v[-20:]}" for k, v in params.items())
    console.print(f"\n[bold]{escape(title)}[/bold]")
    console.print(f"GET {runtime.broker_url}/ngsi-ld/v1/entities?{shown}", markup=False,
                  highlight=False, soft_wrap=True)
    for entity in answer[:6]:
        console.print("  " + orjson.dumps(entity).decode()[:240], markup=False, highlight=False,
                      soft_wrap=True)
    if len(answer) > 6:
        console.print(f"  ... {len(answer) - 6} more", highlight=False)
    console.print(f"  → {len(answer)} entities", highlight=False)
    return answer


async def _history(runtime: Runtime, console: Console, entity: dict[str, Any], attr: str,
                   last_n: int) -> None:
    """The last readings of one attribute, from the broker's temporal API (every reading kept)."""
    assert runtime.client is not None
    params = {"attrs": attr, "options": "temporalValues", "lastN": str(last_n)}
    answer = await runtime.client.get_temporal_entity(
        entity["id"], context=_context(entity["type"], runtime.settings), params=params)
    console.print(f"\n[bold]{escape(attr)} at {escape(str(entity.get('name', entity['id'])))}, "
                  f"the last {last_n} readings[/bold]")
    shown = "&".join(f"{k}={v}" for k, v in params.items())
    console.print(f"GET {runtime.broker_url}/ngsi-ld/v1/temporal/entities/{entity['id']}?{shown}",
                  markup=False, highlight=False, soft_wrap=True)
    values = (answer or {}).get(attr, {}).get("values", [])
    for value, observed_at in values:
        console.print(f"  {observed_at}  {value}", highlight=False)
    console.print(f"  → {len(values)} readings", highlight=False)


async def run_demo(settings: Settings, console: Console) -> int:
    """Run the demo; 0 when every source synced completely."""
    from adapter.cli import report_table

    logging.getLogger().setLevel(logging.WARNING)  # the tables say it all
    state_dir = Path(tempfile.mkdtemp(prefix="burgas-demo-"))
    settings = settings.model_copy(update={"state_dir": state_dir, "broker_url": None,
                                           "embedded_broker_persist": False})
    config = load_config()
    async with Runtime(settings, config, urls=SampleServers()) as runtime:
        console.print(f"Embedded NGSI-LD broker: {runtime.broker_url}/ngsi-ld/v1  (state in {state_dir})",
                      highlight=False)
        started = time.monotonic()
        reports = await runtime.sync()
        elapsed = time.monotonic() - started
        console.print(report_table(reports, title=f"First sync: {elapsed:.1f} s"))

        by_type: dict[str, int] = {}
        for report in reports:
            for entity_type, n in report.entities_by_type.items():
                by_type[entity_type] = by_type.get(entity_type, 0) + n
        types = Table(title="Entities in the broker, per type")
        types.add_column("type")
        types.add_column("entities", justify="right")
        assert runtime.client is not None
        for entity_type in sorted(by_type):
            held = await runtime.client.count({"type": entity_type},
                                              context=_context(entity_type, settings))
            types.add_row(entity_type, str(held))
        console.print(types)

        assert runtime.state is not None
        rejected = Quarantine(runtime.state).entries()
        if not rejected:
            console.print("Rejected records: none")
        else:
            table = Table(title=f"Rejected records ({len(rejected)}), kept in quarantine")
            for column in ("source", "record", "reason"):
                table.add_column(column)
            for entry in rejected[:25]:
                table.add_row(escape(entry.source), escape(entry.locator), escape(entry.reason[:110]))
            console.print(table)

        started = time.monotonic()
        again = await runtime.sync()
        console.print(f"Second sync (nothing changed): {sum(r.sent for r in again)} entities sent, "
                      f"{sum(r.unchanged for r in again)} unchanged, {time.monotonic() - started:.2f} s",
                      highlight=False)

        stations = await _query(runtime, console, "Air quality within 3 km of the centre", "AirQualityObserved",
                                {"georel": "near;maxDistance==3000", "geometry": "Point",
                                 "coordinates": f"[{CENTRE[0]},{CENTRE[1]}]",
                                 "attrs": "name,no2,pm10,dateObserved"})
        if stations:
            await _history(runtime, console, stations[0], "no2", 8)
        await _query(runtime, console, "Car parks with free spaces", "OffStreetParking",
                     {"q": "availableSpotNumber>0", "attrs": "name,availableSpotNumber,totalSpotNumber"})
        districts = await runtime.client.query(
            {"type": "AdministrativeArea", "options": "keyValues", "attrs": "name,location"},
            context=_context("AdministrativeArea", settings))
        centre = next((d for d in districts if "ЦЕНТЪР" in str(d.get("name", "")).upper()),
                      districts[0] if districts else None)
        if centre is not None:
            geometry = centre["location"]
            coords = orjson.dumps(geometry["coordinates"]).decode()
            stop_type = "GtfsStop" if "GtfsStop" in by_type else "PointOfInterest"
            await _query(runtime, console, f"{stop_type} entities inside the district {centre.get('name')}",
                         stop_type, {"georel": "within", "geometry": geometry["type"],
                                     "coordinates": coords, "attrs": "name"})
    ok = all(r.complete and r.pending == 0 for r in reports)
    return 0 if ok else 1
