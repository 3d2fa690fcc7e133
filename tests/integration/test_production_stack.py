"""The production shape on loopback: Airflow 3 as separate components (api-server, scheduler,
dag-processor, triggerer; LocalExecutor) on PostgreSQL, ``mlflow server`` on PostgreSQL, and
Firebreak's state DB on PostgreSQL — one cluster, three databases, one stack for the module.

Incidents are triggered the way users trigger them (REST API with a JWT, or the UI form in a
real browser) and checked the way users check them: aliases, ledger, routing, incident rows,
post-mortems. Then concurrency (one model, two incidents; two models at once) and faults (the
scheduler SIGKILLed mid-remediation; the MLflow server down during promote).
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, system_binary
from tests.integration.conftest import artifacts_dir

# A real scheduler on a shared machine: an incident takes minutes, the stack ~1 min to start.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

DAG = "incident_response"
# The pricing recipe under other names: each test owns its models, so they start from v1.
MODELS = ["pricing", "pricing_b", "pricing_twin", "pricing_ui", "pricing_crash", "pricing_store"]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def write_policies(folder: Path) -> None:
    source = yaml.safe_load((REPO / "include/policies/pricing.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        policy = {**source, "model": model}
        policy["training"] = {**source["training"], "dataset": f"data/{model}/history.parquet"}
        (folder / f"{model}.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


@pytest.fixture(scope="module")
def stack(postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from firebreak.settings import Settings
    from firebreak_dev.cluster import AirflowCluster
    from firebreak_dev.local import STATIC_DAGS

    root = tmp_path_factory.mktemp("production")
    policies = root / "policies"
    write_policies(policies)
    env = {
        "FIREBREAK_HOME": str(root / "firebreak"),
        "FIREBREAK_POLICIES_DIR": str(policies),
        "FIREBREAK_STATE_DB_URL": postgres.url("firebreak"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        cluster = AirflowCluster(
            Settings.from_env(),
            postgres,
            extra_env={
                **env,
                # A task whose process died (the scheduler killed with it) is noticed in 20 s, and the
                # restarted scheduler looks for the tasks a dead one left every 20 s (default 300 s: the
                # killed retrain sat five minutes before its retry).
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
                **STATIC_DAGS,
                # MLflow's client retries for minutes by default; an outage should fail a task sooner.
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
            },
        )
        env["MLFLOW_TRACKING_URI"] = cluster.mlflow_url
    cluster.logs.mkdir(parents=True, exist_ok=True)
    print(f"\n[artifacts] production stack logs: {cluster.logs}")
    started = time.monotonic()
    cluster.start(timeout=300)
    print(f"[timing] production stack healthy in {time.monotonic() - started:.1f} s")
    cluster.test_env = env  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        cluster.stop()
        if artifacts := _ci_artifacts():
            shutil.copytree(cluster.logs, artifacts / "production-stack-logs", dirs_exist_ok=True)


def _ci_artifacts() -> Path | None:
    import os

    root = os.environ.get("FIREBREAK_TEST_ARTIFACTS")
    return Path(root) if root else None


@contextmanager
def as_stack(stack: Any) -> Iterator[Any]:
    """This process sees the stack's stores (PostgreSQL state DB, the MLflow server)."""
    from firebreak.settings import Settings

    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.test_env.items():
            mp.setenv(key, value)
        yield Settings.from_env()


def world(stack: Any, model: str) -> dict[str, Any]:
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    with as_stack(stack) as s:
        store = State(s.state_db_url)
        routing = store.routing.get_routing(model)
        return {
            "aliases": Registry(s).aliases(model),
            "ledger": [
                (e.alias, e.old_version, e.new_version, e.status, e.incident_id) for e in store.ledger.entries(model)
            ],
            "routing": (str(routing.route), routing.generation) if routing else None,
            "incidents": {i.id: i for i in store.incidents.list_incidents(model)},
            "versions": sorted(int(v.version) for v in Registry(s).client.search_model_versions(f"name = '{model}'")),
        }


def setup_model(stack: Any, model: str) -> None:
    from firebreak.scenarios import pricing

    with as_stack(stack) as s:
        pricing.setup(s, model=model)


