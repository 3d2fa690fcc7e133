"""The gateway over HTTP as hostile callers and faults meet it (issue 17): ``firebreak serve --workers 2``.

Real processes throughout: uvicorn workers, callers on their own loopback addresses, a
``kill -9`` of a worker under load, the state DB's write lock held by another process.
One server for the module; each test leaves the breaker closed and routing on the champion.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from firebreak.prediction_log import PredictionLog
from firebreak_dev.soak import Server, hold_lock, setup_world
from tests.gateway_helpers import body, pricing_records
from tests.state import State

pytestmark = pytest.mark.integration

OPEN_SECONDS = 3.0


class World:
    def __init__(self, home: Path, env: dict[str, str], server: Server) -> None:
        self.home, self.env, self.server = home, env, server
        self.state = State(f"sqlite:///{home / 'state.db'}")

    def caller(self, n: int) -> httpx.Client:
        """A client on its own loopback address: the gateway sees it as caller 127.0.0.<n>."""
        return httpx.Client(
            base_url=self.server.url, transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}"), timeout=10
        )

    def release(self) -> None:
        """Close the breaker (an operator's release) and wait until every worker obeys."""
        firebreak = str(Path(sys.executable).parent / "firebreak")
        subprocess.run(
            [firebreak, "breaker", "close", "--model", "pricing", "--reason", "test reset"],
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
        )
        states = self.worker_states(lambda state: state == "closed")
        assert set(states.values()) == {"closed"}, f"workers never adopted the release: {states}"

    def worker_states(self, wanted: Callable[[str], bool], timeout: float = 30) -> dict[str, str]:
        """Each worker's breaker state, asked until every worker's is ``wanted`` or ``timeout`` passes.

        A worker adopts the shared breaker row at its own next refresh, so the workers agree a
        moment after the row moves. Each question goes on a new connection, answered by any worker.
        """
        workers = {str(pid) for pid in self.server.workers()}
        states: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with httpx.Client(base_url=self.server.url, timeout=10) as http:
                answer = http.get("/serving")
            states[answer.headers["X-Firebreak-Worker"]] = answer.json()["breaker"]["state"]
            if states.keys() >= workers and all(wanted(states[w]) for w in workers):
                break
            time.sleep(0.1)
        return states

    def events_after(self, before: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The breaker events recorded after the first ``before``, waiting for at least one.

        Workers write their transitions off the request path, so a trip reaches the state DB
        a moment after the fallback starts answering.
        """
        deadline = time.monotonic() + timeout
        while len(events := self.events()) <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        return events[before:]

    def events(self) -> list[dict[str, Any]]:
        return self.state.routing.breaker_events("pricing")

    def alerts(self) -> set[Path]:
        inbox = self.home / "alert-inbox"
        return set(inbox.glob("generic-gateway-*.json")) if inbox.exists() else set()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("gateway-safety")
    env = setup_world(home, open_seconds=OPEN_SECONDS)
    server = Server(env, workers=2)
    try:
        server.wait_ready()
        time.sleep(2)  # both workers past their first refresh
        yield World(home, env, server)
    finally:
        server.stop()


def rss(pids: list[int]) -> int:
    return sum(psutil.Process(p).memory_info().rss for p in pids)


def raw_post(url: str, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send ``head`` then ``chunks`` until the server answers; returns the answer and the body bytes sent."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        sock.setblocking(False)
        answer = b""
        for chunk in chunks:
            try:
                answer += sock.recv(65536)
                break  # the server answered: stop sending
            except BlockingIOError:
                pass
            try:
                sock.sendall(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.setblocking(True)
        try:
            # The whole answer: its head, then as much body as it declares (the head and the
            # body may come in separate reads), or until the server closes.
            while not _complete(answer):
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return length is None or len(body) >= int(length.group(1))


def test_hostile_json_is_a_4xx_naming_the_problem_and_memory_stays_bounded(world: World) -> None:
    workers = world.server.workers()
    before = rss(workers)
    hostile = {
        "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
        "an integer of 5,000 digits": b'{"dataframe_records": [{"unit_cost": ' + b"9" * 5000 + b"}]}",
        "1e400": b'{"dataframe_records": [{"unit_cost": 1e400}]}',
    }
    with world.caller(20) as http:
        answers = {
            k: http.post("/invocations", content=v, headers={"Content-Type": "application/json"})
            for k, v in hostile.items()
        }
    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(hostile, 400)
    errors = {k: a.json()["error"] for k, a in answers.items()}
    assert "nested too deeply" in errors["nested 100k deep"]
    assert "a number of 5000 characters; at most 64" in errors["an integer of 5,000 digits"]
    assert "1e400 is out of range" in errors["1e400"]
    for error in errors.values():  # the problem, never where the server keeps things
        assert str(world.home) not in error and "site-packages" not in error and "Traceback" not in error

    mb = b"x" * (1 << 20)
    declared = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 209715200\r\n\r\n"
    )
    answer, sent = raw_post(world.server.url, declared, iter([mb] * 200))
    assert answer.startswith(b"HTTP/1.1 413") and sent < 20 * len(mb), (answer[:200], sent)
    chunked = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer, sent = raw_post(world.server.url, chunked, iter([b"100000\r\n" + mb + b"\r\n"] * 200))
    assert answer.startswith(b"HTTP/1.1 413") and sent < 20 * len(mb), (answer[:200], sent)
    assert b"over the limit of 1048576" in answer

    assert rss(workers) - before < 64 << 20  # not buffered whole: 200 MB never lands in a worker
    with world.caller(20) as http:
        assert http.post("/invocations", json=body(pricing_records(1, holiday=True, seed=5)[0])).status_code == 200


def test_client_field_names_never_become_metric_labels(world: World) -> None:
    record = dict(pricing_records(1, holiday=True, seed=6)[0], pwned_by_mallory_7f3a=1)
    with world.caller(21) as http:
        refused = http.post("/invocations", json=body(record))
        assert refused.status_code == 422 and "pwned_by_mallory_7f3a: field not in the contract" in refused.text
        time.sleep(1.5)  # /metrics sums every process's files
        metrics = http.get("/metrics").text
    assert "pwned_by_mallory_7f3a" not in metrics
    assert 'field="(not in the contract)",model="pricing",rule="unknown_field"' in metrics


def test_one_caller_cannot_trip_the_breaker_for_everyone_but_a_real_failure_trips_it(world: World) -> None:
    alerts = world.alerts()
    adversarial = pricing_records(60, holiday=False, seed=7)  # in the contract; v1 prices them under cost
    season = pricing_records(60, holiday=True, seed=8)
    with world.caller(66) as mallory, world.caller(11) as alice, world.caller(12) as bob:
        one = mallory.post("/invocations", json=body(*adversarial[:20]))  # one request, 20 adversarial rows
        assert one.status_code == 200
        routes = []
        for i in range(40):
            mallory.post("/invocations", json=body(adversarial[20 + i]))
            for http in (alice, bob):
                routes.append(http.post("/invocations", json=body(season[i])).headers["X-Firebreak-Route"])
        serving = [http.get("/serving").json() for http in (alice, bob) for _ in range(4)]
    assert set(routes) == {"champion"}, "one caller's requests contained the model for everyone"
    assert {s["breaker"]["state"] for s in serving} == {"closed"}
    assert world.events() == [] and world.alerts() == alerts

    # The season ends for everyone: three callers see v1 price under cost; it trips within the window.
    failing = pricing_records(300, holiday=False, seed=9)
    callers = [world.caller(n) for n in (11, 12, 13)]
    onset = time.monotonic()
    tripped = None
    try:
        for i, record in enumerate(failing):
            route = callers[i % 3].post("/invocations", json=body(record)).headers["X-Firebreak-Route"]
            if route == "heuristic" and all(  # every worker serves the fallback
                c.get("/serving").json()["breaker"]["state"] != "closed" for c in callers
            ):
                tripped = time.monotonic() - onset
                break
    finally:
        for c in callers:
            c.close()
    window = 30.0  # the pricing policy's serving.breaker.window_seconds (default)
    assert tripped is not None and tripped < window
    tripped_events = world.events_after(0)
    assert tripped_events and (tripped_events[0]["source"], tripped_events[0]["target"]) == ("closed", "open")
    world.release()


def test_a_locked_state_db_never_slows_serving_and_the_trip_reaches_breaker_events(world: World) -> None:
    before = len(world.events())
    failing = pricing_records(400, holiday=False, seed=10)
    latencies: list[float] = []
    health: list[float] = []
    routes: list[str] = []
    locker = hold_lock(world.home / "state.db", 8)
    locked_at = time.monotonic()
    callers = [world.caller(n) for n in (14, 15, 16)]
    try:
        i = 0
        while time.monotonic() - locked_at < 7:
            t = time.perf_counter()
            answer = callers[i % 3].post("/invocations", json=body(failing[i % 400]))
            latencies.append(time.perf_counter() - t)
            routes.append(answer.headers["X-Firebreak-Route"])
            if i % 10 == 0:
                t = time.perf_counter()
                assert callers[0].get("/health").status_code == 200
                health.append(time.perf_counter() - t)
            i += 1
        assert len(world.events()) == before  # still locked: nothing could be written yet
        locker.wait(timeout=30)
        tripped = world.events_after(before)
        states = world.worker_states(lambda state: state != "closed")
    finally:
        for c in callers:
            c.close()
        locker.kill()
    assert max(latencies) < 1.0 and max(health) < 1.0, (max(latencies), max(health))
    assert "heuristic" in routes  # the breaker tripped while the DB was locked
    assert tripped and (tripped[0]["source"], tripped[0]["target"]) == ("closed", "open")
    assert tripped[0]["data"]["late"] is True  # written when the lock was gone, not swallowed
    assert set(states.values()) <= {"open", "half_open"}, states  # both workers converged on a contained model
    world.release()


def test_kill_9_of_a_worker_under_load_loses_no_answered_prediction(world: World) -> None:
    records = pricing_records(200, holiday=True, seed=12)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(caller: int) -> None:
        with world.caller(caller) as http:
            i = 0
            while not stop.is_set():
                rid = f"k9-{caller}-{i}"
                try:
                    answer = http.post("/invocations", json=body(records[i % 200]), headers={"X-Request-Id": rid})
                except httpx.TransportError:  # cut off by the kill: not answered, nothing to find
                    answer = None
                if answer is not None and answer.status_code == 200:
                    with lock:
                        answered.append(rid)
                i += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in (31, 32, 33, 34)]
    for t in threads:
        t.start()

    def answered_at_least(n: int) -> None:
        deadline = time.monotonic() + 120
        while len(answered) < n and time.monotonic() < deadline:
            time.sleep(0.1)

    answered_at_least(20)
    victim = world.server.workers()[0]
    before_kill = len(answered)
    os.kill(victim, signal.SIGKILL)  # mid-load: requests in flight on it are cut off
    answered_at_least(before_kill + 40)
    stop.set()
    for t in threads:
        t.join()
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE
    deadline = time.monotonic() + 20
    missing: set[str] = set(answered)
    while missing and time.monotonic() < deadline:  # the drainer's passes pick up the dead worker's journal
        time.sleep(1)
        log = PredictionLog(world.home / "predictions").read("pricing")
        missing = set(answered) - set(log["request_id"])
    assert before_kill >= 20 and len(answered) - before_kill >= 40  # under load before and after the kill
    assert not missing, f"{len(missing)} of {len(answered)} answered requests are not in the prediction log"
    quarantine = world.home / "journal" / "pricing" / "quarantine"
    assert not quarantine.exists() or not list(quarantine.iterdir()), json.dumps(sorted(os.listdir(quarantine)))
