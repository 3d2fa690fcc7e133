"""Triage on generated cases: >= 95% right overall, no alarm on unchanged data.

Real Great Expectations (the derived contract) and the full-data drift engine on each case;
the cases come from firebreak_dev.cases (varied columns, types, magnitudes, seeds).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from firebreak.investigation.diagnosis import classify
from firebreak.investigation.evidence import gather_evidence
from firebreak_dev.cases import CLASSES, generate_cases

pytestmark = pytest.mark.integration

CASES = 400  # 100 per class
SEED = 7


@pytest.fixture(scope="module")
def outcomes() -> list[tuple[str, str, str]]:
    found = []
    for case in generate_cases(CASES, seed=SEED):
        evidence = gather_evidence(
            case.reference,
            case.current,
            label=case.roles.get("label"),
            prediction=case.roles.get("prediction"),
            protected=case.roles.get("protected"),
        )
        verdict = classify(contract=evidence["contract"], drift=evidence["drift"], fairness=evidence.get("fairness"))
        found.append((case.expected, str(verdict.failure_class) if verdict.failure_class else "none", case.change))
    return found


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
