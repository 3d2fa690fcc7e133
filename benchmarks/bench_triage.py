"""Triage accuracy and time per case on generated cases (``firebreak_dev.cases``).

Each case is a reference table and a current one with a known class (none, drift, skew,
bias). For each, times the whole triage (``triage_tables``: the derived contract compiled,
full-data drift, the skew rules, multivariate drift, fairness, concept drift, segments,
classification) and
prints the confusion matrix, accuracy, false alarms on unchanged data, the misclassified
cases, and the median time per case. Anchor, in the same run: the drift verdicts alone
(`compute_drift` on the same tables), the cheapest piece any triage pays.

Run: `.venv/bin/python benchmarks/bench_triage.py [--cases N] [--seed S]`; prints Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    import os
    import warnings

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    warnings.simplefilter("ignore")
    from firebreak.detection.stats import compute_drift
    from firebreak.investigation.diagnosis import triage_tables
    from firebreak.investigation.evidence import numeric_columns
    from firebreak_dev.cases import CLASSES, generate_cases

    confusion: Counter[tuple[str, str]] = Counter()
    wrong = []
    triage_s, anchor_s = [], []
    first = True
    for case in generate_cases(args.cases, seed=args.seed):
        roles = case.roles
        started = time.perf_counter()
        verdict, _ = triage_tables(
            case.reference,
            case.current,
            label=roles.get("label"),
            prediction=roles.get("prediction"),
            protected=roles.get("protected"),
        )
        elapsed = time.perf_counter() - started
        if first:
            first = False  # the first case pays the imports (scipy, fairlearn): reported apart
            gx_first = elapsed
        else:
            triage_s.append(elapsed)
        shared = [c for c in case.reference.columns if c in case.current.columns and c not in roles.values()]
        shared = [
            c for c in shared
            if (c in numeric_columns(case.reference, [c])) == (c in numeric_columns(case.current, [c]))
            and case.current[c].notna().any()
        ]  # fmt: skip
        cat = [c for c in shared if c not in numeric_columns(case.reference, [c])]
        started = time.perf_counter()
        compute_drift(
            case.reference[shared].assign(**{c: case.reference[c].astype("string") for c in cat}),
            case.current[shared].assign(**{c: case.current[c].astype("string") for c in cat}),
            columns=shared,
            categorical=cat,
        )
        anchor_s.append(time.perf_counter() - started)
        got = str(verdict.failure_class) if verdict.failure_class else "none"
        confusion[(case.expected, got)] += 1
        if got != case.expected:
            wrong.append(
                (case.name, case.expected, got, case.change, verdict.evidence[0].detail if verdict.evidence else "")
            )
    total = sum(confusion.values())
    correct = sum(v for (e, g), v in confusion.items() if e == g)
    labels = [*CLASSES]
    print(f"## Triage on {total} generated cases (seed {args.seed})\n")
    print("| expected \\ diagnosed | " + " | ".join(labels) + " | recall |")
    print("|---|" + "---|" * (len(labels) + 1))
    for e in labels:
        row = [confusion[(e, g)] for g in labels]
        print(f"| {e} | " + " | ".join(map(str, row)) + f" | {confusion[(e, e)] / max(sum(row), 1):.1%} |")
    false_alarms = sum(v for (e, g), v in confusion.items() if e == "none" and g != "none")
    none_cases = sum(v for (e, _), v in confusion.items() if e == "none")
    print(
        f"\naccuracy {correct}/{total} = {correct / total:.1%}; false alarms on unchanged data {false_alarms}/{none_cases}"
    )
    print(
        f"\ntime per case: median {statistics.median(triage_s) * 1000:.0f} ms "
        f"(p90 {statistics.quantiles(triage_s, n=10)[-1] * 1000:.0f} ms); "
        f"anchor compute_drift alone: median {statistics.median(anchor_s) * 1000:.1f} ms; "
        f"first case with the imports: {gx_first:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    if wrong:
        print("\nmisclassified:\n")
        for name, e, g, change, top in wrong:
            print(f"- {name}: {e} -> {g}: {change} | top evidence: {top}")


if __name__ == "__main__":
    main()
