"""Model figures on labelled data: error, sanity-floor breaches and confidence of a model's outputs.

What the detection, investigation and verification stages measure a model by, on any
labelled rows (the golden dataset, recent labelled traffic, one protected group's rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from firebreak.policy.schema import Policy

__all__ = ["Figures", "Predictor", "evaluate", "performance_change", "sanity_violations", "score_outputs"]

Predictor = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Figures:
    rows: int
    mae: float
    mape: float
    sanity_violation_rate: float
    low_confidence_rate: float
    mean_confidence: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def sanity_violations(outputs: pd.DataFrame, inputs: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Boolean per row: the output breaks the policy's sanity floor (e.g. price below cost)."""
    floor = policy.detection.output_floor
    if floor is None:
        return np.zeros(len(outputs), dtype=bool)
    ratio = outputs[policy.features.output].to_numpy(dtype=float) / inputs[floor.relative_to].to_numpy(dtype=float)
    return np.asarray(ratio < floor.min_ratio)


def score_outputs(outputs: pd.DataFrame, labelled: pd.DataFrame, policy: Policy) -> Figures:
    """Figures for outputs already computed on ``labelled`` (same row order)."""
    if labelled.empty:
        return Figures(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    label = labelled[policy.features.label].to_numpy(dtype=float)
    predicted = outputs[policy.features.output].to_numpy(dtype=float)
    confidence = outputs[policy.features.confidence].to_numpy(dtype=float)
    error = np.abs(predicted - label)
    return Figures(
        rows=len(labelled),
        mae=round(float(error.mean()), 4),
        mape=round(float((error / np.where(label == 0, 1.0, np.abs(label))).mean()), 4),  # 0/1 labels: the error rate
        sanity_violation_rate=round(float(sanity_violations(outputs, labelled, policy).mean()), 4),
        low_confidence_rate=round(float((confidence < policy.detection.confidence_floor).mean()), 4),
        mean_confidence=round(float(confidence.mean()), 4),
    )


def evaluate(predict: Predictor, labelled: pd.DataFrame, policy: Policy) -> Figures:
    """Run ``predict`` on the policy's inputs and score it against the label column."""
    if labelled.empty:
        return score_outputs(labelled, labelled, policy)
    outputs = predict(labelled[policy.features.inputs].reset_index(drop=True))
    return score_outputs(outputs.reset_index(drop=True), labelled.reset_index(drop=True), policy)


# A drop in performance counts as evidence only below this p-value, and only when it is
# large enough to matter: 2 points of accuracy, or a 10% larger mean absolute error.
CHANGE_P_VALUE = 1e-3
MIN_ACCURACY_DROP = 0.02
MIN_ERROR_RISE = 0.10


def performance_change(
    reference: pd.DataFrame, current: pd.DataFrame, *, label: str, prediction: str
) -> dict[str, object] | None:
    """The model's realised figure on the current labelled rows against the reference's own.

    SOP stage: investigate (concept drift). With labels in both tables, a significant drop
    is a failure whether or not any input moved: the relation between inputs and labels
    changed. Classifiers (0/1 or boolean labels; decisions 0/1 or scores, >= 0.5 selected)
    are judged on accuracy with a one-sided two-proportion z-test; regressors on the mean
    absolute error with a one-sided Welch t-test on the absolute errors.

    Returns:
        None when a table has no labelled rows; else ``metric`` (``accuracy`` or ``mae``),
        ``reference``, ``current``, ``change`` (current - reference), ``p_value``, ``rows``
        and ``significant``.
    """
    from scipy import stats

    from firebreak.detection.fairness import FairnessInputError, decisions

    ref = reference[[label, prediction]].dropna()
    cur = current[[label, prediction]].dropna()
    if ref.empty or cur.empty:
        return None
    try:
        ref_y, cur_y = decisions(ref[label], "label"), decisions(cur[label], "label")
        ref_p, cur_p = decisions(ref[prediction]), decisions(cur[prediction])
    except FairnessInputError:  # labels that are not 0/1: a regressor
        ref_err = np.abs(ref[prediction].to_numpy(dtype=float) - ref[label].to_numpy(dtype=float))
        cur_err = np.abs(cur[prediction].to_numpy(dtype=float) - cur[label].to_numpy(dtype=float))
        before, after = float(ref_err.mean()), float(cur_err.mean())
        p_value = float(stats.ttest_ind(cur_err, ref_err, equal_var=False, alternative="greater").pvalue)
        significant = p_value < CHANGE_P_VALUE and after >= (1 + MIN_ERROR_RISE) * before
        metric = "mae"
    else:
        ref_ok, cur_ok = ref_y == ref_p, cur_y == cur_p
        before, after = float(ref_ok.mean()), float(cur_ok.mean())
        pooled = (ref_ok.sum() + cur_ok.sum()) / (len(ref_ok) + len(cur_ok))
        se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / len(ref_ok) + 1 / len(cur_ok)))
        p_value = float(stats.norm.sf((before - after) / se))
        significant = p_value < CHANGE_P_VALUE and before - after >= MIN_ACCURACY_DROP
        metric = "accuracy"
    return {
        "metric": metric,
        "reference": round(before, 4),
        "current": round(after, 4),
        "change": round(after - before, 4),
        "p_value": p_value,
        "rows": len(cur),
        "significant": bool(significant),
    }
