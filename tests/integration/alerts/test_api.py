"""The alert intake inside Airflow's own api-server app: auth, validation, dedup, one run per episode.

Runs the real FastAPI app that the api-server serves (`airflow.api_fastapi.app.create_app`)
with the Firebreak plugin mounted, on the test's SQLite metadata DB.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from firebreak.incidents.identity import incident_id_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_dags")]

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(firebreak_home: Path, monkeypatch: pytest.MonkeyPatch, airflow_api_app: Any):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    monkeypatch.setenv("FIREBREAK_ALERT_TOKEN", TOKEN)
    with TestClient(airflow_api_app) as c:
        yield c


def am_payload(*alerts: dict[str, Any], status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="PricingLowConfidence"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "firebreak",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
        **extra,
    }


def am_alert(
    fingerprint: str = "a1b2c3", starts: str = "2026-11-27T10:00:00Z", status: str = "firing", **labels: str
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "PricingLowConfidence", "model": "pricing", **labels},
        "annotations": {"summary": "confidence under 0.70 on 35% of requests"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def runs_for(run_id: str) -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            {"run_id": r.run_id, "conf": r.conf, "state": str(r.state)}
            for r in session.query(DagRun).filter(DagRun.dag_id == "incident_response", DagRun.run_id == run_id)
        ]


def deliveries() -> list[dict[str, Any]]:
    from firebreak.settings import Settings
    from tests.state import State

    return State(Settings.from_env().state_db_url).alerts.deliveries()


def test_alertmanager_firing_opens_one_run_with_the_alerts_params(client) -> None:  # type: ignore[no-untyped-def]
    payload = am_payload(am_alert(severity="critical", failure_class="drift"), unknownFutureField={"x": 1})
    response = client.post("/firebreak/alerts/alertmanager", json=payload, headers=AUTH)
    assert response.status_code == 200, response.text
    incident_id = incident_id_for("pricing", "a1b2c3|2026-11-27T10:00:00+00:00")
    assert response.json()["alerts"][0] | {"detail": None} == {
        "model": "pricing",
        "dedup_key": "a1b2c3|2026-11-27T10:00:00+00:00",
        "status": "firing",
        "incident_id": incident_id,
        "action": "opened",
        "detail": None,
    }
    [run] = runs_for(incident_id)
    assert run["conf"]["severity"] == "SEV1" and run["conf"]["failure_type"] == "drift"
    assert run["conf"]["description"].startswith("[PricingLowConfidence] confidence under 0.70")
    assert run["conf"]["dedup_key"] == "a1b2c3|2026-11-27T10:00:00+00:00"
    assert json.loads(deliveries()[-1]["body"]) == payload  # the raw delivery, stored


def test_replays_and_concurrent_duplicates_start_exactly_one_run(client) -> None:  # type: ignore[no-untyped-def]
    payload = am_payload(am_alert(fingerprint="dup-1"))
    incident_id = incident_id_for("pricing", "dup-1|2026-11-27T10:00:00+00:00")

    def post() -> int:
        # Like Alertmanager: retry a 5xx until accepted.
        for _ in range(20):
            code = client.post("/firebreak/alerts/alertmanager", json=payload, headers=AUTH).status_code
            if code < 500:
                return int(code)
        return int(code)

    codes = [post() for _ in range(5)]
    with ThreadPoolExecutor(5) as pool:
        codes += list(pool.map(lambda _: post(), range(5)))
    assert codes == [200] * 10
    assert len(runs_for(incident_id)) == 1
    actions = [
        json.loads(json.dumps(d["detail"]))["alerts"][0]["action"] for d in deliveries() if d["status"] == "processed"
    ]
    assert actions.count("opened") == 1 and actions.count("duplicate") == 9
    from firebreak.settings import Settings
    from tests.state import State

    events = State(Settings.from_env().state_db_url).incidents.events(incident_id)
    assert sum(e.kind == "alert_duplicate" for e in events) == 9  # later deliveries land on the timeline


def test_a_new_episode_of_the_same_alert_is_a_new_incident(client) -> None:  # type: ignore[no-untyped-def]
    for starts in ("2026-11-27T10:00:00Z", "2026-11-27T14:00:00Z"):
        assert (
            client.post(
                "/firebreak/alerts/alertmanager", json=am_payload(am_alert("ep", starts)), headers=AUTH
            ).status_code
            == 200
        )
    assert len(runs_for(incident_id_for("pricing", "ep|2026-11-27T10:00:00+00:00"))) == 1
    assert len(runs_for(incident_id_for("pricing", "ep|2026-11-27T14:00:00+00:00"))) == 1


def test_resolved_before_firing_never_reopens(client) -> None:  # type: ignore[no-untyped-def]
    resolved = am_payload(am_alert("late", status="resolved"), status="resolved")
    firing = am_payload(am_alert("late"))
    assert client.post("/firebreak/alerts/alertmanager", json=resolved, headers=AUTH).status_code == 200
    response = client.post("/firebreak/alerts/alertmanager", json=firing, headers=AUTH)
    assert response.status_code == 200 and response.json()["alerts"][0]["action"] == "ignored"
    incident_id = incident_id_for("pricing", "late|2026-11-27T10:00:00+00:00")
    assert runs_for(incident_id) == []
    from firebreak.settings import Settings
    from tests.state import State

    kinds = [e.kind for e in State(Settings.from_env().state_db_url).incidents.events(incident_id)]
    assert kinds == ["alert_resolved", "alert_ignored"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": f"Basic {TOKEN}"}, 401)],
    ids=["missing", "wrong", "not-bearer"],
)
def test_bad_token_is_refused_and_nothing_is_recorded(client, headers: dict[str, str], code: int) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/firebreak/alerts/alertmanager", json=am_payload(am_alert("auth")), headers=headers)
    assert response.status_code == code
    assert deliveries() == []


def test_no_configured_token_answers_503_so_senders_retry(client, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("FIREBREAK_ALERT_TOKEN")
    response = client.post("/firebreak/alerts/alertmanager", json=am_payload(am_alert()), headers=AUTH)
    assert response.status_code == 503 and "FIREBREAK_ALERT_TOKEN" in response.text


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        ("alertmanager", b"{not json", 400, "body is not valid JSON"),
        (
            "alertmanager",
            json.dumps({"version": "4", "status": "firing", "alerts": []}).encode(),
            422,
            "groupKey: Field required",
        ),
        (
            "alertmanager",
            json.dumps(am_payload(am_alert(model="inventory"))).encode(),
            422,
            "no policy for model 'inventory'",
        ),
        ("generic", json.dumps({"model": "pricing", "signal": "psi"}).encode(), 422, "value: Field required"),
    ],
    ids=["malformed", "schema", "unknown-model", "generic-schema"],
)
def test_bad_alerts_are_answered_clearly_and_start_nothing(
    client, firebreak_home: Path, path: str, body: bytes, code: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        f"/firebreak/alerts/{path}", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == code
    assert message in response.json()["error"]
    # The sender is told what was wrong, never where the server keeps its files or which models it knows.
    assert str(firebreak_home) not in response.text and ".yaml" not in response.text
    assert "known models" not in response.text and "support_bot" not in response.text
    if code == 400:  # never parseable: nothing stored (a stored delivery would be retried or kept forever)
        assert deliveries() == []
        return
    [delivery] = deliveries()
    assert delivery["status"] == "rejected" and delivery["body"] == body.decode()


def _deep(n: int) -> bytes:
    return b'{"version": "4", "x": ' + b"[" * n + b"]" * n + b"}"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (_deep(100_000), 400, "nested deeper than 32 levels"),
        (b'{"version": "4", "truncatedAlerts": ' + b"9" * 5000 + b"}", 400, "a number longer than 100 characters"),
        (b'{"model": "pricing", "signal": "psi", "value": 1e400}', 400, "number 1e400 is out of range"),
        (b'{"model": "pricing", "value": NaN}', 400, "NaN is not a JSON number"),
        (b"\xff\xfe{}", 400, "body is not UTF-8"),
    ],
    ids=["depth-100k", "int-5000-digits", "1e400", "nan", "not-utf8"],
)
def test_hostile_json_is_a_4xx_and_nothing_is_stored(client, body: bytes, code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    """Reliability case 29: each of these was a 500 (and a stored delivery Alertmanager resent forever)."""
    for path in ("alertmanager", "generic"):
        response = client.post(f"/firebreak/alerts/{path}", content=body, headers=AUTH)
        assert response.status_code == code, response.text
        assert message in response.json()["error"]
    assert deliveries() == []


def test_an_oversized_body_without_a_length_is_refused_while_streaming(client) -> None:  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"version": "4", "pad": "'
        for _ in range(40):  # 2.6 MB, sent chunked: no Content-Length to refuse it by
            yield b"x" * 65536
        yield b'"}'

    response = client.post("/firebreak/alerts/alertmanager", content=chunks(), headers=AUTH)
    assert response.status_code == 413 and "body larger than 1000000 bytes" in response.json()["error"]
    assert deliveries() == []


def test_one_delivery_of_1000_alerts_for_one_model_opens_at_most_its_cap(client) -> None:  # type: ignore[no-untyped-def]
    """Reliability case 30: 1,000 alerts for `pricing` held the request 73 s and queued 1,000 runs."""
    alerts = [am_alert(fingerprint=f"storm-{i:04d}") for i in range(1000)]
    response = client.post("/firebreak/alerts/alertmanager", json=am_payload(*alerts), headers=AUTH)
    assert response.status_code == 200, response.text
    actions = [a["action"] for a in response.json()["alerts"]]
    assert actions == ["opened", "opened"] + ["capped"] * 98  # the policy's alerts.max_open_incidents: 2
    opened = [a["incident_id"] for a in response.json()["alerts"][:2]]
    assert [len(runs_for(i)) for i in opened] == [1, 1]
    assert runs_for(incident_id_for("pricing", "storm-0002|2026-11-27T10:00:00+00:00")) == []
    [delivery] = deliveries()
    assert delivery["detail"]["excess_alerts"] == 900  # kept in the stored body, not acted on
    from firebreak.settings import Settings
    from tests.state import State

    events = State(Settings.from_env().state_db_url).incidents.events(opened[-1])
    [capped] = [e for e in events if e.kind == "alert_capped"]
    assert capped.message.startswith("alertmanager delivery #1: 998 more alerts for pricing not opened")
    assert capped.data is not None and capped.data["alerts"] == 998

    # The storm's episode fires again later: still capped while two incidents are open, never a third run.
    again = client.post("/firebreak/alerts/alertmanager", json=am_payload(alerts[2]), headers=AUTH)
    assert again.json()["alerts"][0]["action"] == "capped"


def test_truncated_alerts_are_accepted_and_noted(client) -> None:  # type: ignore[no-untyped-def]
    payload = am_payload(am_alert("trunc"), truncatedAlerts=3)
    assert client.post("/firebreak/alerts/alertmanager", json=payload, headers=AUTH).status_code == 200
    assert deliveries()[-1]["detail"]["truncated_alerts"] == 3


def test_generic_monitor_alert_becomes_the_same_internal_alert(client) -> None:  # type: ignore[no-untyped-def]
    body = {
        "model": "pricing",
        "signal": "psi:demand_index",
        "value": 0.41,
        "threshold": 0.2,
        "severity": "SEV2",
        "segment": "category=grocery",
        "window": "1h",
        "dedup_key": "psi-demand-2026-11-27",
        "source": "evidently",
        "failure_class": "drift",
        "vendor_extra": True,
    }
    response = client.post("/firebreak/alerts/generic", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    incident_id = incident_id_for("pricing", "evidently:psi-demand-2026-11-27")
    [run] = runs_for(incident_id)
    assert run["conf"]["failure_type"] == "drift" and run["conf"]["severity"] == "SEV2"
    assert "psi:demand_index = 0.41 (threshold 0.2) in segment category=grocery over 1h" in run["conf"]["description"]
    assert (
        client.post("/firebreak/alerts/generic", json=body, headers=AUTH).json()["alerts"][0]["action"] == "duplicate"
    )


def test_state_db_down_answers_503_then_the_retry_opens_the_incident(  # type: ignore[no-untyped-def]
    client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reliability cases 2 and 17: an outage answers 503 (Alertmanager retries), nothing is lost after it."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the DB's folder should be")
    monkeypatch.setenv("FIREBREAK_STATE_DB_URL", f"sqlite:///{blocker / 'state.db'}")
    payload = am_payload(am_alert("outage"))
    for _ in range(2):  # two group intervals of failed deliveries
        response = client.post("/firebreak/alerts/alertmanager", json=payload, headers=AUTH)
        assert response.status_code == 503 and "state DB unavailable" in response.text
    incident_id = incident_id_for("pricing", "outage|2026-11-27T10:00:00+00:00")
    assert runs_for(incident_id) == []
    monkeypatch.delenv("FIREBREAK_STATE_DB_URL")  # the store is back
    response = client.post("/firebreak/alerts/alertmanager", json=payload, headers=AUTH)
    assert response.status_code == 200 and response.json()["alerts"][0]["action"] == "opened"
    assert len(runs_for(incident_id)) == 1
