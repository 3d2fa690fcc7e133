"""Soak the serving gateway: constant-rate traffic through a real failure, faults and an adversary.

The pricing model behind ``firebreak serve --workers 2`` takes open-loop traffic (every
request sent at its scheduled time, whatever the answers before it did) from several
legitimate callers, each on its own loopback address, while:

* the season ends and starts again: legitimate traffic turns off-season (v1 prices under
  cost, at low confidence: a real failure the breaker must trip on) and back;
* one adversarial caller sends in-contract rows the model gets wrong, one row or 20 at a
  time, all along: it must never contain the model for everyone;
* workers are killed with ``kill -9``, the youngest each time (uvicorn starts new ones): every request answered
  200 must still reach the prediction log; a request cut off is retried by the client
  with the same request id;
* another process holds the state DB's write lock: serving must not notice, and the
  breaker's transition must reach ``breaker_events`` once the lock is gone;
* a share of requests break the contract: each must be refused.

Every answer is checked: answered within 1 s of its scheduled time, never a price under
cost, never a contract-breaking request served. ``benchmarks/soak_gateway.py`` runs the
10-minute plan and holds it to the latency budget; ``tests/integration/serving/test_soak.py``
runs :meth:`Plan.short` and holds it to every check but the clock (the test suite times nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from firebreak.errors import FirebreakError
from firebreak.settings import INCLUDE_DIR
from firebreak_dev.services import free_port

ADVERSARY = "127.0.0.66"
ADVERSARY_ROWS = 20


@dataclass(frozen=True)
class Plan:
    """When what happens, in seconds from the start of traffic."""

    seconds: float = 600
    rate: float = 200  # legitimate requests per second, over ``callers`` callers
    callers: int = 8
    adversary_rate: float = 10  # the adversary's requests per second, half of them ADVERSARY_ROWS rows
    invalid_every: int = 100  # one legitimate request in this many breaks the contract
    failure: tuple[float, float] = (150, 300)  # legitimate traffic off-season (the champion fails)
    lock: tuple[float, float] = (140, 160)  # another process holds the state DB's write lock
    kills: tuple[float, ...] = (90, 420)  # kill -9 of a worker
    workers: int = 2
    open_seconds: float = 30  # the breaker's open wait (the pricing policy's default)
    budget: float = 1.0  # every request answered within this many seconds

    @classmethod
    def short(cls) -> Plan:
        """The same checks in under a minute of traffic (``--short``)."""
        return cls(
            seconds=40,
            rate=60,
            callers=4,
            adversary_rate=6,
            invalid_every=50,
            failure=(12, 24),
            lock=(10, 16),
            kills=(6, 32),
            open_seconds=4,
        )

    def phase(self, t: float) -> str:
        """The phase a request scheduled at ``t`` belongs to (faults take precedence)."""
        for i, kill in enumerate(self.kills):
            if kill <= t < kill + 5:
                return f"kill -9 #{i + 1} (+5 s)"
        if self.lock[0] <= t < self.lock[1]:
            return "state DB locked"
        if t < self.failure[0]:
            return "normal"
        if t < self.failure[1]:
            return "failure (breaker open)"
        if t < self.failure[1] + self.open_seconds + 5:
            return "recovery (half-open, probes)"
        return "recovered"

    def healthy(self, t: float) -> bool:
        """Whether the champion should serve legitimate traffic scheduled at ``t``."""
        return t < self.failure[0] or t >= self.failure[1] + self.open_seconds + 5


@dataclass
class Outcome:
    request_id: str
    who: str  # legit | adversary | invalid
    at: float  # scheduled, seconds from the start
    rows: list[dict[str, Any]]
    status: int = 0  # 0: never answered
    route: str = ""
    latency: float = float("inf")
    lag: float = 0.0  # how late the driver sent it (a driver that cannot keep up shows here, not as latency)
    worker: str = ""  # the gateway worker that answered (X-Firebreak-Worker)
    handled: float = 0.0  # seconds the gateway spent on it, from the log's latency_ms (0: not logged)
    attempts: int = 0
    prices: list[float] = field(default_factory=list)


@dataclass
class Report:
    plan: Plan
    outcomes: list[Outcome]
    logged_ids: Counter[str]
    events: list[dict[str, Any]]
    load: tuple[float, float, float]
    # Answers off the champion while it was healthy whose champion answer broke the sanity bound
    # (a price under cost): the gateway replaced that row, as it must; that is not containment.
    replaced: frozenset[str] = frozenset()
    started: float = 0.0  # wall-clock time (epoch seconds) of the plan's second 0
    killed: int = 0  # workers killed with kill -9

    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def off_champion(self) -> list[Outcome]:
        """Legitimate answers from another route while the champion was healthy."""
        return [o for o in self.answered() if o.who == "legit" and self.plan.healthy(o.at) and o.route != "champion"]

    def counts(self) -> dict[str, int]:
        answered = self.answered()
        expected = [rid for o in answered for rid in _row_ids(o)]
        lost = [rid for rid in expected if rid not in self.logged_ids]
        under_cost = sum(
            1 for o in answered for row, price in zip(o.rows, o.prices, strict=False) if price < row["unit_cost"]
        )
        return {
            "sent": len(self.outcomes),
            "workers killed (kill -9)": self.killed,
            "answered 200": len(answered),
            "refused 4xx": sum(1 for o in self.outcomes if 400 <= o.status < 500),
            "unanswered": sum(1 for o in self.outcomes if o.status == 0 or o.status >= 500),
            "over budget": sum(1 for o in self.outcomes if o.latency > self.plan.budget),
            "retried after a broken connection (kill -9)": sum(1 for o in self.outcomes if o.attempts > 1),
            "rows answered": len(expected),
            "rows logged": sum(1 for rid in expected if rid in self.logged_ids),
            "rows lost": len(lost),
            "rows logged twice (a retry of a journaled answer)": sum(1 for rid in expected if self.logged_ids[rid] > 1),
            "contract-breaking served": sum(1 for o in answered if o.who == "invalid"),
            "prices under cost served": under_cost,
            "champion answers outside the sanity bound, replaced": len(self.replaced),
            "healthy model contained (legit answers off the champion)": sum(
                1 for o in self.off_champion() if o.request_id not in self.replaced
            ),
        }

    def problems(self, *, timed: bool = True) -> list[str]:
        """What the soak must never see; empty when it passed. ``timed=False`` leaves out the latency budget."""
        c = self.counts()
        found = [
            f"{key}: {c[key]}"
            for key in (
                "unanswered",
                *(["over budget"] if timed else []),
                "rows lost",
                "contract-breaking served",
                "prices under cost served",
                "healthy model contained (legit answers off the champion)",
            )
            if c[key]
        ]
        if c["refused 4xx"] != sum(1 for o in self.outcomes if o.who == "invalid"):
            found.append("a valid request was refused, or an invalid one not")
        if self.trip_seconds() is None:
            found.append("the breaker never tripped on the real failure")
        elif self.trip_seconds() > 30:  # type: ignore[operator]
            found.append(f"the breaker tripped {self.trip_seconds():.1f} s after the failure began (window 30 s)")
        start, end = self.plan.failure
        found += [
            f"the breaker tripped at {at:.1f} s, outside the failure" for at in self.trips() if not start <= at < end
        ]
        if not any(e["target"] == "open" for e in self.events):
            found.append("the trip never reached breaker_events")
        return found

    def trips(self) -> list[float]:
        """When the breaker tripped (closed → open), in seconds of the plan: when decided, even if recorded late."""
        return [_decided_at(e) - self.started for e in self.events if e["source"] == "closed" and e["target"] == "open"]

    def trip_seconds(self) -> float | None:
        """From the failure's onset to the breaker's first trip during the failure."""
        start, end = self.plan.failure
        during = [at for at in self.trips() if start <= at < end]
        return min(during) - start if during else None

    def phases(self) -> list[tuple[str, int, float, float]]:
        """Per phase: requests, p99 and max latency (ms), in the order they happen."""
        by: dict[str, list[float]] = {}
        for o in sorted(self.outcomes, key=lambda o: o.at):
            by.setdefault(self.plan.phase(o.at), []).append(o.latency)
        out = []
        for name, latencies in by.items():
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            out.append((name, len(latencies), p99 * 1000, latencies[-1] * 1000))
        return out

    def markdown(self) -> str:
        lines = ["| count | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.counts().items()]
        trip = self.trip_seconds()
        off = [o for o in self.off_champion() if o.request_id not in self.replaced]
        if off:
            lines += ["", "Legitimate answers off the champion while it was healthy (first 10):", ""]
            lines += [f"- {o.request_id} at {o.at:.2f} s: {o.route or 'no route'}" for o in off[:10]]
        lines += ["", f"Failure onset → breaker open: {trip:.2f} s." if trip is not None else "No trip."]
        lines += ["", "| phase | requests | p99 ms | max ms |", "|---|---|---|---|"]
        lines += [f"| {n} | {k} | {p99:.1f} | {mx:.1f} |" for n, k, p99, mx in self.phases()]
        lines += ["", "Breaker events:", ""]
        for e in self.events:
            data = e.get("data") or {}
            flags = ", ".join(k for k in ("late", "shared", "orphaned") if k in data)
            lines.append(f"- {e['source']} → {e['target']} ({e['reason']}){' [' + flags + ']' if flags else ''}")
        unanswered = [o for o in self.outcomes if o.status == 0 or o.status >= 500]
        if unanswered:
            lines += ["", "Unanswered (first 10):", ""]
            lines += [
                f"- {o.request_id} at {o.at:.2f} s: status {o.status}, {o.attempts} attempt(s)" for o in unanswered[:10]
            ]
        over = [o for o in self.outcomes if o.latency > self.plan.budget]
        if over:
            minutes = Counter(int(o.at // 60) for o in over)
            lines += [
                "",
                "Over budget, per minute of the plan: " + ", ".join(f"{m}: {n}" for m, n in sorted(minutes.items())),
                "",
                "Where their time went (median over them): driver lag "
                f"{_median([o.lag for o in over]) * 1000:.0f} ms, gateway handler "
                f"{_median([o.handled for o in over]) * 1000:.0f} ms, between the two (connection, a worker's "
                f"accept queue, retries) {_median([o.latency - o.lag - o.handled for o in over]) * 1000:.0f} ms; "
                f"{sum(1 for o in over if o.attempts > 1)} of them retried; answered by worker "
                + ", ".join(f"{w or '?'} ({n})" for w, n in Counter(o.worker for o in over).most_common())
                + " of "
                + ", ".join(sorted({o.worker for o in self.answered()}))
                + ".",
                "",
            ]
            lines += [
                f"- {o.request_id} at {o.at:.2f} s: {o.latency * 1000:.0f} ms (driver lag {o.lag * 1000:.0f}, handler "
                f"{o.handled * 1000:.0f}), worker {o.worker or '?'}, {o.attempts} attempt(s)"
                for o in sorted(over, key=lambda o: o.at)[:20]
            ]
        lags = sorted(o.lag for o in self.outcomes)
        lines += [
            "",
            f"Driver lag (sent after its scheduled time): p99 {lags[int(0.99 * (len(lags) - 1))] * 1000:.1f} ms, "
            f"max {lags[-1] * 1000:.1f} ms.",
        ]
        lines += ["", f"Load average at the end: {self.load[0]:.2f} {self.load[1]:.2f} {self.load[2]:.2f}."]
        return "\n".join(lines)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _decided_at(event: dict[str, Any]) -> float:
    """When a breaker transition was decided: a late write carries its decision time, others were written then."""
    data = event.get("data") or {}
    if "at" in data:
        return float(data["at"])
    at = event["at"]
    return float((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def _row_ids(outcome: Outcome) -> list[str]:
    n = len(outcome.rows)
    return [outcome.request_id] if n == 1 else [f"{outcome.request_id}/{i}" for i in range(n)]


# -- the world and the server ------------------------------------------------------------


def setup_world(home: Path, *, open_seconds: float) -> dict[str, str]:
    """The pricing scenario under ``home``, its breaker's open wait shortened; returns the env to serve it."""
    policies = home / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    policy = yaml.safe_load((INCLUDE_DIR / "policies" / "pricing.yaml").read_text())
    policy.setdefault("serving", {}).setdefault("breaker", {})["open_seconds"] = open_seconds
    (policies / "pricing.yaml").write_text(yaml.safe_dump(policy))
    env = {
        "FIREBREAK_HOME": str(home),
        "FIREBREAK_POLICIES_DIR": str(policies),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
    }
    with _environ(env):
        from firebreak.scenarios import pricing
        from firebreak.settings import Settings

        pricing.setup(Settings.from_env())
    return env


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def champion_out_of_bounds(env: dict[str, str], outcomes: list[Outcome]) -> frozenset[str]:
    """Which of these one-row requests the champion would have answered outside the policy's sanity bound.

    Asks the champion itself (the version the world registered), judged by the policy's
    ``detection.output_floor``, so a row the gateway replaced is told apart from containment.
    """
    if not outcomes:
        return frozenset()
    import mlflow
    import pandas as pd

    from firebreak.policy.schema import load_policy
    from firebreak.settings import Settings

    with _environ(env):
        settings = Settings.from_env()
        policy = load_policy("pricing", settings.policies_dir)
        floor = policy.detection.output_floor
        assert floor is not None, "the pricing policy names its sanity bound"
        champion = mlflow.pyfunc.load_model("models:/pricing@champion")
        frame = pd.DataFrame([o.rows[0] for o in outcomes])
        prices = champion.predict(frame)[policy.features.output].to_numpy(dtype=float)
    bound = frame[floor.relative_to].to_numpy(dtype=float) * floor.min_ratio
    return frozenset(o.request_id for o, price, low in zip(outcomes, prices, bound, strict=True) if price < low)


