"""The clock's ``detected`` from an alert: the sender's start, unless it is in the future or long past."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from firebreak.alerts.intake import receive
from firebreak.incidents.clock import Clock
from firebreak.incidents.enums import ClockMark
from firebreak.incidents.store import IncidentStore
from firebreak.settings import Settings

GRAFANA = Path(__file__).parent / "fixtures" / "grafana_firing.json"


def deliver(settings: Settings, starts: str | None) -> tuple[str, Clock]:
    body = json.loads(GRAFANA.read_text())
    body["alerts"] = body["alerts"][:1]  # the pricing alert
    if starts is not None:
        body["alerts"][0]["startsAt"] = starts
    started: list[tuple[str, dict[str, Any]]] = []
    result = receive(
        "grafana",
        json.dumps(body).encode(),
        state_db_url=settings.state_db_url,
        starter=lambda run_id, conf: started.append((run_id, conf)) is None,
        policies_dir=settings.policies_dir,
    )
    assert result.status_code == 200, result.body
    (incident_id, _), *_ = started
    return incident_id, Clock(IncidentStore(settings.state_db_url).clock(incident_id))


def test_an_alert_that_began_minutes_ago_was_detected_then(firebreak_home: Path) -> None:
    began = (datetime.now(UTC) - timedelta(minutes=12)).replace(microsecond=0)
    _, clock = deliver(Settings.from_env(), began.isoformat())
    assert clock.at(ClockMark.DETECTED) == began


def test_a_start_years_old_is_not_when_the_breach_was_detected(firebreak_home: Path) -> None:
    """A vendor's sample payload (this one's start is 2021): time to contain must not read years."""
    before = datetime.now(UTC)
    _, clock = deliver(Settings.from_env(), None)
    detected = clock.at(ClockMark.DETECTED)
    assert detected is not None and before <= detected <= datetime.now(UTC)
    assert "2021-10-12" in (clock.marks[ClockMark.DETECTED].by or "")
    assert "over 7 days old" in (clock.marks[ClockMark.DETECTED].by or "")


def test_a_start_ahead_of_the_clock_is_taken_as_now(firebreak_home: Path) -> None:
    before = datetime.now(UTC)
    _, clock = deliver(Settings.from_env(), (datetime.now(UTC) + timedelta(hours=3)).isoformat())
    detected = clock.at(ClockMark.DETECTED)
    assert detected is not None and before <= detected <= datetime.now(UTC)
