"""The on-call loop around a whole pricing incident, through ``dag.test()``.

The policy requires an approval by ``alice``. While the run goes, on-call ``bob``
acknowledges it (as the incidents console would) and ``alice`` answers the approval through
Airflow's own REST API (``PATCH .../hitlDetails``, the real core API app in-process on this
metadata DB: under ``dag.test()`` the run waits for exactly that). Pages, Slack messages and
mail go through Airflow's notifiers to loopback receivers (PagerDuty and Slack cannot be
reached from here; their stand-ins check every body against the published schema); the
mail goes to a real SMTP server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import REPO, firebreak_env, pricing_conf, run_incident, settings
from tests.oncall_receivers import ROUTING_KEYS, Receivers, receivers

pytestmark = pytest.mark.usefixtures("airflow_dags")

PRIMARY = ROUTING_KEYS["pagerduty_pricing"]
DAG = "incident_response"


def write_policy(folder: Path, **approval: Any) -> None:
    policy = yaml.safe_load((REPO / "include/policies/pricing.yaml").read_text())
    policy["gate"].update({"requires_approval": True, "approval": {"approvers": ["alice"], **approval}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pricing.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


def answer_when_asked(run_id: Callable[[], str | None], choice: str, user: str, answers: list[Any]) -> threading.Thread:
    """In the background: once approve_promotion waits, answer through Airflow's REST API as ``user``."""

    def drive() -> None:
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient

        with TestClient(create_app()) as client:
            token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role="admin"))
            headers = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                rid = run_id()
                if rid:
                    path = f"/api/v2/dags/{DAG}/dagRuns/{rid}/taskInstances/approve_promotion/-1/hitlDetails"
                    state = client.get(
                        f"/api/v2/dags/{DAG}/dagRuns/{rid}/taskInstances/approve_promotion", headers=headers
                    )
                    if state.status_code == 200 and state.json()["state"] == "awaiting_input":
                        asked = time.monotonic()
                        answers.append(client.patch(path, json={"chosen_options": [choice]}, headers=headers))
                        answers.append(time.monotonic() - asked)
                        # A second answer is refused by Airflow (409): the first one stands.
                        answers.append(client.patch(path, json={"chosen_options": ["Approve"]}, headers=headers))
                        return
                time.sleep(1)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread


def acknowledge_when_open(incident_id: str, by: str) -> threading.Thread:
    """In the background: once the incident is triaged, ``by`` takes it (the console's call)."""

    def drive() -> None:
        from firebreak.incidents.store import IncidentStore
        from firebreak.oncall.acknowledge import acknowledge

        store = IncidentStore(settings().state_db_url)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            incident = store.get_incident(incident_id)
            if incident is not None and incident.severity:
                acknowledge(incident_id, by, via="ui")
                return
            time.sleep(0.5)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread


