"""Triage accuracy on real tables shipped inside installed packages (``firebreak_dev.real_cases``).

Five tables (statsmodels' ``fair``, ``randhie``, ``anes96``; scikit-learn's breast cancer and
diabetes tables), each split at random and changed by construction (none, drift: covariate
shift, a new region, concept drift; skew: units, currency, recoding, text, sentinels,
nulls; bias: labels flipped on one group). The model's scores come from a logistic
regression trained on the reference half. Prints the confusion table, false alarms, the
misclassified cases, and the time per case against ``compute_drift`` alone on the same tables.

With ``--exports``: the tables shaped like the exports teams bring instead
(``firebreak_dev.export_cases``: census, housing and loan files, generated with those files'
quirks), each at 1,500, 6,000 and 40,000 rows.

Run: `.venv/bin/python benchmarks/bench_triage_real.py [--per-class N] [--seed S] [--exports]`; prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=6)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--exports", action="store_true", help="the export-shaped tables instead")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from firebreak.investigation.diagnosis import triage_tables
    from firebreak_dev.cases import CLASSES
    from firebreak_dev.export_cases import export_cases
    from firebreak_dev.real_cases import real_cases

    confusion: Counter[tuple[str, str]] = Counter()
    wrong, times = [], []
    cases = export_cases(args.seed) if args.exports else real_cases(args.per_class, seed=args.seed)
    for case in cases:
        roles = case.roles
        started = time.perf_counter()
        verdict, _ = triage_tables(
            case.reference,
            case.current,
            label=roles.get("label"),
            prediction=roles.get("prediction"),
            protected=roles.get("protected"),
            positive_class=roles.get("positive_class"),
        )
        times.append(time.perf_counter() - started)
        got = str(verdict.failure_class) if verdict.failure_class else "none"
        confusion[(case.expected, got)] += 1
        if got != case.expected:
            top = verdict.evidence[0].detail if verdict.evidence else ""
            wrong.append(f"- {case.name}: {case.expected} -> {got}: {case.change} | top evidence: {top[:300]}")
    total = sum(confusion.values())
    correct = sum(v for (e, g), v in confusion.items() if e == g)
    kind = "export-shaped" if args.exports else "real-table"
    print(f"## Triage on {total} {kind} cases (seed {args.seed}, load average {os.getloadavg()[0]:.1f})\n")
    print("| expected \\ diagnosed | " + " | ".join(CLASSES) + " | recall |")
    print("|---|" + "---|" * (len(CLASSES) + 1))
    for e in CLASSES:
        row = [confusion[(e, g)] for g in CLASSES]
        print(f"| {e} | " + " | ".join(map(str, row)) + f" | {confusion[(e, e)] / max(sum(row), 1):.1%} |")
    false_alarms = sum(v for (e, g), v in confusion.items() if e == "none" and g != "none")
    none_cases = sum(v for (e, _), v in confusion.items() if e == "none")
    print(
        f"\naccuracy {correct}/{total} = {correct / total:.1%}; false alarms on unchanged splits {false_alarms}/{none_cases}"
    )
    print(f"\ntime per case: median {statistics.median(times) * 1000:.0f} ms")
    if wrong:
        print("\nmisclassified:\n")
        print("\n".join(wrong))


if __name__ == "__main__":
    main()
