"""The nightly golden dataset audit of one model on 1M rows of logged traffic, end to end.

Sets up the pricing scenario, logs `--rows` (default 1,000,000) requests scored by the
champion over the last 24 h, then times `firebreak.audits.golden_dataset_audit` — golden
evaluation, the Great Expectations contract on every logged row, full-data drift verdicts,
Evidently's report on capped samples, evidence to MLflow. Anchor, in the same run: reading
the same day of the prediction log into memory (the I/O floor any audit pays).

Run: `.venv/bin/python benchmarks/bench_audit.py [--rows N]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FIREBREAK_HOME"] = str(Path(tmp) / "firebreak")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        import numpy as np
        import pandas as pd

        from firebreak.audits import golden_dataset_audit
        from firebreak.prediction_log import PredictionLog
        from firebreak.registry.mlflow_registry import Registry
        from firebreak.scenarios import pricing
        from firebreak.settings import Settings

        settings = Settings.from_env()
        now = datetime.now(UTC)
        pricing.setup(settings, now=now - timedelta(days=3))  # the scenario's own traffic is out of the window
        registry = Registry(settings)
        champion = registry.load(registry.get_version("pricing", "1"))
        requests = pricing.generate_requests(11, args.rows, holiday=False)
        started = time.perf_counter()
        outputs = pd.DataFrame(champion.predict(requests[pricing.INPUTS]))
        rows = requests[pricing.INPUTS].copy()
        rows.insert(0, "request_id", [f"bench-{i:07d}" for i in range(args.rows)])
        rows.insert(
            1,
            "ts",
            now - pd.to_timedelta(np.sort(np.random.default_rng(1).uniform(60, 23 * 3600, args.rows)), unit="s"),
        )
        rows.insert(2, "model", "pricing")
        rows.insert(3, "model_version", "1")
        rows.insert(4, "route", "champion")
        rows["recommended_price"] = outputs["recommended_price"].to_numpy()
        rows["confidence"] = outputs["confidence"].to_numpy()
        rows["upstream_source"] = pricing.UPSTREAM_SOURCE
        rows["feature_pipeline_version"] = pricing.PIPELINE_VERSION
        PredictionLog(settings.prediction_log_dir).append(rows)
        print(f"logged {args.rows} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        del rows, requests, outputs

        anchors, audits = [], []
        for _ in range(3):
            started = time.perf_counter()
            day = PredictionLog(settings.prediction_log_dir).read_window("pricing", 24, now=now + timedelta(minutes=1))
            anchors.append(time.perf_counter() - started)
            assert len(day) == args.rows
            del day
        for _ in range(2):
            started = time.perf_counter()
            result = golden_dataset_audit("pricing", settings=settings, now=now + timedelta(minutes=1))
            audits.append(time.perf_counter() - started)
            print({f.check: f.breached for f in result.findings}, file=sys.stderr)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    anchor, audit = sorted(anchors)[1], sorted(audits)[0]
    print("| measurement | wall time | × anchor |")
    print("|---|---|---|")
    print(f"| anchor: read one day of the prediction log ({args.rows:,} rows) | {anchor:.1f} s | 1.00 |")
    print(
        f"| golden_dataset_audit end to end ({args.rows:,} rows) | {audit:.1f} s (runs: {', '.join(f'{a:.1f}' for a in audits)}) | {audit / anchor:.1f} |"
    )
    print(f"\npeak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
