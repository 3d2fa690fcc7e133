"""Contain and restore: moving a model's traffic by compare-and-set on the routing state.

SOP stages *Contain* and *Restore*. Containment never waits for root cause; restoring
happens only after a passed gate. Both are idempotent: a route already at its target is
left alone, and a lost race is re-read and either accepted or raised.
"""

from __future__ import annotations

from dataclasses import dataclass

from firebreak.containment.segment import Segment
from firebreak.containment.state import RoutingState, RoutingStore
from firebreak.errors import RoutingConflict
from firebreak.incidents.enums import Route

FIRST_SEEN = "first seen by incident_response"


@dataclass(frozen=True)
class RouteChange:
    """What a contain or restore did: the route before and after, and whether this call moved it."""

    model: str
    previous: str
    route: str
    changed: bool
    generation: int


def contain(store: RoutingStore, model: str, target: Route, *, incident_id: str, dry_run: bool) -> RouteChange:
    """Route ``model``'s traffic to ``target`` (the policy's fallback); running it twice moves it once.

    Raises:
        RoutingConflict: Another writer moved the route elsewhere concurrently.
    """
    state = store.ensure_routing(model, Route.CHAMPION, FIRST_SEEN)
    if dry_run or state.route == target:
        return RouteChange(model, state.route, str(target), False, state.generation)
    changed = store.compare_and_set_route(
        model,
        expected_generation=state.generation,
        route=target,
        incident_id=incident_id,
        reason=f"contained by {incident_id}",
    )
    now = store.get_routing(model)
    if not changed and (now is None or now.route != target):
        raise RoutingConflict(f"routing of {model} changed concurrently to {now and now.route}; retry contain")
    return RouteChange(model, state.route, str(target), changed, now.generation if now else state.generation + 1)


def contain_segment(store: RoutingStore, model: str, segment: Segment, *, incident_id: str, dry_run: bool) -> bool:
    """Contain only ``segment`` of ``model``'s traffic: its rows to the fallback, the rest on the champion.

    SOP stage *Contain*, for a policy with ``containment.scope: segment`` when triage found
    where the failure concentrates. Returns whether this call changed anything (a re-run
    of the same segment does not).
    """
    store.ensure_routing(model, Route.CHAMPION, FIRST_SEEN)
    if dry_run:
        return False
    return store.contain_segment(model, segment.to_dict(), incident_id=incident_id)


def restore(store: RoutingStore, model: str, *, incident_id: str) -> RouteChange:
    """Route ``model``'s traffic back to the champion (after a passed gate).

    Raises:
        RoutingConflict: Another writer moved the route concurrently.
    """
    store.release_segment(model)  # a contained segment comes back with the rest
    state: RoutingState = store.ensure_routing(model, Route.CHAMPION, FIRST_SEEN)
    if state.route == Route.CHAMPION:
        return RouteChange(model, state.route, state.route, False, state.generation)
    changed = store.compare_and_set_route(
        model,
        expected_generation=state.generation,
        route=Route.CHAMPION,
        incident_id=incident_id,
        reason=f"restored by {incident_id} after the gate passed",
    )
    if not changed:
        raise RoutingConflict(f"routing of {model} changed concurrently; retry restore_traffic")
    return RouteChange(model, state.route, str(Route.CHAMPION), True, state.generation + 1)


def set_route(store: RoutingStore, model: str, target: Route, *, actor: str, reason: str) -> RouteChange:
    """Route ``model``'s traffic by hand (``firebreak route``), by compare-and-set, with who and why in the ledger.

    SOP: the way a person contains a model, or sends traffic back to a champion an
    incident left contained; undone the same way. A route already at ``target`` is left
    alone (no ledger row).

    Raises:
        RoutingConflict: Another writer moved the route between the read and the write.
    """
    state = store.ensure_routing(model, Route.CHAMPION, FIRST_SEEN)
    if state.route == target:
        return RouteChange(model, state.route, str(target), False, state.generation)
    changed = store.compare_and_set_route(
        model,
        expected_generation=state.generation,
        route=target,
        incident_id=None,
        reason=f"set by {actor}: {reason}",
        actor=actor,
    )
    if not changed:
        now = store.get_routing(model)
        raise RoutingConflict(
            f"routing of {model} changed concurrently (now {now and now.route}, generation {now and now.generation}); "
            "nothing changed: read it again and retry"
        )
    return RouteChange(model, state.route, str(target), True, state.generation + 1)
