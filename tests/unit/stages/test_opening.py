"""Open: one incident per dedup key, its evidence run in MLflow, bad requests change nothing."""

from __future__ import annotations

import pytest

from firebreak import stages
from firebreak.errors import IncidentRequestError, UnknownModelError
from firebreak.incidents.enums import EvidenceKind, IncidentStatus
from tests.unit.stages.conftest import World


def test_an_incident_opens_once_with_its_evidence_run(world: World) -> None:
    incident_id = world.open("open-a", severity="SEV2")
    again = stages.open_incident(
        {"model": "pricing", "description": "stage test open-a", "severity": "SEV2", "dedup_key": "open-a"},
        run_id="run-open-a",
    )
    assert again == {"incident_id": incident_id, "replay": False, "model": "pricing", "dry_run": False}
    incident = world.state().incidents.get_incident(incident_id)
    assert incident is not None and incident.status == IncidentStatus.OPEN
    assert incident.request["severity"] == "SEV2"
    opening = world.state().incidents.get_evidence(incident_id)[EvidenceKind.OPENING]
    assert opening["champion_version"] == world.facts["champion"]
    run = world.registry().client.get_run(incident.mlflow_run_id)
    assert run.data.tags["firebreak.incident_id"] == incident_id
    kinds = [e.kind for e in world.state().incidents.events(incident_id)]
    assert kinds == [EvidenceKind.OPENING]  # the second call found the run it opened, and wrote nothing


def test_another_run_of_the_same_alert_is_a_replay_that_changes_nothing(world: World) -> None:
    incident_id = world.open("open-b")
    found = stages.open_incident({"model": "pricing", "dedup_key": "open-b"}, run_id="a-later-run")
    assert found == {"incident_id": incident_id, "replay": True, "status": "open"}
    events = world.state().incidents.events(incident_id)
    assert [e.kind for e in events] == ["opening", "replay"]
    assert "a-later-run" in events[-1].message


@pytest.mark.parametrize(
    ("conf", "error", "message"),
    [
        ({"model": "pricing", "severity": "CRITICAL"}, IncidentRequestError, "severity"),
        ({"model": "pricing", "surprise": 1}, IncidentRequestError, "surprise: Extra inputs are not permitted"),
        ({"model": "no-such-model"}, UnknownModelError, "no policy for model 'no-such-model'"),
    ],
)
def test_a_bad_request_is_named_and_opens_nothing(
    world: World, conf: dict[str, object], error: type[Exception], message: str
) -> None:
    before = [i.id for i in world.state().incidents.list_incidents()]
    with pytest.raises(error, match=message):
        stages.open_incident({**conf, "dedup_key": "open-bad"}, run_id="run-open-bad")
    assert [i.id for i in world.state().incidents.list_incidents()] == before


def test_task_events_land_on_the_timeline_even_before_the_incident_exists(world: World) -> None:
    stages.record_task_event("pricing-not-yet", "task_failed", "open_incident failed: boom", {"task_id": "x"})
    [event] = world.state().incidents.events("pricing-not-yet")
    assert (event.kind, event.message, event.data) == ("task_failed", "open_incident failed: boom", {"task_id": "x"})
