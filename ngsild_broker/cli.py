"""`burgas-adapter broker ...` and `python -m ngsild_broker ...`: the broker's Typer app.

Nothing heavy is imported until `serve` runs: the adapter's CLI mounts this app, and its `--help`
or a `sync --broker-url` must not pay for FastAPI and the broker.
"""

# No `from __future__ import annotations`: `serve` is defined inside build_app and its Annotated
# options use build_app's arguments, which Typer could not evaluate from strings.
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DB = Path(".state/broker.sqlite3")  # the file the adapter's own embedded broker uses


def build_app(reference_dirs: Callable[[], list[Path]] | None = None,
              reference_default: str = "none") -> typer.Typer:
    """The broker's Typer app; `reference_dirs()` gives the Smart Data Models reference
    directories used when `--reference-dir` is not given (`reference_default` says which in --help)."""
    app = typer.Typer(help="The embedded NGSI-LD broker.", no_args_is_help=True)

    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 1026,
        db: Annotated[Path | None, typer.Option(help="SQLite database file (kept across restarts).",
                                                show_default=str(DEFAULT_DB))] = None,
        memory: Annotated[bool, typer.Option("--memory", metavar="", help="Keep everything in memory "
                                             "instead (lost on exit); excludes --db.")] = False,
        contexts_dir: Annotated[Path | None, typer.Option(
            help="Offline @context files: <dir>/index.json (URL -> file), <dir>/<host>/<path> or "
                 "<dir>/<file name>.")] = None,
        reference_dir: Annotated[list[Path] | None, typer.Option(
            metavar="DIR", help="Smart Data Models reference directory (<dir>/<subject>/context.jsonld): the official "
                 "subject @context URLs are read from it, offline. Repeatable.",
            show_default=reference_default)] = None,
        max_payload: Annotated[int, typer.Option(help="Largest accepted request body in bytes.")] = 1024 * 1024,
        history: Annotated[bool, typer.Option(help="Record attribute history (the temporal API).")] = True,
        retention_days: Annotated[float | None, typer.Option(help="Prune history older than this.")] = None,
        temporal_limit: Annotated[int, typer.Option(
            help="Instances per attribute in one temporal answer.")] = 20,
    ) -> None:
        """Serve /ngsi-ld/v1 over HTTP until interrupted."""
        from ngsild_broker.listen import listen
        from ngsild_broker.server import serve as serve_broker
        from ngsild_broker.settings import BrokerSettings
        from ngsild_broker.storage import StoreFormatError

        if memory and db is not None:
            raise typer.BadParameter("--db and --memory exclude each other")
        dirs = list(reference_dir) if reference_dir else (reference_dirs() if reference_dirs else [])
        try:
            sock = listen(host, port)
        except OSError as exc:
            typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        db_path = None if memory else db or DEFAULT_DB
        if db_path is not None:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            serve_broker(BrokerSettings(host=host, port=port, db_path=db_path, contexts_dir=contexts_dir,
                                        reference_dirs=[d for d in dirs if d.is_dir()],
                                        max_payload=max_payload, temporal=history,
                                        temporal_retention_days=retention_days,
                                        temporal_limit=temporal_limit), sock)
        except StoreFormatError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return app


app = build_app()
