"""Fairness figures per group, the reweighting remedy, and the gate and diagnosis that use them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from firebreak.detection.fairness import (
    FairnessInputError,
    balancing_weights,
    classification_fairness,
    decisions,
    default_limits,
    fairness_on,
    table_fairness,
)
from firebreak.detection.performance import Figures
from firebreak.incidents.enums import FailureClass, Remediation
from firebreak.investigation.diagnosis import diagnose
from firebreak.policy.schema import load_policy
from firebreak.settings import INCLUDE_DIR
from firebreak.verification.gate import evaluate_gate

LOANS = load_policy("loan_approval", INCLUDE_DIR / "policies")
REVIEW = load_policy("loan_review", INCLUDE_DIR / "policies")


def two_groups() -> pd.DataFrame:
    """Group a: 100 rows, 50 positives, approves 45 of them and 5 negatives (selection 0.5).
    Group b: 100 rows, 50 positives, approves 20 of them and 0 negatives (selection 0.2)."""
    rows = []
    for group, tp, fp in (("a", 45, 5), ("b", 20, 0)):
        rows += [(group, 1, 1)] * tp + [(group, 1, 0)] * (50 - tp) + [(group, 0, 1)] * fp + [(group, 0, 0)] * (50 - fp)
    return pd.DataFrame(rows, columns=["age_band", "repaid", "approved"])


def test_selection_rate_ratio_and_equalized_odds_name_the_worst_group() -> None:
    frame = two_groups()
    result = classification_fairness(
        frame["repaid"], frame["approved"], frame["age_band"], attribute="age_band", min_group_rows=50
    )
    assert result.groups["a"]["selection_rate"] == 0.5 and result.groups["b"]["selection_rate"] == 0.2
    assert result.selection_rate_ratio == pytest.approx(0.4)
    # TPR 0.9 vs 0.4, FPR 0.1 vs 0.0: the larger gap is 0.5.
    assert result.equalized_odds_difference == pytest.approx(0.5)
    assert result.worst == "b" and result.best == "a" and result.breached is True
    assert result.summary.startswith("age_band=b is selected 20% of the time vs 50%")
    assert "selection-rate ratio 0.40 < 0.8" in result.summary


def test_class_names_with_a_positive_class_give_the_figures_of_their_0_1_copy() -> None:
    frame = two_groups()
    named = frame.assign(**{c: frame[c].map({1: "approve", 0: "refer"}) for c in ("repaid", "approved")})
    with pytest.raises(FairnessInputError, match="must hold numbers or booleans"):
        table_fairness(named, default_limits("age_band"), prediction="approved")  # which one selects? unsaid
    by_name = table_fairness(named, default_limits("age_band", "approve"), prediction="approved", label="repaid")
    numeric = table_fairness(frame, default_limits("age_band"), prediction="approved", label="repaid")
    assert by_name.to_dict() == numeric.to_dict() and by_name.selection_rate_ratio == pytest.approx(0.4)
    classes = pd.Series([3, 1, 2, 1], name="tier")  # classes that are numbers: "1" is the class 1
    assert decisions(classes, "label", "1").tolist() == [0, 1, 0, 1]
    with pytest.raises(FairnessInputError, match="the prediction column 'approved' has 1 missing values"):
        decisions(named["approved"].where(named.index > 0), "prediction", "approve")


def test_a_class_named_in_words_beside_scores_reads_the_scores_as_its_own() -> None:
    """Labels "approve"/"refer" beside a score of approving: the score still decides (>= 0.5), and
    is the Brier score's probability; it used to read as no decision at all (score == "approve")."""
    frame = two_groups()
    scored = frame.assign(
        approved=np.where(frame["approved"] == 1, 0.8, 0.3), repaid=frame["repaid"].map({1: "approve", 0: "refer"})
    )
    assert decisions(scored["approved"], "prediction", "approve").tolist() == frame["approved"].tolist()
    by_name = table_fairness(scored, default_limits("age_band", "approve"), prediction="approved", label="repaid")
    numeric = table_fairness(
        scored.assign(repaid=frame["repaid"]), default_limits("age_band"), prediction="approved", label="repaid"
    )
    assert by_name.to_dict() == numeric.to_dict() and by_name.selection_rate_ratio == pytest.approx(0.4)
    assert by_name.to_dict()["groups"]["a"]["brier"] == pytest.approx(
        (45 * 0.04 + 5 * 0.49 + 5 * 0.64 + 45 * 0.09) / 100
    )


