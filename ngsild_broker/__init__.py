"""An NGSI-LD broker on FastAPI + SQLite that answers like Orion-LD (ETSI mode); a package of its own,
importing nothing from the adapter.

The names below are imported on first use (PEP 562): `import ngsild_broker.cli` or
`ngsild_broker.core_context` must not pull in FastAPI and the whole broker (the adapter's CLI
starts in a fraction of a second because of it).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ngsild_broker.app import create_app
    from ngsild_broker.server import EmbeddedBroker
    from ngsild_broker.settings import BrokerSettings

__all__ = ["BrokerSettings", "EmbeddedBroker", "create_app"]
_HOMES = {"BrokerSettings": "ngsild_broker.settings", "EmbeddedBroker": "ngsild_broker.server",
          "create_app": "ngsild_broker.app"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ngsild_broker' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value
