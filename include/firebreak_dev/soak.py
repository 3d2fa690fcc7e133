"""Soak the serving gateway: constant-rate traffic through a real failure, faults and an adversary.

The pricing model behind ``firebreak serve --workers 2`` takes open-loop traffic (every
request sent at its scheduled time, whatever the answers before it did) from several
legitimate callers, each on its own loopback address, while:

* the season ends and starts again: legitimate traffic turns off-season (v1 prices under
  cost, at low confidence: a real failure the breaker must trip on) and back;
* one adversarial caller sends in-contract rows the model gets wrong, one row or 20 at a
  time, all along: it must never contain the model for everyone;
* workers are killed with ``kill -9`` (uvicorn starts new ones): every request answered
  200 must still reach the prediction log; a request cut off is retried by the client
  with the same request id;
* another process holds the state DB's write lock: serving must not notice, and the
  breaker's transition must reach ``breaker_events`` once the lock is gone;
* a share of requests break the contract: each must be refused.

Every answer is checked: answered within 1 s of its scheduled time, never a price under
cost, never a contract-breaking request served. ``benchmarks/soak_gateway.py`` runs the
10-minute plan; ``--short`` runs :meth:`Plan.short` (not yet an integration test: it did not pass
under load when merged into wave3).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

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
    attempts: int = 0
    prices: list[float] = field(default_factory=list)


@dataclass
class Report:
    plan: Plan
    outcomes: list[Outcome]
    logged_ids: Counter[str]
    events: list[dict[str, Any]]
    load: tuple[float, float, float]

    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def counts(self) -> dict[str, int]:
        answered = self.answered()
        expected = [rid for o in answered for rid in _row_ids(o)]
        lost = [rid for rid in expected if rid not in self.logged_ids]
        under_cost = sum(
            1 for o in answered for row, price in zip(o.rows, o.prices, strict=False) if price < row["unit_cost"]
        )
        return {
            "sent": len(self.outcomes),
            "answered 200": len(answered),
            "refused 4xx": sum(1 for o in self.outcomes if 400 <= o.status < 500),
            "unanswered": sum(1 for o in self.outcomes if o.status == 0 or o.status >= 500),
            "over budget": sum(1 for o in self.outcomes if o.latency > self.plan.budget),
            "retried after a kill": sum(1 for o in self.outcomes if o.attempts > 1),
            "rows answered": len(expected),
            "rows logged": sum(1 for rid in expected if rid in self.logged_ids),
            "rows lost": len(lost),
            "rows logged twice (a retry of a journaled answer)": sum(1 for rid in expected if self.logged_ids[rid] > 1),
            "contract-breaking served": sum(1 for o in answered if o.who == "invalid"),
            "prices under cost served": under_cost,
            "healthy model contained (legit answers off the champion)": sum(
                1 for o in answered if o.who == "legit" and self.plan.healthy(o.at) and o.route != "champion"
            ),
        }

    def problems(self) -> list[str]:
        """What the soak must never see; empty when it passed."""
        c = self.counts()
        found = [
            f"{key}: {c[key]}"
            for key in (
                "unanswered",
                "over budget",
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
        if not any(e["target"] == "open" for e in self.events):
            found.append("the trip never reached breaker_events")
        return found

    def trip_seconds(self) -> float | None:
        """From the failure's onset to the first legitimate answer from the fallback."""
        start, end = self.plan.failure
        served = [o.at for o in self.answered() if o.who == "legit" and start <= o.at < end and o.route != "champion"]
        return min(served) - start if served else None

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
        lines += ["", f"Failure onset → first fallback answer: {trip:.2f} s." if trip is not None else "No trip."]
        lines += ["", "| phase | requests | p99 ms | max ms |", "|---|---|---|---|"]
        lines += [f"| {n} | {k} | {p99:.1f} | {mx:.1f} |" for n, k, p99, mx in self.phases()]
        lines += ["", "Breaker events:", ""]
        for e in self.events:
            data = e.get("data") or {}
            flags = ", ".join(k for k in ("late", "shared", "orphaned") if k in data)
            lines.append(f"- {e['source']} → {e['target']} ({e['reason']}){' [' + flags + ']' if flags else ''}")
        lines += ["", f"Load average at the end: {self.load[0]:.2f} {self.load[1]:.2f} {self.load[2]:.2f}."]
        return "\n".join(lines)


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
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from firebreak.scenarios import pricing
        from firebreak.settings import Settings

        pricing.setup(Settings.from_env())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return env


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

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it: workers finish, then the drainer's last pass."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def hold_lock(state_db: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process takes the state DB's write lock (``BEGIN EXCLUSIVE``) for ``seconds``."""
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.execute('ROLLBACK')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(state_db), str(seconds)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()  # the lock is held from here
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


async def _send(client: httpx.AsyncClient, outcome: Outcome, start: float) -> None:
    body = json.dumps({"dataframe_records": outcome.rows}).encode()
    headers = {"Content-Type": "application/json", "X-Request-Id": outcome.request_id}
    while outcome.attempts < 4:
        outcome.attempts += 1
        try:
            answer = await client.post("/invocations", content=body, headers=headers, timeout=5.0)
        except httpx.TransportError:  # the worker died under the connection: retry, same request id
            continue
        outcome.status = answer.status_code
        outcome.route = answer.headers.get("X-Firebreak-Route", "")
        if answer.status_code == 200:
            outcome.prices = [p["recommended_price"] for p in answer.json()["predictions"]]
        break
    outcome.latency = time.perf_counter() - start - outcome.at


async def drive(server: Server, plan: Plan, outcomes: list[Outcome], state_db: Path) -> None:
    """Send every request at its time; kill workers and lock the DB on cue."""
    clients = [
        httpx.AsyncClient(
            base_url=server.url,
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + i}"),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        for i in range(plan.callers)
    ]
    adversary = httpx.AsyncClient(base_url=server.url, transport=httpx.AsyncHTTPTransport(local_address=ADVERSARY))
    faults: list[tuple[float, str]] = sorted([(k, "kill") for k in plan.kills] + [(plan.lock[0], "lock")])
    tasks = []
    locker: subprocess.Popen[bytes] | None = None
    start = time.perf_counter()
    try:
        for n, outcome in enumerate(outcomes):
            while faults and faults[0][0] <= outcome.at:
                _, what = faults.pop(0)
                if what == "kill":
                    workers = server.workers()
                    if workers:
                        os.kill(workers[0], signal.SIGKILL)
                else:
                    locker = await asyncio.to_thread(hold_lock, state_db, plan.lock[1] - plan.lock[0])
            delay = start + outcome.at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client = adversary if outcome.who == "adversary" else clients[n % plan.callers]
            tasks.append(asyncio.create_task(_send(client, outcome, start)))
        await asyncio.gather(*tasks)
    finally:
        for c in [*clients, adversary]:
            await c.aclose()
        if locker is not None:
            locker.wait(timeout=120)


def run(plan: Plan, home: Path) -> Report:
    """Set up the world, serve, drive the plan, stop, and read back what was logged."""
    env = setup_world(home, open_seconds=plan.open_seconds)
    server = Server(env, plan.workers)
    try:
        server.wait_ready()
        time.sleep(3)  # every worker past its first refresh
        outcomes = schedule(plan)
        asyncio.run(drive(server, plan, outcomes, home / "state.db"))
    finally:
        server.stop()
    load = os.getloadavg()
    from firebreak.containment.state import RoutingStore
    from firebreak.prediction_log import PredictionLog

    log = PredictionLog(home / "predictions").read("pricing")
    logged = Counter(log["request_id"].tolist())
    events = RoutingStore(f"sqlite:///{home / 'state.db'}").breaker_events("pricing")
    return Report(plan, outcomes, logged, events, load)
