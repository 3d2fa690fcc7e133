"""The on-call loop under the real scheduler: one local stack (``airflow standalone``: api-server,
scheduler, dag-processor, triggerer) with the Firebreak plugins, for the whole module.

Two incidents at once, each waiting at its approval so that its SEV1 one-minute
acknowledgement deadline passes while it runs:

- ``pricing_ui``: five deliveries of one Grafana alert (three concurrent) open it; on-call
  acknowledges it through the REST endpoint beside the intake; at the deadline nothing
  escalates; the promotion is approved in the Airflow UI (Chromium, Required Actions), the run
  resumes and promotes with the approver in the alias ledger; the pager hears one trigger,
  the acknowledgement, the change and the resolve — within seconds of traffic restored.
- ``pricing_esc``: opened through Airflow's REST API and never acknowledged: at its deadline
  the backup pager is paged and the timeline says so; the promotion is rejected through the
  REST API (``PATCH .../hitlDetails``), a second answer is refused, traffic stays on the
  fallback.

PagerDuty and Slack cannot be reached from here: loopback receivers stand in and check every
body against the published schema; mail goes to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, system_binary
from tests.integration.conftest import artifacts_dir
from tests.oncall_receivers import ROUTING_KEYS, Receivers, receivers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

DAG = "incident_response"
ALERT_TOKEN, ONCALL_TOKEN = "stack-alert-token", "stack-oncall-token"
PRIMARY, BACKUP = ROUTING_KEYS["pagerduty_pricing"], ROUTING_KEYS["pagerduty_ml_platform"]
GRAFANA = json.loads((Path(__file__).parents[2] / "unit/alerts/fixtures/grafana_firing.json").read_text())


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def write_policies(folder: Path) -> None:
    source = yaml.safe_load((REPO / "include/policies/pricing.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for model in ("pricing_ui", "pricing_esc"):
        policy = {**source, "model": model}
        policy["training"] = {**source["training"], "dataset": f"data/{model}/history.parquet"}
        policy["gate"] = {**source["gate"], "requires_approval": True, "approval": {"approvers": ["admin"]}}
        routes = source["notify"]["routes"]
        policy["notify"] = {
            **source["notify"],
            "routes": {**routes, "SEV1": {**routes["SEV1"], "acknowledge_within": "1m"}},
        }
        (folder / f"{model}.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


def post(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings
    from firebreak_dev.local import STATIC_DAGS, LocalStack
    from firebreak_dev.services import free_port

    root = tmp_path_factory.mktemp("oncall-stack")
    write_policies(root / "policies")
    with receivers() as found, pytest.MonkeyPatch.context() as mp:
        env = {
            "FIREBREAK_HOME": str(root / "firebreak"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'firebreak' / 'mlflow.db'}",
            "FIREBREAK_POLICIES_DIR": str(root / "policies"),
            "FIREBREAK_ONCALL_TOKEN": ONCALL_TOKEN,
            **found.connections(),
        }
        for key, value in env.items():
            mp.setenv(key, value)
        settings = Settings.from_env()
        started = time.monotonic()
        for model in ("pricing_ui", "pricing_esc"):
            pricing.setup(settings, model=model)
        print(f"\n[timing] two pricing worlds set up in {time.monotonic() - started:.1f} s")
        s = LocalStack(
            settings, airflow_port=free_port(), mlflow_port=None, alert_token=ALERT_TOKEN, extra_env=STATIC_DAGS
        )
        mp.setenv("FIREBREAK_AIRFLOW_URL", s.airflow_url)
        started = time.monotonic()
        s.start(timeout=300)
        print(
            f"[timing] local stack healthy in {time.monotonic() - started:.1f} s; logs {settings.home / 'stack-logs'}"
        )
        s.receivers = found  # type: ignore[attr-defined]
        try:
            yield s
        finally:
            s.stop()


@contextmanager
def stores(stack: Any) -> Iterator[Any]:
    from firebreak.settings import Settings
    from tests.state import State

    yield State(Settings.from_env().state_db_url)


def run_state(stack: Any, run_id: str, token: str) -> dict[str, Any]:
    return dict(stack.api_request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}", token))


def ti_state(stack: Any, run_id: str, task: str, token: str) -> str | None:
    try:
        return stack.api_request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task}", token)["state"]
    except urllib.error.HTTPError:
        return None


@pytest.fixture(scope="module")
def incidents(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both incidents driven to their end; what happened along the way, with times."""
    from firebreak.incidents.identity import incident_id_for

    token = stack.api_token()
    out: dict[str, Any] = {}

    # pricing_ui: five deliveries of one Grafana alert, two in a row and three at once.
    body = {
        **GRAFANA,
        "alerts": [{**GRAFANA["alerts"][0], "labels": {**GRAFANA["alerts"][0]["labels"], "model": "pricing_ui"}}],
    }
    url = f"{stack.intake_url}/grafana"
    codes = [post(url, body, ALERT_TOKEN)[0] for _ in range(2)]
    with ThreadPoolExecutor(3) as pool:
        codes += [c for c, _ in pool.map(lambda _: post(url, body, ALERT_TOKEN), range(3))]
    out["intake_codes"] = codes
    ui_id = incident_id_for("pricing_ui", "grafana:c6eadffa33fcdf37|2021-10-12T09:51:03.157076+02:00")
    # pricing_esc: through Airflow's REST API, severity left to triage.
    esc_run = f"esc-{uuid.uuid4().hex[:6]}"
    conf = {
        "model": "pricing_esc",
        "failure_type": "unknown",
        "severity": "auto",
        "description": "esc",
        "remediation": "auto",
        "dry_run": False,
        "dedup_key": "oncall-esc",
    }
    stack.api_request(
        "POST", f"/api/v2/dags/{DAG}/dagRuns", token, {"dag_run_id": esc_run, "logical_date": None, "conf": conf}
    )
    esc_id = incident_id_for("pricing_esc", "oncall-esc")
    out |= {"ui_id": ui_id, "ui_run": ui_id, "esc_id": esc_id, "esc_run": esc_run}

    with stores(stack) as state:
        # On-call takes pricing_ui as soon as it is triaged (its page went out), through the REST endpoint.
        wait_for(lambda: (i := state.incidents.get_incident(ui_id)) and i.severity, 900, "pricing_ui triaged")
        out["ack"] = post(f"{stack.airflow_url}/firebreak/incidents/{ui_id}/acknowledge", {"by": "bob"}, ONCALL_TOKEN)
        # Both wait at their approval; their one-minute deadlines pass meanwhile.
        for run in (ui_id, esc_run):
            wait_for(
                lambda r=run: ti_state(stack, r, "approve_promotion", token) == "awaiting_input", 1500, f"{run} waiting"
            )
        queued = {r: datetime.fromisoformat(run_state(stack, r, token)["queued_at"]) for r in (ui_id, esc_run)}
        out["queued_at"] = queued
        wait_for(lambda: any(e.kind == "escalated" for e in state.incidents.events(esc_id)), 300, "escalation")
        wait_for(
            lambda: any(e.kind == "deadline_met" for e in state.incidents.events(ui_id)), 300, "ui deadline checked"
        )

    # pricing_ui: approved in the UI by a person; pricing_esc: rejected through the REST API.
    system_binary("chromium")
    pytest.importorskip("playwright")
    from tests.integration.airflow_ui import answer_required_action

    shots = artifacts_dir("oncall-approval-ui", tmp_path_factory)
    asked = time.time()
    out["ui_form"] = answer_required_action(
        stack.airflow_url,
        stack.admin_password(),
        shots,
        dag_id=DAG,
        run_id=ui_id,
        task_id="approve_promotion",
        option="Approve",
    )
    out["ui_answered_at"] = asked
    path = f"/api/v2/dags/{DAG}/dagRuns/{esc_run}/taskInstances/approve_promotion/-1/hitlDetails"
    # The scheduler of a busy machine holds the metadata DB's lock for seconds at a time: an
    # answer given meanwhile may get a 500, records nothing, and lands when given again.
    with metadata_db_write_locked(stack, seconds=8):
        code, out["reject"] = answer(stack, path, token, "Reject")
    assert code == 200, code
    out["second_answer"], _ = answer(stack, path, token, "Approve")
    for run in (ui_id, esc_run):
        wait_for(lambda r=run: run_state(stack, r, token)["state"] in ("success", "failed"), 1500, f"{run} finished", 2)
    out["states"] = {r: run_state(stack, r, token)["state"] for r in (ui_id, esc_run)}
    out["tasks"] = {r: stack_task_states(stack, r, token) for r in (ui_id, esc_run)}
    return out


