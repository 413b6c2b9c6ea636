"""Everything one adapter process needs, assembled once: state, broker, clients, pipeline.

Used by the CLI and the service. When no broker URL is configured it starts the embedded broker
in-process and points it at the generated @context documents (and, when present, local copies of
the official Smart Data Models contexts), so that nothing needs the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from adapter.config import PipelineConfig
from adapter.errors import AdapterError, AuthError, ConfigError, FatalError
from adapter.loopback import DIRECT
from adapter.ngsi.client import BrokerClient
from adapter.ngsi.context import (
    SDM_CONTEXT_URL,
    ContextMode,
    generated_context_document,
    generated_context_url,
    subjects,
)
from adapter.reference import cache_dir, shared_dir
from adapter.settings import Settings
from adapter.sources.urls import PLAIN_URLS, UrlResolver
from adapter.sync.factory import build_mapper, build_source, is_static, is_stream
from adapter.sync.hosting import HostedContexts
from adapter.sync.pipeline import Pipeline
from adapter.sync.report import SyncReport, error_kind
from adapter.sync.skip import salt_for
from adapter.sync.state import StateStore
from adapter.sync.status import record_run

if TYPE_CHECKING:
    from ngsild_broker import EmbeddedBroker

logger = logging.getLogger(__name__)
_SOURCE_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def write_generated_contexts(directory: Path, base_url: str) -> dict[str, Path]:
    """Write every subject's generated @context; returns URL -> file."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for subject in subjects():
        path = directory / f"{subject}.jsonld"
        body = orjson.dumps(generated_context_document(subject), option=orjson.OPT_INDENT_2)
        if not path.exists() or path.read_bytes() != body:
            path.write_bytes(body)
        files[generated_context_url(subject, base_url)] = path
    return files


def local_reference_contexts() -> dict[str, Path]:
    """Official context URLs -> local copies (reference directory or download cache), as far as
    they are here; the embedded broker then needs no network for them either."""
    files = {}
    # The core context is built into the broker (package data), so only the subject contexts.
    wanted = {SDM_CONTEXT_URL.format(subject=subject): f"smart-data-models/{subject}/context.jsonld"
              for subject in subjects()}
    local = shared_dir()
    for url, relative in wanted.items():
        for base in (local, cache_dir()):
            if base is not None and (base / relative).is_file():
                files[url] = base / relative
                break
    return files


