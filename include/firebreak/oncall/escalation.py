"""Deadlines of the severity matrix: escalate when a target is missed, post updates at the cadence.

SOP stage *Communicate / escalate*. Airflow Deadline Alerts call :func:`on_deadline` when a
run passes one of its severity's targets (``acknowledge_within``, ``contain_within``, the
``update_every`` cadence). The decision is here, taken from the incident as it is at that
moment: an incident of another severity, or one already acknowledged (contained), is left
alone; otherwise the route's ``escalate`` targets are paged, and the timeline says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from firebreak.incidents.clock import Clock, target_words
from firebreak.incidents.enums import ClockMark, EventKind, IncidentStatus, Severity
from firebreak.incidents.store import IncidentStore
from firebreak.oncall.announce import announce
from firebreak.oncall.messages import Event
from firebreak.policy.schema import Policy, load_policy
from firebreak.settings import Settings
from firebreak.state_db import utcnow


class Target(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CONTAIN = "contain"
    UPDATE = "update"


UPDATES_SCHEDULED = 3  # cadence updates armed per run; after the third, the incident commander posts


def deadline_after_opening(policy: Policy, severity: Severity, target: Target, nth: int = 1) -> timedelta | None:
    """How long after the run was queued this target falls due; None when the route sets no such target."""
    route = policy.notify.routes.get(severity)
    if route is None:
        return None
    if target == Target.ACKNOWLEDGE:
        return route.acknowledge_within
    if target == Target.CONTAIN:
        return route.contain_within
    return route.update_every * nth if route.update_every else None


@dataclass(frozen=True)
class DeadlineOutcome:
    acted: bool
    reason: str


def on_deadline(
    incident_id: str,
    severity: Severity,
    target: Target,
    nth: int = 1,
    *,
    deadline: datetime | None = None,
    settings: Settings | None = None,
) -> DeadlineOutcome:
    """A deadline of ``severity`` passed: escalate, post an update, or say why nothing was needed."""
    settings = settings or Settings.from_env()
    store = IncidentStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        return DeadlineOutcome(False, "no such incident (the run failed before opening it)")
    actual = Severity(incident.severity) if incident.severity in set(Severity) else Severity.SEV1
    if actual != severity:
        return DeadlineOutcome(False, f"incident is {actual}, this deadline is {severity}'s")
    if incident.status in (IncidentStatus.RESOLVED, IncidentStatus.DRY_RUN):
        return DeadlineOutcome(False, f"incident already {incident.status}")
    clock = Clock(store.clock(incident_id))
    policy = load_policy(incident.model, settings.policies_dir)
    due = deadline_after_opening(policy, severity, target, nth)
    late = f"{severity} target {target_words(due)}" if due else f"{severity} target"
    when = f" (due {deadline:%H:%M:%S} UTC)" if deadline else ""
    if target == Target.UPDATE:
        state = _status_line(incident.status, clock)
        announce(incident_id, Event.UPDATE, f"status update {nth}: {state}", settings=settings, key=f"cadence-{nth}")
        store.add_event(incident_id, EventKind.STATUS_UPDATE, f"status update {nth} at the {severity} cadence: {state}")
        return DeadlineOutcome(True, "status update posted")
    mark = ClockMark.ACKNOWLEDGED if target == Target.ACKNOWLEDGE else ClockMark.CONTAINED
    if (done := clock.at(mark)) is not None:
        reason = f"{mark} at {done:%H:%M:%S} UTC, within the {late}"
        store.add_event(incident_id, EventKind.DEADLINE_MET, f"deadline passed{when}: {reason}; no escalation")
        return DeadlineOutcome(False, reason)
    escalate = policy.notify.route(severity).escalate
    verb = "acknowledged" if target == Target.ACKNOWLEDGE else "contained"
    message = f"not {verb} within the {late}{when}: paging {', '.join(escalate) or 'nobody (no escalate targets)'}"
    announce(
        incident_id,
        Event.ESCALATED,
        f"escalated: {message}",
        settings=settings,
        key=str(target),
        targets=escalate,
        details={"missed": f"{target} within {target_words(due)}" if due else str(target)},
    )
    # Tell the incident's own channels too (the escalation targets may be pagers only).
    told = [n for n in policy.notify.route(severity).notify if policy.notify.targets[n].type == "slack"]
    announce(
        incident_id, Event.ESCALATED, f"escalated: {message}", settings=settings, key=f"{target}-told", targets=told
    )
    store.add_event(
        incident_id,
        EventKind.ESCALATED,
        f"escalated: {message}",
        {"target": str(target), "severity": str(severity), "paged": escalate, "at": utcnow().isoformat()},
    )
    return DeadlineOutcome(True, message)


def _status_line(status: str, clock: Clock) -> str:
    reached = [str(m) for m in ClockMark if clock.at(m) is not None]
    return f"{status}; clock: {', '.join(reached) or 'nothing yet'}"
