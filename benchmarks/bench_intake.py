"""Alert intake: alert received -> DAG run created, against Airflow's own REST trigger.

Starts the local stack (`airflow standalone` on SQLite, loopback, the DAG paused so runs
stay queued and the machine measures intake, not the SOP), then in one run:
- anchor: 100 runs created through Airflow's REST API (`POST /api/v2/dags/.../dagRuns`);
- intake: 100 distinct generic alerts posted to `/firebreak/alerts/generic` — the answer
  comes after the delivery is stored and the run is created, so its latency is
  "alert received -> run created";
- dedup: one alert posted 5 times in sequence and 5 times concurrently -> number of runs.

Run: `.venv/bin/python benchmarks/bench_intake.py [--alerts 100]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from firebreak.incidents.identity import incident_id_for
from firebreak.settings import Settings
from firebreak_dev.local import LocalStack
from firebreak_dev.services import free_port


def post(url: str, body: dict[str, Any], token: str) -> tuple[int, float]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.status, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["FIREBREAK_HOME"] = str(Path(tmp) / "firebreak")
        stack = LocalStack(Settings.from_env(), airflow_port=free_port(), mlflow_port=None, unpause=False)
        stack.start(timeout=180)
        try:
            jwt = stack.api_token()
            anchor = [
                post(
                    f"{stack.airflow_url}/api/v2/dags/incident_response/dagRuns",
                    {"dag_run_id": f"anchor-{i}", "logical_date": None, "conf": {"model": "pricing"}},
                    jwt,
                )[1]
                for i in range(args.alerts)
            ]
            intake = []
            for i in range(args.alerts):
                body = {
                    "model": "pricing",
                    "signal": "low_confidence_rate",
                    "value": 0.4,
                    "threshold": 0.2,
                    "dedup_key": f"bench-{i}",
                }
                code, seconds = post(f"{stack.intake_url}/generic", body, stack.alert_token)
                assert code == 200
                intake.append(seconds)
            dup = {
                "model": "pricing",
                "signal": "low_confidence_rate",
                "value": 0.4,
                "threshold": 0.2,
                "dedup_key": "dup",
            }
            codes = [post(f"{stack.intake_url}/generic", dup, stack.alert_token)[0] for _ in range(5)]
            with ThreadPoolExecutor(5) as pool:
                codes += [
                    c
                    for c, _ in pool.map(
                        lambda _: post(f"{stack.intake_url}/generic", dup, stack.alert_token), range(5)
                    )
                ]
            total = int(stack.api_get("/api/v2/dags/incident_response/dagRuns?limit=1", jwt)["total_entries"])  # type: ignore[call-overload]
            dup_id = incident_id_for("pricing", "generic:dup")
            dup_run = stack.api_get(f"/api/v2/dags/incident_response/dagRuns/{dup_id}", jwt)
            # Every run is accounted for: the anchors, one per distinct alert, and one for the duplicates.
            dup_runs = total - 2 * args.alerts
            assert dup_run["dag_run_id"] == dup_id
        finally:
            stack.stop()
    a50, i50 = statistics.median(anchor), statistics.median(intake)
    print("| measurement | p50 | p99 | p50 × anchor |")
    print("|---|---|---|---|")
    print(
        f"| anchor: Airflow REST trigger, {args.alerts} runs | {a50 * 1000:.1f} ms | {percentile(anchor, 0.99) * 1000:.1f} ms | 1.00 |"
    )
    print(
        f"| intake: generic alert -> run created, {args.alerts} alerts | {i50 * 1000:.1f} ms | "
        f"{percentile(intake, 0.99) * 1000:.1f} ms | {i50 / a50:.2f} |"
    )
    print(f"\n5 replays + 5 concurrent duplicates: answers {sorted(codes)}, incident_response runs: {dup_runs}")


if __name__ == "__main__":
    main()
