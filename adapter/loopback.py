"""Loopback addresses are reached directly, never through a proxy named in the environment.

httpx sends every request through HTTP(S)_PROXY / ALL_PROXY unless NO_PROXY lists the host, and a
proxy cannot reach this machine's loopback: with a corporate proxy set (or an unusable one, on a
machine without network), the embedded broker, the samples server and a broker on 127.0.0.1
would all look down. Pass ``mounts=DIRECT`` to every httpx client the adapter makes.
"""

from __future__ import annotations

# httpx: a mount whose transport is None uses the client's own (direct) transport.
DIRECT: dict[str, None] = {"all://127.0.0.1": None, "all://localhost": None, "all://[::1]": None}
