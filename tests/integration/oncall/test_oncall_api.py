"""The on-call routes beside the alert intake, in Airflow's own api-server app.

Grafana, Arize and Fiddler alerts open incidents with the intake's dedup rules; an
authenticated ``POST /firebreak/incidents/{id}/acknowledge`` takes an incident and tells the
pager at once; ``GET /firebreak/metrics`` exports the incident clock as histograms. The real
FastAPI app the api-server serves (``airflow.api_fastapi.app.create_app``) with the Firebreak
plugins mounted, on the test's SQLite metadata DB; the pager is a loopback receiver that
checks every body against PagerDuty's published schema (PagerDuty cannot be reached here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firebreak.incidents.identity import incident_id_for
from tests.oncall_receivers import ROUTING_KEYS, Receivers, receivers

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_dags")]

ALERTS = {"Authorization": "Bearer alert-token"}
ONCALL = {"Authorization": "Bearer oncall-token"}
FIXTURES = Path(__file__).parents[2] / "unit" / "alerts" / "fixtures"


@pytest.fixture
def client(
    firebreak_home: Path, monkeypatch: pytest.MonkeyPatch, airflow_api_app: Any
) -> Iterator[tuple[Any, Receivers]]:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("FIREBREAK_ALERT_TOKEN", "alert-token")
    monkeypatch.setenv("FIREBREAK_ONCALL_TOKEN", "oncall-token")
    with receivers() as found:
        for key, value in found.connections().items():
            monkeypatch.setenv(key, value)
        with TestClient(airflow_api_app) as c:
            yield c, found


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def runs_for(run_id: str) -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [r.run_id for r in session.query(DagRun).filter(DagRun.run_id == run_id)]


def test_five_grafana_deliveries_three_concurrent_open_one_incident(client: tuple[Any, Receivers]) -> None:
    from firebreak.settings import Settings
    from tests.state import State

    c, _ = client
    body = fixture("grafana_firing.json")

    def post(_: int) -> dict[str, Any]:
        response = c.post("/firebreak/alerts/grafana", json=body, headers=ALERTS)
        assert response.status_code == 200, response.text
        return dict(response.json())

    sent = datetime.now(UTC)
    answers = [post(0), post(1)]
    with ThreadPoolExecutor(3) as pool:
        answers += list(pool.map(post, range(3)))
    incident_id = incident_id_for("pricing", "grafana:c6eadffa33fcdf37|2021-10-12T09:51:03.157076+02:00")
    assert runs_for(incident_id) == [incident_id]
    pricing = [a["alerts"][0] for a in answers]
    assert sorted(p["action"] for p in pricing) == ["duplicate"] * 4 + ["opened"]
    # The documentation's second alert has no model label: rejected, named, nothing opened for it.
    assert all(
        a["alerts"][1]["action"] == "rejected" and "no 'model' label" in a["alerts"][1]["detail"] for a in answers
    )
    # The documentation's start is of 2021: not when this breach was detected (time to contain would
    # read years). The first delivery's time is, and the mark says why.
    clock = State(Settings.from_env().state_db_url).incidents.clock(incident_id)
    assert sent <= clock["detected"].at <= datetime.now(UTC)  # type: ignore[index]
    assert clock["detected"].by == (  # type: ignore[index]
        "grafana alert (its start 2021-10-12 09:51 +02:00 is over 7 days old: delivery time taken)"
    )


@pytest.mark.parametrize(
    ("source", "name", "dedup_key"),
    [
        ("arize", "arize_triggered.json", "arize:TW9uaXRvcjo0NTY3|2026-11-30T08:15:00+00:00"),
        ("fiddler", "fiddler_alert.json", "fiddler:0b6d3f0e-8f7c-4a3e-9e1a-3c1f4b2a7d10|2026-11-30T00:00:00+00:00"),
    ],
)
def test_vendor_monitor_alerts_open_an_incident_with_their_params(
    client: tuple[Any, Receivers], source: str, name: str, dedup_key: str
) -> None:
    c, _ = client
    assert c.post(f"/firebreak/alerts/{source}", json=fixture(name), headers={}).status_code == 401
    response = c.post(f"/firebreak/alerts/{source}", json=fixture(name), headers=ALERTS)
    assert response.status_code == 200, response.text
    (alert,) = response.json()["alerts"]
    assert (alert["action"], alert["dedup_key"]) == ("opened", dedup_key)
    assert runs_for(incident_id_for("pricing", dedup_key)) == [incident_id_for("pricing", dedup_key)]
    assert c.post(f"/firebreak/alerts/{source}", json={"model": "pricing"}, headers=ALERTS).status_code == 422


def open_incident(severity: str = "SEV1") -> str:
    from firebreak.incidents.store import IncidentStore
    from firebreak.oncall.announce import announce
    from firebreak.oncall.messages import Event
    from firebreak.oncall.notifiers import deliver_now
    from firebreak.settings import Settings

    store = IncidentStore(Settings.from_env().state_db_url)
    store.create_incident(
        incident_id="pricing-ack-1",
        model="pricing",
        description="",
        dedup_key="ack-1",
        dag_run_id="r1",
        dry_run=False,
        request={},
    )
    store.update_incident("pricing-ack-1", severity=severity, failure_class="drift")
    announce("pricing-ack-1", Event.OPENED, "SEV1 drift")
    deliver_now("pricing-ack-1")
    return "pricing-ack-1"


def test_acknowledge_needs_its_own_token_names_bad_input_and_tells_the_pager(client: tuple[Any, Receivers]) -> None:
    c, found = client
    incident = open_incident()
    path = f"/firebreak/incidents/{incident}/acknowledge"
    assert c.post(path, json={"by": "bob"}).status_code == 401
    assert c.post(path, json={"by": "bob"}, headers=ALERTS).status_code == 401  # an alert sender cannot acknowledge
    assert c.post("/firebreak/incidents/nope/acknowledge", json={"by": "bob"}, headers=ONCALL).status_code == 404
    bad = c.post(path, json={"by": "<img src=x>"}, headers=ONCALL)
    assert bad.status_code == 422 and "acknowledged by: give a name" in bad.json()["error"]
    assert found.pagerduty.events("acknowledge") == []  # bad requests changed nothing

    first = c.post(path, json={"by": "bob", "note": "on it"}, headers=ONCALL)
    second = c.post(path, json={"by": "carol"}, headers=ONCALL)
    assert (
        first.status_code == 200 and first.json()["first"] is True and first.json()["delivered"] == 2
    )  # the pager and the Slack line
    assert second.status_code == 200 and second.json()["first"] is False and second.json()["by"] == "bob"
    (ack,) = found.pagerduty.events("acknowledge")
    assert ack.body["routing_key"] == ROUTING_KEYS["pagerduty_pricing"] and found.pagerduty.rejected == []


def test_metrics_export_the_clock_as_histograms_by_model_and_severity(client: tuple[Any, Receivers]) -> None:
    from firebreak.incidents.clock import stamp
    from firebreak.incidents.enums import ClockMark
    from firebreak.incidents.store import IncidentStore
    from firebreak.settings import Settings

    c, _ = client
    incident = open_incident()
    store = IncidentStore(Settings.from_env().state_db_url)
    t0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    for mark, seconds in [("first_breach", 0), ("detected", 240), ("opened", 250), ("acknowledged", 400)]:
        stamp(store, incident, ClockMark(mark), t0 + timedelta(seconds=seconds))
    for mark, seconds in [("contained", 260), ("mitigated", 800), ("resolved", 840)]:
        stamp(store, incident, ClockMark(mark), t0 + timedelta(seconds=seconds))
    text = c.get("/firebreak/metrics").text
    labels = 'model="pricing",severity="SEV1"'
    assert f'firebreak_incident_time_to_detect_seconds_bucket{{le="300.0",{labels}}} 1.0' in text
    assert f'firebreak_incident_time_to_detect_seconds_bucket{{le="120.0",{labels}}} 0.0' in text
    assert f"firebreak_incident_time_to_acknowledge_seconds_sum{{{labels}}} 150.0" in text
    assert f"firebreak_incident_time_to_contain_seconds_count{{{labels}}} 1.0" in text
    assert f"firebreak_incident_time_to_resolve_seconds_sum{{{labels}}} 600.0" in text
