"""The incident clock as people read it: its marks against the severity route's targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firebreak.incidents.clock import Clock, ClockEntry
from firebreak.incidents.enums import ClockMark
from firebreak.policy.schema import Notify
from firebreak.postmortem.clock import ClockView, clock_rows, clock_view, human_duration, route_for

OPENED = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def view(status: str = "contained", severity: str = "SEV1", **marks: timedelta) -> ClockView:
    entries = {ClockMark(m): ClockEntry(ClockMark(m), OPENED + after, "t") for m, after in marks.items()}
    return clock_view(
        Clock({ClockMark.DETECTED: ClockEntry(ClockMark.DETECTED, OPENED, "t"), **entries}),
        status=status,
        opened=OPENED,
        closed=None,
        route=route_for(None, severity),
    )


def test_the_targets_are_the_policys_severity_routes() -> None:
    assert route_for(None, "SEV1").contain_within == timedelta(minutes=15)
    assert route_for(Notify(), "SEV2").acknowledge_within == timedelta(minutes=15)
    assert route_for(None, None).contain_within == timedelta(minutes=15)  # untriaged: held to SEV1's


def test_met_missed_or_still_running() -> None:
    assert view(contained=timedelta(minutes=3)).contain_met() is True
    assert view(contained=timedelta(minutes=20)).contain_met() is False
    running = view(status="open")
    assert running.contain_met(now=OPENED + timedelta(minutes=5)) is None
    assert running.contain_met(now=OPENED + timedelta(minutes=16)) is False
    assert view(contained=timedelta(minutes=3)).time_to_resolve is None  # not resolved yet


def test_the_rows_carry_each_mark_who_set_it_and_its_target() -> None:
    rows = {r.mark: r for r in clock_rows(view(acknowledged=timedelta(minutes=2), contained=timedelta(minutes=9)))}
    assert rows[ClockMark.ACKNOWLEDGED].since_opened == timedelta(minutes=2)
    assert (rows[ClockMark.ACKNOWLEDGED].target, rows[ClockMark.ACKNOWLEDGED].met) == ("within 5 min of opening", True)
    assert (rows[ClockMark.CONTAINED].target, rows[ClockMark.CONTAINED].by) == ("within 15 min of opening", "t")
    assert rows[ClockMark.RESOLVED].at is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4, "4 s"), (200, "3 min 20 s"), (7500, "2 h 05 min"), (100_000, "1 d 3 h"), (-90, "-1 min 30 s")],
)
def test_durations_read_like_people_write_them(seconds: int, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text
