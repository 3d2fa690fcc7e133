"""Drift verdicts on full data: Evidently's DataDriftPreset vs ``compute_drift``, against a numpy floor.

Measured in one run, on the same generated data (1M rows x 20 numeric
columns, 10 of them shifted by various amounts, 4 shapes of distribution):

- (a) Evidently 0.7.23's DataDriftPreset through ``run_drift_report`` on the
  full data, once (~75 s; ``--skip-evidently`` for quick runs);
- (b) the anchor: a numpy quantile-PSI (reference deciles by ``np.quantile``,
  ``np.searchsorted`` + ``np.bincount`` counts, PSI) — about the least work
  any per-column drift statistic on full data can do;
- (c) ``firebreak.detection.stats.compute_drift`` on the full data.

(b) and (c) run ``--repeat`` times (median reported). Then 10M rows x 20
columns go through ``compute_drift`` (and the floor) in a subprocess that
reports wall time and peak RSS (``ru_maxrss``).

Run: ``.venv/bin/python benchmarks/bench_drift.py [--skip-evidently] [--repeat N]``;
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from firebreak.detection.drift import DriftResult, run_drift_report
from firebreak.detection.stats import WASSERSTEIN, compute_drift

T = TypeVar("T")
COLUMNS = 20
ROWS = 1_000_000
BIG_ROWS = 10_000_000
# Shifted columns: index -> (location shift, scale factor), applied before the
# column's shape transform. Magnitudes run from invisible to obvious.
SHIFTS = {
    0: (0.02, 1.0),
    2: (0.05, 1.0),
    4: (0.08, 1.0),
    6: (0.15, 1.0),
    8: (0.3, 1.0),
    10: (0.6, 1.0),
    12: (1.0, 1.0),
    14: (0.0, 1.2),
    16: (0.0, 1.5),
    18: (0.2, 1.3),
}


def make_frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames with one float64 block each (no copy into pandas).

    Column shapes cycle through normal, lognormal, rounded normal (~20 integer
    values) and half-normal.
    """
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(COLUMNS)]
    frames = []
    for drifted in (False, True):
        data = rng.standard_normal((COLUMNS, rows))
        for i in range(COLUMNS):
            column = data[i]
            if drifted and i in SHIFTS:
                shift, scale = SHIFTS[i]
                column *= scale
                column += shift
            if i % 4 == 1:
                np.exp(column, out=column)
            elif i % 4 == 2:
                np.round(column * 3, out=column)
            elif i % 4 == 3:
                np.abs(column, out=column)
        frames.append(pd.DataFrame(data.T, columns=names, copy=False))
    return frames[0], frames[1]


