"""The incident clock: when the breach began, was detected, opened, acknowledged, contained, mitigated, resolved.

Marks are written once (first writer wins) and the lifecycle chain never goes backwards:
a mark set from an outside source (an alert's ``startsAt``, the prediction log's first
breach) that would fall outside its neighbours is clamped into place and says so in its
``by``. What on-call teams are measured by is read off it: time to detect, acknowledge,
contain and resolve (MTTD, MTTA, time to contain, MTTR).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from firebreak.incidents.enums import ClockMark

ORDER = list(ClockMark)

# What each duration measures, as (name, from, to): the from-mark, then the to-mark.
DURATIONS: dict[str, tuple[ClockMark, ClockMark]] = {
    "time_to_detect": (ClockMark.FIRST_BREACH, ClockMark.DETECTED),
    "time_to_acknowledge": (ClockMark.OPENED, ClockMark.ACKNOWLEDGED),
    "time_to_contain": (ClockMark.DETECTED, ClockMark.CONTAINED),
    "time_to_resolve": (ClockMark.DETECTED, ClockMark.RESOLVED),
}


def aware(at: datetime) -> datetime:
    """SQLite hands timestamps back naive; every mark is UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def target_words(delta: timedelta | None) -> str:
    """A target as people say it: ``15 min``, ``1 h``, ``5 d`` (escalation messages, the console, the post-mortem)."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass(frozen=True)
class ClockEntry:
    mark: ClockMark
    at: datetime
    by: str | None


class ClockStore(Protocol):
    """What :func:`stamp` needs of the incident store."""

    def clock(self, incident_id: str) -> dict[ClockMark, ClockEntry]: ...

    def mark_clock(self, incident_id: str, mark: ClockMark, at: datetime, by: str | None = None) -> bool: ...


def stamp(store: ClockStore, incident_id: str, mark: ClockMark, at: datetime, by: str | None = None) -> bool:
    """Set ``mark`` once, kept between the chain marks already set; True when this call set it."""
    at = aware(at)
    marks = store.clock(incident_id)
    if mark in marks:
        return False
    if mark.chain:
        earlier = [aware(e.at) for m, e in marks.items() if m.chain and ORDER.index(m) < ORDER.index(mark)]
        later = [aware(e.at) for m, e in marks.items() if m.chain and ORDER.index(m) > ORDER.index(mark)]
        if earlier and at < max(earlier):
            at, by = max(earlier), f"{by or ''} (clamped: reported {at:%H:%M:%S}, before an earlier mark)".strip()
        elif later and at > min(later):
            at, by = min(later), f"{by or ''} (clamped: reported {at:%H:%M:%S}, after a later mark)".strip()
    elif ClockMark.OPENED in marks and at < aware(marks[ClockMark.OPENED].at):
        at = aware(marks[ClockMark.OPENED].at)
    return store.mark_clock(incident_id, mark, at, by)


@dataclass(frozen=True)
class Clock:
    """One incident's clock, read-only: marks, durations, and whether it holds together."""

    marks: Mapping[ClockMark, ClockEntry]

    def at(self, mark: ClockMark) -> datetime | None:
        entry = self.marks.get(mark)
        return aware(entry.at) if entry else None

    def durations(self) -> dict[str, float | None]:
        """Seconds for each measured span; None when either end is missing."""
        out: dict[str, float | None] = {}
        for name, (start, end) in DURATIONS.items():
            a, b = self.at(start), self.at(end)
            out[name] = (b - a).total_seconds() if a and b else None
        return out

    def problems(self) -> list[str]:
        """Chain marks out of order, or the acknowledgement before the opening: empty when it holds."""
        chain = [(m, t) for m in ORDER if m.chain and (t := self.at(m)) is not None]
        out = [
            f"{a} ({ta:%H:%M:%S}) after {b} ({tb:%H:%M:%S})"
            for (a, ta), (b, tb) in zip(chain, chain[1:], strict=False)
            if ta > tb
        ]
        ack, opened = self.at(ClockMark.ACKNOWLEDGED), self.at(ClockMark.OPENED)
        if ack and opened and ack < opened:
            out.append("acknowledged before the incident opened")
        return out
