"""The on-call loop: page-to-receiver latency, and the incident clock of each demo scenario.

``--delivery`` (default): receivers on loopback (a PagerDuty-shaped Events API checking the
published schema, a Slack-shaped webhook, aiosmtpd), connections from ``AIRFLOW_CONN_*``;
for each of ``--repeat`` incidents, an ``opened`` announcement is enqueued and delivered
through Airflow's notifiers (``firebreak.oncall.notifiers.deliver_now``). Measured: enqueue ->
accepted by the receiver, per target type. Anchor, in the same run: one bare
``requests.post`` of the same Events API body to the same receiver.

``--scenarios``: ``firebreak demo --scenario X`` for each of the six scenarios (the real DAG
through ``airflow dags test``), each in a fresh FIREBREAK_HOME; prints each incident's clock
from the state DB. Nobody acknowledges a demo incident (no person is in the loop), and the
demo runs without Deadline Alerts (no scheduler): those figures come from the real-scheduler
test (tests/integration/oncall/test_oncall_stack.py).

Run: ``.venv/bin/python benchmarks/bench_oncall.py [--delivery --repeat 30] [--scenarios]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/oncall_receivers.py: the same receivers the tests use

SCENARIOS = ["pricing", "skew", "fairness", "support-bot", "feedback", "bad-release"]


def delivery(repeat: int) -> None:
    import requests
    from tests.oncall_receivers import ROUTING_KEYS, receivers

    from firebreak.incidents.store import IncidentStore
    from firebreak.oncall.announce import announce
    from firebreak.oncall.messages import Event, Facts, pagerduty_alert
    from firebreak.oncall.notifiers import deliver_now
    from firebreak.oncall.outbox import Outbox
    from firebreak.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, receivers() as found:
        os.environ["FIREBREAK_HOME"] = str(Path(tmp) / "firebreak")
        os.environ.update(found.connections())
        settings = Settings.from_env()
        store = IncidentStore(settings.state_db_url)
        body = {
            **pagerduty_alert("trigger", Facts("anchor", "pricing", "SEV1", "drift", "open", "", "o", "h")),
            "routing_key": ROUTING_KEYS["pagerduty_pricing"],
        }
        requests.post(f"{found.pagerduty.url}/v2/enqueue", json=body, timeout=10)  # warm up both paths
        by_type: dict[str, list[float]] = {"pagerduty": [], "slack": [], "email": []}
        anchor, whole = [], []
        for i in range(repeat + 1):
            started = time.perf_counter()
            requests.post(f"{found.pagerduty.url}/v2/enqueue", json=body, timeout=10)
            anchor.append(time.perf_counter() - started)
            incident = f"pricing-bench-{i}"
            store.create_incident(
                incident_id=incident,
                model="pricing",
                description="bench",
                dedup_key=incident,
                dag_run_id=None,
                dry_run=False,
                request={},
            )
            store.update_incident(incident, severity="SEV1", failure_class="drift")
            started = time.perf_counter()
            announce(incident, Event.OPENED, "SEV1 drift", settings=settings)
            deliver_now(incident, settings)
            whole.append(time.perf_counter() - started)
            if i == 0:  # the first pays the providers' imports
                anchor.clear()
                whole.clear()
                continue
            for note in Outbox(settings.state_db_url).for_incident(incident):
                assert note.latency is not None, note
                by_type[note.target_type].append(note.latency)
        assert found.pagerduty.rejected == [] and found.slack.rejected == []
        base = statistics.median(anchor)
        print(f"load average: {os.getloadavg()}")
        print("| measurement | median | × anchor |\n|---|---|---|")
        print(
            f"| anchor: bare HTTP POST of the Events API body to the loopback receiver | {base * 1000:.1f} ms | 1.0 |"
        )
        for kind in ("pagerduty", "slack", "email"):
            m = statistics.median(by_type[kind])
            print(f"| {kind}: enqueued -> accepted by the receiver | {m * 1000:.1f} ms | {m / base:.1f} |")
        m = statistics.median(whole)
        print(f"| announce + deliver an opened incident (3 targets) | {m * 1000:.1f} ms | {m / base:.1f} |")


def scenarios(names: list[str]) -> None:
    from firebreak.incidents.clock import DURATIONS, Clock
    from firebreak.incidents.store import IncidentStore
    from firebreak.settings import Settings

    print(f"load average at start: {os.getloadavg()}")
    print("| scenario | status | marks reached | " + " | ".join(DURATIONS) + " | order | demo wall |")
    print("|---|---|---|" + "---|" * len(DURATIONS) + "---|---|")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "FIREBREAK_HOME": str(Path(tmp) / "firebreak")}
            env.pop("MLFLOW_TRACKING_URI", None)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "firebreak.cli", "demo", "--scenario", name],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            os.environ["FIREBREAK_HOME"] = env["FIREBREAK_HOME"]
            store = IncidentStore(Settings.from_env().state_db_url)
            incidents = store.list_incidents()
            if not incidents:
                print(f"| {name} | demo failed (exit {done.returncode}) | | | | | | | {wall:.0f} s |")
                print(done.stdout[-1500:], done.stderr[-1500:], file=sys.stderr)
                continue
            incident = incidents[-1]
            clock = Clock(store.clock(incident.id))
            spans = clock.durations()
            cells = " | ".join("—" if spans[k] is None else f"{spans[k]:.1f} s" for k in DURATIONS)
            marks = ", ".join(str(m) for m in clock.marks)
            order = "monotonic" if not clock.problems() else "; ".join(clock.problems())
            print(f"| {name} | {incident.status} | {marks} | {cells} | {order} | {wall:.0f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delivery", action="store_true")
    parser.add_argument("--scenarios", action="store_true")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", nargs="*", default=SCENARIOS)
    args = parser.parse_args()
    if args.delivery or not args.scenarios:
        delivery(args.repeat)
    if args.scenarios:
        scenarios(args.only)


if __name__ == "__main__":
    main()
