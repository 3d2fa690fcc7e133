"""The gate's metrics per task agree with scikit-learn's, and "worse" points the right way for each."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics

from firebreak.detection.performance import SCORE, constant_answer, loss, performance_change, score_outputs
from firebreak.policy.schema import Policy
from firebreak.settings import INCLUDE_DIR


def policy(task: str, metric: str) -> Policy:
    """The shipped pricing policy, made a team's own model with label ``y``, output ``p``, confidence ``c``."""
    data = yaml.safe_load((INCLUDE_DIR / "policies" / "pricing.yaml").read_text())
    data["model"] = "Churn Model"
    data["features"] = {"task": task, "numeric": ["x"], "label": "y", "output": "p", "confidence": "c"}
    data["detection"] = {**data["detection"], "confidence_floor": 0.6}
    data["detection"].pop("output_floor", None)
    data["gate"] = {**data["gate"], "metric": metric}
    return Policy.model_validate(data)


def test_binary_classification_figures_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    score = np.clip(y * 0.35 + rng.random(400) * 0.65, 0, 1)
    p = (score >= 0.5).astype(int)
    outputs = pd.DataFrame({"p": p, "c": np.maximum(score, 1 - score), SCORE: score})
    figures = score_outputs(outputs, pd.DataFrame({"y": y}), policy("classification", "auc"))
    assert figures.accuracy == pytest.approx(metrics.accuracy_score(y, p), abs=1e-4)
    assert figures.f1 == pytest.approx(metrics.f1_score(y, p), abs=1e-4)
    assert figures.auc == pytest.approx(metrics.roc_auc_score(y, score), abs=1e-4)
    assert figures.log_loss == pytest.approx(metrics.log_loss(y, score), abs=1e-4)
    assert figures.low_confidence_rate == pytest.approx(float((outputs["c"] < 0.6).mean()), abs=1e-4)


def test_class_names_as_labels_score_without_numbers() -> None:
    y = pd.Series(["fraud", "ok", "ok", "fraud", "ok", "ok"])
    p = pd.Series(["fraud", "ok", "fraud", "fraud", "ok", "ok"])
    figures = score_outputs(pd.DataFrame({"p": p}), pd.DataFrame({"y": y}), policy("classification", "f1"))
    assert figures.accuracy == pytest.approx(5 / 6, abs=1e-4)
    assert figures.f1 == pytest.approx(metrics.f1_score(y == "ok", p == "ok"), abs=1e-4)  # "ok" sorts last
    assert math.isnan(figures.mae)  # no error in label units for class names


def test_regression_figures_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(100, 20, 300)
    p = y + rng.normal(0, 5, 300)
    figures = score_outputs(pd.DataFrame({"p": p}), pd.DataFrame({"y": y}), policy("regression", "rmse"))
    assert figures.mae == pytest.approx(metrics.mean_absolute_error(y, p), abs=1e-3)
    assert figures.rmse == pytest.approx(math.sqrt(metrics.mean_squared_error(y, p)), abs=1e-3)
    assert figures.mape == pytest.approx(metrics.mean_absolute_percentage_error(y, p), abs=1e-4)
    assert figures.accuracy is None


@pytest.mark.parametrize(("metric", "better", "worse"), [("auc", 0.9, 0.8), ("accuracy", 0.95, 0.9), ("rmse", 3, 4)])
def test_loss_makes_worse_larger_whichever_way_the_metric_points(metric: str, better: float, worse: float) -> None:
    assert loss(metric, better) < loss(metric, worse)


def test_a_metric_for_the_other_task_is_refused_naming_both() -> None:
    with pytest.raises(ValueError, match="gate.metric 'rmse' does not apply to a classification model"):
        policy("classification", "rmse")


def test_concept_drift_on_class_name_labels_is_judged_on_accuracy() -> None:
    reference = pd.DataFrame({"y": ["ok"] * 900 + ["fraud"] * 100, "p": ["ok"] * 900 + ["fraud"] * 100})
    current = pd.DataFrame({"y": ["ok"] * 600 + ["fraud"] * 400, "p": ["ok"] * 1000})
    change = performance_change(reference, current, label="y", prediction="p")
    assert change is not None and change["metric"] == "accuracy"
    assert change["reference"] == 1.0 and change["current"] == 0.6 and change["significant"] is True


@pytest.mark.parametrize("metric", ["accuracy", "auc", "f1", "log_loss"])
def test_the_constant_answer_scores_what_scikit_learns_prior_dummy_scores(metric: str) -> None:
    from sklearn.dummy import DummyClassifier

    y = pd.Series(np.random.default_rng(2).choice(["approve", "refer"], 500, p=[0.7, 0.3]))
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((500, 1)), y)
    answers, proba = dummy.predict(np.zeros((500, 1))), dummy.predict_proba(np.zeros((500, 1)))[:, 1]
    expected = {
        "accuracy": metrics.accuracy_score(y, answers),
        "auc": metrics.roc_auc_score(y == "refer", proba),
        "f1": metrics.f1_score(y, answers, pos_label="refer", zero_division=0.0),
        "log_loss": metrics.log_loss(y == "refer", proba),
    }[metric]
    figure, answer = constant_answer(metric, y, "classification")
    assert answer == "approve"
    assert figure == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("metric", "strategy"), [("mae", "median"), ("rmse", "mean"), ("mape", "median")])
