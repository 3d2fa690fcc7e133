"""Who hears what, by the policy's severity routes: notifications enqueued in the outbox.

SOP stage *Communicate* (it runs beside every other stage). The severity's route names the
targets told (``notify``) and the targets paged next (``escalate``); what each target gets
depends on its type:

| event | PagerDuty | Slack | email |
|---|---|---|---|
| opened | ``trigger`` (dedup key = incident id) | opening message | yes |
| acknowledged | ``acknowledge`` to every service triggered | line | — |
| update, approval needed | — | line | approval only |
| change (rollback, promotion) | Change Event | line | — |
| escalated | ``trigger`` on the escalation targets | line | yes |
| resolved (traffic restored) | ``resolve`` to every service triggered | line | — |
| closed | — | close with the post-mortem | yes |

Every notification has a key naming the incident, the event and the target: enqueueing the
same one twice (a task retried, five deliveries of one alert) is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from firebreak.incidents.enums import ClockMark
from firebreak.incidents.store import Incident, IncidentStore
from firebreak.oncall.messages import (
    Event,
    Facts,
    email_message,
    pagerduty_alert,
    pagerduty_change,
    slack_message,
)
from firebreak.oncall.outbox import Outbox
from firebreak.policy.schema import NotifyTarget, Policy, load_policy
from firebreak.settings import Settings

AIRFLOW_URL_ENV = "FIREBREAK_AIRFLOW_URL"  # where people open the incident's run (links in messages)
PAGED = ("opened", "escalated")  # events whose PagerDuty rows opened an alert on a service


@dataclass(frozen=True)
class Announcement:
    event: Event
    enqueued: list[str]  # target names newly enqueued (empty on a repeat)


def announce(
    incident_id: str,
    event: Event,
    headline: str,
    *,
    settings: Settings | None = None,
    key: str = "",
    details: dict[str, Any] | None = None,
    targets: list[str] | None = None,
) -> Announcement:
    """Enqueue ``event`` for the targets the incident's severity route names.

    ``key`` tells repeatable events apart (an update's sequence, a change's alias move);
    ``targets`` overrides the route (the escalation targets).
    """
    settings = settings or Settings.from_env()
    store = IncidentStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        return Announcement(event, [])
    policy = load_policy(incident.model, settings.policies_dir)
    route = policy.notify.route(incident.severity)
    names = targets if targets is not None else route.notify
    outbox = Outbox(settings.state_db_url)
    facts = _facts(incident, policy, headline, details or {})
    paged = {
        n.target
        for n in outbox.for_incident(incident_id)
        if n.target_type == "pagerduty" and n.event in PAGED and n.status not in ("failed", "unconfigured")
    }
    enqueued = []
    for name in _recipients(event, names, route.notify, paged, policy):
        target = policy.notify.targets[name]
        payload = _payload(event, target, facts)
        if payload is None:
            continue
        dedup = f"{incident_id}:{event}:{key}:{name}" if key else f"{incident_id}:{event}:{name}"
        if outbox.enqueue(
            dedup_key=dedup[:300],
            incident_id=incident_id,
            event=str(event),
            target=name,
            target_type=target.type,
            conn_id=target.conn_id,
            payload=payload,
        ):
            enqueued.append(name)
    if str(event) in PAGED and enqueued:
        held = store.clock(incident_id).get(ClockMark.ACKNOWLEDGED)
        if held is not None:  # taken before this page went out: the pager hears it right after the trigger
            announce(incident_id, Event.ACKNOWLEDGED, f"acknowledged by {held.by}", settings=settings)
    return Announcement(event, enqueued)


def _recipients(event: Event, names: list[str], told: list[str], paged: set[str], policy: Policy) -> list[str]:
    """Targets for this event: the route's, plus every PagerDuty service an alert is open on."""
    if event in (Event.ACKNOWLEDGED, Event.RESOLVED):
        slack = [n for n in told if policy.notify.targets[n].type == "slack"]
        return [*sorted(paged), *[n for n in slack if n not in paged]]
    return list(dict.fromkeys(names))


def _payload(event: Event, target: NotifyTarget, facts: Facts) -> dict[str, Any] | None:
    if target.type == "pagerduty":
        action = {
            Event.OPENED: "trigger",
            Event.ESCALATED: "trigger",
            Event.ACKNOWLEDGED: "acknowledge",
            Event.RESOLVED: "resolve",
        }.get(event)
        if action:
            return {"kind": "alert", "event": pagerduty_alert(action, facts)}
        if event == Event.CHANGE:
            return {"kind": "change", "event": pagerduty_change(facts)}
        return None
    if target.type == "slack":
        return slack_message(event, facts)
    if event in (Event.OPENED, Event.ESCALATED, Event.APPROVAL_NEEDED, Event.CLOSED):
        return email_message(event, facts, target.to)
    return None


def _facts(incident: Incident, policy: Policy, headline: str, details: dict[str, Any]) -> Facts:
    links = {}
    base = os.environ.get(AIRFLOW_URL_ENV, "").rstrip("/")
    if base.startswith("http") and incident.dag_run_id:
        links["Airflow run"] = f"{base}/dags/incident_response/runs/{incident.dag_run_id}"
    return Facts(
        incident_id=incident.id,
        model=incident.model,
        severity=incident.severity,
        failure_class=incident.failure_class,
        status=str(incident.status),
        description=incident.description,
        owner=policy.owner,
        headline=headline,
        links=links,
        details={k: str(v) for k, v in details.items()},
    )
