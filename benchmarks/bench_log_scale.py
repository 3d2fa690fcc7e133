"""The prediction log at a busy model's scale: 100M rows from 4 gateway replicas, audited in bounded memory.

The pricing scenario's champion (v1, with its training reference) and a day of logged
traffic generated as four gateway replicas write it: each replica's own parts in every
hour partition (`part-<writer>-...`), six parts per replica-hour here (a gateway flushes
every second: 3,600 a replica-hour, which compaction merges the same way; six keeps the
generation within minutes). 70% of the day is off-season traffic (the scenario's drift).

Measured, each in its own child process (peak RSS of that process alone):

1. compaction of the day (every hour's 24 parts into one);
2. `golden_dataset_audit("pricing")` on the whole day, streamed (contract counts merged
   over batches, the streamed drift engine, Evidently's report on a sample);
3. the anchor, on the same rows where whole reading fits: the audit on a window of the
   day's first `--whole-rows` rows, read whole as before (`IN_MEMORY_ROWS` raised), and
   the same window streamed;
4. verdict agreement: the streamed verdicts of (2) against `compute_drift` on all 100M
   rows (one column in memory at a time), and over `--windows` generated windows of 1M
   rows x 8 columns with shifts around the thresholds.

Run: `.venv/bin/python benchmarks/bench_log_scale.py [--rows 100000000] [--keep]`;
needs ~5 GB of disk for 100M rows (checked first). Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPLICAS = 4
PARTS_PER_REPLICA_HOUR = 6
HOURS = 24
END = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # the audited day is [END - 24 h, END)


# Runs the code given as argv[1] in its own child and reports that child's peak RSS alone
# (RUSAGE_CHILDREN is a maximum over every finished child of a process: one wrapper per measurement).
_WRAP = """
import json, resource, subprocess, sys
out = subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True)
if out.returncode:
    sys.stderr.write(out.stderr[-4000:])
    raise SystemExit(out.returncode)
