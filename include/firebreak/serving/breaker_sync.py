"""One worker's breaker shared with the other workers through the state DB.

Each worker runs its own :class:`~firebreak.containment.breaker.Breaker` on its own
traffic. A local transition is published by compare-and-set on the breaker row's
generation: the first worker to move from a generation wins and records the
``breaker_events`` row; the others adopt the winner's row at their next refresh, as they
adopt an operator's forced open or release. A breaker guards one champion version: a row
written for another version does not apply, and a new champion starts closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

import sqlalchemy as sa

from firebreak.containment.breaker import Breaker, Transition
from firebreak.containment.state import BreakerRow, RoutingStore
from firebreak.incidents.enums import BreakerState
from firebreak.serving.metrics import ModelMetrics

log = logging.getLogger(__name__)


class Published(Enum):
    """What became of a local transition."""

    WON = "won"  # it is the shared state now, recorded as a breaker event
    LOST = "lost"  # another worker moved the row first: its row is adopted at the next refresh
    ALONE = "alone"  # the state DB is unreachable: nobody to share with, this worker decides alone


class BreakerSync:
    """Publishes the local breaker's transitions and adopts the shared row.

    Args:
        breaker: This worker's breaker.
        store: The routing store (breaker rows and events).
        clock: The breaker's clock (``since`` of a breaker closed for a new champion).
        metrics: The model's metrics (breaker state gauge, transitions counter).
    """

    def __init__(
        self, breaker: Breaker, store: RoutingStore, *, clock: Callable[[], float], metrics: ModelMetrics
    ) -> None:
        self.breaker = breaker
        self.store = store
        self.clock = clock
        self.generation: int | None = None  # of the shared row this worker last adopted or wrote
        self._m = metrics

    def publish(self, transition: Transition, *, version: str | None) -> Published:
        """Share a local transition on champion ``version`` (first writer wins) and record it."""
        self._m.transition(transition)
        self._m.breaker.set(transition.target.gauge)
        try:
            won = self.store.compare_and_set_breaker(
                self.breaker.model,
                expected_generation=self.generation,
                state=transition.target,
                since=transition.at,
                version=version,
                forced=self.breaker.forced,
                reason=transition.reason,
            )
            if won:
                self.generation = (self.generation or 0) + 1
                self.store.add_breaker_event(
                    self.breaker.model,
                    source=transition.source,
                    target=transition.target,
                    version=version,
                    reason=transition.reason,
                    data=transition.rates,
                )
            published = Published.WON if won else Published.LOST
        except sa.exc.SQLAlchemyError:
            published = Published.ALONE
        log.warning(
            "breaker %s: %s -> %s (%s)", self.breaker.model, transition.source, transition.target, transition.reason
        )
        return published

    def follow(self, row: BreakerRow | None, *, serving: str | None) -> None:
        """Adopt the shared row if it moved since this worker last saw it; ``serving`` is the champion version."""
        if row is None or row.generation == self.generation:
            return
        self.generation = row.generation
        # A row written for another (older) champion version does not apply, unless an
        # operator forced it (or released a force, or wrote it for no version in particular).
        if row.forced or self.breaker.forced or row.version in (serving, None):
            self.breaker.adopt(BreakerState(row.state), since=row.since, forced=row.forced, reason=row.reason)
        elif self.breaker.state != BreakerState.CLOSED and not self.breaker.forced:
            self.breaker.adopt(BreakerState.CLOSED, since=self.clock(), forced=False, reason="new champion")
        self._m.breaker.set(self.breaker.state.gauge)

    def champion_loaded(self, previous: str | None, current: str | None) -> None:
        """A breaker guards one version: a new champion starts closed, unless an operator forced it."""
        if current and previous and current != previous and not self.breaker.forced:
            self.breaker.adopt(BreakerState.CLOSED, since=self.clock(), forced=False, reason="new champion")
        self._m.breaker.set(self.breaker.state.gauge)