def test_a_regressions_constant_answer_is_the_median_or_for_rmse_the_mean(metric: str, strategy: str) -> None:
    from sklearn.dummy import DummyRegressor

    y = pd.Series(np.random.default_rng(3).lognormal(3, 1, 400))  # skewed: median and mean differ
    answers = DummyRegressor(strategy=strategy).fit(np.zeros((400, 1)), y).predict(np.zeros((400, 1)))
    expected = {
        "mae": metrics.mean_absolute_error(y, answers),
        "rmse": math.sqrt(metrics.mean_squared_error(y, answers)),
        "mape": metrics.mean_absolute_percentage_error(y, answers),
    }[metric]
    figure, answer = constant_answer(metric, y, "regression")
    assert answer == pytest.approx(float(answers[0]))
    assert figure == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    ("labels", "answers", "wrong", "mistake", "times"),
    [
        (
            ["approve", "refer", "refer", "approve"] * 25,
            ["approve", "approve", "refer", "approve"] * 25,
            25,
            "answered 'approve' where the outcome was 'refer'",
            25,
        ),
        (
            [0, 1, 2, 2, 1] * 20,
            [0.0, 2.0, 2.0, 1.0, 2.0] * 20,
            60,  # three classes, answers logged as floats
            "answered '2.0' where the outcome was '1'",
            40,
        ),
    ],
    ids=["class names", "three classes"],
)
def test_the_impact_of_a_model_answering_classes_counts_wrong_classes(
    labels: list[object], answers: list[object], wrong: int, mistake: str, times: int
) -> None:
    from firebreak.detection.performance import impact

    labelled = pd.DataFrame({"y": labels, "p": answers, "route": "champion"})
    items = {item["key"]: item for item in impact(labelled, labelled, policy("classification", "accuracy"))}
    assert "wrongly_declined" not in items  # no approve/decline to speak of
    assert (items["wrong_class"]["value"], items["wrong_class"]["of"]) == (wrong, len(labels))
    assert items["most_common_mistake"]["label"] == f"the mistake made most often: {mistake}"
    assert (items["most_common_mistake"]["value"], items["most_common_mistake"]["of"]) == (times, wrong)


def _sure_and_unsure(seed: int, rows: int = 1_000) -> pd.DataFrame:
    """A model sure of 60% of its answers (0.97 / 0.03, right) and unsure of the rest (0.35-0.65)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"y": rng.integers(0, 2, rows)})
    sure = rng.random(rows) < 0.6
    frame["p"] = np.where(sure, np.where(frame["y"] == 1, 0.97, 0.03), rng.uniform(0.35, 0.65, rows).round(3))
    return frame


def test_labels_that_changed_under_sure_scores_are_concept_drift_on_the_brier_score() -> None:
    """5% of the sure answers' labels changed: 3 points of accuracy on 1,000 rows is within noise
    (p ~ 0.02), but each of those answers was 97% sure, and the Brier score says so."""
    reference, current = _sure_and_unsure(1), _sure_and_unsure(2)
    sure = (current["p"] > 0.9) | (current["p"] < 0.1)
    flipped = sure & (np.random.default_rng(3).random(len(current)) < 0.05)
    current.loc[flipped, "y"] = 1 - current.loc[flipped, "y"]
    change = performance_change(reference, current, label="y", prediction="p")
    assert change is not None and change["test"] == "Brier score" and change["significant"] is True
    assert change["brier_current"] > change["brier_reference"] and change["p_value"] < 1e-3
    right = [(f["y"] == (f["p"] >= 0.5)).to_numpy() for f in (reference, current)]
    pooled = np.concatenate(right).mean()
    z = (right[0].mean() - right[1].mean()) / np.sqrt(pooled * (1 - pooled) * 2 / 1_000)
    assert z < 3.09  # the accuracy test alone would not have said so


@pytest.mark.parametrize("seed", range(5))
def test_an_unchanged_world_is_no_concept_drift_on_the_brier_score(seed: int) -> None:
    change = performance_change(_sure_and_unsure(10 + seed), _sure_and_unsure(20 + seed), label="y", prediction="p")
    assert change is not None and change["test"] == "Brier score" and change["significant"] is False


def test_decisions_keep_the_accuracy_test() -> None:
    """0/1 answers: their Brier score is their error rate, so the accuracy test is the one."""
    reference, current = (f.assign(p=(f["p"] >= 0.5).astype(int)) for f in (_sure_and_unsure(4), _sure_and_unsure(5)))
    change = performance_change(reference, current, label="y", prediction="p")
    assert change is not None and "test" not in change and change["metric"] == "accuracy"