def answer(stack: Any, path: str, token: str, option: str) -> tuple[int, dict[str, Any]]:
    """A person's answer through the REST API, given again while Airflow answers 5xx.

    ``airflow standalone`` on SQLite answers 500 when its 5 s wait for the metadata DB's lock
    runs out. That request recorded nothing (its transaction rolled back), so answering again
    is safe; had it recorded the answer, the next attempt would get 409 and the tests say so.
    A longer lock wait is no cure: Airflow's API server makes some of its writes on its event
    loop, which then stalls the Execution API for as long (tasks fail with a 5 s read timeout).
    """
    for attempt in range(5):
        try:
            return 200, stack.api_request("PATCH", path, token, {"chosen_options": [option]})
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == 4:
                return exc.code, {}
            time.sleep(2)
    raise AssertionError("unreachable")


@contextmanager
def metadata_db_write_locked(stack: Any, seconds: float) -> Iterator[None]:
    """Another process holds the lock on Airflow's SQLite DB for ``seconds`` from entry."""
    from firebreak_dev.soak import hold_lock

    holder = hold_lock(stack.settings.home / "airflow" / "airflow.db", seconds)
    try:
        yield
    finally:
        holder.wait(timeout=seconds + 60)


def stack_task_states(stack: Any, run_id: str, token: str) -> dict[str, Any]:
    body = stack.api_request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=100", token)
    return {ti["task_id"]: (ti["state"], ti["start_date"], ti["end_date"]) for ti in body["task_instances"]}


