"""The serving gateway in front of the real pricing model (MLflow, state DB, Parquet log).

In-process through FastAPI's TestClient, except the multi-worker test, which runs
``firebreak serve --workers 3`` as users do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from firebreak.incidents.enums import Alias, BreakerState, Route
from firebreak.prediction_log import PredictionLog
from firebreak.serving.app import create_app
from firebreak.serving.gateway import Gateway
from firebreak.serving.scorer import Scorer
from firebreak.settings import Settings
from firebreak_dev.services import free_port
from tests.gateway_helpers import body, many_callers, pricing_records
from tests.state import State

pytestmark = pytest.mark.integration
FIREBREAK = str(Path(sys.executable).parent / "firebreak")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The pricing scenario's registry and state (v1 champion), shared by this module."""
    home = tmp_path_factory.mktemp("gateway")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        from firebreak.scenarios import pricing

        settings = Settings.from_env()
        pricing.setup(settings)
        yield settings


def reset(world: Settings) -> None:
    """Each test starts from champion routing and a closed breaker."""
    with State(world.state_db_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM breakers"))
        conn.execute(sa.text("UPDATE routing SET route = 'champion'"))


@pytest.fixture
def gateway(world: Settings) -> Iterator[Gateway]:
    reset(world)
    gw = Gateway("pricing", world, refresh_seconds=3600)
    gw.refresh()
    yield gw
    gw.close()  # its breaker writes are done (or left to the drainer), not retried into the next test
    gw.drain()


def client(gw: Gateway) -> TestClient:
    return TestClient(many_callers(create_app(gw, start=False)))


def logged(root: Path, ids: list[str]) -> pd.DataFrame:
    frame = PredictionLog(root).read("pricing")
    return frame[frame["request_id"].isin(ids)]


def state_db_outage(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement on the state DB raises: routing, breakers and the alias ledger share one engine."""

    def outage(*_: Any, **__: Any) -> Any:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    assert gw.ledger.engine is gw.store.engine
    for name in ("begin", "connect"):
        monkeypatch.setattr(gw.store.engine, name, outage)


class Counting:
    """Wraps the champion to count the rows it is asked to score."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.rows = 0

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.rows += len(frame)
        return self.scorer.predict(frame)


def test_valid_requests_are_answered_by_the_champion_and_logged_with_lineage(gateway: Gateway, world: Settings) -> None:
    records = pricing_records(5, holiday=True, seed=11)
    ids = [f"ok-{i}" for i in range(5)]
    with client(gateway) as http:
        answers = [
            http.post("/invocations", json=body(r), headers={"X-Request-Id": i})
            for r, i in zip(records, ids, strict=True)
        ]
        batch = http.post(
            "/invocations",
            json={"dataframe_split": {"columns": list(records[0]), "data": [list(r.values()) for r in records]}},
            headers={"X-Request-Id": "batch-1"},
        )
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.headers["X-Firebreak-Route"] for a in answers} == {"champion"}
    assert {a.headers["X-Firebreak-Model-Version"] for a in answers} == {"1"}
    expected = gateway.champion.predict(pd.DataFrame(records, columns=gateway.inputs)).to_dict("records")  # type: ignore[union-attr]
    assert [a.json()["predictions"][0] for a in answers] == expected
    assert batch.json()["predictions"] == expected
    gateway.drain()
    log = logged(world.prediction_log_dir, [*ids, *(f"batch-1/{i}" for i in range(5))])
    assert len(log) == 10
    assert set(log["route"]) == {"champion"} and set(log["model_version"]) == {"1"}
    assert set(log["upstream_source"]) == {"erp.sales_daily"}
    assert set(log["feature_pipeline_version"]) == {"features-2.3.1"}
    assert (log["latency_ms"] > 0).all() and log["confidence"].notna().all()


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"unit_cost": "12.5"}, 422, "unit_cost: expected a number"),
        ({"unit_cost": None}, 422, "unit_cost: must not be null"),
        ({"coupon": "XMAS"}, 422, "coupon: field not in the contract"),
        ({"demand_index": "NaN"}, 422, "demand_index: nan is not a finite number"),
        ({"demand_index": "Infinity"}, 422, "demand_index: inf is not a finite number"),
        ({"drop": "category"}, 422, "category: required field missing"),
        ({"category": "toys"}, 422, "category: 'toys' is not one of"),
    ],
)
def test_contract_violations_are_refused_before_the_model_and_logged_with_the_reason(
    gateway: Gateway, world: Settings, change: dict[str, Any], status: int, reason: str
) -> None:
    counting = Counting(gateway.champion)  # type: ignore[arg-type]
    gateway.champion = Scorer("champion", "1", counting)
    record = pricing_records(1, holiday=True, seed=12)[0]
    if "drop" in change:
        record.pop(change["drop"])
    else:
        record.update({k: v for k, v in change.items() if v not in ("NaN", "Infinity")})
    text = json.dumps(body(record))
    for key, token in change.items():
        if token in ("NaN", "Infinity"):
            text = text.replace(f'"{key}": {json.dumps(record[key])}', f'"{key}": {token}')
    request_id = f"bad-{abs(hash(reason)) % 10**8}"
    with client(gateway) as http:
        answer = http.post(
            "/invocations", content=text, headers={"X-Request-Id": request_id, "Content-Type": "application/json"}
        )
    assert answer.status_code == status
    assert reason in answer.json()["error"]
    assert counting.rows == 0  # the model never saw it
    gateway.drain()
    rejected = PredictionLog(world.rejected_log_dir).read("pricing")
    row = rejected[rejected["request_id"] == request_id].iloc[0]
    assert row["status"] == status and reason in row["reason"]


