"""Acknowledging an incident: a person takes it; escalation stops; the pager hears ``acknowledge``.

One function for every way in: ``firebreak ack ID --by NAME`` (shell), ``POST
/firebreak/incidents/{id}/acknowledge`` (REST, beside the alert intake) and the incidents
console (which calls :func:`acknowledge` directly). The first acknowledgement sets the
clock; later ones land on the timeline and change nothing else.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime

from firebreak.errors import IncidentNotFound, IncidentRequestError
from firebreak.incidents.clock import stamp
from firebreak.incidents.enums import ClockMark, EventKind
from firebreak.incidents.store import IncidentStore
from firebreak.oncall.announce import announce
from firebreak.oncall.messages import Event, clean
from firebreak.settings import Settings
from firebreak.state_db import utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@ -]{0,99}$")
VIAS = ("shell", "rest", "ui")


@dataclass(frozen=True)
class Acknowledgement:
    incident_id: str
    by: str  # who holds it (the first to acknowledge)
    at: datetime
    first: bool  # this call was the first acknowledgement
    via: str

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "at": self.at.isoformat()}


def acknowledge(
    incident_id: str, by: str, *, via: str = "shell", note: str = "", settings: Settings | None = None
) -> Acknowledgement:
    """Record that ``by`` took the incident; the first one stops escalation and acknowledges the page.

    Raises:
        IncidentRequestError: ``by`` is not a plausible name, or ``via`` unknown (nothing is recorded).
        IncidentNotFound: no such incident.
    """
    if not isinstance(by, str) or not NAME.fullmatch(by):
        raise IncidentRequestError(
            "acknowledged by: give a name of 1-100 letters, digits, spaces or . _ @ - (starting with a letter or digit)"
        )
    if via not in VIAS:
        raise IncidentRequestError(f"via must be one of {list(VIAS)}, got {clean(via, 40)!r}")
    settings = settings or Settings.from_env()
    store = IncidentStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {clean(incident_id, 100)!r}")
    now = utcnow()
    first = stamp(store, incident_id, ClockMark.ACKNOWLEDGED, now, by)
    said = f": {clean(note, 300)}" if note else ""
    if first:
        store.add_event(incident_id, EventKind.ACKNOWLEDGED, f"acknowledged by {by} via {via}{said}", {"by": by})
        announce(incident_id, Event.ACKNOWLEDGED, f"acknowledged by {by}", settings=settings)
        return Acknowledgement(incident_id, by, now, True, via)
    holder = store.clock(incident_id)[ClockMark.ACKNOWLEDGED]
    store.add_event(
        incident_id,
        EventKind.ACKNOWLEDGED,
        f"{by} acknowledged via {via}{said}; already held by {holder.by} since {holder.at:%H:%M:%S}",
        {"by": by, "repeat": True},
    )
    return Acknowledgement(incident_id, holder.by or by, holder.at, False, via)
