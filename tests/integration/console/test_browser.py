"""The incident console in a real browser, inside the real Airflow UI.

One real Airflow (``airflow standalone``: api-server, scheduler, dag-processor, triggerer on
SQLite, loopback) with the Firebreak plugin, and Chromium driven by Playwright. The board
holds the incidents of every demo scenario as their real runs recorded them
(``firebreak_dev.recorded``: replayed state-DB rows, not six fresh incident runs), plus two
of the test's own: one whose alert carried hostile text, one whose policy requires an
approval after a passed gate. incident_response stays paused until the last test; an
approval stand-in DAG (``approval_probe_dag.py``: one real ``ApprovalOperator`` like
incident_response's ``approve_promotion``, without a whole incident run to reach it) waits
under the approval incident's run id so the console answers a real human-in-the-loop step.
Screenshots are kept in ``$FIREBREAK_TEST_ARTIFACTS/console``.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, system_binary
from tests.integration.conftest import artifacts_dir

pytestmark = pytest.mark.timeout(1200)

HOSTILE = "# Not a heading\n<script>alert('xss')</script><img src=x onerror=alert(2)>\x1b[31m red\x1b[0m\x00"
EXPECTED = {  # what each scenario's real run ended as (the recording)
    "pricing": "resolved",
    "skew": "contained_needs_human",
    "bad-release": "resolved",
    "fairness": "resolved",
    "feedback": "resolved",
    "support-bot": "resolved",
}


def own_incidents() -> list[dict[str, Any]]:
    """Two incidents of the test's own, shaped like the recording's pricing incident."""
    from firebreak_dev.recorded import RECORDING

    pricing = next(r for r in json.loads(RECORDING.read_text())["incidents"] if r["scenario"] == "pricing")
    hostile = copy.deepcopy(pricing)
    hostile["scenario"] = "hostile"
    hostile["incident"].update(id="pricing-hostile00001", description=HOSTILE, dedup_key="hostile")
    hostile["events"][0]["message"] = f"incident opened for pricing (champion v1): {HOSTILE}"
    hostile["ledger"] = []
    waiting = copy.deepcopy(pricing)
    waiting["scenario"] = "approval"
    waiting["incident"].update(
        id="pricing-approval-000000000001",
        model="pricing-approval",
        status="contained_needs_human",
        outcome="traffic stays on heuristic; the policy requires a human approval before promotion",
        dedup_key="approval",
    )
    waiting["ledger"] = [m for m in waiting["ledger"] if m["alias"] == "challenger"][:1]
    waiting["routing"] = {"route": "heuristic"}
    return [hostile, waiting]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    system_binary("chromium")
    pytest.importorskip("playwright")
    from firebreak.settings import Settings
    from firebreak_dev.local import STATIC_DAGS, LocalStack
    from firebreak_dev.recorded import replay
    from firebreak_dev.services import free_port

    root = tmp_path_factory.mktemp("console-browser")
    policies = root / "policies"
    policies.mkdir()
    for path in (REPO / "include" / "policies").glob("*.yaml"):
        (policies / path.name).write_text(path.read_text())
    approval = yaml.safe_load((REPO / "include" / "policies" / "pricing.yaml").read_text())
    approval["model"] = "pricing-approval"
    approval["gate"]["requires_approval"] = True
    (policies / "pricing-approval.yaml").write_text(yaml.safe_dump(approval))
    dags = root / "dags"  # the repo's DAGs, and the approval stand-in (see approval_probe_dag.py)
    dags.mkdir()
    for path in (REPO / "dags").glob("*.py"):
        (dags / path.name).symlink_to(path)
    (dags / "firebreak_approval_probe.py").write_text((Path(__file__).parent / "approval_probe_dag.py").read_text())
    with pytest.MonkeyPatch.context() as mp:
        home = root / "firebreak"
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("FIREBREAK_POLICIES_DIR", str(policies))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        settings = Settings.from_env()
        replayed = replay(settings, extra=own_incidents())
        local = LocalStack(
            settings,
            airflow_port=free_port(),
            mlflow_port=None,
            unpause=False,
            extra_env={
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                **STATIC_DAGS,
                # Its tasks are the approval probe and intake: no preloaded ML libraries to fork from.
                "FIREBREAK_PRELOAD": "off",
            },
        )
        local.start(timeout=600)
        try:
            yield {"stack": local, "replayed": replayed, "settings": settings}
        finally:
            local.stop()


def wait_for_approval(local: Any, run_id: str) -> dict[str, Any]:
    """Run the approval stand-in under the incident's id; returns its HITL detail once it waits."""
    import time

    token = local.api_token()
    local.api_request("PATCH", "/api/v2/dags/firebreak_approval_probe", token, {"is_paused": False})
    local.api_request(
        "POST", "/api/v2/dags/firebreak_approval_probe/dagRuns", token, {"dag_run_id": run_id, "logical_date": None}
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            found = local.api_get(f"/api/v2/dags/~/dagRuns/{run_id}/hitlDetails", token)["hitl_details"]
        except (TimeoutError, urllib.error.URLError):  # a loaded machine's api-server answers late
            found = []
        if found:
            return dict(found[0])
        time.sleep(2)
    raise AssertionError("the approval step never started waiting")


def test_anonymous_requests_to_the_console_get_401(stack: dict[str, Any]) -> None:
    url = stack["stack"].airflow_url
    incident = stack["replayed"][0].incident_id
    for path in [
        "/firebreak/console/",
        f"/firebreak/console/incidents/{incident}",
        f"/firebreak/console/incidents/{incident}/charts/drift.png",
        f"/firebreak/console/incidents/{incident}/postmortem",
        "/firebreak/console/models/pricing",
        "/firebreak/console/api/incidents",
        f"/firebreak/console/api/incidents/{incident}",
        "/firebreak/console/api/models/pricing",
    ]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + path, timeout=30)
        assert refused.value.code == 401, path
    body = json.dumps({"reason": "x"}).encode()
    request = urllib.request.Request(
        f"{url}/firebreak/console/api/incidents/{incident}/acknowledge",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401


def test_on_call_works_an_incident_from_the_airflow_ui(stack: dict[str, Any], tmp_path_factory: Any) -> None:
    """Log in, open Incidents from Airflow's menu, find every scenario with its status, open the
    pricing incident (timeline, charts), act on it, see each action on the timeline; the
    hostile alert runs nothing; the approval state is shown; the trigger form offers the
    models that have a policy."""
    from playwright.sync_api import sync_playwright

    from tests.integration.airflow_ui import CHROMIUM, _choose, login, open_trigger_form

    local, replayed = stack["stack"], stack["replayed"]
    shots = artifacts_dir("console", tmp_path_factory)
    ids = {r.scenario: r.incident_id for r in replayed}
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1500, "height": 1100})  # shared by the login's pages
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        try:
            login(page, local.airflow_url, str(local.admin_password()))
            page.get_by_role("link", name="Incidents").first.click()
            page.wait_for_url("**/plugin/firebreak-incidents")
            console = page.frame_locator("iframe").first
            board = console.locator("[data-testid=board]")
            board.wait_for()
            rows = {
                row.get_attribute("data-incident"): row.locator("[data-testid=status]").inner_text()
                for row in board.locator("tbody tr[data-incident]").all()
            }
            page.screenshot(path=str(shots / "01-board.png"))
            for scenario, status in EXPECTED.items():
                assert rows.get(ids[scenario]) == status, (scenario, rows)

            # The pricing incident: timeline and charts.
            console.locator(f"a[href$='/incidents/{ids['pricing']}']").click()
            console.locator("[data-testid=timeline]").wait_for()
            timeline = console.locator("[data-testid=timeline]").inner_text()
            assert "traffic of pricing moved champion -> heuristic" in timeline
            assert "champion v1 -> v2" in timeline
            charts = console.locator("img[data-chart]")
            names = [charts.nth(i).get_attribute("data-chart") for i in range(charts.count())]
            assert {"drift", "outputs", "confidence", "serving"} <= set(names), names
            for i in range(charts.count()):
                charts.nth(i).scroll_into_view_if_needed()
                charts.nth(i).evaluate("img => img.complete || new Promise(r => img.onload = r)")
                assert charts.nth(i).evaluate("img => img.naturalWidth") > 300, names[i]
            assert console.locator("[data-testid=postmortem-link]").count() == 1
            page.screenshot(path=str(shots / "02-incident.png"))
            whole = context.new_page()  # the console page on its own, for a full-length picture
            try:
                whole.set_viewport_size({"width": 1300, "height": 1000})
                whole.goto(f"{local.airflow_url}/firebreak/console/incidents/{ids['pricing']}")
                whole.locator("img[data-chart]").last.evaluate("i => i.complete || new Promise(r => i.onload = r)")
                whole.screenshot(path=str(shots / "02-incident-full.png"), full_page=True)
            finally:
                whole.close()

            # Each action, then the line it left on the timeline.
            for form, reason, line in [
                ("ack-form", "on call, looking at prices", "acknowledged by admin via ui: on call, looking at prices"),
                (
                    "breaker-open-form",
                    "stop the champion now",
                    "breaker of pricing forced open by admin: stop the champion now",
                ),
                (
                    "breaker-close-form",
                    "v2 serves well",
                    "breaker of pricing released (closed) by admin: v2 serves well",
                ),
            ]:
                console.locator(f"[data-testid={form}] input[name=reason]").fill(reason)
                console.locator(f"[data-testid={form}] button").click()
                console.locator(f"[data-testid=timeline] td:has-text('{reason}')").first.wait_for()
                assert line in console.locator("[data-testid=timeline]").inner_text()
            assert console.locator("[data-testid=acknowledged]").inner_text() == "admin"
            page.screenshot(path=str(shots / "03-actions.png"))

            # The model page: what serves now and why.
            console.locator("dl.facts a[href*='/models/pricing']").first.click()
            console.locator("[data-testid=serving]").wait_for()
            assert "closed" in console.locator("[data-testid=breaker]").inner_text()
            assert "champion" in console.locator("[data-testid=ledger]").inner_text()
            page.screenshot(path=str(shots / "04-model.png"))

            # Attacker text from an alert: shown as text, runs nothing.
            page.goto(f"{local.airflow_url}/firebreak/console/incidents/{ids['hostile']}")
            shown = page.locator("[data-testid=description]").inner_text()
            assert "<script>alert('xss')</script>" in shown and "\x1b" not in shown
            assert page.locator("script:not([src])").count() == 0
            page.screenshot(path=str(shots / "05-hostile-alert.png"))

            # A promotion waiting for approval: answered from the console, the approver on the timeline.
            waiting = wait_for_approval(local, ids["approval"])
            page.goto(f"{local.airflow_url}/firebreak/console/incidents/{ids['approval']}")
            assert "waiting for a human approval" in page.locator("[data-testid=approval-state]").inner_text()
            assert "Promote pricing-approval v2 to champion?" in page.locator("[data-testid=approval]").inner_text()
            page.screenshot(path=str(shots / "06-approval-waiting.png"))
            page.locator("[data-testid=approve-form] input[name=reason]").fill("gate report read, v2 is better")
            page.locator("[data-testid=approve-form] button").click()
            page.locator("[data-testid=timeline] td:has-text('gate report read')").first.wait_for()
            assert (
                "promotion approved by admin (Approve): gate report read, v2 is better"
                in page.locator("[data-testid=timeline]").inner_text()
            )
            page.screenshot(path=str(shots / "07-approved.png"), full_page=True)

            # Open an incident: the console links to the trigger form, which offers the models with a policy.
            page.goto(f"{local.airflow_url}/firebreak/console/")
            page.locator("[data-testid=open-incident]").click()
            page.wait_for_url("**/dags/incident_response")
            dialog, _ = open_trigger_form(page)
            offered = _choose(dialog, "model", "pricing")
            page.screenshot(path=str(shots / "08-trigger-form.png"))
        except Exception:
            page.screenshot(path=str(shots / "99-failure.png"))
            raise
        finally:
            browser.close()
    assert dialogs == []
    answered = local.api_get(f"/api/v2/dags/~/dagRuns/{ids['approval']}/hitlDetails", local.api_token())
    (detail,) = answered["hitl_details"]
    assert detail["response_received"] and detail["chosen_options"] == ["Approve"]
    assert (
        detail["responded_by_user"]["name"] == "admin"
        and waiting["task_instance"]["dag_id"] == "firebreak_approval_probe"
    )
    assert offered == sorted(p.stem for p in stack["settings"].policies_dir.glob("*.yaml"))
    assert {"01-board.png", "02-incident.png", "03-actions.png"} <= {p.name for p in Path(shots).glob("0*.png")}