def current_run(incident_id: str) -> Callable[[], str | None]:
    def find() -> str | None:
        from firebreak.incidents.store import IncidentStore

        incident = IncidentStore(settings().state_db_url).get_incident(incident_id)
        return incident.dag_run_id if incident else None

    return find


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One pricing incident, acknowledged by bob, its promotion approved by alice."""
    from firebreak.incidents.identity import incident_id_for
    from firebreak.scenarios import pricing

    home = tmp_path_factory.mktemp("oncall") / "firebreak"
    policies = home.parent / "policies"
    write_policy(policies)
    with (
        receivers() as found,
        firebreak_env(
            FIREBREAK_HOME=str(home),
            MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
            FIREBREAK_POLICIES_DIR=str(policies),
            **found.connections(),
        ),
    ):
        pricing.setup(settings())
        incident_id = incident_id_for("pricing", "oncall-approve")
        answers: list[Any] = []
        ack = acknowledge_when_open(incident_id, "bob")
        approval = answer_when_asked(current_run(incident_id), "Approve", "alice", answers)
        started = time.monotonic()
        result = run_incident(pricing_conf("oncall-approve"))
        print(f"\n[timing] incident with acknowledgement and approval: {time.monotonic() - started:.1f} s")
        ack.join(5)
        approval.join(5)
        yield {"result": result, "incident_id": incident_id, "receivers": found, "answers": answers, "home": home}


def test_approval_resumes_the_run_and_promotes_with_the_approver_in_the_ledger(approved: dict[str, Any]) -> None:
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    result, incident_id = approved["result"], approved["incident_id"]
    first, round_trip, second = approved["answers"]
    print(f"\n[oncall] approval answered in {round_trip:.2f} s (PATCH hitlDetails)")
    assert first.status_code == 200 and first.json()["responded_by"]["name"] == "alice"
    assert second.status_code == 409  # a second answer is refused
    assert result.state == "success", result.task_states
    assert result.task_states["approve_promotion"] == "success"
    with firebreak_env(
        FIREBREAK_HOME=str(approved["home"]), MLFLOW_TRACKING_URI=f"sqlite:///{approved['home'] / 'mlflow.db'}"
    ):
        s = settings()
        assert Registry(s).aliases("pricing") == {"champion": "2", "last-known-good": "1"}
        champion = [e for e in State(s.state_db_url).ledger.entries("pricing") if e.alias == "champion"][-1]
        assert (champion.new_version, champion.approved_by) == ("2", "alice")
        assert "approved by alice" in champion.reason
        evidence = State(s.state_db_url).incidents.get_evidence(incident_id)
        assert evidence["approval"]["approved"] is True and evidence["approval"]["by"] == "alice"


def test_the_pager_hears_trigger_acknowledge_change_and_resolve_once_each(approved: dict[str, Any]) -> None:
    found: Receivers = approved["receivers"]
    pd = found.pagerduty
    assert pd.rejected == [] and found.slack.rejected == []
    assert [r.body.get("event_action", "change") for r in pd.received if r.body["routing_key"] == PRIMARY] == [
        "trigger",
        "acknowledge",
        "change",
        "resolve",
    ]
    (trigger,) = pd.events("trigger")
    assert trigger.body["dedup_key"] == approved["incident_id"] and trigger.body["payload"]["severity"] == "critical"
    (change,) = pd.events("change")
    assert "promotion after retrain: champion v1 -> v2, approved by alice" in change.body["payload"]["summary"]
    assert pd.events("trigger", ROUTING_KEYS["pagerduty_ml_platform"]) == []  # acknowledged: no escalation page
    slack = [r.body["text"].split(":", 2)[1] for r in found.slack.received]
    assert {"rotating_light", "eyes", "raised_hand", "white_check_mark", "memo"} <= set(slack)
    subjects = [m["Subject"] for _, m in found.mail.messages]
    assert [s.split(":")[0] for s in subjects] == [
        "[Firebreak] Incident opened",
        "[Firebreak] Approval needed",
        "[Firebreak] Closed",
    ]


def test_the_resolve_reaches_the_pager_within_seconds_of_traffic_restored(approved: dict[str, Any]) -> None:
    from tests.state import State

    with firebreak_env(FIREBREAK_HOME=str(approved["home"])):
        clock = State(settings().state_db_url).incidents.clock(approved["incident_id"])
    (resolve,) = approved["receivers"].pagerduty.events("resolve")
    mitigated = clock["mitigated"].at.timestamp()  # type: ignore[index]
    lag = resolve.at - mitigated
    print(f"\n[oncall] traffic restored -> resolve at the pager: {lag:.2f} s")
    assert 0 <= lag <= 5


def test_the_postmortem_shows_a_complete_monotonic_clock_and_who_was_told(approved: dict[str, Any]) -> None:
    from firebreak.incidents.clock import Clock
    from tests.state import State

    with firebreak_env(FIREBREAK_HOME=str(approved["home"])):
        s = settings()
        clock = Clock(State(s.state_db_url).incidents.clock(approved["incident_id"]))
        text = (s.postmortem_dir / f"{approved['incident_id']}.md").read_text()
    assert [m for m in clock.marks] and clock.problems() == []
    assert set(clock.marks) == {
        "first_breach",
        "detected",
        "opened",
        "acknowledged",
        "contained",
        "mitigated",
        "resolved",
    }
    assert clock.marks["acknowledged"].by == "bob"  # type: ignore[index]
    print("\n[oncall] clock: " + ", ".join(f"{k}={v:.1f}s" for k, v in clock.durations().items() if v is not None))
    for expected in (
        "## Clock against the SOP's targets",
        "Clock order: monotonic.",
        "| acknowledged |",
        "## On-call",
        "**Approval:** Approve — approved by alice.",
        "| opened | ic-pager | pagerduty | sent |",
        "| alice |",
    ):
        assert expected in text, expected


def test_a_rejection_keeps_traffic_on_the_fallback_and_says_who_and_why(
    firebreak_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import pricing
    from tests.state import State

    write_policy(tmp_path / "policies")
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(tmp_path / "policies"))
    pricing.setup(settings())
    incident_id = incident_id_for("pricing", "oncall-reject")
    answers: list[Any] = []
    approval = answer_when_asked(current_run(incident_id), "Reject", "alice", answers)
    result = run_incident(pricing_conf("oncall-reject"))
    approval.join(5)

    assert result.state == "failed"
    assert result.task_states["approve_promotion"] == "failed"
    assert (
        result.task_states["promote"] == "upstream_failed"
        and result.task_states["restore_traffic"] == "upstream_failed"
    )
    s = settings()
    state = State(s.state_db_url)
    incident = state.incidents.get_incident(incident_id)
    assert incident is not None and str(incident.status) == "contained_needs_human"
    assert "promotion rejected by alice" in (incident.outcome or "")
    assert state.routing.get_routing("pricing").route == "heuristic"  # type: ignore[union-attr]
    assert Registry(s).aliases("pricing") == {"champion": "1", "challenger": "2"}
    assert "promotion rejected by alice" in (s.postmortem_dir / f"{incident_id}.md").read_text()
