"""The incident clock as people read it: its marks against the SOP's targets.

SOP stage *Learn* (the post-mortem's clock) and the incident console's board (age, who has
it, time to contain, time to resolve). The marks themselves have one home,
:mod:`firebreak.incidents.clock` (written once by the stages and the on-call loop); the
targets are the severity route's of the model's policy (``notify.routes``: acknowledge
within, contain within, the SOP's matrix by default). This module only reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from firebreak.incidents.clock import Clock, aware, target_words
from firebreak.incidents.enums import ClockMark, IncidentStatus
from firebreak.policy.schema import Notify, SeverityRoute

# What each mark is called where people read it.
MARK_NAMES: dict[ClockMark, str] = {
    ClockMark.FIRST_BREACH: "first breach in the prediction log",
    ClockMark.DETECTED: "detected (the alert fired, or opened by hand)",
    ClockMark.OPENED: "incident opened",
    ClockMark.ACKNOWLEDGED: "acknowledged",
    ClockMark.CONTAINED: "contained (traffic off the model)",
    ClockMark.MITIGATED: "mitigated (the fix serves users)",
    ClockMark.RESOLVED: "resolved",
}


def utc(at: datetime | str | None) -> datetime | None:
    """A timestamp from the state DB (SQLite drops the zone) or an ISO string, as aware UTC."""
    if at is None or at == "":
        return None
    return aware(datetime.fromisoformat(at) if isinstance(at, str) else at)


def route_for(notify: Notify | None, severity: str | None) -> SeverityRoute:
    """The severity route whose targets the incident is held to (the SOP's matrix without a policy)."""
    return (notify or Notify()).route(severity)


@dataclass(frozen=True)
class ClockView:
    """One incident's clock (:class:`Clock`) with what the board and the post-mortem add to it."""

    clock: Clock
    status: str
    opened: datetime  # the incident row's opening (the clock's ``opened`` mark once the run has set it)
    closed: datetime | None
    route: SeverityRoute

    def at(self, mark: ClockMark) -> datetime | None:
        return self.clock.at(mark) or (self.opened if mark == ClockMark.OPENED else None)

    @property
    def acknowledged_by(self) -> str | None:
        entry = self.clock.marks.get(ClockMark.ACKNOWLEDGED)
        return entry.by if entry else None

    @cached_property
    def _spans(self) -> dict[str, float | None]:
        return self.clock.durations()  # once per view: the board asks each row for two of them

    def _span(self, name: str) -> timedelta | None:
        seconds = self._spans[name]
        return None if seconds is None else timedelta(seconds=seconds)

    @property
    def time_to_contain(self) -> timedelta | None:
        return self._span("time_to_contain")

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self._span("time_to_resolve")

    def deadline(self, mark: ClockMark) -> datetime | None:
        """When ``mark`` is due by the route's target, counted from the opening; None without one."""
        target = {
            ClockMark.ACKNOWLEDGED: self.route.acknowledge_within,
            ClockMark.CONTAINED: self.route.contain_within,
        }.get(mark)
        return self.opened + target if target is not None else None

    def met(self, mark: ClockMark, now: datetime | None = None) -> bool | None:
        """Reached within its target; None when there is no target, or it is still running and not late."""
        deadline = self.deadline(mark)
        if deadline is None:
            return None
        reached = self.at(mark)
        if reached is not None:
            return reached <= deadline
        if IncidentStatus(self.status).is_final:
            return None  # closed without it (a dry run contains nothing): no verdict
        return False if (now or datetime.now(UTC)) > deadline else None

    def contain_met(self, now: datetime | None = None) -> bool | None:
        return self.met(ClockMark.CONTAINED, now)

    def age(self, now: datetime | None = None) -> timedelta:
        return (self.closed or now or datetime.now(UTC)) - self.opened


def clock_view(
    clock: Clock, *, status: str, opened: datetime | str, closed: datetime | str | None, route: SeverityRoute
) -> ClockView:
    return ClockView(clock, str(status), utc(opened) or datetime.now(UTC), utc(closed), route)


@dataclass(frozen=True)
class ClockRow:
    mark: ClockMark
    milestone: str
    at: datetime | None
    by: str | None
    since_opened: timedelta | None
    target: str
    met: bool | None


def clock_rows(view: ClockView, now: datetime | None = None) -> list[ClockRow]:
    """The clock as a table: each mark, its time, who set it and, where the route sets one, its target."""
    rows = []
    for mark in ClockMark:
        at, entry = view.at(mark), view.clock.marks.get(mark)
        target = view.route.acknowledge_within if mark == ClockMark.ACKNOWLEDGED else None
        if mark == ClockMark.CONTAINED:
            target = view.route.contain_within
        rows.append(
            ClockRow(
                mark=mark,
                milestone=MARK_NAMES[mark],
                at=at,
                by=entry.by if entry else None,
                since_opened=at - view.opened if at else None,
                target=f"within {target_words(target)} of opening" if target is not None else "",
                met=view.met(mark, now),
            )
        )
    return rows


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
