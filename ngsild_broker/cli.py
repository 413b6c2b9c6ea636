"""`burgas-adapter broker ...` and `python -m ngsild_broker ...`: the broker's Typer app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ngsild_broker.server import serve as serve_broker
from ngsild_broker.settings import BrokerSettings

app = typer.Typer(help="The embedded NGSI-LD broker.", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 1026,
    db: Annotated[Path | None, typer.Option(help="SQLite database file (kept across restarts).")] = None,
    memory: Annotated[bool, typer.Option("--memory", help="Keep everything in memory.")] = False,
    contexts_dir: Annotated[Path | None, typer.Option(help="Offline @context files.")] = None,
    max_payload: Annotated[int, typer.Option(help="Largest accepted request body in bytes.")] = 1024 * 1024,
    history: Annotated[bool, typer.Option(help="Record attribute history (the temporal API).")] = True,
    retention_days: Annotated[float | None, typer.Option(help="Prune history older than this.")] = None,
    temporal_limit: Annotated[int, typer.Option(help="Instances per attribute in one temporal answer.")] = 20,
) -> None:
    """Serve /ngsi-ld/v1 over HTTP until interrupted."""
    if db is not None and memory:
        raise typer.BadParameter("--db and --memory exclude each other")
    if db is None and not memory:
        db = Path(".state/broker.sqlite")
    serve_broker(BrokerSettings(host=host, port=port, db_path=db, contexts_dir=contexts_dir,
                                max_payload=max_payload, temporal=history,
                                temporal_retention_days=retention_days, temporal_limit=temporal_limit))
