"""`burgas-adapter`: one Typer app. Exit codes come from the error classes (adapter.errors).

0 success; 1 unexpected error; 2 configuration; 3 authorisation; 4 a source or the broker was
unavailable (work is kept in the outbox); 5 records or entities were rejected (``--strict``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from adapter.config import load_config
from adapter.errors import AdapterError
from adapter.logs import setup_logging
from adapter.settings import Settings, load_settings
from adapter.sync.report import SyncReport
from ngsild_broker.cli import app as broker_app

app = typer.Typer(help="Sync Smart Burgas and GIS-Burgas into an NGSI-LD broker.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(broker_app, name="broker")


@app.callback()
def _process() -> None:
    """Process-wide settings every command shares."""
    from adapter.process import tune_gc

    tune_gc()

quarantine_app = typer.Typer(help="Records and entities set aside with their reason.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
# Pipes and CI logs get a wide fixed width, so tables are not squeezed to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
logger = logging.getLogger(__name__)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Pipeline file (default: bundled Burgas).")]
BrokerOpt = Annotated[str | None,
                      typer.Option("--broker-url", help="NGSI-LD broker (default: start the embedded one).")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="NGSILD-Tenant to write to.")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="Where state, outbox and quarantine live.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _settings(broker_url: str | None, tenant: str | None, state_dir: Path | None) -> Settings:
    overrides: dict[str, Any] = {}
    if broker_url:
        overrides["broker_url"] = broker_url
    if tenant:
        overrides["tenant"] = tenant
    if state_dir:
        overrides["state_dir"] = state_dir
    settings = load_settings(**overrides)
    setup_logging(settings.log_format)
    return settings


def _fail(exc: AdapterError) -> None:
    console.print(f"[red]error[/red]: {escape(str(exc))}", highlight=False)
    raise typer.Exit(exc.exit_code)


def report_table(reports: list[SyncReport], title: str = "Sync") -> Table:
    """One row per source."""
    table = Table(title=title)
    for column in ("source", "records", "entities", "readings", "sent", "unchanged", "deleted",
                   "rejected", "pending", "complete", "seconds", "last error"):
        table.add_column(column, justify="left" if column in ("source", "last error") else "right")
    for r in reports:
        table.add_row(r.source, str(r.records_in), str(r.mapped), str(r.readings), str(r.sent),
                      str(r.unchanged), str(r.deleted), str(r.records_rejected + r.rejected), str(r.pending),
                      "yes" if r.complete else "[red]no[/red]", f"{r.duration:.2f}",
                      escape((r.last_error or "")[:80]))
    return table


def exit_code(reports: list[SyncReport], strict: bool) -> int:
    """0 when every source synced; 4 when one failed or work waits; 5 for rejections if strict."""
    if any(not r.ok for r in reports):
        return 4
    if strict and any(r.records_rejected or r.rejected for r in reports):
        return 5
    return 0


@app.command()
def sync(sources: Annotated[list[str] | None, typer.Argument(help="Sources or groups (default: all).")] = None,
         config: ConfigOpt = None, broker_url: BrokerOpt = None, tenant: TenantOpt = None,
         state_dir: StateOpt = None,
         strict: Annotated[bool, typer.Option(help="Exit 5 when anything was rejected.")] = False,
         full: Annotated[bool, typer.Option(
             help="Fetch and map everything again (ignore layer versions and unchanged records).")] = False,
         as_json: JsonOpt = False) -> None:
    """One pass over the chosen sources (e.g. `sync smartburgas`)."""
    from adapter.runtime import Runtime

    async def run() -> list[SyncReport]:
        async with Runtime(settings, pipeline, full=full) as runtime:
            if not console.is_terminal:  # no bars in logs, pipes and CI
                return await runtime.sync(sources)
            chosen = pipeline.select(sources)
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                          transient=True) as bar:
                task = bar.add_task("sync", total=len(chosen))

                def progress(name: str, report: SyncReport | None) -> None:
                    if report is None:
                        bar.update(task, description=f"sync {name}")
                    else:
                        bar.advance(task)
                return await runtime.sync(sources, progress)

    try:
        settings = _settings(broker_url, tenant, state_dir)
        pipeline = load_config(config)
        reports = asyncio.run(run())
    except AdapterError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write(orjson.dumps([r.as_dict() for r in reports], option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console.print(report_table(reports))
        for r in reports:
            for reason in r.rejections[:5]:
                console.print(f"  [yellow]rejected[/yellow] {escape(reason)}", highlight=False)
    raise typer.Exit(exit_code(reports, strict))


@app.command()
def export(output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file to write.")],
           sources: Annotated[list[str] | None, typer.Argument(help="Sources or groups (default: all).")] = None,
           config: ConfigOpt = None,
           form: Annotated[str, typer.Option(help="normalized | concise | keyValues")] = "normalized",
           history: Annotated[bool,
                              typer.Option(help="Also write every reading of each time series.")] = False) -> None:
    """Write the mapped entities (with @context) to a file, without a broker."""
    from adapter.exporter import export_entities

    try:
        settings = _settings(None, None, None)
        counts = asyncio.run(export_entities(load_config(config), sources, output, form, settings, history))
    except AdapterError as exc:
        _fail(exc)
    console.print(f"wrote {counts['entities']} entities ({counts['readings']} readings, "
                  f"{counts['rejected']} rejected records) to {output}", highlight=False)


@app.command("check-config")
def check_config(config: ConfigOpt = None, broker_url: BrokerOpt = None, tenant: TenantOpt = None) -> None:
    """Validate settings and the pipeline file; show them with secrets redacted."""
    from adapter.sync.factory import build_mapper

    try:
        settings = _settings(broker_url, tenant, None)
        pipeline = load_config(config)
        for source in pipeline.sources:
            build_mapper(source)
    except AdapterError as exc:
        _fail(exc)
    console.print_json(orjson.dumps(settings.redacted(), default=str).decode())
    table = Table(title="Sources")
    for column in ("name", "group", "type", "interval s", "enabled"):
        table.add_column(column)
    for s in pipeline.sources:
        table.add_row(s.name, s.group, s.type, f"{s.interval_seconds:g}", "yes" if s.enabled else "no")
    console.print(table)


@app.command()
def status(state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Entities per source, pending outbox work, quarantine and the last run of each source."""
    from adapter.sync.status import read_status

    try:
        settings = _settings(None, None, state_dir)
        info = read_status(settings)
    except AdapterError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
        return
    table = Table(title=f"State in {settings.state_file}")
    for column in ("tenant", "source", "entities", "pending", "quarantined", "last run", "last error"):
        table.add_column(column)
    for row in info["sources"]:
        table.add_row(row["tenant"] or "-", row["source"], str(row["entities"]), str(row["pending"]),
                      str(row["quarantined"]), row.get("last_run") or "",
                      escape((row.get("last_error") or "")[:60]))
    console.print(table)


