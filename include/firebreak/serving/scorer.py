"""What the gateway calls to answer: a model version, the policy's heuristic, or nothing.

MLflow's pyfunc wrapper re-checks every input against the model signature on each call;
the gateway has already checked the stricter contract, so it calls the model underneath
(the ``PythonModel`` or the scikit-learn estimator or pipeline, see :func:`estimator_predict`)
directly and saves that cost. Other flavors go through ``pyfunc.predict`` unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from firebreak.policy.entry_points import resolve_entry_point
from firebreak.policy.schema import Policy
from firebreak.registry.flavors import as_frame
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version

Predict = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Scorer:
    """One way of answering, named as the prediction log and the metrics name it."""

    name: str  # the route label: champion | fallback_model | heuristic
    version: str  # model version, or "heuristic"
    predict: Predict


def model_scorer(registry: Registry, version: Version, policy: Policy, *, name: str) -> Scorer:
    """Load ``version`` and return its fastest faithful predict."""
    from firebreak.registry import own_models

    pyfunc = registry.load(version)
    output = policy.features.output
    raw: Any
    try:
        raw = own_models.python_model(pyfunc)
    except Exception:  # noqa: BLE001 — MLflow raises MlflowException for non-PythonModel flavors
        raw = None
    if raw is not None:
        python_model = raw

        def predict(frame: pd.DataFrame) -> pd.DataFrame:
            return as_frame(python_model.predict(None, frame), output, frame.index)

        return Scorer(name, version.version, predict)
    try:
        estimator = pyfunc.get_raw_model()
    except Exception:  # noqa: BLE001 — flavors without a raw model
        estimator = None
    if estimator is not None and hasattr(estimator, "predict"):
        return Scorer(name, version.version, estimator_predict(estimator, policy))

    def predict_pyfunc(frame: pd.DataFrame) -> pd.DataFrame:
        return as_frame(pyfunc.predict(frame), output, frame.index)

    return Scorer(name, version.version, predict_pyfunc)


def estimator_predict(estimator: Any, policy: Policy) -> Predict:
    """Score a scikit-learn estimator or pipeline on the inputs it was fitted on, with confidence.

    SOP stage: serving (what the champion, challenger and fallback answer). Two paths:

    * a plain estimator fitted on numeric columns only gets a float array in its fitted
      column order: it skips scikit-learn's per-call checks of names and finiteness, which
      the contract has already made (finite, typed, present);
    * anything else (a ``Pipeline`` or ``ColumnTransformer``, or string categoricals among
      the fitted columns) gets the frame itself, columns in fitted order, exactly as it was
      fitted: a float array would fail on ``could not convert string to float``, and a
      ``ColumnTransformer`` selects its columns by name.

    A classifier with ``predict_proba`` also answers the policy's confidence column: the
    probability of the class it predicted (what the breaker's confidence floor judges).
    """
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    output, confidence = policy.features.output, policy.features.confidence
    names = [str(c) for c in getattr(estimator, "feature_names_in_", policy.features.inputs)]
    numeric = set(policy.features.numeric)
    as_array = all(c in numeric for c in names) and not isinstance(estimator, Pipeline | ColumnTransformer)
    proba = estimator.predict_proba if hasattr(estimator, "predict_proba") else None
    classes = np.asarray(getattr(estimator, "classes_", []))

    def inputs(frame: pd.DataFrame) -> Any:
        if as_array:
            return np.column_stack([frame[c].to_numpy(dtype=float) for c in names])
        return frame[names]

    def predict(frame: pd.DataFrame) -> pd.DataFrame:
        x = inputs(frame)
        with sklearn.config_context(assume_finite=True), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            answer = as_frame(estimator.predict(x), output, frame.index)
            if proba is not None and confidence not in answer.columns:
                answer[confidence] = _predicted_class_probability(proba(x), classes, answer[output].to_numpy())
        return answer

    return predict


def _predicted_class_probability(probabilities: np.ndarray, classes: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per row, the probability of the class the model predicted (the highest one when it cannot be matched)."""
    if len(classes) == probabilities.shape[1]:
        position = np.searchsorted(classes, predicted)  # scikit-learn keeps classes_ sorted
        position = np.clip(position, 0, len(classes) - 1)
        if (classes[position] == predicted).all():
            return probabilities[np.arange(len(predicted)), position]
    return probabilities.max(axis=1)


def heuristic_scorer(policy: Policy, settings: Settings) -> Scorer | None:
    """The policy's heuristic fallback (``containment.heuristic``), when it names one."""
    if not policy.containment.heuristic:
        return None
    function = resolve_entry_point(policy.containment.heuristic)
    output = policy.features.output

    def predict(frame: pd.DataFrame) -> pd.DataFrame:
        return as_frame(function(frame, settings), output, frame.index)

    return Scorer("heuristic", "heuristic", predict)
