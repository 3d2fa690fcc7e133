"""Performance before labels arrive: confidence-based (CBPE) and direct loss (DLE) estimates.

SOP stages: triage and investigate (impact before labels). When labels lag, the harm a
drift does is the performance it costs, and that can be estimated from the model's own
outputs on the current rows, calibrated on the reference rows where labels exist.

* **CBPE** (classifiers), after NannyML's *Confidence-based Performance Estimation*
  (NannyML documentation, "How it works: Performance Estimation", CBPE; Kivimäki et al.,
  "Confidence-based performance estimation under covariate shift", NannyML 2022). If the
  scores are calibrated, P(correct | score) is the score of the predicted class, so the
  expected accuracy of a set of rows is the mean of ``p`` where the decision is 1 and
  ``1 - p`` where it is 0. Scores are calibrated on the reference first with isotonic
  regression (NannyML calibrates when the reference shows them uncalibrated; isotonic is
  its default calibrator). Holds under covariate shift (P(y | x) unchanged), not under
  concept drift, which is what labels are for.
* **DLE** (regressors), after NannyML's *Direct Loss Estimation* (same documentation,
  DLE): a second model (the "nanny" model) learns the absolute error of the monitored
  model from its inputs and prediction on the reference; its mean prediction on the
  current rows is the expected MAE. NannyML fits LightGBM; scikit-learn's
  ``HistGradientBoostingRegressor`` (the same histogram gradient boosting) is used here.

Why not NannyML itself: version 0.13.1 would add about thirty packages to the lock
(FLAML, LightGBM, XGBoost with NVIDIA's NCCL, kaleido, gcsfs, s3fs, a telemetry client);
these two estimators are about a hundred lines, tested against the published method
(``tests/unit/detection/test_estimation.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["estimate_accuracy", "estimate_mae", "isotonic_fit"]


def isotonic_fit(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of ``targets`` on ``scores`` (pool adjacent violators).

    Returns:
        The block edges (score values, increasing) and their fitted values; apply with
        :func:`numpy.interp` (constant beyond the ends, as scikit-learn's ``clip``).
    """
    # Tied scores get one value: fit the mean target per distinct score, weighted by its rows.
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=targets.astype(float))
    return values, _pool_adjacent_violators(sums / counts, counts.astype(float))


def _pool_adjacent_violators(means: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The increasing weighted least-squares fit to ``means``: each value joins the block before
    it while that block's mean is higher, and the merged block takes their weighted mean.

    Linear in the values (each merge removes a block). Here rather than scipy.optimize's
    ``isotonic_regression`` (the same fit, to rounding): importing scipy.optimize costs about
    0.3 s, which a triage from the shell would pay on every run, and this loop takes about
    20 ms on 30,000 distinct scores. It is a Python loop: about 0.7 s per million distinct
    scores, where scipy's compiled one takes 30 ms.
    """
    block_means: list[float] = []
    block_weights: list[float] = []
    block_sizes: list[int] = []
    for value, weight in zip(means.tolist(), weights.tolist(), strict=True):
        size = 1
        while block_means and block_means[-1] > value:
            before_weight = block_weights.pop()
            value = (block_means.pop() * before_weight + value * weight) / (before_weight + weight)
            weight += before_weight
            size += block_sizes.pop()
        block_means.append(value)
        block_weights.append(weight)
        block_sizes.append(size)
    return np.repeat(block_means, block_sizes)


def estimate_accuracy(
    reference_scores: np.ndarray,
    reference_correct: np.ndarray,
    current_scores: np.ndarray,
) -> dict[str, Any]:
    """CBPE: expected accuracy of the current rows from their confidence in their own decision.

    Args:
        reference_scores: Per reference row, the model's confidence in the decision it
            made (the score of the predicted class: ``p`` for a 1, ``1 - p`` for a 0).
        reference_correct: Per reference row, whether that decision was right.
        current_scores: The same confidence on the current rows.

    Returns:
        ``method`` (``CBPE``), ``metric`` (``accuracy``), ``reference`` (realised on the
        reference), ``estimate`` (current), ``change`` and ``calibration_error`` (mean
        absolute gap between the raw and the calibrated confidence on the reference: how
        far the model's own scores were from probabilities).
    """
    edges, fitted = isotonic_fit(reference_scores, reference_correct)
    calibrated_ref = np.interp(reference_scores, edges, fitted)
    calibrated_cur = np.interp(current_scores, edges, fitted)
    realised = float(np.mean(reference_correct))
    estimate = float(np.mean(calibrated_cur))
    return {
        "method": "CBPE",
        "metric": "accuracy",
        "reference": round(realised, 4),
        "estimate": round(estimate, 4),
        "change": round(estimate - realised, 4),
        "calibration_error": round(float(np.mean(np.abs(calibrated_ref - reference_scores))), 4),
        "rows": len(current_scores),
    }


def decision_confidence(scores: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Decisions (score >= threshold) and the confidence in each: ``p`` for a 1, ``1 - p`` for a 0."""
    decided = scores >= threshold
    return decided.astype(int), np.where(decided, scores, 1.0 - scores)


def estimate_mae(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: list[str],
    label: str,
    prediction: str,
    seed: int = 0,
) -> dict[str, Any] | None:
    """DLE: expected mean absolute error of the current rows, from a model of the error.

    The nanny model sees the inputs and the prediction (categorical inputs as their
    category codes) and learns ``|label - prediction|`` on the reference.

    Returns:
        None without two finite reference errors or current rows; else ``method`` (``DLE``),
        ``metric`` (``mae``), ``reference`` (realised), ``estimate``, ``change`` and ``rows``.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    def matrix(frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for name in [*features, prediction]:
            series = frame[name]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                values = series.to_numpy(dtype=float, na_value=np.nan)
                columns.append(np.where(np.isfinite(values), values, np.nan))  # the nanny takes NaN, not inf
            else:
                levels = {v: i for i, v in enumerate(sorted(reference[name].astype(str).unique()))}
                columns.append(series.astype(str).map(levels).to_numpy(dtype=float, na_value=np.nan))
        return np.column_stack(columns)

    labelled = reference.dropna(subset=[label, prediction])
    with np.errstate(over="ignore", invalid="ignore"):
        error = np.abs(labelled[label].to_numpy(dtype=float) - labelled[prediction].to_numpy(dtype=float))
    labelled, error = labelled[np.isfinite(error)], error[np.isfinite(error)]  # 1e308 - (-1e308) overflows
    if len(error) < 2 or len(current) == 0:
        return None
    nanny = HistGradientBoostingRegressor(max_iter=100, random_state=seed)
    nanny.fit(matrix(labelled), error)
    estimate = float(np.clip(nanny.predict(matrix(current)), 0, None).mean())
    realised = float(error.mean())
    return {
        "method": "DLE",
        "metric": "mae",
        "reference": round(realised, 4),
        "estimate": round(estimate, 4),
        "change": round(estimate - realised, 4),
        "rows": len(current),
    }
