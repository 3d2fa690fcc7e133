"""The gateway as a sidecar in front of the team's own model server.

A real ``mlflow models serve`` is the MLflow-protocol upstream. KServe, MLServer and Triton
cannot run here: the Open Inference Protocol v2 upstream is a small FastAPI server on
loopback that speaks the protocol (and can be told to fail or stall), a stand-in for them.
The model is a scikit-learn pipeline with a string categorical (``tests/own_model.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from firebreak.incidents.enums import BreakerState
from firebreak.prediction_log import PredictionLog
from firebreak.serving.app import create_app
from firebreak.serving.gateway import Gateway
from firebreak.serving.scorer import model_scorer
from firebreak.serving.upstream import UpstreamSpec
from firebreak.settings import Settings
from firebreak_dev.services import free_port
from tests import own_model
from tests.gateway_helpers import many_callers
from tests.state import State


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    home = tmp_path_factory.mktemp("sidecar")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        mp.setenv("FIREBREAK_POLICIES_DIR", str(own_model.write_policy(home)))
        settings = Settings.from_env()
        yield settings, own_model.register(settings)


def requests(n: int, seed: int) -> list[dict[str, Any]]:
    frame = own_model.generate(seed, n)[own_model.INPUTS]
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")]


def expected(settings: Settings, version: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """What plain pyfunc scoring answers for these rows (the fitted pipeline, as MLflow loads it)."""
    import mlflow

    pyfunc = mlflow.pyfunc.load_model(f"models:/{own_model.MODEL}/{version}")
    raw = pyfunc.get_raw_model()
    frame = pd.DataFrame(records)
    return pd.DataFrame(
        {"prediction": pyfunc.predict(frame), "confidence": raw.predict_proba(frame[own_model.INPUTS]).max(axis=1)}
    )


def test_the_scikit_learn_path_scores_a_pipeline_with_string_categoricals_and_answers_its_confidence(
    world: tuple[Settings, dict[str, str]],
) -> None:
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry

    settings, versions = world
    policy = load_policy(own_model.MODEL, settings.policies_dir)
    registry = Registry(settings)
    champion = registry.get_version(own_model.MODEL, versions["champion"])
    records = requests(50, seed=3)
    answers = model_scorer(registry, champion, policy, name="champion").predict(pd.DataFrame(records))
    truth = expected(settings, versions["champion"], records)
    assert answers["prediction"].tolist() == truth["prediction"].tolist()
    # Confidence is the probability of the predicted class (binary: the larger one).
    assert answers["confidence"].round(9).tolist() == truth["confidence"].round(9).tolist()
    assert (answers["confidence"] >= 0.5).all()


@pytest.fixture(scope="module")
def mlflow_upstream(world: tuple[Settings, dict[str, str]]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``mlflow models serve`` of the champion, as the team runs it."""
    settings, _ = world
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.Popen(
        [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{own_model.MODEL}@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, f"mlflow models serve exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping within 180 s"
            time.sleep(0.5)
    warm = urllib.request.Request(  # its first scoring call loads lazily: not what the tests measure
        f"{url}/invocations",
        data=json.dumps({"dataframe_records": requests(1, seed=1)}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(warm, timeout=60):
        pass
    yield url, proc
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def sidecar(settings: Settings, url: str, protocol: str = "auto") -> Gateway:
    """A gateway fronting ``url``, starting from a closed breaker (an earlier test may have tripped it)."""
    with State(settings.state_db_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM breakers"))
    gateway = Gateway(
        own_model.MODEL, settings, refresh_seconds=3600, inbox_alerts=False, upstream=UpstreamSpec.parse(url, protocol)
    )
    gateway.refresh()
    return gateway


def test_firebreak_serve_upstream_journals_every_answer_and_its_drainer_logs_them_at_the_log_url(
    world: tuple[Settings, dict[str, str]],
    mlflow_upstream: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """``firebreak serve --upstream``: the workers journal the upstream's answers, the drainer process logs them."""
    import httpx

    settings, versions = world
    with State(settings.state_db_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM breakers"))
    url, _ = mlflow_upstream
    log_url = f"file://{tmp_path / 'shared-log'}"
    port = free_port()
    env = {**os.environ, "FIREBREAK_PREDICTION_LOG_URL": log_url}
    firebreak = str(Path(sys.executable).parent / "firebreak")
    cmd = [firebreak, "serve", "--model", own_model.MODEL, "--port", str(port), "--workers", "2", "--upstream", url]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    records = requests(10, seed=8)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout and server.stdout.read()
            time.sleep(0.5)
        answers = []
        for i, record in enumerate(records):
            with httpx.Client() as http:  # a new connection each time: both workers answer
                answers.append(
                    http.post(
                        f"http://127.0.0.1:{port}/invocations",
                        json={"dataframe_records": [record]},
                        headers={"X-Request-Id": f"serve-{i}"},
                        timeout=30,
                    )
                )
    finally:
        server.terminate()  # the workers stop, then the drainer's last pass logs their sealed journals
        server.wait(timeout=90)
    assert [a.status_code for a in answers] == [200] * len(records)
    assert {a.headers["X-Firebreak-Route"] for a in answers} == {"champion"}
    log = PredictionLog(log_url).read(own_model.MODEL)
    ours = log[log["request_id"].str.startswith("serve-")]
    assert sorted(ours["request_id"]) == sorted(f"serve-{i}" for i in range(len(records)))
    assert set(ours["route"]) == {"champion"} and set(ours["model_version"]) == {versions["champion"]}
    truth = expected(settings, versions["champion"], records)
    by_id = ours.set_index("request_id")["prediction"]
    assert [by_id[f"serve-{i}"] for i in range(len(records))] == truth["prediction"].tolist()
    # Nothing left in the journal, and nothing logged at the default location instead.
    assert not list((settings.home / "journal" / own_model.MODEL).glob("*.jnl"))
    default = PredictionLog(settings.prediction_log_dir).read(own_model.MODEL)
    assert not default["request_id"].astype(str).str.startswith("serve-").any()


def test_mlflow_models_serve_answers_as_the_champion_and_a_dead_upstream_trips_the_breaker_to_the_fallback(
    world: tuple[Settings, dict[str, str]], mlflow_upstream: tuple[str, subprocess.Popen[bytes]]
) -> None:
    settings, versions = world
    url, proc = mlflow_upstream
    gateway = sidecar(settings, url)
    records = requests(12, seed=4)
    with TestClient(many_callers(create_app(gateway, start=False))) as http:
        served = http.get("/serving").json()
        answers = [
            http.post("/invocations", json={"dataframe_records": [r]}, headers={"X-Request-Id": f"up-{i}"})
            for i, r in enumerate(records)
        ]
        assert [a.status_code for a in answers] == [200] * len(records)
        assert {a.headers["X-Firebreak-Route"] for a in answers} == {"champion"}
        assert {a.headers["X-Firebreak-Model-Version"] for a in answers} == {versions["champion"]}
        truth = expected(settings, versions["champion"], records)
        assert [a.json()["predictions"][0]["prediction"] for a in answers] == truth["prediction"].tolist()

        os.killpg(proc.pid, 9)  # the team's server dies
        proc.wait(timeout=30)
        after = [
            http.post("/invocations", json={"dataframe_records": [r]}, headers={"X-Request-Id": f"down-{i}"})
            for i, r in enumerate(requests(8, seed=5))
        ]
        now_serving = http.get("/serving").json()
    gateway.close()  # its breaker writes are done, not retried into the next test
    gateway.drain()
    assert served["upstream"] == {"url": f"{url}/invocations", "protocol": "mlflow", "answers_as": "champion"}
    assert served["champion"] == versions["champion"] and served["route"] == "champion"
    # Users never see the failure: every request is answered, by the fallback model.
    assert [a.status_code for a in after] == [200] * 8
    assert {a.headers["X-Firebreak-Route"] for a in after} == {"fallback_model"}
    assert {a.headers["X-Firebreak-Model-Version"] for a in after} == {versions["fallback"]}
    assert gateway.breaker.state == BreakerState.OPEN
    assert now_serving["breaker"]["state"] == "open" and now_serving["route"] == "fallback_model"
    log = PredictionLog(settings.prediction_log_dir).read(own_model.MODEL)
    assert set(log.loc[log["request_id"].str.startswith("up-"), "route"]) == {"champion"}
    assert set(log.loc[log["request_id"].str.startswith("down-"), "route"]) == {"fallback_model"}
    assert log["request_id"].str.startswith(("up-", "down-")).sum() == 20


class V2Server:
    """An Open Inference Protocol v2 server on loopback (stand-in for KServe/MLServer/Triton).

    Answers with the champion pipeline on columnar inputs, records the last request, and
    can be told to stall past the gateway's timeout.
    """

    def __init__(self, model: Any) -> None:
        import uvicorn

        self.model = model
        self.stall = 0.0
        self.trickle = 0.0  # seconds between the bytes of the answer: headers at once, then a byte at a time
        self.last: dict[str, Any] = {}
        self.tamper: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda outputs: outputs
        app = FastAPI()

        @app.post("/v2/models/payments/infer")
        async def infer(request: Request) -> JSONResponse:
            import asyncio

            body = await request.json()
            self.last = body
            if self.stall:
                await asyncio.sleep(self.stall)
            if body["inputs"][0]["datatype"] == "FP64" and len(body["inputs"]) == 1:  # one 2-D tensor
                n = body["inputs"][0]["shape"][0]
                return JSONResponse(
                    {"outputs": [{"name": "predict", "shape": [n], "datatype": "INT64", "data": [0] * n}]}
                )
            frame = pd.DataFrame({i["name"]: i["data"] for i in body["inputs"]})
            labels = self.model.predict(frame).tolist()
            proba = self.model.predict_proba(frame).max(axis=1).tolist()
            outputs = [
                {"name": "prediction", "shape": [len(labels)], "datatype": "INT64", "data": labels},
                {"name": "confidence", "shape": [len(labels)], "datatype": "FP64", "data": proba},
            ]
            answer = {"model_name": "payments", "id": body.get("id"), "outputs": self.tamper(outputs)}
            if self.trickle:
                from fastapi.responses import StreamingResponse

                async def slowly() -> Any:
                    for byte in json.dumps(answer).encode():
                        yield bytes([byte])
                        await asyncio.sleep(self.trickle)

                return StreamingResponse(slowly(), media_type="application/json")
            return JSONResponse(answer)

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/models/payments"

    def __enter__(self) -> V2Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def upstream_policy(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: str) -> Settings:
    """Settings whose policy fronts the upstream with ``upstream`` (YAML flow mapping) instead of the shared one."""
    policies = tmp_path / "policies"
    policies.mkdir()
    text = (settings.policies_dir / f"{own_model.MODEL}.yaml").read_text()
    shared = "upstream: {timeout_seconds: 10.0}"
    assert shared in text
    (policies / f"{own_model.MODEL}.yaml").write_text(text.replace(shared, f"upstream: {upstream}"))
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(policies))
    return Settings.from_env()


@dataclass
class V2Sidecar:
    settings: Settings
    server: V2Server
    gateway: Gateway
    http: TestClient


@contextmanager
def v2_sidecar(
    world: tuple[Settings, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: str
) -> Iterator[V2Sidecar]:
    """The gateway fronting a v2 server of the champion pipeline, under a policy whose upstream is ``upstream``."""
    import mlflow

    shared, versions = world
    settings = upstream_policy(shared, tmp_path, monkeypatch, upstream)
    model = mlflow.pyfunc.load_model(f"models:/{own_model.MODEL}/{versions['champion']}").get_raw_model()
    with V2Server(model) as server:
        gateway = sidecar(settings, server.url)
        try:
            with TestClient(many_callers(create_app(gateway, start=False))) as http:
                yield V2Sidecar(settings, server, gateway, http)
        finally:
            gateway.close()


def test_an_open_inference_protocol_v2_upstream_answers_columns_and_a_stalled_one_times_out_to_the_fallback(
    world: tuple[Settings, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = requests(6, seed=6)
    with v2_sidecar(world, tmp_path, monkeypatch, "{timeout_seconds: 1.0}") as v2:
        batch = v2.http.post("/invocations", json={"dataframe_records": records})
        sent = v2.server.last
        v2.server.stall = 3.0  # past the policy's 1 s timeout
        started = time.perf_counter()
        stalled = [v2.http.post("/invocations", json={"dataframe_records": [r]}) for r in records[:5]]
        waited = time.perf_counter() - started
        after = v2.http.post("/invocations", json={"dataframe_records": [records[0]]})
    assert batch.status_code == 200 and batch.headers["X-Firebreak-Route"] == "champion"
    truth = expected(v2.settings, world[1]["champion"], records)
    assert [p["prediction"] for p in batch.json()["predictions"]] == truth["prediction"].tolist()
    assert [round(p["confidence"], 9) for p in batch.json()["predictions"]] == truth["confidence"].round(9).tolist()
    assert {i["name"]: i["datatype"] for i in sent["inputs"]} == {
        "amount": "FP64",
        "account_age_days": "INT64",
        "channel": "BYTES",
    }
    assert sent["parameters"] == {"content_type": "pd"}
    # Each stalled call waited for the timeout, not the upstream; the fallback answered.
    assert [r.status_code for r in stalled] == [200] * 5
    assert {r.headers["X-Firebreak-Route"] for r in stalled} == {"fallback_model"}
    assert waited < 5 * 2.5
    assert v2.gateway.breaker.state == BreakerState.OPEN
    assert after.headers["X-Firebreak-Route"] == "fallback_model"  # open: the upstream is not called


def test_a_tensor_upstream_gets_the_numeric_inputs_as_one_fp64_tensor(
    world: tuple[Settings, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = requests(3, seed=7)
    with v2_sidecar(world, tmp_path, monkeypatch, "{timeout_seconds: 10.0, v2_inputs: tensor}") as v2:
        answer = v2.http.post("/invocations", json={"dataframe_records": records})
    assert answer.status_code == 200 and answer.json()["predictions"] == [{"prediction": 0}] * 3
    tensor = v2.server.last["inputs"][0]
    assert (tensor["name"], tensor["shape"], tensor["datatype"]) == ("input-0", [3, 2], "FP64")
    assert tensor["data"] == [float(v) for r in records for v in (r["amount"], r["account_age_days"])]


def test_an_upstream_cannot_write_over_the_logs_own_fields_and_an_answer_it_cannot_give_goes_to_the_fallback(
    world: tuple[Settings, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extra tensors named like the log's fields are dropped; a confidence of 5 is no answer: the fallback gives one."""
    records = requests(3, seed=8)

    def forged(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = len(outputs[0]["data"])
        names = {"request_id": "forged", "model": "other", "route": "fallback_model", "amount": 0.01}
        return outputs + [{"name": k, "shape": [n], "datatype": "BYTES", "data": [v] * n} for k, v in names.items()]

    def overconfident(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [o if o["name"] != "confidence" else {**o, "data": [5.0] * len(o["data"])} for o in outputs]

    with v2_sidecar(world, tmp_path, monkeypatch, "{timeout_seconds: 10.0}") as v2:
        v2.server.tamper = forged
        answered = v2.http.post("/invocations", json={"dataframe_records": records})
        v2.server.tamper = overconfident
        refused = v2.http.post("/invocations", json={"dataframe_records": records})
    assert answered.status_code == 200 and answered.headers["X-Firebreak-Route"] == "champion"
    assert [sorted(p) for p in answered.json()["predictions"]] == [["confidence", "prediction"]] * 3
    assert refused.status_code == 200 and refused.headers["X-Firebreak-Route"] == "fallback_model"
    log = PredictionLog(v2.settings.prediction_log_dir).read(own_model.MODEL)
    mine = log[log["request_id"].str.startswith(answered.headers["X-Request-Id"])]
    assert len(mine) == 3 and set(mine["model"]) == {own_model.MODEL} and set(mine["route"]) == {"champion"}
    assert mine["amount"].tolist() == [r["amount"] for r in records]  # the inputs as sent, not the upstream's
    assert "forged" not in set(log["request_id"])
    fell_back = log[log["request_id"].str.startswith(refused.headers["X-Request-Id"])]
    assert set(fell_back["route"]) == {"fallback_model"} and (fell_back["confidence"] <= 1).all()


def test_an_upstream_that_trickles_its_answer_is_cut_at_the_timeout_and_the_fallback_answers(
    world: tuple[Settings, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte every 0.2 s never trips a read timeout of 1 s; the whole answer must still come within it."""
    records = requests(2, seed=9)
    with v2_sidecar(world, tmp_path, monkeypatch, "{timeout_seconds: 1.0}") as v2:
        v2.server.trickle = 0.2  # the answer's ~300 bytes would take a minute
        started = time.perf_counter()
        answered = v2.http.post("/invocations", json={"dataframe_records": records})
        waited = time.perf_counter() - started
        v2.server.trickle = 0.0
    assert answered.status_code == 200 and answered.headers["X-Firebreak-Route"] == "fallback_model"
    assert waited < 30  # the timeout and one last read, not the minute the upstream would take