def test_five_deliveries_one_page_and_an_acknowledged_sev1_never_escalates(
    stack: Any, incidents: dict[str, Any]
) -> None:
    found: Receivers = stack.receivers
    assert incidents["intake_codes"] == [200] * 5
    assert incidents["ack"][0] == 200 and incidents["ack"][1]["first"] is True
    ui = incidents["ui_id"]
    pages = [r for r in found.pagerduty.events("trigger") if r.body["dedup_key"] == ui]
    assert len(pages) == 1 and pages[0].body["routing_key"] == PRIMARY
    with stores(stack) as state:
        events = state.incidents.events(ui)
    met = [e.message for e in events if e.kind == "deadline_met"]
    assert met and "acknowledged at" in met[0] and "no escalation" in met[0]
    assert not any(e.kind == "escalated" for e in events)
    assert found.pagerduty.rejected == [] and found.slack.rejected == []


def test_an_unacknowledged_sev1_escalates_at_its_deadline(stack: Any, incidents: dict[str, Any]) -> None:
    found: Receivers = stack.receivers
    esc = incidents["esc_id"]
    (backup,) = [r for r in found.pagerduty.events("trigger", BACKUP) if r.body["dedup_key"] == esc]
    due = incidents["queued_at"][incidents["esc_run"]].timestamp() + 60
    late = backup.at - due
    print(f"\n[oncall] escalation page {late:+.1f} s after the one-minute deadline")
    assert 0 <= late <= 60  # the scheduler checks deadlines every loop; the callback runs on the executor
    with stores(stack) as state:
        (line,) = [e.message for e in state.incidents.events(esc) if e.kind == "escalated"]
    assert line.startswith("escalated: not acknowledged within the SEV1 target 1 min") and "backup-pager" in line
    assert [r for r in found.pagerduty.events("trigger", BACKUP) if r.body["dedup_key"] == incidents["ui_id"]] == []


