"""NGSI-LD subscriptions: validation and CRUD routes, matching of entity changes, notification content.

The app wires it as (app.py does): `manager = SubscriptionManager(broker_state)`, which registers
itself as `broker_state.subscriptions` for the routes; `await manager.start()` at startup,
`broker_state.on_change = manager.entities_changed`, `await manager.stop()` at shutdown, and
`app.include_router(router)` (paths carry the /ngsi-ld/v1 prefix, as the other routers' do).
"""

from ngsild_broker.subscriptions.manager import SubscriptionManager
from ngsild_broker.subscriptions.routes import router
from ngsild_broker.subscriptions.validation import validate

__all__ = ["SubscriptionManager", "router", "validate"]
