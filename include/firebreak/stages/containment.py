"""SOP stages *Contain* and *Restore*: traffic to the policy's fallback, and back after a passed gate."""

from __future__ import annotations

from typing import Any

from firebreak.containment import routing
from firebreak.containment.segment import Segment
from firebreak.incidents.enums import Alias, ClockMark, EvidenceKind, IncidentStatus, Route
from firebreak.investigation.segments import lift_text
from firebreak.stages.context import Context


def contain(incident_id: str) -> dict[str, Any]:
    """Route the model's traffic to the policy's fallback, by compare-and-set; never waits for root cause.

    Running it twice (or concurrently) moves the route once. The evidence says what the
    serving gateway's own breaker had done already, and how the fallback scores.
    """
    from firebreak.policy.entry_points import resolve_entry_point

    ctx = Context.load(incident_id)
    containment = ctx.policy.containment
    target = Route(containment.route)
    segment = _segment_to_contain(ctx)
    if segment is not None:
        return _contain_segment(ctx, segment)
    change = routing.contain(ctx.routing, ctx.model, target, incident_id=incident_id, dry_run=ctx.dry_run)
    if ctx.dry_run:
        message = f"dry run: would route {ctx.model} from {change.previous} to {target}"
    elif change.previous == target:
        message = f"{ctx.model} already on {target} (generation {change.generation}); nothing to change"
    else:
        message = f"traffic of {ctx.model} moved {change.previous} -> {target}: {containment.description}"
    payload: dict[str, Any] = {
        "route": str(target),
        "changed": change.changed,
        "previous_route": change.previous,
        "description": containment.description,
        "dry_run": ctx.dry_run,
    }
    breaker = ctx.routing.get_breaker(ctx.model)
    if breaker is not None:  # what the serving gateway's own breaker did before this incident's step
        payload["gateway_breaker"] = {"state": breaker.state, "reason": breaker.reason, "version": breaker.version}
    if target == Route.HEURISTIC and containment.heuristic:
        fallback = resolve_entry_point(containment.heuristic)
        payload |= ctx.kind.fallback_figures(
            lambda frame: fallback(frame, ctx.settings), ctx.settings, ctx.labelled_window
        )
    if not ctx.dry_run:
        ctx.store.update_incident(incident_id, status=IncidentStatus.CONTAINED)
    ctx.record(EvidenceKind.CONTAINMENT, payload, message)
    ctx.mark(ClockMark.CONTAINED, by="contain")
    ctx.announce("update", f"contained: {message}", key="contained")
    return {"route": str(target), "changed": change.changed}


def _segment_to_contain(ctx: Context) -> Segment | None:
    """The segment triage found, when the policy contains segments alone; None: contain the whole model."""
    if ctx.policy.containment.scope != "segment":
        return None
    found = ctx.evidence().get(EvidenceKind.TRIAGE, {}).get("segments") or {}
    if found.get("scope") != "segment":
        return None  # no segment stands out (or none was looked for): all traffic moves, the safe default
    return Segment.from_dict(found["segments"][0]["segment"])


def _contain_segment(ctx: Context, segment: Segment) -> dict[str, Any]:
    changed = routing.contain_segment(ctx.routing, ctx.model, segment, incident_id=ctx.incident_id, dry_run=ctx.dry_run)
    top = ctx.evidence()[EvidenceKind.TRIAGE]["segments"]["segments"][0]
    where = f"{segment.describe()} ({top['rows']} rows, {top['share']:.1%} of traffic, {lift_text(top['lift'])})"
    if ctx.dry_run:
        message = f"dry run: would route segment {where} of {ctx.model} to {ctx.policy.containment.route}"
    else:
        message = f"segment {where} of {ctx.model} to {ctx.policy.containment.route}; the rest stays on the champion"
        ctx.store.update_incident(ctx.incident_id, status=IncidentStatus.CONTAINED)
    ctx.record(
        EvidenceKind.CONTAINMENT,
        {
            "route": str(ctx.policy.containment.route),
            "scope": "segment",
            "segment": segment.to_dict(),
            "changed": changed,
            "description": ctx.policy.containment.description,
            "dry_run": ctx.dry_run,
        },
        message,
    )
    return {"route": str(ctx.policy.containment.route), "changed": changed, "segment": segment.describe()}


def restore_traffic(incident_id: str) -> dict[str, Any]:
    """Traffic back to the champion, only after a passed gate (this task runs only then)."""
    ctx = Context.load(incident_id)
    if ctx.dry_run:
        ctx.routing.ensure_routing(ctx.model, Route.CHAMPION, routing.FIRST_SEEN)
        ctx.record(EvidenceKind.RESTORE, {"restored": False, "dry_run": True}, "dry run: routing untouched")
        return {"restored": False}
    change = routing.restore(ctx.routing, ctx.model, incident_id=incident_id)
    champion = ctx.registry.version_for(ctx.model, Alias.CHAMPION)
    restored = f"traffic of {ctx.model} back on {Alias.CHAMPION} v{champion and champion.version}"
    ctx.record(
        EvidenceKind.RESTORE,
        {"restored": True, "changed": change.changed, "champion": champion and champion.version},
        restored,
    )
    # Users are served by the fixed model: mitigated, and the page resolves now, not at close.
    ctx.mark(ClockMark.MITIGATED, by="restore_traffic")
    ctx.announce("resolved", restored)
    return {"restored": True}
