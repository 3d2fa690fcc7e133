"""Who answers now, and why: the routing state first, then the aliases, then the breaker.

The routing state is what an incident decided (contain to the heuristic or the fallback
model, disable the feature, restore the champion) and overrides everything. On the
champion route the champion answers only while its breaker is closed; otherwise, and
whenever the answer is not known (routing never read, no champion alias), the policy's
containment route answers: a gateway that cannot tell must not serve a model an
incident may have contained.
"""

from __future__ import annotations

from typing import Any

from firebreak.containment.breaker import Breaker
from firebreak.containment.segment import Segment
from firebreak.incidents.enums import BreakerState, Route
from firebreak.policy.schema import Policy
from firebreak.serving.scorer import Scorer, heuristic_scorer
from firebreak.serving.shared_state import Aliases, SharedState
from firebreak.settings import Settings


class Routes:
    """One model's routes: its heuristic and the policy's containment route."""

    def __init__(self, policy: Policy, settings: Settings) -> None:
        self.containment_route = policy.containment.route
        self.heuristic = heuristic_scorer(policy, settings)

    def containment(self, aliases: Aliases) -> Scorer | None:
        """Who answers on the policy's containment route (None: nobody, the model is disabled)."""
        if self.containment_route == Route.FALLBACK_MODEL:
            return aliases.fallback or self.heuristic
        if self.containment_route == Route.HEURISTIC:
            return self.heuristic
        return None

    def current(self, state: SharedState, aliases: Aliases, breaker: Breaker) -> tuple[Scorer | None, str]:
        """Who answers now, and why (for the response headers and ``/serving``)."""
        route = state.route
        if route is None:
            return self.containment(aliases), "routing state never read: containment route (fail-safe)"
        if route == Route.DISABLED:
            return None, f"disabled: {state.route_reason}"
        if route == Route.HEURISTIC:
            return self.heuristic, state.route_reason
        if route == Route.FALLBACK_MODEL:
            return aliases.fallback or self.heuristic, state.route_reason
        if aliases.champion is None:
            return self.containment(aliases), "no champion alias: containment route"
        if breaker.state != BreakerState.CLOSED:
            return self.containment(aliases), f"breaker {breaker.state}: {breaker.reason}"
        return aliases.champion, "champion"


def segment_rows(records: list[dict[str, Any]], segment: Segment | None) -> list[int]:
    """The rows of a batch a contained segment sends to the containment route (segment-scoped containment).

    The per-row hook of the route choice: when an incident contained only a segment
    (``containment.scope: segment``; the segment row in the state DB,
    :meth:`firebreak.containment.state.RoutingStore.contained_segment`), these rows are
    answered by :meth:`Routes.containment` and every other row by the champion. None (no
    segment contained): no row.
    """
    if segment is None:
        return []
    return [i for i, record in enumerate(records) if segment.matches(record)]
