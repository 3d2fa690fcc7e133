"""The incident clock against the SOP's targets: what happened when, and how long it took.

SOP stage *Learn* (the post-mortem's clock) and the incident console's board (age, time to
contain, time to resolve). Built from what the state DB records today: the first breach
triage found in the prediction log, the incident's opening, the first acknowledgement, the
containment step and the close. Where an incident clock with more milestones is stored
(detected, mitigated), :func:`clock_rows` is the one function to extend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from firebreak.incidents.enums import EventKind, EvidenceKind, IncidentStatus, Severity
from firebreak.incidents.store import Incident, TimelineEvent

# docs/SOP.md, severity matrix, "Time to contain": (amount, unit). Business days skip weekends.
CONTAIN_TARGETS: dict[str, tuple[int, str]] = {
    Severity.SEV1: (15, "minutes"),
    Severity.SEV2: (1, "hours"),
    Severity.SEV3: (1, "business days"),
    Severity.SEV4: (5, "business days"),
}


def utc(at: datetime | str | None) -> datetime | None:
    """A timestamp from the state DB (SQLite drops the zone) or an ISO string, as aware UTC."""
    if at is None or at == "":
        return None
    value = datetime.fromisoformat(at) if isinstance(at, str) else at
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def contain_deadline(severity: str | None, opened: datetime) -> datetime | None:
    """When traffic must be off the failing model, by the SOP's target for the severity."""
    if severity not in CONTAIN_TARGETS:
        return None
    amount, unit = CONTAIN_TARGETS[severity]
    if unit != "business days":
        return opened + timedelta(**{unit: amount})
    at, left = opened, amount
    while left:
        at += timedelta(days=1)
        if at.weekday() < 5:
            left -= 1
    return at


def describe_target(severity: str | None) -> str:
    if severity not in CONTAIN_TARGETS:
        return "—"
    amount, unit = CONTAIN_TARGETS[severity]
    return f"{amount} {unit.removesuffix('s') if amount == 1 else unit}"


@dataclass(frozen=True)
class Clock:
    """One incident's milestones (aware UTC); None where it has not happened (yet)."""

    severity: str | None
    status: str
    opened: datetime
    first_breach: datetime | None = None
    acknowledged: datetime | None = None
    acknowledged_by: str | None = None
    contained: datetime | None = None
    closed: datetime | None = None

    @property
    def time_to_contain(self) -> timedelta | None:
        return self.contained - self.opened if self.contained else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self.closed - self.opened if self.closed and self.status == IncidentStatus.RESOLVED else None

    @property
    def time_to_close(self) -> timedelta | None:
        return self.closed - self.opened if self.closed else None

    @property
    def contain_deadline(self) -> datetime | None:
        return contain_deadline(self.severity, self.opened)

    def contain_met(self, now: datetime | None = None) -> bool | None:
        """Contained within the SOP's target; None when there is no target or it is still running."""
        deadline = self.contain_deadline
        if deadline is None:
            return None
        if self.contained is not None:
            return self.contained <= deadline
        return False if (now or datetime.now(UTC)) > deadline else None

    def age(self, now: datetime | None = None) -> timedelta:
        return (self.closed or now or datetime.now(UTC)) - self.opened


@dataclass(frozen=True)
class ClockRow:
    milestone: str
    at: datetime | None
    since_opened: timedelta | None
    target: str
    met: bool | None


def clock_for(
    incident: Incident,
    events: list[TimelineEvent],
    evidence: dict[str, dict[str, Any]],
    *,
    closing: tuple[str, datetime] | None = None,
) -> Clock:
    """The clock of one incident from its row, timeline and triage evidence.

    ``closing`` (final status, time) stands in for the close the post-mortem precedes: the
    ``postmortem`` task runs just before ``close_incident`` records it.
    """
    first: dict[str, TimelineEvent] = {}
    for event in events:
        first.setdefault(event.kind, event)
    ack = first.get(EventKind.ACKNOWLEDGED)
    contained = first.get(EvidenceKind.CONTAINMENT)
    dry_run = bool(evidence.get(EvidenceKind.CONTAINMENT, {}).get("dry_run"))
    status, closed = str(incident.status), utc(incident.closed_at)
    if closing is not None and closed is None and IncidentStatus(closing[0]).is_final:
        status, closed = closing[0], utc(closing[1])
    return Clock(
        severity=incident.severity,
        status=status,
        opened=utc(incident.opened_at) or datetime.now(UTC),
        first_breach=utc(evidence.get(EvidenceKind.TRIAGE, {}).get("first_breach_at")),
        acknowledged=utc(ack.at) if ack else None,
        acknowledged_by=(ack.data or {}).get("by") if ack else None,
        contained=utc(contained.at) if contained and not dry_run else None,
        closed=closed,
    )


def clock_rows(clock: Clock) -> list[ClockRow]:
    """The clock as the post-mortem's table: each milestone, its time, and the SOP's target."""
    target = describe_target(clock.severity)

    def row(name: str, at: datetime | None, target: str = "", met: bool | None = None) -> ClockRow:
        return ClockRow(name, at, at - clock.opened if at else None, target, met)

    closed_as = "resolved" if clock.status == IncidentStatus.RESOLVED else f"closed ({clock.status})"
    return [
        row("first breach in the prediction log", clock.first_breach),
        row("incident opened", clock.opened),
        row("acknowledged" + (f" by {clock.acknowledged_by}" if clock.acknowledged_by else ""), clock.acknowledged),
        row("contained (traffic off the model)", clock.contained, f"contain within {target}", clock.contain_met()),
        row(closed_as, clock.closed),
    ]


def human_duration(delta: timedelta | None) -> str:
    """``3 min 20 s``, ``2 h 05 min``, ``1 d 4 h``; negative for a milestone before the opening."""
    if delta is None:
        return "—"
    seconds = int(round(delta.total_seconds()))
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    if minutes:
        return f"{sign}{minutes} min {secs:02d} s"
    return f"{sign}{secs} s"
