"""What a person does to an incident by hand, and the rule every manual action keeps.

Every manual action names who acted and why (:func:`actor_and_reason`), and lands on the
incident's timeline. :func:`acknowledge`: the incident commander takes the incident (SOP
roles). Called by the incident console (and any shell or REST front end); the on-call loop
(paging, escalation) reads the same timeline event. Acknowledging twice keeps the first
acknowledgement: the second caller is told who has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from firebreak.errors import ActionRefused, UnknownIncidentError
from firebreak.incidents.enums import EventKind
from firebreak.incidents.store import IncidentStore
from firebreak.inert import clean

MAX_NAME = 100
MAX_REASON = 500


@dataclass(frozen=True)
class Acknowledgement:
    incident_id: str
    by: str
    reason: str
    at: datetime
    first: bool  # False: someone had acknowledged it already; nothing was written


def actor_and_reason(by: str, reason: str) -> tuple[str, str]:
    """A person's name and reason, cleaned and bounded; both are required.

    Raises:
        ActionRefused: The name or the reason is empty or too long.
    """
    name, why = clean(by, MAX_NAME + 1), clean(reason, MAX_REASON + 1)
    if not name:
        raise ActionRefused("say who acts: the acting user's name is empty")
    if len(name) > MAX_NAME:
        raise ActionRefused(f"the acting user's name is longer than {MAX_NAME} characters")
    if not why:
        raise ActionRefused("give a reason: it is recorded on the incident's timeline")
    if len(why) > MAX_REASON:
        raise ActionRefused(f"the reason is longer than {MAX_REASON} characters")
    return name, why


def acknowledge(store: IncidentStore, incident_id: str, by: str, reason: str) -> Acknowledgement:
    """Record that ``by`` took ``incident_id``, with a reason; the first acknowledgement stands.

    Raises:
        UnknownIncidentError: No such incident.
        ActionRefused: Name or reason missing or too long.
    """
    name, why = actor_and_reason(by, reason)
    if store.get_incident(incident_id) is None:
        raise UnknownIncidentError(f"no incident {clean(incident_id, 80)!r}")
    earlier = next((e for e in store.events(incident_id) if e.kind == EventKind.ACKNOWLEDGED), None)
    if earlier is not None:
        data = earlier.data or {}
        return Acknowledgement(incident_id, str(data.get("by")), str(data.get("reason")), earlier.at, first=False)
    store.add_event(incident_id, EventKind.ACKNOWLEDGED, f"acknowledged by {name}: {why}", {"by": name, "reason": why})
    at = next(e.at for e in reversed(store.events(incident_id)) if e.kind == EventKind.ACKNOWLEDGED)
    return Acknowledgement(incident_id, name, why, at, first=True)
