"""The embedded NGSI-LD broker: FastAPI + SQLite, answering like Orion-LD (ETSI mode)."""

from __future__ import annotations

from adapter.embedded_broker.app import create_app
from adapter.embedded_broker.server import EmbeddedBroker
from adapter.embedded_broker.settings import BrokerSettings

__all__ = ["BrokerSettings", "EmbeddedBroker", "create_app"]