def conf(model: str, dedup_key: str, **overrides: Any) -> dict[str, Any]:
    return {
        "model": model,
        "failure_type": "unknown",
        "severity": "auto",
        "description": f"{model} confidence under the 0.70 floor",
        "remediation": "auto",
        "dry_run": False,
        "dedup_key": dedup_key,
        **overrides,
    }


def trigger(stack: Any, token: str, model: str, dedup_key: str) -> str:
    run_id = f"{model}-{dedup_key}-{uuid.uuid4().hex[:6]}"
    stack.trigger(DAG, conf(model, dedup_key), run_id, token)
    return run_id


def incident_id(model: str, dedup_key: str) -> str:
    from firebreak.incidents.identity import incident_id_for

    return incident_id_for(model, dedup_key)


def assert_promoted(stack: Any, model: str, dedup_key: str) -> None:
    """What tests/e2e/test_pricing_incident.py asserts of a drift incident, here on PostgreSQL."""
    after = world(stack, model)
    iid = incident_id(model, dedup_key)
    assert after["aliases"] == {"champion": "2", "last-known-good": "1"}
    assert [row[:4] for row in after["ledger"]] == [
        ("champion", None, "1", "applied"),
        ("challenger", None, "2", "applied"),
        ("last-known-good", None, "1", "applied"),
        ("champion", "1", "2", "applied"),
        ("challenger", "2", None, "applied"),
    ]
    assert after["routing"] == ("champion", 2)
    assert str(after["incidents"][iid].status) == "resolved"
    assert after["versions"] == [1, 2]
    text = (Path(stack.test_env["FIREBREAK_HOME"]) / "postmortems" / f"{iid}.md").read_text()
    for expected in ("## Timeline", "## Evidence", "`resolved`", "demand_index", "| `champion` | 1 | 2 | applied |"):
        assert expected in text, expected


