"""The classifier shared by the DAG's diagnose stage and ``firebreak triage``: each rule on its own evidence."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from firebreak.detection.fairness import default_limits, table_fairness
from firebreak.incidents.enums import FailureClass, Remediation, Severity
from firebreak.investigation.diagnosis import classify, diagnose
from firebreak.policy.schema import load_policy
from firebreak.settings import INCLUDE_DIR

POLICY = load_policy("pricing", INCLUDE_DIR / "policies")


def drifted(column: str, score: float, method: str = "Wasserstein distance (normed)", **extra: Any) -> dict[str, Any]:
    threshold = 0.05 if "p_value" in method else 0.1
    return {"column": column, "method": method, "score": score, "threshold": threshold, "drifted": True, **extra}


def range_failure(column: str, percent: float) -> dict[str, Any]:
    return {"column": column, "expectation": "expect_column_values_to_be_between", "unexpected_percent": percent}


def test_a_few_values_past_the_widened_range_are_the_tail_of_drift_not_skew() -> None:
    verdict = classify(
        contract={"passed": False, "failures": [range_failure("demand", 0.4)]},
        drift={"dataset_drift": False, "columns": [drifted("demand", 0.45)]},
    )
    assert (verdict.failure_class, verdict.columns) == (FailureClass.DRIFT, ["demand"])
    verdict = classify(
        contract={"passed": False, "failures": [range_failure("demand", 12.0)]},
        drift={"dataset_drift": False, "columns": [drifted("demand", 0.45)]},
    )
    assert (verdict.failure_class, verdict.columns) == (FailureClass.SKEW, ["demand"])
    assert verdict.evidence[0].detail.startswith("demand: 12.0% of values outside the contract range")


def test_sampled_values_read_as_people_write_them() -> None:
    failure = {**range_failure("height", 100.0), "sample": [166.79999999999998, 1e-07, "N/A"]}
    verdict = classify(contract={"passed": False, "failures": [failure]}, drift={"columns": []})
    assert "e.g. 166.8, 1e-07, N/A" in verdict.evidence[0].detail
    padded = {"expectation": "expect_column_values_to_be_in_set", "column": "channel", "sample": [" web", "app\t"]}
    verdict = classify(contract={"passed": False, "failures": [padded]}, drift={"columns": []})
    assert "e.g. ' web', 'app\\t'" in verdict.evidence[0].detail


def test_a_rescaled_column_is_skew_even_inside_the_contract() -> None:
    verdict = classify(
        contract={"passed": True, "failures": []},
        drift={
            "columns": [drifted("cost", 3.1)],
            "scale_changes": [{"column": "cost", "factor": 0.01, "quantile_ratios": [0.01] * 5}],
        },
    )
    assert (verdict.failure_class, verdict.columns) == (FailureClass.SKEW, ["cost"])
    assert "multiplied by 0.01" in verdict.root_cause
    # The rescaled column's drift is explained by the upstream change, not counted as drift.
    assert [f.points_to for f in verdict.evidence] == [FailureClass.SKEW]


def test_unallowed_lineage_names_the_pipeline_version() -> None:
    lineage = {
        "passed": False,
        "unknown_rows": 500,
        "groups": [
            {"upstream_source": "erp", "feature_pipeline_version": "features-2.3.1", "rows": 900, "allowed": True},
            {
                "upstream_source": "erp",
                "feature_pipeline_version": "features-2.4.0",
                "model_version": "1",
                "rows": 500,
                "first_seen": "2026-11-27 08:00:00+00:00",
                "allowed": False,
            },
        ],
    }
    verdict = classify(contract={"passed": True, "failures": []}, lineage=lineage)
    assert verdict.failure_class == FailureClass.SKEW
    assert "feature_pipeline_version=features-2.4.0 first seen 2026-11-27 08:00:00+00:00 (500 rows)" in (
        verdict.root_cause
    )
    assert "features-2.3.1" not in verdict.root_cause


def test_weak_p_value_drift_and_unconfirmed_distance_do_not_alarm() -> None:
    verdict = classify(
        drift={
            "columns": [
                drifted("a", 0.01, method="K-S p_value"),  # Evidently's 0.05 only
                drifted("b", 0.14, confirm_p_value=0.2),  # heavy tail: K-S sees no shift
            ]
        }
    )
    assert verdict.failure_class is None and verdict.severity is None
    assert [f.points_to for f in verdict.evidence] == [None]
    verdict = classify(drift={"columns": [drifted("a", 1e-6, method="K-S p_value")]})
    assert verdict.failure_class == FailureClass.DRIFT


def fairness_result(**figures: Any) -> dict[str, Any]:
    """A ``FairnessResult.to_dict()`` judged against triage's limits."""
    return {
        "attribute": "region",
        "breached": True,
        "summary": "region=south is selected less",
        "worst": "south",
        "best": "north",
        "selection_rate_ratio": 0.95,
        "equalized_odds_difference": None,
        "error_rate_difference": 0.02,
        "error_rate_worst": "south",
        "limits": {"selection_rate_ratio": 0.8, "error_rate_difference": 0.1},
        **figures,
    }