def test_small_groups_are_left_out_and_one_group_is_not_a_comparison() -> None:
    frame = two_groups()
    result = classification_fairness(
        frame["repaid"], frame["approved"], frame["age_band"], attribute="age_band", min_group_rows=101
    )
    assert result.breached is None and "fewer than two groups" in result.summary


def test_the_error_rate_difference_names_its_worst_group_and_breaks_its_limit() -> None:
    frame = two_groups()  # a: 5 + 5 of 100 wrong; b: 30 of 100 wrong
    kwargs = {"attribute": "age_band", "min_group_rows": 50, "min_selection_rate_ratio": None}
    result = classification_fairness(frame["repaid"], frame["approved"], frame["age_band"], **kwargs)
    assert result.groups["a"]["accuracy"] == 0.9 and result.groups["b"]["accuracy"] == 0.7
    assert result.error_rate_difference == pytest.approx(0.2) and result.error_rate_worst == "b"
    assert result.breached is False and "error-rate difference 0.20 (age_band=b worst)" in result.summary
    strict = classification_fairness(
        frame["repaid"], frame["approved"], frame["age_band"], **kwargs, max_error_rate_difference=0.1
    )
    assert strict.breached is True and "error-rate difference 0.20 > 0.1" in strict.summary
    assert strict.limits == {"error_rate_difference": 0.1}
    lenient = classification_fairness(
        frame["repaid"], frame["approved"], frame["age_band"], **kwargs, max_error_rate_difference=0.25
    )
    assert lenient.breached is False


def test_scores_count_as_selected_from_one_half_and_booleans_as_decisions() -> None:
    frame = two_groups()
    decided = classification_fairness(frame["repaid"], frame["approved"], frame["age_band"], attribute="age_band")
    # 1 -> 0.7 and 0 -> 0.3: the same decisions as scores either side of 0.5.
    scores = frame["approved"] * 0.4 + 0.3
    scored = classification_fairness(frame["repaid"], scores, frame["age_band"], attribute="age_band")
    assert _rates(scored.to_dict()) == _rates(decided.to_dict())
    # The Brier score is the one figure that reads the score itself: decisions give the error rate.
    assert decided.groups["a"]["brier"] == 0.1 and scored.groups["a"]["brier"] == pytest.approx(0.9 * 0.09 + 0.1 * 0.49)
    at_half = classification_fairness(frame["repaid"], frame["approved"] * 0.5, frame["age_band"], attribute="age_band")
    assert _rates(at_half.to_dict())["groups"] == _rates(decided.to_dict())["groups"]  # exactly 0.5 is selected
    booleans = classification_fairness(
        frame["repaid"].astype(bool), frame["approved"].astype(bool), frame["age_band"], attribute="age_band"
    )
    assert booleans.to_dict() == decided.to_dict()


def _rates(result: dict[str, Any]) -> dict[str, Any]:
    """A fairness result without the Brier figures (which depend on the scores, not only the decisions)."""
    groups = {g: {k: v for k, v in f.items() if not k.startswith("brier")} for g, f in result["groups"].items()}
    return {**result, "groups": groups}


def test_without_labels_only_selection_rates_are_compared() -> None:
    frame = two_groups()
    result = classification_fairness(None, frame["approved"], frame["age_band"], attribute="age_band")
    assert result.groups == {"a": {"rows": 100, "selection_rate": 0.5}, "b": {"rows": 100, "selection_rate": 0.2}}
    assert result.selection_rate_ratio == pytest.approx(0.4) and result.breached is True
    assert result.equalized_odds_difference is None and result.error_rate_difference is None
    assert "no labels: selection rates only" in result.summary


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        (
            "approved",
            lambda f: f["approved"] * 7,
            r"the prediction column 'approved' must be 0/1 or a score in \[0, 1\] .* 70 rows are not",
        ),
        (
            "approved",
            lambda f: f["approved"].map({1: "yes", 0: "no"}),
            "the prediction column 'approved' must hold numbers or booleans",
        ),
        (
            "approved",
            lambda f: f["approved"].where(f.index % 10 > 0),
            "the prediction column 'approved' .* 20 rows are not",
        ),
        ("repaid", lambda f: f["repaid"] * 0.7, "the label column 'repaid' must be 0 or 1 .* 100 rows are not"),
        (
            "repaid",
            lambda f: f["repaid"].map({1: "repaid", 0: "defaulted"}),
            "the label column 'repaid' must hold numbers or booleans",
        ),
    ],
    ids=["scores-out-of-range", "text-prediction", "missing-predictions", "label-scores", "text-label"],
)
def test_values_that_are_not_decisions_are_refused_by_column_name(column: str, values: Any, message: str) -> None:
    frame = two_groups().assign(**{column: values})
    with pytest.raises(FairnessInputError, match=message):
        classification_fairness(frame["repaid"], frame["approved"], frame["age_band"], attribute="age_band")


