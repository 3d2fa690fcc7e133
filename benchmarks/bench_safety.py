"""What the safety rails cost: bounded JSON at the intake, a 1,000-alert delivery, a verified model load.

In one run, medians of repeats, each against an anchor measured alongside it:
- JSON limits: ``firebreak.bounded_json.loads`` (scan + parse) vs ``json.loads`` on the same
  1 MB Alertmanager body (the anchor);
- a delivery of 1,000 alerts for one model through ``alerts.intake.receive`` (SQLite state DB,
  a recording starter in place of Airflow's trigger_dag, which the intake benchmark measures)
  vs a delivery of 1 alert (the anchor);
- a model load through ``Registry.load`` (download once, digest, check, load that copy) vs
  ``mlflow.pyfunc.load_model`` of the same version (the anchor): a scikit-learn model (skops)
  and one of Firebreak's own (logged from code, its state as data).

Run: `.venv/bin/python benchmarks/bench_safety.py [--repeats 5]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def am_alert(i: int) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "PricingLowConfidence", "model": "pricing", "instance": f"gw-{i}"},
        "annotations": {"summary": "confidence under 0.70 on 35% of requests"},
        "startsAt": "2026-11-27T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"fp-{i:06d}",
    }


def delivery(n: int, offset: int = 0) -> bytes:
    body = {"version": "4", "groupKey": "g", "status": "firing", "receiver": "firebreak"}
    return json.dumps({**body, "alerts": [am_alert(offset + i) for i in range(n)]}).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="firebreak-bench-safety-"))
    os.environ["FIREBREAK_HOME"] = str(home)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"

    from firebreak.alerts.intake import receive
    from firebreak.bounded_json import JsonLimits, loads
    from firebreak.settings import Settings

    settings = Settings.from_env()
    rows = []

    big = delivery(3300)  # ~1 MB
    anchor = median_seconds(lambda: json.loads(big), args.repeats)
    bounded = median_seconds(lambda: loads(big, JsonLimits(max_bytes=2_000_000)), args.repeats)
    rows.append((f"parse a {len(big) / 1e6:.2f} MB delivery", "json.loads", anchor, bounded))

    counter = iter(range(10**9))

    def receive_once(n: int) -> None:
        result = receive(
            "alertmanager",
            delivery(n, offset=next(counter) * 10_000),
            state_db_url=settings.state_db_url,
            starter=lambda run_id, conf: True,
            policies_dir=settings.policies_dir,
        )
        assert result.status_code == 200, result.body()

    receive_once(1)  # tables created outside the timing
    one = median_seconds(lambda: receive_once(1), args.repeats)
    storm = median_seconds(lambda: receive_once(1000), args.repeats)
    rows.append(("receive 1,000 alerts for one model", "receive 1 alert", one, storm))

    import pandas as pd
    from sklearn.linear_model import Ridge

    from firebreak.registry.mlflow_registry import Registry

    registry = Registry(settings)
    frame = pd.DataFrame({"x": [float(i) for i in range(100)]})
    tiny = Ridge().fit(frame, list(range(100)))
    version = registry.register(
        "bench", tiny, input_example=frame.head(2), reference=frame, tags={}, run_name="bench-v1"
    )
    import mlflow

    plain = median_seconds(lambda: mlflow.pyfunc.load_model(version.uri), args.repeats)
    verified = median_seconds(lambda: registry.load(version), args.repeats)
    rows.append(("load a scikit-learn version (skops)", "mlflow.pyfunc.load_model", plain, verified))

    from firebreak.scenarios import pricing

    history = pricing.generate_history(seed=3, years=1, rows_per_day=6)
    own = registry.register(
        "bench-pricing",
        pricing.train_holiday_v1(history),
        input_example=history[pricing.INPUTS].head(5),
        reference=history[pricing.INPUTS].head(100),
        tags={},
        run_name="bench-pricing-v1",
    )
    plain = median_seconds(lambda: mlflow.pyfunc.load_model(own.uri), args.repeats)
    verified = median_seconds(lambda: registry.load(own), args.repeats)
    rows.append(("load an own model version (from code, no pickle)", "mlflow.pyfunc.load_model", plain, verified))

    load1, load5, load15 = os.getloadavg()
    print(f"load average {load1:.1f} / {load5:.1f} / {load15:.1f}; medians of {args.repeats}")
    print("| measured | anchor | anchor (s) | measured (s) | ratio |")
    print("|---|---|---|---|---|")
    for what, anchor_name, a, m in rows:
        print(f"| {what} | {anchor_name} | {a:.4f} | {m:.4f} | {m / a:.1f}x |")


if __name__ == "__main__":
    main()
