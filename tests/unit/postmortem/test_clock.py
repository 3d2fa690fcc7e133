"""The incident clock against the SOP's targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firebreak.postmortem.clock import Clock, contain_deadline, human_duration

FRIDAY_5PM = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("severity", "deadline"),
    [
        ("SEV1", FRIDAY_5PM + timedelta(minutes=15)),
        ("SEV2", FRIDAY_5PM + timedelta(hours=1)),
        ("SEV3", datetime(2026, 11, 30, 17, 0, tzinfo=UTC)),  # one business day: Monday
        ("SEV4", datetime(2026, 12, 4, 17, 0, tzinfo=UTC)),  # five business days: next Friday
        (None, None),
    ],
)
def test_contain_deadline_follows_the_severity_matrix(severity: str | None, deadline: datetime | None) -> None:
    assert contain_deadline(severity, FRIDAY_5PM) == deadline


def test_met_missed_or_still_running() -> None:
    opened = FRIDAY_5PM
    contained = Clock("SEV1", "contained", opened, contained=opened + timedelta(minutes=3))
    late = Clock("SEV1", "contained", opened, contained=opened + timedelta(minutes=20))
    running = Clock("SEV1", "open", opened)
    assert contained.contain_met() is True and late.contain_met() is False
    assert running.contain_met(now=opened + timedelta(minutes=5)) is None
    assert running.contain_met(now=opened + timedelta(minutes=16)) is False
    assert contained.time_to_resolve is None  # not resolved yet


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4, "4 s"), (200, "3 min 20 s"), (7500, "2 h 05 min"), (100_000, "1 d 3 h"), (-90, "-1 min 30 s")],
)
def test_durations_read_like_people_write_them(seconds: int, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text
