"""What a reference table says about a model: its task, its metric, its inputs, a golden slice.

SOP stage: before any incident (onboarding). Pure functions on frames, so a reviewer can
read each decision and a test can pin it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firebreak.onboarding.errors import OnboardingError

# An integer label with at most this many distinct values is a class, not a quantity.
MAX_CLASSES = 20
# The golden set: this share of the reference, at most this many rows, at least this many.
GOLDEN_SHARE = 0.2
GOLDEN_MAX_ROWS = 2000
GOLDEN_MIN_ROWS = 30
# Regression labels are stratified by this many quantile bins.
REGRESSION_BINS = 5


@dataclass(frozen=True)
class Task:
    """The model's task and the gate metric onboarding picks for it, each with why."""

    task: str  # classification | regression
    why: str
    metric: str
    metric_why: str
    classes: list[Any]  # sorted (as scikit-learn sorts classes_); empty for a regression


def infer_task(label: pd.Series, *, task: str | None = None, metric: str | None = None) -> Task:
    """Classification or regression from the label column (or as stated), and a gate metric for it.

    Booleans, text and categories are classes; whole numbers with at most :data:`MAX_CLASSES`
    distinct values are classes; anything else is a quantity. A binary classifier is gated on
    AUC (threshold-free: a drift retrain that shifts scores is judged on ranking), several
    classes on accuracy, a regression on MAE.

    Raises:
        OnboardingError: The label has no values, or a stated metric does not fit the task.
    """
    from firebreak.policy.metrics import TASK_METRICS

    values = label.dropna()
    if values.empty:
        raise OnboardingError(f"label column {label.name!r} has no values")
    distinct = values.nunique()
    if task is not None:
        why = "as stated (--task)"
    elif pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        task, why = "classification", f"the label holds {distinct} distinct non-numeric values"
    elif _integral(values) and distinct <= MAX_CLASSES:
        task, why = "classification", f"the label holds {distinct} distinct whole numbers"
    else:
        task, why = "regression", f"the label holds {distinct} distinct numbers"
    classes = _sorted(values.unique().tolist()) if task == "classification" else []
    if metric is not None:
        if metric not in TASK_METRICS[task]:
            raise OnboardingError(f"--metric {metric} does not apply to a {task} model (use {TASK_METRICS[task]})")
        if metric in _BINARY_METRICS and len(classes) != 2:
            raise OnboardingError(
                f"--metric {metric} needs two classes; label column {label.name!r} holds {len(classes)} "
                "(use accuracy or f1)"
            )
        metric_why = "as stated (--metric)"
    elif task == "classification" and len(classes) == 2:
        metric, metric_why = "auc", "binary classifier: AUC judges the ranking whatever the threshold"
    elif task == "classification":
        metric, metric_why = "accuracy", f"{len(classes)} classes: accuracy (AUC and log-loss need two)"
    else:
        metric, metric_why = "mae", "regression: MAE, in the label's own units"
    return Task(task, why, metric, metric_why, classes)


# Metrics computed from one class's score: undefined for several classes.
_BINARY_METRICS = frozenset({"auc", "log_loss"})


def _integral(values: pd.Series) -> bool:
    array = values.to_numpy(dtype=float)
    return bool(np.all(array == np.round(array)))


def _sorted(values: list[Any]) -> list[Any]:
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    try:
        return sorted(plain)
    except TypeError:
        return sorted(plain, key=str)


def split_inputs(reference: pd.DataFrame, inputs: list[str]) -> tuple[list[str], list[str]]:
    """The inputs split into numeric and categorical columns (booleans, text and categories are categorical)."""
    numeric, categorical = [], []
    for column in inputs:
        series = reference[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            numeric.append(column)
        else:
            categorical.append(column)
    return numeric, categorical


def split_golden(reference: pd.DataFrame, label: str, task: str, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A held-out golden slice (stratified by label) and the rest, which is what a refit trains on.

    :data:`GOLDEN_SHARE` of the rows, at most :data:`GOLDEN_MAX_ROWS`; every class (or
    label quantile bin for a regression) keeps its share, and a class with a single row
    stays in the training rows. Deterministic for a given ``seed``.

    Raises:
        OnboardingError: Too few rows to hold out :data:`GOLDEN_MIN_ROWS` and still train.
    """
    rows = len(reference)
    size = min(GOLDEN_MAX_ROWS, int(round(rows * GOLDEN_SHARE)))
    if size < GOLDEN_MIN_ROWS or rows - size < GOLDEN_MIN_ROWS:
        raise OnboardingError(
            f"the reference has {rows} labelled rows; at least {2 * GOLDEN_MIN_ROWS / GOLDEN_SHARE:.0f} "
            f"are needed to hold out a golden set of {GOLDEN_MIN_ROWS} and keep the rest to train on"
        )
    if task == "classification":
        strata = reference[label].astype(str)
    else:
        strata = pd.qcut(reference[label].rank(method="first"), REGRESSION_BINS, labels=False).astype(str)
    rng = np.random.default_rng(seed)
    chosen: list[Any] = []
    share = size / rows
    for _, part in reference.groupby(strata, sort=True):
        take = int(round(len(part) * share))
        if len(part) > 1:
            take = max(1, min(take, len(part) - 1))
        else:
            take = 0
        chosen.extend(rng.choice(part.index.to_numpy(), size=take, replace=False).tolist())
    golden = reference.loc[sorted(chosen)]
    rest = reference.drop(index=golden.index)
    return golden.reset_index(drop=True), rest.reset_index(drop=True)


def confidence_floor(confidence: np.ndarray | None) -> tuple[float, str]:
    """The policy's confidence floor from the champion's confidence on the reference.

    The 5th percentile, rounded down to two decimals: about one answer in twenty under it on
    data like the reference, so a rate far above that is news. No confidence: 0 (no signal).
    """
    if confidence is None or len(confidence) == 0:
        return 0.0, "the model gives no confidence (no predict_proba): no low-confidence signal"
    floor = float(np.floor(np.quantile(confidence, 0.05) * 100) / 100)
    return floor, "5th percentile of the champion's confidence on the reference"