def test_approval_in_the_ui_resumes_the_run_and_promotes_with_the_approver_in_the_ledger(
    stack: Any, incidents: dict[str, Any]
) -> None:
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.settings import Settings

    ui = incidents["ui_id"]
    assert incidents["states"][ui] == "success", incidents["tasks"][ui]
    assert "Promote pricing_ui v2 to champion?" in incidents["ui_form"]["text"]
    assert "passed the promotion gate" in incidents["ui_form"]["text"]
    approve_end = datetime.fromisoformat(incidents["tasks"][ui]["approve_promotion"][2]).timestamp()
    print(
        f"\n[oncall] approval round trip (UI click -> approve_promotion done): {approve_end - incidents['ui_answered_at']:.1f} s"
    )
    with stores(stack) as state:
        champion = [e for e in state.ledger.entries("pricing_ui") if e.alias == "champion"][-1]
        clock = state.incidents.clock(ui)
    assert (champion.new_version, champion.approved_by) == ("2", "admin")
    assert Registry(Settings.from_env()).aliases("pricing_ui")["champion"] == "2"
    found: Receivers = stack.receivers
    actions = [
        r.body.get("event_action", "change")
        for r in found.pagerduty.received
        if r.body.get("dedup_key", ui) == ui
        and r.body["routing_key"] == PRIMARY
        and ("payload" not in r.body or "pricing_ui" in json.dumps(r.body))
    ]
    assert actions == ["trigger", "acknowledge", "change", "resolve"], actions
    (resolve,) = [r for r in found.pagerduty.events("resolve") if r.body["dedup_key"] == ui]
    lag = resolve.at - clock["mitigated"].at.timestamp()  # type: ignore[index]
    print(f"[oncall] traffic restored -> resolve at the pager: {lag:.2f} s")
    assert 0 <= lag <= 5


def test_rejection_through_the_api_keeps_traffic_on_the_fallback(stack: Any, incidents: dict[str, Any]) -> None:
    esc, run = incidents["esc_id"], incidents["esc_run"]
    assert incidents["reject"]["chosen_options"] == ["Reject"] and incidents["second_answer"] == 409
    assert incidents["states"][run] == "failed"
    assert incidents["tasks"][run]["promote"][0] == "upstream_failed"
    with stores(stack) as state:
        incident = state.incidents.get_incident(esc)
        routing = state.routing.get_routing("pricing_esc")
    assert incident is not None and str(incident.status) == "contained_needs_human"
    assert "promotion rejected by admin" in (incident.outcome or "")
    assert routing is not None and routing.route == "heuristic"
    found: Receivers = stack.receivers
    assert [r for r in found.pagerduty.events("resolve") if r.body["dedup_key"] == esc] == []  # still open for a person


def test_each_incident_clock_is_complete_and_monotonic(stack: Any, incidents: dict[str, Any]) -> None:
    from firebreak.incidents.clock import Clock

    with stores(stack) as state:
        clocks = {i: Clock(state.incidents.clock(i)) for i in (incidents["ui_id"], incidents["esc_id"])}
    ui, esc = clocks[incidents["ui_id"]], clocks[incidents["esc_id"]]
    for name, clock in (("pricing_ui", ui), ("pricing_esc", esc)):
        spans = ", ".join(f"{k} {v:.1f}s" for k, v in clock.durations().items() if v is not None)
        print(f"\n[oncall] clock {name}: {[str(m) for m in clock.marks]}; {spans}")
        assert clock.problems() == []
    assert set(ui.marks) == {"first_breach", "detected", "opened", "acknowledged", "contained", "mitigated", "resolved"}
    assert set(esc.marks) == {
        "first_breach",
        "detected",
        "opened",
        "contained",
    }  # rejected: not mitigated, not resolved
