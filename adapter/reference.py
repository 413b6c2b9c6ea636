"""Reference files (Smart Data Models schemas and contexts, the NGSI-LD core context).

They are read from a local directory when there is one (``BURGAS_SHARED_DIR``, default
``../shared`` next to the project) and otherwise downloaded once from their public URLs into a
cache directory, so a user's machine without ``../shared`` works as soon as it has been online once.
Tests never download: they point ``BURGAS_SHARED_DIR`` at the reference copy.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import httpx
import orjson

from adapter.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CORE_CONTEXT_FILE = "ngsi-ld/ngsi-ld-core-context-v1.8.jsonld"
SDM_COMMON_URL = "https://smart-data-models.github.io/data-models/common-schema.json"
_MAX_DOWNLOAD = 20 * 1024 * 1024


def shared_dir() -> Path | None:
    """The local reference directory, or None when there is none."""
    configured = os.environ.get("BURGAS_SHARED_DIR")
    path = Path(configured) if configured else PROJECT_ROOT.parent / "shared"
    return path if path.is_dir() else None


def cache_dir() -> Path:
    """Where downloaded reference files are kept."""
    base = os.environ.get("BURGAS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "burgas-adapter")
    return Path(base)


def smart_data_models_dirs() -> list[Path]:
    """The Smart Data Models reference directories that exist (`<dir>/<subject>/context.jsonld`):
    the shared copy's, then the download cache's. What `burgas-adapter broker serve` reads the
    official subject contexts from."""
    bases = [shared_dir(), cache_dir()]
    return [base / "smart-data-models" for base in bases
            if base is not None and (base / "smart-data-models").is_dir()]


def public_url(relative: str) -> str:
    """The public URL of a reference file given by its path relative to the shared directory."""
    if relative == CORE_CONTEXT_FILE:
        return CORE_CONTEXT_URL
    if relative.startswith("smart-data-models/"):
        rest = relative.removeprefix("smart-data-models/")
        if rest == "common-schema.json":
            return SDM_COMMON_URL
        subject, _, file = rest.partition("/")
        return f"https://raw.githubusercontent.com/smart-data-models/{subject}/master/{file}"
    raise ConfigError(f"no public URL known for reference file {relative!r}")


def reference_path(relative: str, *, timeout: float = 20.0) -> Path:
    """Local path of a reference file: the shared copy, else a cached download."""
    local = shared_dir()
    if local is not None and (local / relative).is_file():
        return local / relative
    cached = cache_dir() / relative
    if cached.is_file():
        return cached
    url = public_url(relative)
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_DOWNLOAD:
                    raise ConfigError(f"reference file {url} is larger than {_MAX_DOWNLOAD} bytes")
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"reference file {relative!r} is not in BURGAS_SHARED_DIR ({local}) nor cached, "
            f"and downloading {url} failed: {exc}",
            offline=isinstance(exc, httpx.TransportError)) from exc
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(cached.suffix + ".part")
    tmp.write_bytes(bytes(body))
    tmp.replace(cached)
    return cached


@lru_cache(maxsize=256)
def load_json(relative: str) -> object:
    """Parsed JSON of a reference file."""
    return orjson.loads(reference_path(relative).read_bytes())


def core_context() -> dict:
    """The ETSI NGSI-LD core @context v1.8 (the document, with its top-level "@context"): package
    data of the broker package, never downloaded."""
    from ngsild_broker.core_context import core_context as packaged

    return packaged()


def prefetch() -> list[str]:
    """Make the Smart Data Models subject contexts local (for BURGAS_NGSI_CONTEXT=official with the
    embedded broker); returns what could not be had. Run at set-up; optional: nothing else needs
    them, and the NGSI-LD core context ships with the broker package. Offline, the first failed
    download ends it (one short wait, not one per file)."""
    from adapter.ngsi.context import subjects

    wanted = [f"smart-data-models/{s}/context.jsonld" for s in subjects() if s.startswith("dataModel.")]
    missing = []
    for index, relative in enumerate(wanted):
        try:
            reference_path(relative, timeout=5.0)
        except ConfigError as exc:
            missing.append(f"{relative}: {exc.reason}")
            if exc.context.get("offline"):  # no network: do not wait for each file
                if wanted[index + 1:]:
                    missing.append(f"{len(wanted) - index - 1} more Smart Data Models contexts: skipped (offline)")
                break
    return missing


if __name__ == "__main__":  # `python -m adapter.reference`: the Makefile's set-up step
    import sys

    problems = prefetch()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if problems:
        print("warning: the Smart Data Models contexts above are only needed for "
              "BURGAS_NGSI_CONTEXT=official with the embedded broker; run `python -m adapter.reference` "
              "again when online", file=sys.stderr)
    sys.exit(0)
