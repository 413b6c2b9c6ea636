"""Where a configured URL points: the one seam between the sources and the bundled demo data.

A :class:`UrlResolver` turns the URL a config entry names into the URL or path a source reads.
Production code knows only this interface and :data:`PLAIN_URLS`, which leaves URLs as they are.
The bundled configuration's defaults are ``samples:`` URLs (bundled data served on loopback,
``adapter.samples.serving``): the CLI passes that resolver to the runtime, so the sync and the
service never import the sample servers themselves.
"""

from __future__ import annotations

from typing import Protocol

from adapter.errors import ConfigError

SAMPLES_SCHEME = "samples:"


class UrlResolver(Protocol):
    """Resolves configured URLs; :meth:`close` releases what resolving started (a server)."""

    def resolve(self, url: str) -> str:
        """The URL or path a source reads for the configured ``url``."""
        ...

    def close(self) -> None:
        """Stop whatever resolving started (a later resolve may start it again)."""
        ...


class PlainUrls:
    """URLs as configured; a ``samples:`` URL is an error that says who resolves it."""

    def resolve(self, url: str) -> str:
        if url.startswith(SAMPLES_SCHEME):
            # Without this, the URL would be read as a relative file path and fail as "not found".
            raise ConfigError(f"{url!r} names bundled sample data: run it through `burgas-adapter` "
                              "(sync, run, serve, export, demo), or set the source's URL")
        return url

    def close(self) -> None:
        pass


PLAIN_URLS = PlainUrls()
