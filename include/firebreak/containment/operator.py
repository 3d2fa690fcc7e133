"""Force a model's serving breaker open, or release it: containment by hand.

SOP stage *Contain*, done by a person: ``firebreak breaker open|close`` and the incident
console call :func:`force_breaker`. The breaker row is shared by every gateway worker
(compare-and-set on its generation, the breaker event written in the same
transaction), so all workers obey within their refresh interval.
A forced-open breaker stays open until it is released; releasing it lets the gateway's
own state machine decide again. Routing (contain/restore) is a separate state moved by
:mod:`firebreak.containment.routing`.
"""

from __future__ import annotations

import time
from typing import Literal

from firebreak.containment.state import BreakerRow, RoutingStore
from firebreak.errors import RoutingConflict
from firebreak.incidents.enums import BreakerState

ATTEMPTS = 10  # compare-and-set against busy gateway workers


def force_breaker(
    store: RoutingStore, model: str, action: Literal["open", "close"], *, by: str, reason: str
) -> BreakerRow:
    """Force ``model``'s breaker open (``open``) or release it (``close``); a breaker event records who and why.

    Raises:
        RoutingConflict: The breaker kept changing under the update.
    """
    target = BreakerState.OPEN if action == "open" else BreakerState.CLOSED
    row = store.get_breaker(model)
    for _ in range(ATTEMPTS):
        changed = store.compare_and_set_breaker(
            model,
            expected_generation=row.generation if row else None,
            state=target,
            since=time.time(),
            version=row.version if row else None,
            forced=action == "open",
            reason=reason,
            event={"source": row.state if row else BreakerState.CLOSED, "data": {"forced": action == "open", "by": by}},
        )
        if changed:
            now = store.get_breaker(model)
            assert now is not None  # just written
            return now
        row = store.get_breaker(model)
    raise RoutingConflict(f"breaker of {model} kept changing under the update; try again")