def test_bias_is_diagnosed_alongside_drift() -> None:
    fairness = fairness_result(selection_rate_ratio=0.55)
    verdict = classify(drift={"dataset_drift": True, "columns": [drifted("income", 0.4)]}, fairness=fairness)
    assert (verdict.failure_class, verdict.columns) == (FailureClass.BIAS, ["region"])
    assert "region=south selected at 0.55x" in verdict.root_cause
    assert [f.points_to for f in verdict.evidence] == [FailureClass.BIAS, FailureClass.DRIFT]
    quiet = classify(fairness={**fairness, "selection_rate_ratio": 0.9, "breached": False})
    assert quiet.failure_class is None


def test_a_breached_fairness_result_weighs_by_how_far_past_its_limit() -> None:
    # Selection ratio: 0.6 at the floor plus the shortfall; error-rate difference: 0.7 at the limit plus the excess.
    cases = [
        ({"selection_rate_ratio": 0.75}, 0.65, Severity.SEV3, "region=south selected at 0.75x the best group's rate"),
        ({"selection_rate_ratio": 0.55}, 0.85, Severity.SEV2, "(floor 0.8)"),
        ({"error_rate_difference": 0.15}, 0.75, Severity.SEV3, "region=south error rate 0.15 above the best group's"),
        ({"error_rate_difference": 0.25}, 0.85, Severity.SEV2, "(limit 0.1)"),
    ]
    for figures, weight, severity, detail in cases:
        verdict = classify(fairness=fairness_result(**figures))
        assert verdict.failure_class == FailureClass.BIAS, figures
        assert (verdict.evidence[0].weight, verdict.severity) == (pytest.approx(weight), severity), figures
        assert verdict.confidence == pytest.approx(0.5 + 0.5 * weight) and detail in verdict.evidence[0].detail
    both = classify(fairness=fairness_result(selection_rate_ratio=0.7, error_rate_difference=0.3))
    assert [f.weight for f in both.evidence] == [pytest.approx(0.9), pytest.approx(0.7)]
    assert both.root_cause.startswith("a protected group gets materially worse outcomes: region=south error rate 0.30")
    # At the limit is within it; figures past limits a result did not record are not evidence.
    assert classify(fairness=fairness_result(error_rate_difference=0.1, breached=False)).failure_class is None
    assert classify(fairness=fairness_result(selection_rate_ratio=0.5, breached=False)).failure_class is None


def test_a_computed_fairness_result_is_bias_evidence_in_classify_and_diagnose() -> None:
    rows = []
    for group, selected in (("north", 60), ("south", 30)):
        rows += [(group, 1, 1)] * selected + [(group, 1, 0)] * (60 - selected) + [(group, 0, 0)] * 40
    table = pd.DataFrame(rows, columns=["region", "repaid", "approved"])
    result = table_fairness(table, default_limits("region"), prediction="approved", label="repaid").to_dict()
    assert result["breached"] is True and result["selection_rate_ratio"] == 0.5
    verdict = classify(fairness=result)
    assert (verdict.failure_class, verdict.columns) == (FailureClass.BIAS, ["region"])
    # Selection ratio 0.5 (weight 0.9), error-rate difference 0.3 (weight 0.9): both named.
    assert {f.detail.split(" ")[0] for f in verdict.evidence} == {"region=south"}
    assert len(verdict.evidence) == 2
    clean = {"contract": {"passed": True}, "lineage": {"passed": True}, "golden": {"regressed": False}}
    drift = {"dataset_drift": True, "columns": [drifted("income", 0.4)]}
    d = diagnose(POLICY, **clean, drift=drift, fairness=result, reported=FailureClass.DRIFT)
    assert d.failure_class == FailureClass.BIAS and d.root_cause.startswith("a protected group gets materially worse")
    assert "region=south" in d.root_cause and d.columns == ["region"]
    assert d.reasons == [f.detail for f in verdict.evidence]
    # Skew comes first in the order of suspicion; feedback poisoning still names the cause of a bias.
    skew = {"passed": False, "failures": [{"column": "income", "expectation": "expect_column_to_exist"}]}
    assert (
        diagnose(
            POLICY, **{**clean, "contract": skew}, drift={}, fairness=result, reported=FailureClass.UNKNOWN
        ).failure_class
        == FailureClass.SKEW
    )
    poisoned = {"poisoned": True, "slice": {"actors": ["acct-1"]}, "figures": {}}
    d = diagnose(POLICY, **clean, drift={}, fairness=result, feedback=poisoned, reported=FailureClass.UNKNOWN)
    assert d.failure_class == FailureClass.FEEDBACK_POISONING


def test_regression_against_last_known_good_is_a_bad_release_with_rollback() -> None:
    golden = {
        "version": "2",
        "regressed": False,  # against its own baseline it looks fine: the baseline was recorded bad
        "figures": {"mae": 12.3},
        "last_known_good": {"version": "1", "figures": {"mae": 1.5}, "limit_mae": 1.65},
        "regressed_vs_last_known_good": True,
    }
    d = diagnose(
        POLICY,
        contract={"passed": True, "failures": []},
        lineage={"passed": True},
        drift={},
        golden=golden,
        reported=FailureClass.UNKNOWN,
    )
    assert (d.failure_class, d.remediation) == (FailureClass.BAD_RELEASE, Remediation.ROLLBACK)
    assert "golden MAE 12.3 vs last-known-good v1 1.5" in d.root_cause