class Server:
    """``firebreak serve`` as users run it, on a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        firebreak = str(Path(sys.executable).parent / "firebreak")
        cmd = [firebreak, "serve", "--model", "pricing", "--port", str(self.port), "--workers", str(workers)]
        self.log = open(Path(env["FIREBREAK_HOME"]) / "serve.log", "w")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"firebreak serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.url} not ready in {timeout} s")

    def workers(self) -> list[int]:
        """The uvicorn worker processes (not the drainer, not multiprocessing's helpers)."""
        found = []
        for child in psutil.Process(self.proc.pid).children():
            cmdline = " ".join(child.cmdline())
            if "multiprocessing.spawn" in cmdline or "spawn_main" in cmdline:
                found.append(child.pid)
        return found

    def youngest_worker(self) -> int | None:
        """The worker started last: never the only one serving.

        A worker replacing a killed one may still be importing and loading its models (on a
        loaded machine, for tens of seconds); killing the older one then would leave no
        worker to answer until the new one is up. The soak kills one worker while another
        serves, as a disruption budget of one would.
        """
        started = {}
        for pid in self.workers():
            with contextlib.suppress(psutil.NoSuchProcess):
                started[pid] = psutil.Process(pid).create_time()
        return max(started, key=lambda pid: started[pid]) if started else None

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it: workers finish, then the drainer's last pass."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def hold_lock(db: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process takes a SQLite DB's lock (``BEGIN EXCLUSIVE``) for ``seconds``; wait() for it after."""
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.execute('ROLLBACK')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(db), str(seconds)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"locked":  # else the lock is held from here
        proc.kill()
        raise FirebreakError(f"could not take the lock on {db}")
    return proc


# -- the traffic ------------------------------------------------------------------------


def _records(seed: int, n: int, *, holiday: bool) -> list[dict[str, Any]]:
    from firebreak.scenarios import pricing

    frame = pricing.generate_requests(seed, n, holiday=holiday)[pricing.INPUTS]
    frame = frame.assign(upstream_source=pricing.UPSTREAM_SOURCE, feature_pipeline_version=pricing.PIPELINE_VERSION)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def schedule(plan: Plan) -> list[Outcome]:
    """Every request of the plan, in the order they are due."""
    season = _records(41, 4000, holiday=True)
    off = _records(42, 4000, holiday=False)
    planned = []
    for i in range(int(plan.seconds * plan.rate)):
        at = i / plan.rate
        failing = plan.failure[0] <= at < plan.failure[1]
        row = dict((off if failing else season)[i % 4000])
        who = "legit"
        if i % plan.invalid_every == plan.invalid_every - 1:
            row["unit_cost"] = str(row["unit_cost"])  # a client sending a string: the contract refuses it
            who = "invalid"
        planned.append(Outcome(f"soak-{i}", who, at, [row]))
    for j in range(int(plan.seconds * plan.adversary_rate)):
        n = ADVERSARY_ROWS if j % 2 else 1
        rows = [off[(j * ADVERSARY_ROWS + k) % 4000] for k in range(n)]
        planned.append(Outcome(f"mallory-{j}", "adversary", j / plan.adversary_rate + 0.003, rows))
    return sorted(planned, key=lambda o: o.at)


class Caller:
    """One caller's keep-alive HTTP/1.1 connections from its own loopback address.

    Raw asyncio streams, not an HTTP client library: at 200 requests a second on two cores a
    general client costs the driver more CPU than the gateway spends answering, and its lag
    would be counted as the gateway's latency.
    """

    def __init__(self, url: str, address: str, *, max_connections: int = 64) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port, self.address = host, int(port), address
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(max_connections)

    async def post(
        self, path: str, body: bytes, headers: dict[str, str], timeout: float, *, fresh: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on an idle connection (or a new one, when ``fresh``); raises ConnectionError if it broke."""
        async with self.slots:
            if self.idle and not fresh:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.address, 0))
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            request = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
            try:
                writer.write((request + head + "\r\n").encode() + body)
                status, answer_headers, data = await asyncio.wait_for(_response(reader), timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                writer.close()
                raise ConnectionError(f"connection broke: {exc.__class__.__name__}") from exc
            except TimeoutError as exc:
                writer.close()
                raise ConnectionError("no answer in time") from exc
            if answer_headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((reader, writer))
            return status, answer_headers, data

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


async def _send(caller: Caller, outcome: Outcome, start: float) -> None:
    outcome.lag = time.perf_counter() - start - outcome.at  # when the driver got to it, not when it was queued
    body = json.dumps({"dataframe_records": outcome.rows}).encode()
    headers = {"Content-Type": "application/json", "X-Request-Id": outcome.request_id}
    while outcome.attempts < 4:
        outcome.attempts += 1
        try:
            # A retry goes out on a new connection: the pool may hold more to the killed worker.
            status, answer_headers, data = await caller.post(
                "/invocations", body, headers, timeout=5.0, fresh=outcome.attempts > 1
            )
        except ConnectionError:  # the worker died under the connection: retry, same request id
            continue
        outcome.status = status
        outcome.route = answer_headers.get("x-firebreak-route", "")
        outcome.worker = answer_headers.get("x-firebreak-worker", "")
        if status == 200:
            outcome.prices = [p["recommended_price"] for p in json.loads(data)["predictions"]]
        break
    outcome.latency = time.perf_counter() - start - outcome.at


async def drive(server: Server, plan: Plan, outcomes: list[Outcome], state_db: Path) -> tuple[float, int]:
    """Send every request at its time; kill workers and lock the DB on cue.

    Returns the wall-clock start and how many workers were killed.
    """
    clients = [Caller(server.url, f"127.0.0.{10 + i}") for i in range(plan.callers)]
    adversary = Caller(server.url, ADVERSARY)
    faults: list[tuple[float, str]] = sorted([(k, "kill") for k in plan.kills] + [(plan.lock[0], "lock")])
    pending: set[asyncio.Task[None]] = set()  # finished tasks are let go: the driver's heap stays flat
    locker: subprocess.Popen[bytes] | None = None
    start, started = time.perf_counter(), time.time()
    killed = 0
    try:
        for n, outcome in enumerate(outcomes):
            while faults and faults[0][0] <= outcome.at:
                _, what = faults.pop(0)
                if what == "kill":
                    victim = server.youngest_worker()
                    if victim is not None:
                        os.kill(victim, signal.SIGKILL)
                        killed += 1
                else:
                    locker = await asyncio.to_thread(hold_lock, state_db, plan.lock[1] - plan.lock[0])
            # Always yield: a driver running late must still let the requests already due go out.
            await asyncio.sleep(max(0.0, start + outcome.at - time.perf_counter()))
            client = adversary if outcome.who == "adversary" else clients[n % plan.callers]
            task = asyncio.create_task(_send(client, outcome, start))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    finally:
        for c in [*clients, adversary]:
            c.close()
        if locker is not None:
            locker.wait(timeout=120)
    return started, killed


def run(plan: Plan, home: Path) -> Report:
    """Set up the world, serve, drive the plan, stop, and read back what was logged."""
    env = setup_world(home, open_seconds=plan.open_seconds)
    server = Server(env, plan.workers)
    try:
        server.wait_ready()
        time.sleep(3)  # every worker past its first refresh
        outcomes = schedule(plan)
        # The plan's 100k+ objects live to the end: out of the collector's sight, its full passes
        # stay short instead of stalling the driver for a second late in the run.
        gc.collect()
        gc.freeze()
        try:
            started, killed = asyncio.run(drive(server, plan, outcomes, home / "state.db"))
        finally:
            gc.unfreeze()
    finally:
        server.stop()
    load = os.getloadavg()
    from firebreak.containment.state import RoutingStore
    from firebreak.prediction_log import PredictionLog

    log = PredictionLog(home / "predictions").read("pricing")
    logged = Counter(log["request_id"].tolist())
    handled = log["latency_ms"].groupby(log["request_id"].str.split("/").str[0]).max()  # a batch's rows: its request
    for outcome in outcomes:
        outcome.handled = float(handled.get(outcome.request_id, 0.0)) / 1000
    events = RoutingStore(f"sqlite:///{home / 'state.db'}").breaker_events("pricing")
    report = Report(plan, outcomes, logged, events, load, started=started, killed=killed)
    return dataclasses.replace(report, replaced=champion_out_of_bounds(env, report.off_champion()))