def test_the_scheduler_writes_the_incident_outcome_as_the_run_note(stack: dict[str, Any]) -> None:
    """A run for an incident that exists (the recorded pricing incident, already resolved) ends
    at once under the real scheduler; the plugin's listener writes the outcome as its note."""
    import time

    from firebreak_dev.recorded import RECORDING

    local = stack["stack"]
    pricing = next(r for r in json.loads(RECORDING.read_text())["incidents"] if r["scenario"] == "pricing")
    incident_id = pricing["incident"]["id"]
    token = local.api_token()
    local.api_request(
        "POST",
        "/api/v2/dags/incident_response/dagRuns",
        token,
        {"dag_run_id": incident_id, "logical_date": None, "conf": pricing["incident"]["request"]},
    )
    local.api_request("PATCH", "/api/v2/dags/incident_response", token, {"is_paused": False})
    try:
        deadline = time.monotonic() + 600
        while (run := local.api_get(f"/api/v2/dags/incident_response/dagRuns/{incident_id}", token))["state"] not in (
            "success",
            "failed",
        ):
            assert time.monotonic() < deadline, run
            time.sleep(2)
    finally:
        local.api_request("PATCH", "/api/v2/dags/incident_response", token, {"is_paused": True})
    assert str(run["note"]).startswith(
        f"Incident {incident_id}: resolved · SEV1 drift · pricing. resolved: champion v1 -> v2"
    )
