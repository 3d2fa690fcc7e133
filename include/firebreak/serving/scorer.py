"""What the gateway calls to answer: a model version, the policy's heuristic, or nothing.

MLflow's pyfunc wrapper re-checks every input against the model signature on each call;
the gateway has already checked the stricter contract, so it calls the model underneath
(the ``PythonModel`` or the scikit-learn estimator) directly and saves that cost. Other
flavors go through ``pyfunc.predict`` unchanged.
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
    pyfunc = registry.load(version)
    output = policy.features.output
    inputs = [*policy.features.numeric, *policy.features.categorical]
    raw: Any
    try:
        raw = pyfunc.unwrap_python_model()
    except Exception:  # noqa: BLE001 — MLflow raises MlflowException for non-PythonModel flavors
        raw = None
    if raw is not None:
        python_model = raw

        def predict(frame: pd.DataFrame) -> pd.DataFrame:
            return _as_frame(python_model.predict(None, frame), output, frame.index)

        return Scorer(name, version.version, predict)
    try:
        estimator = pyfunc.get_raw_model()
    except Exception:  # noqa: BLE001 — flavors without a raw model
        estimator = None
    if estimator is not None and hasattr(estimator, "predict"):
        import sklearn

        names = list(getattr(estimator, "feature_names_in_", inputs))

        def predict_raw(frame: pd.DataFrame) -> pd.DataFrame:
            # A float array in the fitted column order skips scikit-learn's per-call checks of
            # names and finiteness, which the contract has already made (finite, typed, present).
            values = np.column_stack([frame[c].to_numpy(dtype=float) for c in names])
            with sklearn.config_context(assume_finite=True), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return _as_frame(estimator.predict(values), output, frame.index)

        return Scorer(name, version.version, predict_raw)

    def predict_pyfunc(frame: pd.DataFrame) -> pd.DataFrame:
        return _as_frame(pyfunc.predict(frame), output, frame.index)

    return Scorer(name, version.version, predict_pyfunc)


def heuristic_scorer(policy: Policy, settings: Settings) -> Scorer | None:
    """The policy's heuristic fallback (``containment.heuristic``), when it names one."""
    if not policy.containment.heuristic:
        return None
    function = resolve_entry_point(policy.containment.heuristic)
    output = policy.features.output

    def predict(frame: pd.DataFrame) -> pd.DataFrame:
        return _as_frame(function(frame, settings), output, frame.index)

    return Scorer("heuristic", "heuristic", predict)


def _as_frame(result: Any, output: str, index: pd.Index) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame(output)
    return pd.DataFrame({output: np.asarray(result).reshape(len(index), -1)[:, 0]}, index=index)