@quarantine_app.command("list")
def quarantine_list(source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
                    state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Quarantined items with their reasons."""
    from adapter.sync.quarantine import Quarantine
    from adapter.sync.state import StateStore

    settings = _settings(None, None, state_dir)
    store = StateStore(settings.state_file)
    try:
        entries = Quarantine(store).entries(source=source)
    finally:
        store.close()
    if as_json:
        rows = [{"id": e.id, "tenant": e.tenant, "source": e.source, "kind": e.kind, "locator": e.locator,
                 "reason": e.reason, "retries": e.retry_count, "last_seen": e.last_seen} for e in entries]
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(title=f"Quarantine ({len(entries)})")
    for column in ("id", "source", "kind", "record / entity", "reason", "retries"):
        table.add_column(column)
    for e in entries:
        table.add_row(str(e.id), escape(e.source), e.kind, escape(e.locator), escape(e.reason[:100]),
                      str(e.retry_count))
    console.print(table)


@quarantine_app.command("retry")
def quarantine_retry(ids: Annotated[list[int] | None, typer.Argument(help="Quarantine ids (default: all).")] = None,
                     config: ConfigOpt = None, broker_url: BrokerOpt = None, tenant: TenantOpt = None,
                     state_dir: StateOpt = None) -> None:
    """Send quarantined entities again and re-map quarantined records (by re-syncing their source)."""
    from adapter.sync.retry import retry_quarantine

    try:
        settings = _settings(broker_url, tenant, state_dir)
        outcome = asyncio.run(retry_quarantine(settings, load_config(config), list(ids) if ids else None))
    except AdapterError as exc:
        _fail(exc)
    console.print(f"retried {outcome['entities']} entity operations and {outcome['records']} records "
                  f"of {len(outcome['sources'])} source(s): {outcome['records_resolved']} records now map; "
                  f"{outcome['still_quarantined']} still quarantined", highlight=False)
    if outcome["not_retried"]:
        console.print("not retried (source unknown, disabled, or its run did not complete): "
                      + ", ".join(outcome["not_retried"]), highlight=False)


@app.command()
def run(sources: Annotated[list[str] | None, typer.Argument(help="Sources or groups (default: all).")] = None,
        config: ConfigOpt = None, broker_url: BrokerOpt = None, tenant: TenantOpt = None,
        state_dir: StateOpt = None) -> None:
    """Keep syncing forever, each source on its interval (Ctrl-C stops)."""
    from adapter.runtime import Runtime
    from adapter.sync.coordinator import Coordinator

    async def forever() -> None:
        async with Runtime(settings, pipeline) as runtime:
            coordinator = Coordinator(runtime, pipeline.select(sources))
            await coordinator.run_forever()

    try:
        settings = _settings(broker_url, tenant, state_dir)
        pipeline = load_config(config)
        asyncio.run(forever())
    except AdapterError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def serve(config: ConfigOpt = None, broker_url: BrokerOpt = None, tenant: TenantOpt = None,
          state_dir: StateOpt = None,
          host: Annotated[str | None,
                          typer.Option(help="Address to bind (default BURGAS_SERVICE_HOST, 127.0.0.1).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default BURGAS_SERVICE_PORT, 8080).")] = None) -> None:
    """Run the service: polled sources on schedule, MQTT streams, health/status/metrics/@context API."""
    import uvicorn

    from adapter.service.app import create_app

    try:
        settings = _settings(broker_url, tenant, state_dir)
        application = create_app(settings, load_config(config))
    except AdapterError as exc:
        _fail(exc)
    # log_config=None: uvicorn keeps the logging set up above (plain or JSON, BURGAS_LOG_FORMAT).
    uvicorn.run(application, host=host or settings.service_host, port=port or settings.service_port,
                log_config=None, access_log=False)


@app.command()
def demo(state_dir: StateOpt = None) -> None:
    """Start the embedded broker, sync every bundled Burgas source, show the result and queries."""
    from adapter.demo import run_demo

    try:
        settings = _settings(None, None, state_dir)
        code = asyncio.run(run_demo(settings, console))
    except AdapterError as exc:
        _fail(exc)
    raise typer.Exit(code)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m adapter.cli`
    main()