class Runtime:
    """State, broker (embedded or remote), HTTP clients and the pipeline of one process."""

    def __init__(self, settings: Settings, config: PipelineConfig, *, full: bool = False,
                 allow_deletes: frozenset[str] = frozenset(), urls: UrlResolver = PLAIN_URLS) -> None:
        self.settings = settings
        self.config = config
        self.full = full  # map every record again, ignoring source versions and raw hashes
        self.allow_deletes = allow_deletes  # sources whose deletions skip the mass-deletion guard
        self.urls = urls  # resolves configured URLs (the CLI's also serves the bundled samples)
        self.broker: EmbeddedBroker | None = None
        self.state: StateStore | None = None
        self.http: httpx.AsyncClient | None = None
        self.client: BrokerClient | None = None
        self.pipeline: Pipeline | None = None

    @property
    def broker_url(self) -> str:
        """The NGSI-LD broker this process writes to."""
        if self.settings.broker_url:
            return self.settings.broker_url.rstrip("/")
        if self.broker is None:
            raise ConfigError("the embedded broker is not running")
        return self.broker.url

    def start_embedded_broker(self) -> None:
        """Start the in-process broker with offline @context files."""
        from ngsild_broker import BrokerSettings, EmbeddedBroker  # FastAPI: only when it is used

        state_dir = self.settings.state_dir
        contexts = write_generated_contexts(state_dir / "contexts", self.settings.context_base_url)
        contexts.update(local_reference_contexts())
        db = state_dir / "broker.sqlite3" if self.settings.embedded_broker_persist else None
        self.broker = EmbeddedBroker(BrokerSettings(
            port=self.settings.embedded_broker_port, db_path=db, context_files=contexts,
            # A sensor's day in one temporal answer (96 quarter-hours per attribute); the broker's
            # default, 20, is the ETSI suite's.
            temporal_limit=1000)).start()

    async def __aenter__(self) -> Runtime:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.broker_url:
            self.start_embedded_broker()
        self.state = StateStore(self.settings.state_file)
        self.http = httpx.AsyncClient(timeout=_SOURCE_TIMEOUT, follow_redirects=True, mounts=DIRECT)
        self.client = BrokerClient.from_settings(self.settings, base_url=self.broker_url)
        # A broker of its own (not the embedded one, which has the documents preloaded) is given
        # the generated @context documents to host: it then needs neither this service nor network.
        hosting = HostedContexts(self.client, self.state, self.settings.context_base_url) \
            if self.settings.broker_url else None
        self.pipeline = Pipeline(
            self.state, self.client, tenant=self.settings.tenant,
            context_mode=ContextMode(self.settings.ngsi_context),
            context_base_url=self.settings.context_base_url,
            delete_missing=self.settings.delete_missing, upsert_mode=self.settings.upsert_mode,
            hosting=hosting, temporal_url=self.settings.temporal_url)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.http is not None:
            await self.http.aclose()
        if self.state is not None:
            self.state.close()
        if self.broker is not None:
            self.broker.stop()
        self.urls.close()  # e.g. the loopback server of `samples:` GIS URLs, if a sync started it

    async def sync_source(self, source_config: Any, *, full: bool | None = None) -> SyncReport:
        """One sync of one configured source; a failing source gives a report, not an exception
        (a source refusing our credentials too: the other sources still run).

        `full` (default: the runtime's) maps every record again, ignoring source versions and
        raw hashes (a quarantine retry needs every record looked at).
        """
        assert self.pipeline is not None and self.http is not None
        try:
            source = build_source(source_config, self.http, urls=self.urls)
            mapper = build_mapper(source_config)
            report = await self.pipeline.run_once(
                source_config.name, source, mapper, snapshot=source_config.snapshot,
                static=is_static(source_config), salt=salt_for(source_config),
                full=self.full if full is None else full,
                fetch_deadline=source_config.fetch_deadline_seconds,
                max_delete_share=source_config.max_delete_share,
                allow_deletes=source_config.name in self.allow_deletes, history=source_config.history)
        except AdapterError as exc:
            if isinstance(exc, FatalError) and not isinstance(exc, AuthError):
                raise
            report = SyncReport(source_config.name, "", datetime.now(UTC).isoformat(timespec="seconds"))
            report.last_error = str(exc)
            report.error_kind = error_kind(exc)
        except Exception as exc:  # a bug met by one source must not stop the others
            logger.exception("%s: unexpected error", source_config.name)
            report = SyncReport(source_config.name, "", datetime.now(UTC).isoformat(timespec="seconds"))
            report.last_error = f"{type(exc).__name__}: {exc}"
            report.error_kind = error_kind(exc)
        assert self.state is not None
        record_run(self.state, self.settings.tenant or "", report)
        return report

    async def sync(self, names: list[str] | None = None,
                   progress: Callable[[str, SyncReport | None], None] | None = None) -> list[SyncReport]:
        """One sync of every selected source (by name or group), in configuration order.

        ``progress(name, None)`` is called when a source starts and ``progress(name, report)``
        when it is done (the CLI draws its progress bar from these).
        """
        reports = []
        for cfg in self.config.select(names):
            if is_stream(cfg):
                logger.info("%s is a live stream: it runs under `burgas-adapter serve`", cfg.name)
                continue
            if progress is not None:
                progress(cfg.name, None)
            report = await self.sync_source(cfg)
            if progress is not None:
                progress(cfg.name, report)
            reports.append(report)
        return reports