def test_small_groups_are_named_with_their_rows() -> None:
    frame = pd.concat([two_groups(), pd.DataFrame({"age_band": ["c"] * 10, "repaid": [1] * 10, "approved": [0] * 10})])
    result = classification_fairness(frame["repaid"], frame["approved"], frame["age_band"], attribute="age_band")
    assert set(result.groups) == {"a", "b"} and result.left_out == {"c": 10} and result.rows == 200


def test_default_limits_are_the_four_fifths_rule_ten_points_and_thirty_rows() -> None:
    rules = default_limits("region")
    assert (rules.protected_attribute, rules.min_selection_rate_ratio, rules.max_error_rate_difference) == (
        "region",
        0.8,
        0.1,
    )
    assert rules.min_group_rows == 30 and rules.max_equalized_odds_difference is None
    frame = two_groups()
    result = table_fairness(frame, default_limits("age_band"), prediction="approved", label="repaid")
    assert result.limits == {"selection_rate_ratio": 0.8, "error_rate_difference": 0.1}
    assert result.breached is True and "error-rate difference 0.20 > 0.1" in result.summary
    with pytest.raises(FairnessInputError, match="column 'outcome' is not in the table"):
        table_fairness(frame, default_limits("age_band"), prediction="approved", label="outcome")


def test_policy_without_fairness_is_not_applicable() -> None:
    frame = two_groups()
    assert fairness_on(frame, frame, REVIEW).breached is None


def test_balancing_weights_make_the_label_independent_of_the_group() -> None:
    rng = np.random.default_rng(0)
    groups = pd.Series(rng.choice(["young", "old"], size=2000, p=[0.3, 0.7]))
    labels = pd.Series(np.where(groups == "young", rng.random(2000) < 0.2, rng.random(2000) < 0.6).astype(int))
    weights = balancing_weights(groups, labels)
    assert weights.mean() == pytest.approx(1.0)
    weighted = pd.DataFrame({"g": groups, "y": labels, "w": weights})
    rate = weighted.groupby("g").apply(lambda p: (p["w"] * p["y"]).sum() / p["w"].sum(), include_groups=False)
    assert rate["young"] == pytest.approx(rate["old"]) == pytest.approx(labels.mean())
    young_positive = weights[(groups == "young") & (labels == 1)]
    assert (young_positive > 1).all()  # the suppressed cell is weighted up
    with pytest.raises(FairnessInputError, match="differ in length"):
        balancing_weights(groups, labels.head(10))


def figures(mae: float) -> Figures:
    """A loan classifier's figures: its 0/1 error rate is ``mae``, its accuracy the rest."""
    return Figures(1000, mae, mae, 0.0, 0.0, 0.9, accuracy=round(1 - mae, 4))


@pytest.mark.parametrize(
    ("ratio", "eod", "candidate_mae", "failed"),
    [
        (0.9, 0.05, 0.12, []),
        (0.6, 0.05, 0.12, ["selection-rate ratio (four-fifths rule)"]),
        (0.9, 0.30, 0.12, ["equalized-odds difference"]),
        (0.95, 0.05, 0.30, ["golden accuracy no worse than champion", "recent accuracy improves on champion"]),
    ],
    ids=["fair-and-accurate", "unequal-selection", "unequal-errors", "fair-but-inaccurate"],
)
def test_gate_checks_fairness_and_accuracy(ratio: float, eod: float, candidate_mae: float, failed: list[str]) -> None:
    verdict = evaluate_gate(
        LOANS.gate,
        candidate_golden=figures(candidate_mae),
        champion_golden=figures(0.15),
        candidate_recent=figures(candidate_mae),
        champion_recent=figures(0.15),
        fairness=LOANS.fairness,
        candidate_fairness={"selection_rate_ratio": ratio, "equalized_odds_difference": eod},
        champion_fairness={"selection_rate_ratio": 0.5, "equalized_odds_difference": 0.4},
    )
    assert [c["name"] for c in verdict.checks if not c["passed"]] == failed
    assert verdict.passed is (not failed)
    assert verdict.fairness["champion"]["selection_rate_ratio"] == 0.5


