"""Triage on generated cases (>= 95% right, no alarm on unchanged data), on real tables and on
tables shaped like exports.

The whole ``firebreak triage`` path on each case (the derived contract compiled, the
full-data drift engine, the skew rules, fairness, concept drift); the generated cases come
from firebreak_dev.cases (varied columns, types, magnitudes, seeds), the real ones from
tables shipped in statsmodels and scikit-learn (firebreak_dev.real_cases), the export-shaped
ones from firebreak_dev.export_cases.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from firebreak.investigation.diagnosis import triage_tables
from firebreak_dev.cases import CLASSES, Case, generate_cases
from firebreak_dev.export_cases import export_cases
from firebreak_dev.real_cases import real_cases

pytestmark = pytest.mark.integration

CASES = 400  # 100 per class
SEED = 7


@pytest.fixture(scope="module")
def outcomes() -> list[tuple[str, str, str]]:
    return [diagnosed(case) for case in generate_cases(CASES, seed=SEED)]


def diagnosed(case: Case) -> tuple[str, str, str]:
    verdict, _ = triage_tables(
        case.reference,
        case.current,
        label=case.roles.get("label"),
        prediction=case.roles.get("prediction"),
        protected=case.roles.get("protected"),
        positive_class=case.roles.get("positive_class"),
    )
    return case.expected, str(verdict.failure_class) if verdict.failure_class else "none", case.change


def test_real_tables_score_at_least_80_percent_with_no_false_alarm() -> None:
    # 2 cases per class on each of 5 tables; the benchmark (benchmarks/bench_triage_real.py) runs more.
    outcomes = [diagnosed(case) for case in real_cases(2, seed=11)]
    right = sum(e == g for e, g, _ in outcomes)
    assert right / len(outcomes) >= 0.8, [o for o in outcomes if o[0] != o[1]]
    assert [o for o in outcomes if o[0] == "none" and o[1] != "none"] == []


def test_export_shaped_tables_score_at_least_90_percent_with_no_false_alarm() -> None:
    """Census, housing and loan tables as their exports write them (percent strings, months by
    name, caps, long tails, labels in words); the benchmark (--exports) runs 40,000-row ones too."""
    outcomes = [diagnosed(case) for case in export_cases(seed=11, sizes=(1_500, 6_000))]
    right = sum(e == g for e, g, _ in outcomes)
    assert right / len(outcomes) >= 0.9, [o for o in outcomes if o[0] != o[1]]
    assert [o for o in outcomes if o[0] == "none" and o[1] != "none"] == []


def test_at_least_95_percent_of_generated_cases_get_the_right_class(outcomes: list[tuple[str, str, str]]) -> None:
    right = sum(expected == got for expected, got, _ in outcomes)
    wrong = [o for o in outcomes if o[0] != o[1]]
    assert right / len(outcomes) >= 0.95, wrong
    # No class is carried by the others: each is recognised on its own.
    per_class: dict[str, Any] = Counter(e for e, g, _ in outcomes if e == g)
    for name in CLASSES:
        assert per_class[name] / (CASES / len(CLASSES)) >= 0.9, (name, [o for o in wrong if o[0] == name])


def test_unchanged_data_never_alarms(outcomes: list[tuple[str, str, str]]) -> None:
    unchanged = [o for o in outcomes if o[0] == "none"]
    assert len(unchanged) == CASES // len(CLASSES)
    assert [o for o in unchanged if o[1] != "none"] == []
