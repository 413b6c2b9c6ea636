"""Binding a listening socket before a server starts, so a busy port fails before anything says
"started" (uvicorn binds after the app's startup and then exits 3)."""

from __future__ import annotations

import socket


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for `host:port` (0 = any free port); OSError (e.g. port in use) as is."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