def test_an_oversized_body_is_refused_with_413_and_logged(gateway: Gateway, world: Settings) -> None:
    record = pricing_records(1, holiday=True, seed=13)[0]
    huge = json.dumps(body(*[record] * 20_000))  # ~4 MB, over the policy's 1 MiB
    with client(gateway) as http:
        answer = http.post(
            "/invocations", content=huge, headers={"X-Request-Id": "huge-1", "Content-Type": "application/json"}
        )
    assert answer.status_code == 413
    assert "over the limit of 1048576" in answer.json()["error"]
    gateway.drain()
    rejected = PredictionLog(world.rejected_log_dir).read("pricing")
    assert rejected[rejected["request_id"] == "huge-1"]["status"].tolist() == [413]


@pytest.fixture
def challenger(world: Settings) -> Iterator[str]:
    """The seasonal v2 registered and aliased challenger; the alias is removed after."""
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import pricing

    registry = Registry(world)
    history = pd.read_parquet(world.data_dir / "pricing" / "history.parquet")
    frame = history[pricing.INPUTS].head(50)
    version = registry.register(
        "pricing",
        pricing.train_seasonal_v2(history),
        input_example=frame.head(5),
        reference=frame,
        tags={},
        run_name="challenger",
    )
    registry.move_alias("pricing", Alias.CHALLENGER, version.version, incident_id=None, actor="test", reason="shadow")
    try:
        yield version.version
    finally:
        registry.move_alias("pricing", Alias.CHALLENGER, None, incident_id=None, actor="test", reason="cleanup")