def psi_floor(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """Quantile PSI per column: reference deciles, counts by searchsorted, PSI with shares clipped at 1e-4."""
    scores = {}
    for name in reference.columns:
        ref = reference[name].to_numpy()
        cur = current[name].to_numpy()
        edges = np.quantile(ref, np.linspace(0.1, 0.9, 9))
        ref_share = np.clip(np.bincount(np.searchsorted(edges, ref), minlength=10) / len(ref), 1e-4, None)
        cur_share = np.clip(np.bincount(np.searchsorted(edges, cur), minlength=10) / len(cur), 1e-4, None)
        scores[name] = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    return scores


def timed(func: Callable[[], T], repeat: int) -> tuple[list[float], T]:
    """Call ``func`` ``repeat`` (>= 1) times; return each wall time and the last result."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def big_child(rows: int) -> None:
    """Subprocess body: generate, time compute_drift (then the floor), print JSON."""
    warm = make_frames(5000, seed=9)
    compute_drift(*warm, columns=list(warm[0].columns))
    start = time.perf_counter()
    reference, current = make_frames(rows, seed=1)
    generate_s = time.perf_counter() - start
    data_rss = current_rss_mb()
    data_peak = peak_rss_mb()
    start = time.perf_counter()
    result = compute_drift(reference, current, columns=list(reference.columns))
    compute_s = time.perf_counter() - start
    compute_peak = peak_rss_mb()
    start = time.perf_counter()
    psi_floor(reference, current)
    floor_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "generate_s": generate_s,
                "compute_s": compute_s,
                "floor_s": floor_s,
                "data_rss_mb": data_rss,
                "peak_after_data_mb": data_peak,
                "peak_after_compute_mb": compute_peak,
                "peak_total_mb": peak_rss_mb(),
                "drifted": result.drifted_columns,
            }
        )
    )


def compare(ours: DriftResult, theirs: DriftResult) -> tuple[int, float]:
    """Count equal per-column verdicts and the largest Wasserstein score gap."""
    by_name = {c.column: c for c in theirs.columns}
    agree = sum(c.drifted == by_name[c.column].drifted and c.method == by_name[c.column].method for c in ours.columns)
    gaps = [abs(c.score - by_name[c.column].score) for c in ours.columns if c.method == WASSERSTEIN]
    return agree, max(gaps, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-evidently", action="store_true", help="skip (a), the ~75 s Evidently run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (b) and (c); the median is reported")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--big-rows", type=int, default=BIG_ROWS, help="rows of the subprocess run (0 skips it)")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.child:
        big_child(args.child)
        return

    columns = [f"f{i:02d}" for i in range(COLUMNS)]
    warm = make_frames(5000, seed=9)
    psi_floor(*warm)
    compute_drift(*warm, columns=columns)

    reference, current = make_frames(args.rows)
    label = f"{args.rows / 1e6:g}M x {COLUMNS}"

    evidently_s = None
    evidently_result = None
    if not args.skip_evidently:
        print(f"running Evidently on {label} (slow) ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            evidently_result = run_drift_report(
                reference,
                current,
                columns=columns,
                html_path=Path(folder) / "drift.html",
                json_path=Path(folder) / "drift.json",
            )
            evidently_s = time.perf_counter() - start

    print(f"running the floor and compute_drift {args.repeat}x on {label} ...", file=sys.stderr, flush=True)
    floor_runs, _ = timed(lambda: psi_floor(reference, current), args.repeat)
    compute_runs, ours = timed(lambda: compute_drift(reference, current, columns=columns), args.repeat)
    floor_s = statistics.median(floor_runs)
    compute_s = statistics.median(compute_runs)

    big = None
    if args.big_rows:
        print(f"running compute_drift on {args.big_rows / 1e6:g}M x {COLUMNS} in a subprocess ...", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(args.big_rows)], capture_output=True, text=True, check=True
        )
        big = json.loads(done.stdout.strip().splitlines()[-1])

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    print()
    print("| measurement | data | wall time | × floor | runs (s) |")
    print("|---|---|---|---|---|")
    if evidently_s is not None:
        print(
            f"| (a) Evidently DataDriftPreset (`run_drift_report`) | {label} | {evidently_s:.1f} s | "
            f"{evidently_s / floor_s:.1f} | 1 run |"
        )
    print(f"| (b) numpy quantile-PSI floor | {label} | {floor_s:.2f} s | 1.00 | {runs(floor_runs)} |")
    print(f"| (c) `compute_drift` | {label} | {compute_s:.2f} s | {compute_s / floor_s:.2f} | {runs(compute_runs)} |")
    if big is not None:
        big_label = f"{args.big_rows / 1e6:g}M x {COLUMNS}"
        print(f"| numpy quantile-PSI floor (subprocess) | {big_label} | {big['floor_s']:.2f} s | 1.00 | 1 run |")
        print(
            f"| `compute_drift` (subprocess) | {big_label} | {big['compute_s']:.2f} s | "
            f"{big['compute_s'] / big['floor_s']:.2f} | 1 run |"
        )
    print()
    if evidently_s is not None and evidently_result is not None:
        agree, gap = compare(ours, evidently_result)
        print(f"- Evidently / compute_drift: **{evidently_s / compute_s:.0f}x**")
        print(
            f"- verdicts equal to Evidently's: {agree}/{COLUMNS} columns; largest Wasserstein score gap {gap:.2e}; "
            f"dataset drift {ours.dataset_drift} vs {evidently_result.dataset_drift}, "
            f"share {ours.drift_share:.2f} vs {evidently_result.drift_share:.2f}"
        )
    print(f"- compute_drift / floor: **{compute_s / floor_s:.2f}x**")
    print(f"- drifted ({label}): {', '.join(ours.drifted_columns)}")
    if big is not None:
        print(
            f"- {args.big_rows / 1e6:g}M x {COLUMNS} subprocess: generating both frames {big['generate_s']:.1f} s; "
            f"RSS holding the data {big['data_rss_mb']:,.0f} MB; peak RSS after compute_drift "
            f"{big['peak_after_compute_mb']:,.0f} MB (peak after generating {big['peak_after_data_mb']:,.0f} MB); "
            f"peak RSS over the whole child incl. the floor {big['peak_total_mb']:,.0f} MB"
        )
    print("- machine: 2 cores, shared and noisy; single runs of (a) vary by several seconds")


if __name__ == "__main__":
    main()
