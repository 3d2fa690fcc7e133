"""The incident clock: set once, never backwards, and the spans on-call teams are measured by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from firebreak.incidents.clock import Clock, stamp
from firebreak.incidents.enums import ClockMark
from firebreak.incidents.store import IncidentStore

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def store(tmp_path: Path) -> IncidentStore:
    return IncidentStore(f"sqlite:///{tmp_path / 'state.db'}")


def test_first_writer_wins_and_spans_are_measured(tmp_path: Path) -> None:
    s = store(tmp_path)
    marks = [
        (ClockMark.FIRST_BREACH, 0),
        (ClockMark.DETECTED, 300),
        (ClockMark.OPENED, 330),
        (ClockMark.CONTAINED, 345),
        (ClockMark.ACKNOWLEDGED, 400),
        (ClockMark.MITIGATED, 900),
        (ClockMark.RESOLVED, 960),
    ]
    for mark, seconds in marks:
        assert stamp(s, "i-1", mark, T0 + timedelta(seconds=seconds), "test")
    assert not stamp(s, "i-1", ClockMark.ACKNOWLEDGED, T0 + timedelta(seconds=500), "second")  # first ack stands
    clock = Clock(s.clock("i-1"))
    assert clock.marks[ClockMark.ACKNOWLEDGED].by == "test"
    assert clock.durations() == {
        "time_to_detect": 300.0,
        "time_to_acknowledge": 70.0,  # acknowledged after containment: beside the chain, not on it
        "time_to_contain": 45.0,
        "time_to_resolve": 660.0,
    }
    assert clock.problems() == []


def test_an_outside_time_outside_its_neighbours_is_clamped_and_says_so(tmp_path: Path) -> None:
    s = store(tmp_path)
    stamp(s, "i-2", ClockMark.DETECTED, T0, "grafana alert")
    stamp(s, "i-2", ClockMark.OPENED, T0 + timedelta(seconds=10))
    # The log's first breach after the alert fired (the alert watched another signal): kept at detection.
    stamp(s, "i-2", ClockMark.FIRST_BREACH, T0 + timedelta(seconds=60), "prediction log")
    clock = Clock(s.clock("i-2"))
    assert clock.at(ClockMark.FIRST_BREACH) == T0
    assert "clamped" in (clock.marks[ClockMark.FIRST_BREACH].by or "")
    assert clock.problems() == [] and clock.durations()["time_to_detect"] == 0.0
    assert clock.durations()["time_to_resolve"] is None  # not resolved: no span, not zero


def test_a_clock_out_of_order_is_reported() -> None:
    from firebreak.incidents.clock import ClockEntry

    clock = Clock(
        {
            ClockMark.OPENED: ClockEntry(ClockMark.OPENED, T0, None),
            ClockMark.CONTAINED: ClockEntry(ClockMark.CONTAINED, T0 - timedelta(seconds=5), None),
        }
    )
    assert clock.problems() == ["opened (10:00:00) after contained (09:59:55)"]