def test_the_drainer_loads_the_challenger_before_any_traffic(
    world: Settings, challenger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``firebreak serve``'s drainer process has the challenger loaded when its loop begins, not at
    the first shadowed batch (seconds of imports and loading that would land on a gateway under load)."""
    import signal

    from firebreak.serving import background

    at_loop_start: list[dict[str, str]] = []

    def loop(drainer: background.Drainer, *_: Any, **__: Any) -> None:  # the drain loop, replaced: traffic never comes
        at_loop_start.append({v: s.version for v, s in drainer.shadow.scorers.items()})

    monkeypatch.setattr(background, "run", loop)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # keep pytest's own handlers
    assert background.main(["--model", "pricing"]) == 0  # the process `firebreak serve` starts
    assert at_loop_start == [{challenger: challenger}]


def test_shadow_never_alters_the_answer_and_a_failing_challenger_never_fails_a_request(
    gateway: Gateway, world: Settings, challenger: str
) -> None:
    gateway.start()
    try:
        assert gateway.challenger is not None and gateway.challenger.version == challenger
        records = pricing_records(20, holiday=True, seed=14)
        champion_only = gateway.champion.predict(pd.DataFrame(records, columns=gateway.inputs)).to_dict("records")  # type: ignore[union-attr]
        with client(gateway) as http:
            answers = [
                http.post("/invocations", json=body(r), headers={"X-Request-Id": f"sh-{i}"})
                for i, r in enumerate(records)
            ]

            def broken(frame: pd.DataFrame) -> pd.DataFrame:
                raise RuntimeError("challenger crashed")

            gateway.drain()  # the shadow scores of the first 20 are in: the challenger crashes from here on
            gateway.challenger = Scorer("challenger", challenger, broken)
            gateway.drainer.shadow.scorers[challenger] = gateway.challenger  # where shadow scoring runs
            after = [
                http.post("/invocations", json=body(r), headers={"X-Request-Id": f"sh-broken-{i}"})
                for i, r in enumerate(records)
            ]
        served = [a.json()["predictions"][0] for a in answers]
        assert {a.headers["X-Firebreak-Route"] for a in answers} == {"champion"}
        assert served == champion_only
        assert [a.status_code for a in after] == [200] * 20
        assert [a.json()["predictions"][0] for a in after] == served  # the same answers, challenger or not
    finally:
        gateway.close()
    shadow = PredictionLog(world.shadow_log_dir).read("pricing")
    assert set(shadow[shadow["request_id"].str.startswith("sh-")]["request_id"]) == {f"sh-{i}" for i in range(20)}
    assert set(shadow["model_version"]) == {challenger} and set(shadow["route"]) == {"shadow"}
    from prometheus_client import REGISTRY

    assert (
        REGISTRY.get_sample_value("firebreak_shadow_predictions_total", {"model": "pricing", "outcome": "error"}) >= 20
    )


def test_routing_changes_are_obeyed_at_the_next_refresh_without_a_restart(gateway: Gateway, world: Settings) -> None:
    from firebreak.scenarios import pricing

    store = State(world.state_db_url)
    record = pricing_records(1, holiday=True, seed=15)[0]
    with client(gateway) as http:
        assert http.post("/invocations", json=body(record)).headers["X-Firebreak-Route"] == "champion"
        state = store.routing.get_routing("pricing")
        assert state is not None
        store.routing.compare_and_set_route(
            "pricing",
            expected_generation=state.generation,
            route=Route.HEURISTIC,
            incident_id="inc-1",
            reason="contained by inc-1",
        )
        gateway.refresh()
        contained = http.post("/invocations", json=body(record))
        assert contained.headers["X-Firebreak-Route"] == "heuristic"
        fallback = pricing.fallback_prices(pd.DataFrame([record]), world).to_dict("records")[0]
        assert contained.json()["predictions"][0] == pytest.approx(fallback)
        store.routing.compare_and_set_route(
            "pricing",
            expected_generation=state.generation + 1,
            route=Route.DISABLED,
            incident_id="inc-1",
            reason="feature disabled by inc-1",
        )
        gateway.refresh()
        disabled = http.post("/invocations", json=body(record))
        assert disabled.status_code == 503
        assert disabled.json()["error"] == "model pricing is not serving: disabled: feature disabled by inc-1"
        assert http.get("/serving").json()["route"] == "disabled"


def test_when_the_state_db_is_unreachable_every_request_is_answered_and_logged(
    gateway: Gateway, world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail-safe: serve on the last known state; the breaker still trips locally and alerts.

    The outage is injected (every state-DB statement raises OperationalError): a real
    SQLite file cannot be made unreachable under an open connection pool.
    """
    from prometheus_client import REGISTRY

    state_db_outage(gateway, monkeypatch)
    gateway.refresh()
    assert gateway.store_up is False
    assert REGISTRY.get_sample_value("firebreak_state_store_up", {"model": "pricing"}) == 0
    inbox = world.alert_inbox_dir
    before = set(inbox.glob("generic-gateway-*.json")) if inbox.exists() else set()
    records = pricing_records(60, holiday=False, seed=16)  # off-season: v1's confidence collapses
    with client(gateway) as http:
        answers = [
            http.post("/invocations", json=body(r), headers={"X-Request-Id": f"down-{i}"})
            for i, r in enumerate(records)
        ]
        status = http.get("/serving").json()
    assert [a.status_code for a in answers] == [200] * 60
    assert status["state_store_up"] is False and status["breaker"]["state"] == BreakerState.OPEN
    assert answers[-1].headers["X-Firebreak-Route"] == "heuristic"
    gateway.drain()
    assert len(logged(world.prediction_log_dir, [f"down-{i}" for i in range(60)])) == 60
    [alert] = set(inbox.glob("generic-gateway-*.json")) - before
    payload = json.loads(alert.read_text())
    assert payload["model"] == "pricing" and payload["status"] == "firing"
    # v1 prices off-season goods under cost: the worst breach against its limit names the signal.
    assert payload["signal"] == "gateway_breaker:sanity_violation_rate"
    assert payload["value"] > payload["threshold"] == 0.05


def test_a_gateway_that_never_read_the_routing_state_serves_the_containment_route(
    world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = Gateway("pricing", world, refresh_seconds=3600)
    state_db_outage(gw, monkeypatch)
    gw.refresh()
    try:
        with client(gw) as http:
            answer = http.post("/invocations", json=body(pricing_records(1, holiday=True, seed=17)[0]))
    finally:  # as the fixture does: its journal line is logged, not left for the next test to find
        gw.close()
        gw.drain()
    assert answer.status_code == 200
    assert answer.headers["X-Firebreak-Route"] == "heuristic"


@contextmanager
def firebreak_serve(world: Settings, workers: int) -> Iterator[tuple[subprocess.Popen[str], str, dict[str, str]]]:
    """``firebreak serve --model pricing`` as users run it; yields once ``/ready``; stops it (SIGTERM) after."""
    port = free_port()
    env = {**os.environ, "FIREBREAK_HOME": str(world.home), "MLFLOW_TRACKING_URI": world.mlflow_tracking_uri}
    server = subprocess.Popen(
        [FIREBREAK, "serve", "--model", "pricing", "--port", str(port), "--workers", str(workers), "--refresh", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout and server.stdout.read()
            time.sleep(0.5)
        yield server, url, env
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def test_several_workers_obey_a_forced_open_breaker_within_one_second(world: Settings) -> None:
    reset(world)
    record = pricing_records(1, holiday=True, seed=11)[0]  # v1 serves it (first test)
    with firebreak_serve(world, workers=3) as (_, url, env):

        def routes(n: int) -> tuple[set[str], set[str]]:
            seen, workers = set(), set()
            for _ in range(n):  # a new connection each time, so the kernel spreads them over the workers
                with httpx.Client() as http:
                    answer = http.post(f"{url}/invocations", json=body(record), timeout=10)
                seen.add(answer.headers["X-Firebreak-Route"])
                workers.add(answer.headers["X-Firebreak-Worker"])
            return seen, workers

        time.sleep(3)  # every worker up and past its first refresh
        seen, workers = routes(40)
        assert seen == {"champion"}, httpx.get(f"{url}/serving").text
        assert len(workers) >= 2, workers
        cmd = [FIREBREAK, "breaker", "open", "--model", "pricing", "--reason", "operator: bad feed"]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        time.sleep(1.0)
        seen, workers = routes(40)
        assert seen == {"heuristic"}, "a worker still served the champion 1 s after the forced open"
        assert len(workers) >= 2, workers
        metrics = httpx.get(f"{url}/metrics").text
        assert 'firebreak_breaker_state{model="pricing"} 2.0' in metrics
        subprocess.run([FIREBREAK, "breaker", "close", "--model", "pricing"], env=env, check=True, capture_output=True)
        time.sleep(1.0)
        assert routes(20)[0] == {"champion"}


def test_a_stopped_gateway_has_logged_every_answer_when_it_exits(world: Settings) -> None:
    """SIGTERM (systemd, Kubernetes, ``docker stop``) to a one-worker ``firebreak serve``: when the
    process has exited, its drainer has too, and the prediction log holds every answered request."""
    reset(world)
    records = pricing_records(30, holiday=True, seed=12)
    ids = [f"stop-{i}" for i in range(len(records))]
    with firebreak_serve(world, workers=1) as (server, url, _):
        drainers = children(server.pid)
        assert len(drainers) == 1, drainers  # one worker serves in this process; the drainer beside it
        with httpx.Client() as http:
            answers = [
                http.post(f"{url}/invocations", json=body(r), headers={"X-Request-Id": i}, timeout=10)
                for i, r in zip(ids, records, strict=True)
            ]
        assert [a.status_code for a in answers] == [200] * len(records)
        server.terminate()
        assert server.wait(timeout=60) == 0, server.stdout and server.stdout.read()
    assert not Path(f"/proc/{drainers[0]}").exists(), "the drainer outlived the gateway"
    assert sorted(logged(world.prediction_log_dir, ids)["request_id"]) == sorted(ids)
    assert not list((world.home / "journal" / "pricing").glob("*.jnl")), "journal lines left undrained"


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_the_breaker_steps_closed_open_half_open_closed_with_events_metrics_and_alerts(world: Settings) -> None:
    """The pricing champion under an injected clock: each transition is recorded, measured and alerted."""
    from prometheus_client import REGISTRY

    reset(world)
    store = State(world.state_db_url)
    with store.begin() as conn:
        conn.execute(sa.text("DELETE FROM breaker_events"))

    class Clock:
        now = 1_900_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    gw = Gateway("pricing", world, clock=clock, refresh_seconds=3600)
    gw.refresh()
    config = gw.policy.serving.breaker
    inbox = world.alert_inbox_dir
    seen_alerts = set(inbox.glob("generic-gateway-*.json")) if inbox.exists() else set()

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("firebreak_breaker_state", {"model": "pricing"})

    def moved(source: str, target: str) -> float:
        labels = {"model": "pricing", "source": source, "target": target}
        return REGISTRY.get_sample_value("firebreak_breaker_transitions_total", labels) or 0.0

    opened_before, closed_before = moved("closed", "open"), moved("half_open", "closed")
    with client(gw) as http:

        def send(records: list[dict[str, Any]]) -> list[str]:
            return [http.post("/invocations", json=body(r)).headers["X-Firebreak-Route"] for r in records]

        assert set(send(pricing_records(config.min_calls, holiday=True, seed=31))) == {"champion"}
        assert gw.breaker.state == BreakerState.CLOSED and gauge() == 0
        send(pricing_records(config.min_calls, holiday=False, seed=32))  # under cost: trips
        assert gw.breaker.state == BreakerState.OPEN and gauge() == 2
        assert moved("closed", "open") == opened_before + 1
        assert set(send(pricing_records(5, holiday=True, seed=33))) == {"heuristic"}  # open: fallback, no probes
        clock.now += config.open_seconds
        routes = send(pricing_records(config.half_open_probes, holiday=True, seed=34))
        assert set(routes) == {"heuristic"}  # probes are judged, never returned
        assert gw.breaker.state == BreakerState.CLOSED and gauge() == 0
        assert moved("half_open", "closed") == closed_before + 1
        assert set(send(pricing_records(3, holiday=True, seed=35))) == {"champion"}
    events = [(e["source"], e["target"]) for e in store.routing.breaker_events("pricing")]
    assert events == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    alerts = sorted(set(inbox.glob("generic-gateway-*.json")) - seen_alerts)
    payloads = [json.loads(a.read_text()) for a in alerts]
    assert [p["status"] for p in payloads] == ["firing", "resolved"]
    assert payloads[0]["dedup_key"] == payloads[1]["dedup_key"]  # the intake closes the episode it opened
    gw.drain()
