"""How an incident ended, and why: the close stage's decision, from what the stages recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from firebreak.incidents.enums import Alias, EventKind, EvidenceKind, IncidentStatus, Route
from firebreak.incidents.store import TimelineEvent


def final_status(
    *,
    incident_id: str,
    dry_run: bool,
    evidence: Mapping[str, dict[str, Any]],
    events: list[TimelineEvent],
    route: str | None,
    routed_by: str | None,
) -> tuple[IncidentStatus, str]:
    """The incident's final status and the reason, said plainly.

    Resolved only when traffic went back to the champion after a passed gate. Otherwise
    the incident is ``contained_needs_human`` while traffic stays off the champion (users
    never go back to a broken model), and ``failed`` when the run ended with traffic on
    the champion anyway (another incident restored it, or containment never happened).
    """
    if dry_run:
        return IncidentStatus.DRY_RUN, "dry run: investigated and planned, nothing changed"
    if stale := evidence.get(EvidenceKind.TRIAGE, {}).get("stale"):
        return IncidentStatus.STALE, f"stale: {stale}; routing untouched"
    if evidence.get(EvidenceKind.RESTORE, {}).get("restored"):
        promo = evidence.get(EvidenceKind.PROMOTION, {})
        how = f"{Alias.CHAMPION} v{promo['from']} -> v{promo['to']}" if promo.get("promoted") else "no model change"
        return IncidentStatus.RESOLVED, f"resolved: {how}; traffic back on {Alias.CHAMPION}"
    why = _why_unresolved(evidence, events)
    if route is not None and route != Route.CHAMPION:
        return IncidentStatus.CONTAINED_NEEDS_HUMAN, f"traffic stays on {route}; {why}"
    where = f"traffic is on {Alias.CHAMPION}" if route else "no routing state"
    if route is not None and routed_by not in {None, incident_id}:
        where += f" (restored by {routed_by})"
    return IncidentStatus.FAILED, f"{why}; {where}"


def _why_unresolved(evidence: Mapping[str, dict[str, Any]], events: list[TimelineEvent]) -> str:
    """The most specific reason on record: a failed task's error, a refused promotion or gate."""
    failures = [e for e in events if e.kind == EventKind.TASK_FAILED]
    if failures:
        return failures[-1].message
    if reason := evidence.get(EvidenceKind.PROMOTION, {}).get("reason"):
        return str(reason)
    gate = evidence.get(EvidenceKind.GATE, {})
    if gate.get("passed") is False:
        return f"promotion gate refused: {gate.get('summary', 'see the gate evidence')}"
    return "the run ended before traffic was restored"