@pytest.mark.parametrize(("gap", "passed"), [(0.08, True), (0.1, True), (0.14, False), (None, False)])
def test_gate_checks_the_error_rate_difference_when_the_policy_limits_it(gap: float | None, passed: bool) -> None:
    rules = LOANS.fairness.model_copy(update={"max_error_rate_difference": 0.1})  # type: ignore[union-attr]
    verdict = evaluate_gate(
        LOANS.gate,
        candidate_golden=figures(0.12),
        champion_golden=figures(0.15),
        candidate_recent=figures(0.12),
        champion_recent=figures(0.15),
        fairness=rules,
        candidate_fairness={
            "selection_rate_ratio": 0.9,
            "equalized_odds_difference": 0.05,
            "error_rate_difference": gap,
        },
        champion_fairness={},
    )
    check = {c["name"]: c for c in verdict.checks}["error-rate difference"]
    assert (check["passed"], check["limit"], verdict.passed) == (passed, 0.1, passed)
    unlimited = evaluate_gate(
        LOANS.gate,
        candidate_golden=figures(0.12),
        champion_golden=figures(0.15),
        candidate_recent=figures(0.12),
        champion_recent=figures(0.15),
        fairness=LOANS.fairness,
        candidate_fairness={
            "selection_rate_ratio": 0.9,
            "equalized_odds_difference": 0.05,
            "error_rate_difference": 0.3,
        },
    )
    assert "error-rate difference" not in {c["name"] for c in unlimited.checks}


def test_diagnosis_bias_and_feedback_poisoning_from_their_evidence() -> None:
    clean = {"contract": {"passed": True}, "lineage": {"passed": True}, "drift": {}, "golden": {"regressed": False}}
    bias = diagnose(
        LOANS,
        **clean,
        reported=FailureClass.UNKNOWN,
        fairness={"breached": True, "attribute": "age_band", "worst": "18-25", "summary": "s"},
    )
    assert bias.failure_class == FailureClass.BIAS and bias.remediation == Remediation.RETRAIN
    assert "age_band=18-25" in bias.root_cause
    poisoned = diagnose(
        REVIEW,
        **clean,
        reported=FailureClass.UNKNOWN,
        feedback={"poisoned": True, "slice": {"actors": ["acct-1", "acct-2"]}, "figures": {"top_share": 0.4}},
    )
    assert poisoned.failure_class == FailureClass.FEEDBACK_POISONING and poisoned.remediation == Remediation.RETRAIN
    assert "acct-1, acct-2" in poisoned.root_cause
    fair = diagnose(LOANS, **clean, reported=FailureClass.UNKNOWN, fairness={"breached": False})
    assert fair.failure_class == FailureClass.UNKNOWN


def test_cell_weighted_figures_match_fairlearn_row_by_row() -> None:
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    rng = np.random.default_rng(3)
    groups = pd.Series(rng.choice(["x", "y", "z"], size=3000))
    truth = pd.Series((rng.random(3000) < 0.5).astype(int))
    predicted = pd.Series(
        np.where(rng.random(3000) < 0.8, truth, 1 - truth) * (groups != "z") | (rng.random(3000) < 0.3)
    )
    result = classification_fairness(truth, predicted.astype(int), groups, attribute="g")
    rows = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=truth,
        y_pred=predicted.astype(int),
        sensitive_features=groups,
    ).by_group
    for group, figures in rows.iterrows():
        for metric, value in figures.items():
            assert result.groups[str(group)][metric] == pytest.approx(value, abs=1e-4)
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(truth, predicted.astype(int), sensitive_features=groups), abs=1e-4
    )
    assert result.selection_rate_ratio == pytest.approx(
        rows["selection_rate"].min() / rows["selection_rate"].max(), abs=1e-4
    )
