"""Triage time per case: 30,000 rows x 10 columns, derived contract, in process and from the shell.

In process: ``triage_tables`` (everything ``firebreak triage`` does after reading the files)
against the anchor ``compute_drift`` alone on the same tables, medians of ``--repeat`` runs
after one warm-up. From the shell: ``firebreak triage`` wall time on the same tables written
as Parquet, with labels and scores (33,000 rows), start-up included, against the anchor
``python -c "import pandas"`` in the same run. Prints Markdown with the load average.

Run: `.venv/bin/python benchmarks/bench_triage_speed.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def table(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(4 + shift, 0.8, n).round(2),
            "balance": rng.normal(1000, 300, n).round(2),
            "age": rng.integers(18, 90, n).astype("int64"),
            "visits": rng.poisson(4, n).astype("int64"),
            "tenure": rng.gamma(2, 12, n).round(1),
            "score_a": rng.uniform(0, 1, n).round(4),
            "rate": rng.normal(0.05, 0.01, n).round(4),
            "channel": rng.choice(["web", "app", "store", "phone"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
            "region": rng.choice(["n", "s", "e", "w", "c"], n),
        }
    )
    logit = (frame["balance"] - 1000) / 300 + (frame["age"] - 50) / 20
    frame["score"] = (1 / (1 + np.exp(-logit))).round(4)
    frame["label"] = (rng.random(n) < frame["score"]).astype("int64")
    return frame


def median_ms(run, repeat: int) -> float:  # type: ignore[no-untyped-def]
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from firebreak.detection.stats import compute_drift
    from firebreak.investigation.diagnosis import triage_tables

    reference, current = table(1, 30_000), table(2, 30_000, shift=0.2)
    inputs = [c for c in reference.columns if c not in ("score", "label")]
    cat = ["channel", "plan", "region"]

    def anchor() -> None:
        compute_drift(
            reference[inputs].assign(**{c: reference[c].astype("string") for c in cat}),
            current[inputs].assign(**{c: current[c].astype("string") for c in cat}),
            columns=inputs,
            categorical=cat,
        )

    plain = median_ms(lambda: triage_tables(reference[inputs], current[inputs]), args.repeat)
    drift = median_ms(anchor, args.repeat)
    full = median_ms(lambda: triage_tables(reference, current, label="label", prediction="score"), args.repeat)
    print(f"## Triage speed (load average {os.getloadavg()[0]:.1f})\n")
    print("| measurement | median | x anchor |\n|---|---|---|")
    print(f"| anchor: compute_drift alone, 30,000 x 10 | {drift:.1f} ms | 1.00 |")
    print(f"| triage_tables, 30,000 x 10, derived contract | {plain:.1f} ms | {plain / drift:.2f} |")
    print(
        f"| triage_tables, + labels and scores (concept, CBPE, error segments) | {full:.1f} ms | {full / drift:.2f} |"
    )

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp) / "ref.parquet", Path(tmp) / "cur.parquet"
        table(1, 33_000).to_parquet(ref_path)
        table(2, 33_000, shift=0.2).to_parquet(cur_path)
        command = [
            sys.executable, "-m", "firebreak.cli", "triage", "--reference", str(ref_path), "--current", str(cur_path),
            "--label-column", "label", "--prediction-column", "score", "--json",
        ]  # fmt: skip

        # As a user's shell runs it: bytecode cached after the first run (a sandbox or CI may set
        # PYTHONDONTWRITEBYTECODE, which recompiles every Firebreak module on every start).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

        def shell(cmd: list[str]) -> float:
            subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm-up: writes the bytecode
            times = []
            for _ in range(max(3, args.repeat // 2)):
                started = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, env=env)
                times.append(time.perf_counter() - started)
            return statistics.median(times)

        base = shell([sys.executable, "-c", "import pandas"])
        wall = shell(command)
        print(f"| anchor: `python -c 'import pandas'` | {base:.2f} s | 1.00 |")
        print(f"| `firebreak triage` 33,000 rows with labels, wall | {wall:.2f} s | {wall / base:.2f} |")


if __name__ == "__main__":
    main()
