"""The incident console inside Airflow's own api-server app (in process), behind Airflow's login.

Real components: Airflow 3.3's FastAPI app with the Firebreak plugin mounted and its
SimpleAuthManager issuing the JWTs; the state DB on SQLite. Incidents are recorded rows
(the stores' own calls), one with a hostile alert description.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("airflow_db")

HOSTILE = "# Heading\n<script>alert(1)</script>\x1b[31m red\x1b[0m\x00 | cell"
PASSWORDS = {"admin": "admin-pass", "viewer": "viewer-pass"}
ENDPOINTS = [
    ("GET", "/firebreak/console/"),
    ("GET", "/firebreak/console/incidents/pricing-aaaa00000001"),
    ("GET", "/firebreak/console/models/pricing"),
    ("GET", "/firebreak/console/incidents/pricing-aaaa00000001/charts/drift.png"),
    ("GET", "/firebreak/console/incidents/pricing-aaaa00000001/postmortem"),
    ("GET", "/firebreak/console/api/incidents"),
    ("GET", "/firebreak/console/api/incidents/pricing-aaaa00000001"),
    ("GET", "/firebreak/console/api/models/pricing"),
    ("POST", "/firebreak/console/api/incidents/pricing-aaaa00000001/acknowledge"),
    ("POST", "/firebreak/console/api/incidents/pricing-aaaa00000001/breaker"),
    ("POST", "/firebreak/console/api/models/pricing/breaker"),
    ("POST", "/firebreak/console/api/incidents/pricing-aaaa00000001/approval"),
]


def record_world(state_db_url: str) -> None:
    from firebreak.containment.state import RoutingStore
    from firebreak.incidents.store import IncidentStore

    store = IncidentStore(state_db_url)
    for incident_id, model, description, status, severity in [
        ("pricing-aaaa00000001", "pricing", HOSTILE, "contained", "SEV1"),
        ("pricing-aaaa00000002", "pricing", "older one", "resolved", "SEV2"),
        ("loan_approval-bbbb00000001", "loan_approval", "approvals fell for 18-25", "contained_needs_human", "SEV1"),
    ]:
        store.create_incident(
            incident_id=incident_id,
            model=model,
            description=description,
            dedup_key=incident_id,
            dag_run_id=incident_id,
            dry_run=False,
            request={"model": model},
        )
        store.add_event(incident_id, "opening", f"incident opened for {model}: {description}")
        store.add_event(incident_id, "containment", f"traffic of {model} moved champion -> heuristic")
        store.put_evidence(
            incident_id,
            "drift",
            {
                "drift_share": 0.5,
                "dataset_drift": True,
                "columns": [
                    {
                        "column": "demand_index",
                        "method": "K-S p_value",
                        "score": 0.0001,
                        "threshold": 0.05,
                        "drifted": True,
                    },
                    {
                        "column": "$x$ <b>",
                        "method": "Jensen-Shannon distance",
                        "score": 0.02,
                        "threshold": 0.1,
                        "drifted": False,
                    },
                ],
            },
        )
        store.update_incident(incident_id, status=status, severity=severity)
    RoutingStore(state_db_url).ensure_routing("pricing", "heuristic", "contained")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    home = tmp_path_factory.mktemp("console") / "firebreak"
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    (airflow_home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(PASSWORDS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
        from airflow.api_fastapi.app import create_app

        from firebreak.settings import Settings

        record_world(Settings.from_env().state_db_url)
        with TestClient(create_app()) as c:
            yield c


def token(client: Any, user: str) -> str:
    answer = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["access_token"])


def state() -> Any:
    from firebreak.settings import Settings
    from tests.state import State

    return State(Settings.from_env().state_db_url)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_page_and_data_endpoint_refuses_anonymous_and_forged_requests(
    client: Any, method: str, path: str
) -> None:
    body = {"reason": "x", "action": "open", "choice": "approve", "task_id": "t"}
    anonymous = client.request(method, path, json=body if method == "POST" else None)
    assert anonymous.status_code == 401, anonymous.text
    forged = client.request(method, path, json=body if method == "POST" else None, cookies={"_token": "forged"})
    assert forged.status_code == 403, forged.text
    assert "demand_index" not in forged.text and "pricing-aaaa00000002" not in anonymous.text
    assert state().incidents.events("pricing-aaaa00000001")[-1].kind == "containment"  # nothing recorded


def test_a_viewer_sees_the_board_but_cannot_act(client: Any) -> None:
    headers = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    board = client.get("/firebreak/console/api/incidents", headers=headers)
    assert board.status_code == 200
    assert {i["id"]: i["status"] for i in board.json()["incidents"]} == {
        "pricing-aaaa00000001": "contained",
        "pricing-aaaa00000002": "resolved",
        "loan_approval-bbbb00000001": "contained_needs_human",
    }
    page = client.get("/firebreak/console/incidents/pricing-aaaa00000001", headers=headers)
    assert page.status_code == 200 and "(read only)" in page.text and 'data-testid="ack-form"' not in page.text
    refused = client.post(
        "/firebreak/console/api/incidents/pricing-aaaa00000001/acknowledge", json={"reason": "mine"}, headers=headers
    )
    assert refused.status_code == 403
    assert all(e.kind != "acknowledged" for e in state().incidents.events("pricing-aaaa00000001"))


def test_the_board_filters_by_model_status_and_severity(client: Any) -> None:
    cookies = {"_token": token(client, "viewer")}

    def ids(**query: str) -> list[str]:
        answer = client.get("/firebreak/console/api/incidents", params=query, cookies=cookies)
        return sorted(i["id"] for i in answer.json()["incidents"])

    assert ids(model="loan_approval") == ["loan_approval-bbbb00000001"]
    assert ids(status="resolved") == ["pricing-aaaa00000002"]
    assert ids(severity="SEV1") == ["loan_approval-bbbb00000001", "pricing-aaaa00000001"]
    assert ids(since="24h", model="pricing", severity="SEV2") == ["pricing-aaaa00000002"]
    assert len(ids(status="'; drop table incidents; --")) == 3  # an unknown value is no filter, not a query
    assert len(ids(page="1; drop table incidents")) == 3  # not a page number: the first page
    first = client.get("/firebreak/console/api/incidents", params={"severity": "SEV1"}, cookies=cookies).json()
    assert (first["matching"], first["page"], first["next_page"]) == (2, 1, None)
    html = client.get("/firebreak/console/", params={"severity": "SEV1"}, cookies=cookies).text
    assert "1–2 of 2 incident(s)" in html and 'rel="next"' not in html
    beyond = client.get("/firebreak/console/", params={"severity": "SEV1", "page": "2"}, cookies=cookies).text
    assert "No incident on this page" in beyond and 'href="/firebreak/console/?severity=SEV1&amp;page=1"' in beyond


def test_acting_records_the_user_and_the_reason_on_the_timeline(client: Any) -> None:
    headers = {"Authorization": f"Bearer {token(client, 'admin')}"}
    base = "/firebreak/console/api/incidents/pricing-aaaa00000001"
    assert client.post(f"{base}/acknowledge", json={"reason": ""}, headers=headers).status_code == 422
    assert client.post(f"{base}/acknowledge", content="reason=x", headers=headers).status_code in (415, 422)
    cross_site = client.post(
        f"{base}/acknowledge", json={"reason": "x"}, headers={**headers, "Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403

    ack = client.post(f"{base}/acknowledge", json={"reason": "on call, looking"}, headers=headers)
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "admin" and ack.json()["first"] is True
    again = client.post(f"{base}/acknowledge", json={"reason": "me too"}, headers=headers)
    assert again.json()["first"] is False

    opened = client.post(f"{base}/breaker", json={"action": "open", "reason": "prices below cost"}, headers=headers)
    assert opened.status_code == 200 and opened.json()["state"] == "open"
    released = client.post(f"{base}/breaker", json={"action": "close", "reason": "v2 is fine"}, headers=headers)
    assert released.json()["state"] == "closed"

    lines = [(e.kind, e.message, (e.data or {}).get("by")) for e in state().incidents.events("pricing-aaaa00000001")]
    assert ("acknowledged", "acknowledged by admin via ui: on call, looking", "admin") in lines
    assert ("operator", "breaker of pricing forced open by admin: prices below cost", "admin") in lines
    assert ("operator", "breaker of pricing released (closed) by admin: v2 is fine", "admin") in lines
    acks = [e for e in state().incidents.events("pricing-aaaa00000001") if e.kind == "acknowledged"]
    assert [bool((e.data or {}).get("repeat")) for e in acks] == [False, True]  # the first one holds it
    assert state().incidents.clock("pricing-aaaa00000001")["acknowledged"].by == "admin"
    events = state().routing.breaker_events("pricing")
    assert [(e["target"], e["data"]["by"]) for e in events[-2:]] == [("open", "admin"), ("closed", "admin")]
    board = client.get("/firebreak/console/api/incidents", params={"model": "pricing"}, headers=headers).json()
    assert {i["id"]: i["acknowledged_by"] for i in board["incidents"]}["pricing-aaaa00000001"] == "admin"
    # No human-in-the-loop step waits in this run: answering one is refused, nothing recorded.
    approval = client.post(
        f"{base}/approval", json={"choice": "approve", "reason": "gate passed", "task_id": "approve"}, headers=headers
    )
    assert approval.status_code == 409
    assert all("approve" not in message for _, message, _ in lines)


def test_the_incident_and_model_pages_offer_the_breaker_to_whoever_may_act(client: Any) -> None:
    import re

    def actions(path: str, user: str) -> dict[str, str]:
        page = client.get(path, cookies={"_token": token(client, user)})
        assert page.status_code == 200, page.text
        found = re.findall(r'data-action="([^"]+)" data-testid="([a-z-]+)"', page.text)
        return {testid: action for action, testid in found}

    incident = actions("/firebreak/console/incidents/pricing-aaaa00000001", "admin")
    breaker = "/firebreak/console/api/incidents/pricing-aaaa00000001/breaker"
    assert incident["breaker-open-form"] == incident["breaker-close-form"] == breaker
    model = actions("/firebreak/console/models/pricing", "admin")
    assert (
        model["model-breaker-open-form"]
        == model["model-breaker-close-form"]
        == "/firebreak/console/api/models/pricing/breaker"
    )
    assert actions("/firebreak/console/models/pricing", "viewer") == {}  # read only: no forms
    admin = {"Authorization": f"Bearer {token(client, 'admin')}"}
    opened = client.post(model["model-breaker-open-form"], json={"action": "open", "reason": "drill"}, headers=admin)
    assert opened.status_code == 200 and state().routing.breaker_events("pricing")[-1]["target"] == "open"
    closed = client.post(
        model["model-breaker-close-form"], json={"action": "close", "reason": "drill over"}, headers=admin
    )
    assert closed.status_code == 200 and state().routing.breaker_events("pricing")[-1]["target"] == "closed"


def test_hostile_alert_text_is_inert_on_the_pages(client: Any) -> None:
    cookies = {"_token": token(client, "admin")}
    page = client.get("/firebreak/console/incidents/pricing-aaaa00000001", cookies=cookies)
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "\x1b" not in page.text and "\x00" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    board = client.get("/firebreak/console/", cookies=cookies)
    assert board.status_code == 200 and "<script>alert" not in board.text
    chart = client.get("/firebreak/console/incidents/pricing-aaaa00000001/charts/drift.png", cookies=cookies)
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
    assert (
        client.get("/firebreak/console/incidents/pricing-aaaa00000001/charts/x.png", cookies=cookies).status_code == 404
    )
    assert client.get("/firebreak/console/incidents/..%2F..%2Fetc/postmortem", cookies=cookies).status_code == 404