def task_intervals(stack: Any, token: str, run_id: str) -> list[tuple[str, datetime, datetime]]:
    body = stack.api_request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=100", token)
    return [
        (ti["task_id"], datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"]))
        for ti in body["task_instances"]
        if ti["start_date"] and ti["end_date"]
    ]


# -- the REST API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def concurrent(stack: Any) -> dict[str, Any]:
    """Four incidents at once through the REST API: one each for ``pricing`` and ``pricing_b``
    (two models in parallel), two for ``pricing_twin`` (one model, two alerts)."""
    for model in ("pricing", "pricing_b", "pricing_twin"):
        setup_model(stack, model)
    token = stack.api_token()
    started = time.monotonic()
    runs = {
        "a": trigger(stack, token, "pricing", "rest-a"),
        "b": trigger(stack, token, "pricing_b", "rest-b"),
        "twin-a": trigger(stack, token, "pricing_twin", "twin-a"),
        "twin-b": trigger(stack, token, "pricing_twin", "twin-b"),
    }
    states = {key: stack.wait_for_run(DAG, run, token, timeout=1500) for key, run in runs.items()}
    print(f"\n[timing] four concurrent incidents: {time.monotonic() - started:.1f} s")
    return {"runs": runs, "states": states, "token": token}


def test_incidents_for_two_models_run_in_parallel_to_completion(stack: Any, concurrent: dict[str, Any]) -> None:
    """Two alerts for two models, triggered through the REST API: both runs complete with
    the pricing incident's outcome, and their tasks ran at the same time."""
    runs, states, token = concurrent["runs"], concurrent["states"], concurrent["token"]
    assert states["a"] == "success", stack.task_states(DAG, runs["a"], token)
    assert states["b"] == "success", stack.task_states(DAG, runs["b"], token)
    assert_promoted(stack, "pricing", "rest-a")
    assert_promoted(stack, "pricing_b", "rest-b")
    # In parallel: some task of one run overlapped in time with some task of the other.
    a, b = task_intervals(stack, token, runs["a"]), task_intervals(stack, token, runs["b"])
    overlapping = [(x[0], y[0]) for x in a for y in b if x[1] < y[2] and y[1] < x[2]]
    assert overlapping, (a, b)


def test_secrets_stay_out_of_task_logs_timeline_and_postmortems(stack: Any, concurrent: dict[str, Any]) -> None:
    """The JWT secret, the intake token and the database password appear in none of what an
    incident leaves behind: task logs, XCom, the timeline and evidence, post-mortems."""
    import json

    from tests.state import State

    secrets = {
        "jwt secret": stack.jwt_secret,
        "alert token": stack.alert_token,
        "database password": stack.postgres.password,
    }
    home = Path(stack.test_env["FIREBREAK_HOME"])
    texts = {str(p): p.read_text(errors="replace") for p in (home / "postmortems").glob("*.md")}
    logs = Path(stack.env()["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    texts |= {str(p): p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()}
    token = concurrent["token"]
    for run in concurrent["runs"].values():
        for task in stack.task_states(DAG, run, token):
            entries = stack.api_request(
                "GET", f"/api/v2/dags/{DAG}/dagRuns/{run}/taskInstances/{task}/xcomEntries?limit=100", token
            )
            texts[f"xcom {run}/{task}"] = json.dumps(entries)
    with as_stack(stack) as s:
        store = State(s.state_db_url)
        for model in ("pricing", "pricing_b", "pricing_twin"):
            for incident in store.incidents.list_incidents(model):
                texts[f"timeline {incident.id}"] = json.dumps(
                    [(e.kind, e.message) for e in store.incidents.events(incident.id)]
                ) + json.dumps(store.incidents.get_evidence(incident.id), default=str)
    assert any(name.endswith(".log") or "attempt=" in name for name in texts), "task logs were read"
    leaks = [(what, where) for where, text in texts.items() for what, value in secrets.items() if value in text]
    assert leaks == []


def test_task_logs_say_what_the_task_did_not_import_noise(stack: Any, concurrent: dict[str, Any]) -> None:
    """The tasks that load a model (golden set, retrain, gate, post-mortem) import skops beside Airflow's
    deprecated modules; their logs say what the task did, not 1,160 warnings about Airflow's own modules."""
    logs = Path(stack.env()["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    noisy = {
        str(path.relative_to(logs)): count
        for path in logs.rglob("*.log")
        if (
            count := sum(
                "skops" in line and "py.warnings" in line for line in path.read_text(errors="replace").splitlines()
            )
        )
    }
    assert any(logs.rglob("task_id=golden_eval/*.log")), "a model-loading task's log was read"
    assert noisy == {}


def test_the_scheduler_forks_tasks_with_their_libraries_already_loaded(stack: Any) -> None:
    """config/airflow_local_settings.py (firebreak.task_preload): the scheduler imported scikit-learn,
    pyarrow and the rest before its LocalExecutor forked the workers that fork every task."""
    scheduler = stack.services["scheduler"].process
    assert scheduler is not None and scheduler.poll() is None
    loaded = Path(f"/proc/{scheduler.pid}/maps").read_text()
    assert "/sklearn/" in loaded and "/pyarrow/" in loaded
    log = (stack.logs / "scheduler.log").read_text(errors="replace")
    assert "firebreak preload:" not in log  # nothing failed to import
    assert "skops/io/_utils.py" not in log  # and skops' import warned about none of Airflow's modules


def test_rest_api_refuses_bad_requests_and_changes_nothing(stack: Any) -> None:
    token = stack.api_token()
    before = world(stack, "pricing")
    with pytest.raises(urllib.error.HTTPError) as bad:
        stack.trigger(DAG, conf("pricing", "bad", severity="SEV9"), "bad-severity", token)
    assert bad.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        stack.trigger(DAG, conf("pricing", "anon"), "anonymous", "not-a-token")
    assert anonymous.value.code in (401, 403)
    assert world(stack, "pricing")["ledger"] == before["ledger"]


# -- the UI trigger form in a real browser -------------------------------------------------------


def test_ui_trigger_form_explains_itself_and_starts_an_incident(
    stack: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    system_binary("chromium")
    pytest.importorskip("playwright")
    from tests.integration.airflow_ui import trigger_from_the_form

    setup_model(stack, "pricing_ui")
    shots = artifacts_dir("airflow-ui", tmp_path_factory)
    token = stack.api_token()
    form = trigger_from_the_form(
        stack.airflow_url,
        stack.admin_password_value,
        shots,
        model="pricing_ui",
        failure_type="Drift — the world moved",
        severity="SEV2",
        description="pricing_ui: prices under cost since the season ended",
    )
    # The form rendered the DAG's Params as the DAG declares them (read back from the REST API):
    # sections, titles, descriptions, enum choices with their display names.
    params = stack.api_request("GET", f"/api/v2/dags/{DAG}/details", token)["params"]
    schemas = {name: {"description": p.get("description"), **p["schema"]} for name, p in params.items()}
    incident = [name for name, schema in schemas.items() if schema.get("section") == "Incident"]
    assert form["sections"][: len({s.get("section") for s in schemas.values()})] == list(
        dict.fromkeys(s["section"] for s in schemas.values())
    )
    assert [t.replace("*", "").strip() for t in form["titles"]] == [schemas[n]["title"] for n in incident]
    assert form["descriptions"] == [schemas[n]["description"] for n in incident]
    failure = schemas["failure_type"]
    assert form["failure_type_options"] == [failure["values_display"][v] for v in failure["enum"]]
    assert form["severity_options"] == schemas["severity"]["enum"]
    runs = stack.api_request("GET", f"/api/v2/dags/{DAG}/dagRuns?order_by=-start_date&limit=20", token)
    (run,) = [r for r in runs["dag_runs"] if (r.get("conf") or {}).get("model") == "pricing_ui"]
    assert run["conf"]["failure_type"] == "drift" and run["conf"]["severity"] == "SEV2"
    assert stack.wait_for_run(DAG, run["dag_run_id"], token) == "success"
    after = world(stack, "pricing_ui")
    (incident,) = after["incidents"].values()
    assert str(incident.status) == "resolved" and incident.severity == "SEV2"
    assert incident.failure_class == "drift"
    assert after["aliases"] == {"champion": "2", "last-known-good": "1"}
    assert sorted(p.name for p in shots.glob("*.png"))


# -- concurrency -------------------------------------------------------------------------------


def test_two_incidents_for_one_model_never_interleave_alias_moves(stack: Any, concurrent: dict[str, Any]) -> None:
    states = {k: concurrent["states"][k] for k in ("twin-a", "twin-b")}
    after = world(stack, "pricing_twin")
    ids = {incident_id("pricing_twin", k): k for k in ("twin-a", "twin-b")}
    statuses = {k: str(after["incidents"][i].status) for i, k in ids.items()}
    # Exactly one incident promoted; the other was refused and said why.
    assert sorted(statuses.values()) == ["failed", "resolved"], (statuses, states)
    winner = next(i for i, k in ids.items() if statuses[k] == "resolved")
    loser = next(i for i, k in ids.items() if statuses[k] == "failed")
    champion_moves = [(old, new, who) for alias, old, new, status, who in after["ledger"] if alias == "champion"]
    assert champion_moves[0] == (None, "1", None)
    assert len(champion_moves) == 2 and champion_moves[1][:2] == ("1", after["aliases"]["champion"])
    assert champion_moves[1][2] == winner  # the loser never moved champion
    assert all(status == "applied" for *_, status, _ in after["ledger"])
    assert after["aliases"]["last-known-good"] == "1"
    assert after["routing"] is not None and after["routing"][0] == "champion"
    outcome = after["incidents"][loser].outcome or ""
    print(f"\n[concurrency] second incident {loser}: {outcome}")
    assert outcome, "the refused incident says what happened"
    with as_stack(stack) as s:
        from tests.state import State

        promotion = [e for e in State(s.state_db_url).incidents.events(loser) if e.kind in ("promotion", "gate")]
    assert promotion, "the refused incident's timeline shows the gate or promotion verdict"


# -- faults (RELIABILITY.md 13, 14, 16) ----------------------------------------------------------


def test_scheduler_killed_mid_retrain_then_restarted(stack: Any) -> None:
    setup_model(stack, "pricing_crash")
    token = stack.api_token()
    run = trigger(stack, token, "pricing_crash", "crash")
    wait_for(lambda: stack.task_states(DAG, run, token).get("retrain") == "running", 600, "retrain running", 0.5)
    stack.kill("scheduler")  # SIGKILL: the scheduler and the task processes it started
    stack.restart("scheduler")
    state = stack.wait_for_run(DAG, run, token, timeout=900)
    states = stack.task_states(DAG, run, token)
    assert state in ("success", "failed"), states
    assert not [t for t, s in states.items() if s in ("running", "queued", "scheduled", "up_for_retry")], states
    after = world(stack, "pricing_crash")
    iid = incident_id("pricing_crash", "crash")
    champion_moves = [row for row in after["ledger"] if row[0] == "champion" and row[4] == iid]
    challenger_sets = [row for row in after["ledger"] if row[0] == "challenger" and row[2] is not None]
    # Remediation applied at most once: one retrained version offered, at most one champion move.
    assert len(challenger_sets) <= 1 and len(champion_moves) <= 1, after["ledger"]
    retrain = stack.api_request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run}/taskInstances/retrain", token)
    print(
        f"\n[fault] scheduler SIGKILL mid-retrain: run {state}; retrain tries {retrain['try_number']}; "
        f"versions {after['versions']}"
    )
    assert retrain["try_number"] >= 2, "the killed attempt was noticed and retried"
    assert len(after["versions"]) <= 2, after["versions"]  # at most one new version
    if state == "success":
        assert_promoted(stack, "pricing_crash", "crash")
    else:
        assert str(after["incidents"][iid].status) == "failed"
        assert after["aliases"]["champion"] == "1"


def test_mlflow_down_during_promote_fails_clearly_and_keeps_the_fallback(stack: Any) -> None:
    setup_model(stack, "pricing_store")
    token = stack.api_token()
    run = trigger(stack, token, "pricing_store", "store")
    # Hold the run between verify and promote: a paused DAG's runs get no new tasks, while the
    # one already queued or running (verify) finishes.
    wait_for(lambda: stack.task_states(DAG, run, token).get("verify") in ("queued", "running"), 900, "verify", 0.3)
    stack.api_request("PATCH", f"/api/v2/dags/{DAG}", token, {"is_paused": True})
    try:
        wait_for(
            lambda: (
                (s := stack.task_states(DAG, run, token)).get("verify") in ("success", "failed")
                and "running" not in s.values()
            ),
            600,
            "verify done and nothing running",
        )
        assert stack.task_states(DAG, run, token).get("promote") in (None, "scheduled", "none"), "promote started"
        assert stack.task_states(DAG, run, token)["verify"] == "success"
        stack.services["mlflow"].stop()
    finally:
        stack.api_request("PATCH", f"/api/v2/dags/{DAG}", token, {"is_paused": False})
    try:
        state = stack.wait_for_run(DAG, run, token, timeout=900)
        states = stack.task_states(DAG, run, token)
    finally:
        stack.restart("mlflow")
    assert state == "failed" and states["promote"] == "failed", states
    assert states["restore_traffic"] != "success", states
    after = world(stack, "pricing_store")
    # Traffic stays on the fallback; the registry and the ledger agree.
    assert after["routing"] is not None and after["routing"][0] == "heuristic"
    assert after["aliases"].get("champion") == "1"
    applied = {(a, new) for a, _old, new, status, _ in after["ledger"] if status == "applied"}
    assert ("champion", "2") not in applied
    for alias, version in after["aliases"].items():
        last = [row for row in after["ledger"] if row[0] == alias and row[3] == "applied"][-1]
        assert last[2] == version, (alias, after["ledger"])
    iid = incident_id("pricing_store", "store")
    with as_stack(stack) as s:
        from tests.state import State

        events = State(s.state_db_url).incidents.events(iid)
    failures = [e.message for e in events if e.kind == "task_failed" and "promote" in e.message]
    print(f"\n[fault] MLflow down during promote: {failures[-1] if failures else events[-1].message}")
    assert failures, [e.kind for e in events]