result = json.loads(out.stdout.strip().splitlines()[-1])
result["peak_gb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
print(json.dumps(result))
"""


def child(code: str, env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    """Run ``code`` in a fresh interpreter; its printed JSON, wall seconds and peak RSS in GB."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAP, code], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-4000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"raw ({wall:.0f} s): {json.dumps(result)}", flush=True)  # kept even if a later step fails
    return result, wall, float(result["peak_gb"])


def generate(settings: Any, rows: int, parts: int) -> dict[str, Any]:
    """Write the day as the replicas' parts, straight to their partitions (the writers' own file names).

    Rows are drawn from a pool of the scenario's requests (its generator is per-row Python:
    too slow for 100M rows, and drawing from 2M of them keeps every distribution).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from firebreak.scenarios import pricing

    pool_holiday = pricing.generate_requests(1, 600_000, holiday=True)[pricing.INPUTS]
    pool_lull = pricing.generate_requests(2, 1_400_000, holiday=False)[pricing.INPUTS]
    pool = pa.Table.from_pandas(pd.concat([pool_holiday, pool_lull], ignore_index=True), preserve_index=False)
    per_part = rows // (REPLICAS * HOURS * parts)
    root = settings.prediction_log_dir / "model=pricing"
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    for hour in range(HOURS):
        hour_start = pd.Timestamp(END - timedelta(hours=HOURS - hour))
        folder = root / f"date={hour_start:%Y-%m-%d}" / f"hour={hour_start:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(REPLICAS):
            for part in range(parts):
                table = pool.take(rng.integers(0, len(pool), per_part))
                span = 3600 / parts
                offsets = np.sort(rng.uniform(0, span, per_part)) + span * part
                ts = (hour_start + pd.to_timedelta(offsets, unit="s")).as_unit("us")
                ids = pc.binary_join_element_wise(
                    f"g{r}-{hour}-{part}", pc.cast(pa.array(np.arange(per_part)), pa.string()), "-"
                )
                columns = {
                    "request_id": ids,
                    "ts": pa.array(ts),
                    "model": pa.array(["pricing"] * per_part),
                    "model_version": pa.array(["1"] * per_part),
                    "route": pa.array(["champion"] * per_part),
                    **{name: table.column(name) for name in pricing.INPUTS},
                    "upstream_source": pa.array([pricing.UPSTREAM_SOURCE] * per_part),
                    "feature_pipeline_version": pa.array([pricing.PIPELINE_VERSION] * per_part),
                    "recommended_price": pc.multiply(table.column("unit_cost"), 1.2),
                    "confidence": pa.array(rng.uniform(0.5, 1.0, per_part)),
                    "latency_ms": pa.array(rng.gamma(2.0, 2.0, per_part)),
                }
                name = f"part-gateway-{r}-{hour_start:%Y%m%dT%H}{part:02d}00-{rng.integers(1 << 40):010x}.parquet"
                pq.write_table(pa.table(columns), folder / name)
    return {"rows": per_part * REPLICAS * HOURS * parts, "seconds": time.perf_counter() - started}


AUDIT = """
import json, sys, time
from datetime import datetime, timedelta, UTC
from firebreak.investigation import checks
checks.IN_MEMORY_ROWS = {in_memory}
from firebreak.audits import golden_dataset_audit
from firebreak.prediction_log import PredictionLog
from firebreak.settings import Settings
now = datetime.fromisoformat("{now}")
started = time.perf_counter()
result = golden_dataset_audit("pricing", now=now)
seconds = time.perf_counter() - started
drift = next(f for f in result.findings if f.check == "drift")
contract = next(f for f in result.findings if f.check == "contract")
print(json.dumps({{"seconds": seconds, "rows": drift.figures.get("current_rows"),
  "verdicts": {{c["column"]: c["drifted"] for c in drift.figures["columns"]}},
  "scores": {{c["column"]: c["score"] for c in drift.figures["columns"]}},
  "streamed": drift.figures.get("streamed"), "contract_passed": not contract.breached,
  "contract_rows": contract.figures.get("evaluated_rows"), "breaches": [f.check for f in result.breaches]}}))
"""

WHOLE_DRIFT = """
import json, time
import pyarrow.dataset as ds, pyarrow.compute as pc, pyarrow as pa
from datetime import datetime
from firebreak.detection.stats import compute_drift
from firebreak.prediction_log import PredictionLog
from firebreak.registry.mlflow_registry import Registry
from firebreak.incidents.enums import Alias
from firebreak.scenarios import pricing
from firebreak.settings import Settings
settings = Settings.from_env()
registry = Registry(settings)
reference = registry.reference_frame(registry.version_for("pricing", Alias.CHAMPION))
log = PredictionLog(settings.prediction_log_url)
files = log.files("pricing")
out = {{}}
started = time.perf_counter()
for column in pricing.INPUTS:
    # Text as dictionary (pandas categoricals): 100M Python strings would not fit.
    options = ds.ParquetReadOptions(dictionary_columns=[column] if column in pricing.CATEGORICAL else [])
    dataset = ds.dataset(files, format=ds.ParquetFileFormat(read_options=options))
    table = dataset.to_table(columns=[column])
    current = table.to_pandas()
    del table
    cat = [column] if column in pricing.CATEGORICAL else []
    result = compute_drift(reference[[column]], current, columns=[column], categorical=cat)
    out[column] = {{"drifted": result.columns[0].drifted, "score": result.columns[0].score}}
    del current
print(json.dumps({{"columns": out, "rows": dataset.count_rows(), "seconds": time.perf_counter() - started}}))
"""

COMPACT = """
import json, time
from datetime import datetime
from firebreak.prediction_log import PredictionLog
from firebreak.settings import Settings
log = PredictionLog(Settings.from_env().prediction_log_url)
started = time.perf_counter()
replaced = log.compact("pricing", now=datetime.fromisoformat("{now}"))
print(json.dumps({{"replaced": replaced, "seconds": time.perf_counter() - started, "files": len(log.files("pricing"))}}))
"""


def generated_agreement(windows: int, rows: int) -> tuple[int, int, float]:
    """Streamed vs in-memory verdicts on generated windows with shifts around the thresholds."""
    import numpy as np
    import pandas as pd

    from firebreak.detection.stats import compute_drift
    from firebreak.detection.streaming import stream_drift

    agree = total = 0
    seconds = []
    for w in range(windows):
        rng = np.random.default_rng(1000 + w)
        shift = rng.uniform(0, 0.25)  # the normed Wasserstein of a mean shift s is ~s: around 0.1

        def make(n: int, s: float, r: np.random.Generator) -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "normal": r.normal(s * 2, 2, n),
                    "lognormal": r.lognormal(s, 0.9, n),
                    "gamma": r.gamma(2 + 4 * s, 3, n),
                    "uniform": r.uniform(s, 1 + s, n),
                    "poisson": r.poisson(10 + 10 * s, n).astype(float),
                    "few": r.choice([1.0, 2.0, 3.0], n, p=[0.5 - s, 0.3, 0.2 + s]),
                    "text": r.choice(["a", "b", "c", "d"], n, p=[0.4 - s, 0.3, 0.2, 0.1 + s]),
                    "rare": r.choice(["x", "y", "z"], n, p=[0.98 - s / 5, 0.01, 0.01 + s / 5]),
                }
            )

        reference = make(20_000, 0.0, rng)
        current = make(rows, shift, rng)
        columns, cat = list(current.columns), ["text", "rare"]
        whole = compute_drift(reference, current, columns=columns, categorical=cat)
        started = time.perf_counter()

        def batches(current: pd.DataFrame = current) -> Any:
            for i in range(0, rows, 100_000):
                yield current.iloc[i : i + 100_000]

        streamed = stream_drift(reference, batches, columns=columns, categorical=cat)
        seconds.append(time.perf_counter() - started)
        truth = {c.column: c.drifted for c in whole.columns}
        for c in streamed.result.columns:
            total += 1
            agree += c.drifted == truth[c.column]
    return agree, total, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--whole-rows", type=int, default=5_000_000, help="rows of the whole-read anchor window")
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--parts", type=int, default=PARTS_PER_REPLICA_HOUR, help="parts per replica and hour")
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-log-scale-"))
    free = shutil.disk_usage(home).free / 1e9
    needed = args.rows / 1e8 * 6
    if free < needed + 5:
        raise SystemExit(f"{free:.0f} GB free under {home}; {needed:.0f} GB needed: not generating")
    include = str(Path(__file__).resolve().parents[1] / "include")
    env = {
        **os.environ,
        "FIREBREAK_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "PYTHONPATH": include,
        "MLFLOW_LOGGING_LEVEL": "ERROR",
    }
    os.environ.update({k: env[k] for k in ("FIREBREAK_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_LOGGING_LEVEL")})
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    pricing.setup(settings)
    shutil.rmtree(settings.prediction_log_dir / "model=pricing", ignore_errors=True)  # the scenario's own day
    load = [os.getloadavg()[0]]
    made = generate(settings, args.rows, args.parts)
    rows = made["rows"]
    disk = sum(f.stat().st_size for f in settings.prediction_log_dir.rglob("*.parquet")) / 1e9
    print(
        f"generated {rows:,} rows in {made['seconds']:.0f} s ({disk:.1f} GB of Parquet, {REPLICAS} writers)", flush=True
    )

    compact, _, compact_peak = child(COMPACT.format(now=END.isoformat()), env)
    load.append(os.getloadavg()[0])
    # The whole-read anchor window: the day's first rows, chosen by moving `now` back.
    whole_hours = args.whole_rows / rows * HOURS
    anchor_now = END - timedelta(hours=HOURS - whole_hours)
    streamed_small, streamed_small_wall, peak_a = child(AUDIT.format(in_memory=0, now=anchor_now.isoformat()), env)
    load.append(os.getloadavg()[0])
    whole_small, whole_small_wall, peak_b = child(AUDIT.format(in_memory=10**12, now=anchor_now.isoformat()), env)
    load.append(os.getloadavg()[0])
    day, day_wall, day_peak = child(AUDIT.format(in_memory=0, now=END.isoformat()), env)
    load.append(os.getloadavg()[0])
    truth, _, truth_peak = child(WHOLE_DRIFT.format(), env)
    agree_day = sum(day["verdicts"][c] == truth["columns"][c]["drifted"] for c in truth["columns"])
    agree, total, stream_median = generated_agreement(args.windows, 1_000_000)
    load.append(os.getloadavg()[0])

    print("\n### Compaction\n")
    print(
        f"{compact['replaced']} parts merged into {compact['files']} hour files in {compact['seconds']:.0f} s "
        f"(process peak RSS {compact_peak:.2f} GB)"
    )
    print("\n### golden_dataset_audit, whole read vs streamed\n")
    print("| window | path | rows | audit wall (s) | process wall (s) | peak RSS (GB) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| first {whole_hours:.1f} h | read whole (anchor) | {whole_small['rows']:,} | {whole_small['seconds']:.0f} "
        f"| {whole_small_wall:.0f} | {peak_b:.2f} |"
    )
    print(
        f"| first {whole_hours:.1f} h | streamed | {streamed_small['rows']:,} | {streamed_small['seconds']:.0f} "
        f"| {streamed_small_wall:.0f} | {peak_a:.2f} |"
    )
    print(f"| the day | streamed | {day['rows']:,} | {day['seconds']:.0f} | {day_wall:.0f} | {day_peak:.2f} |")
    print(
        f"\nstreamed / whole on the same {whole_small['rows']:,} rows: "
        f"{streamed_small['seconds'] / whole_small['seconds']:.2f}x wall; verdicts equal: "
        f"{streamed_small['verdicts'] == whole_small['verdicts']}"
    )
    print(
        f"the day: drift passes {day['streamed']}, contract rows {day['contract_rows']:,}, breaches {day['breaches']}"
    )
    print("\n### Verdict agreement\n")
    print(
        f"- the day ({truth['rows']:,} rows): {agree_day}/{len(truth['columns'])} columns agree with compute_drift on "
        f"all rows (one column in memory at a time: {truth['seconds']:.0f} s, peak {truth_peak:.2f} GB)"
    )
    for column, figures in truth["columns"].items():
        print(f"  - {column}: streamed {day['scores'][column]:.6g} / whole {figures['score']:.6g}")
    print(
        f"- generated windows: {agree}/{total} columns agree ({100 * agree / total:.2f}%), "
        f"{args.windows} windows of 1M rows x 8 columns; streamed engine median {stream_median:.2f} s per window"
    )
    print(f"\nload average (1 min) at each step: {', '.join(f'{x:.1f}' for x in load)}")
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"kept: {home}")


if __name__ == "__main__":
    main()
