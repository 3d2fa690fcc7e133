"""The state DB's four stores side by side, for tests that assert across them."""

from __future__ import annotations

from firebreak.alerts.store import DeliveryStore
from firebreak.containment.state import RoutingStore
from firebreak.incidents.store import IncidentStore
from firebreak.registry.ledger import AliasLedger


class State:
    """Incidents, routing and breakers, the alias ledger and alert deliveries of one state DB."""

    def __init__(self, url: str) -> None:
        self.incidents = IncidentStore(url)
        self.routing = RoutingStore(url)
        self.ledger = AliasLedger(url)
        self.alerts = DeliveryStore(url)

    def begin(self):  # type: ignore[no-untyped-def]
        """A connection on the shared engine, for tests that set rows directly."""
        return self.incidents.begin()
