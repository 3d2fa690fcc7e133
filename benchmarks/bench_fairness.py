"""Fairness figures and the reweighting remedy on logged decisions of the lending world.

Times, per row count: ``classification_fairness`` (fairlearn ``MetricFrame``: selection rate,
TPR, FPR and accuracy per age band, the selection-rate ratio, the equalized-odds difference)
and ``balancing_weights`` (the reweighting). Anchor, in the same run and on the same rows:
``score_outputs``, the error-rate figures every incident computes anyway.

Run: `.venv/bin/python benchmarks/bench_fairness.py [--repeat N]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from firebreak.policy.schema import load_policy
    from firebreak.scenarios import lending
    from firebreak.settings import INCLUDE_DIR

    policy = load_policy("loan_approval", INCLUDE_DIR / "policies")
    model = lending.train_unweighted(lending.taint(lending.generate_applications(11, 6000)))
    print("| rows | anchor: score_outputs | classification_fairness | × anchor | balancing_weights | × anchor |")
    print("|---|---|---|---|---|---|")
    for rows in (1_200, 100_000, 1_000_000):
        frame = lending.generate_applications(99, rows)
        outputs = model.predict_frame(frame)
        frame = frame.assign(confidence=outputs["confidence"])
        print(row(rows, frame, outputs, policy, args.repeat))


def row(rows: int, frame: Any, outputs: Any, policy: Any, repeat: int) -> str:
    from firebreak.detection.fairness import balancing_weights, classification_fairness
    from firebreak.detection.performance import score_outputs

    anchor = median_seconds(lambda: score_outputs(outputs, frame, policy), repeat)
    fair = median_seconds(
        lambda: classification_fairness(frame["repaid"], outputs["approved"], frame["age_band"], attribute="age_band"),
        repeat,
    )
    weights = median_seconds(lambda: balancing_weights(frame["age_band"], frame["repaid"]), repeat)
    return (
        f"| {rows:,} | {anchor * 1000:.1f} ms | {fair * 1000:.1f} ms | {fair / anchor:.1f} | "
        f"{weights * 1000:.1f} ms | {weights / anchor:.1f} |"
    )


if __name__ == "__main__":
    main()
