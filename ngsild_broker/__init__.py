"""An NGSI-LD broker on FastAPI + SQLite that answers like Orion-LD (ETSI mode); a package of its own,
importing nothing from the adapter."""

from __future__ import annotations

from ngsild_broker.app import create_app
from ngsild_broker.server import EmbeddedBroker
from ngsild_broker.settings import BrokerSettings

__all__ = ["BrokerSettings", "EmbeddedBroker", "create_app"]
