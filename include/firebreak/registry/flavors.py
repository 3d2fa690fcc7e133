"""How a registered model answers, whatever flavor it was logged with: one frame of outputs.

Every check that scores a model version in batch (golden set, gate, last-known-good,
fallback, shadow audit, onboarding) needs the same thing: the policy's output column, its
confidence column and, for a classifier, the probability of the positive class
(:data:`firebreak.detection.performance.SCORE`, which AUC and log-loss read). Firebreak's own
models are pyfunc ``PythonModel`` objects that already answer a frame; a team's model is
usually a scikit-learn estimator or pipeline logged with MLflow's sklearn flavor, whose
pyfunc ``predict`` returns bare labels. This module is the one place that tells them apart.

A scikit-learn model is scored as it was fitted: the frame itself, columns in fitted
order (a pipeline with a ``ColumnTransformer`` selects its columns by name and encodes its
string categoricals itself), and ``predict_proba`` gives the confidence (the probability of
the class it predicted).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from firebreak.errors import RegistryError
from firebreak.quiet_import import import_quietly

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

    from firebreak.policy.schema import Policy

Predict = Callable[[pd.DataFrame], pd.DataFrame]
# The probability of the positive class (the last of a binary classifier's sorted classes),
# beside the decision, in a model's outputs: AUC and log-loss read it (detection.performance).
SCORE = "firebreak_positive_score"
# Module roots whose types a refitted scikit-learn model may carry when Firebreak logs it with
# skops: scikit-learn's own estimators and the array types they hold.
TRUSTED_ROOTS = ("sklearn", "numpy", "scipy")


def is_sklearn_model(model: Any) -> bool:
    """A scikit-learn estimator or pipeline (anything with ``fit``, ``predict`` and ``get_params``)."""
    from mlflow.pyfunc import PythonModel

    if isinstance(model, PythonModel):
        return False
    return all(callable(getattr(model, name, None)) for name in ("fit", "predict", "get_params"))


def sklearn_estimator(pyfunc: PyFuncModel) -> Any | None:
    """The estimator under a version logged with MLflow's sklearn flavor, else None."""
    if "sklearn" not in (pyfunc.metadata.flavors or {}):
        return None
    return pyfunc.get_raw_model()


def version_predictor(pyfunc: PyFuncModel, policy: Policy) -> Predict:
    """A loaded version's answers as a frame: the output, the confidence, the positive score."""
    estimator = sklearn_estimator(pyfunc)
    if estimator is not None:
        return estimator_predictor(estimator, policy)
    output = policy.features.output
    return lambda frame: as_frame(pyfunc.predict(frame), output, frame.index)


def object_predictor(model: Any, policy: Policy) -> Predict:
    """An in-memory model's answers (a candidate before it is registered): PythonModel or scikit-learn."""
    if is_sklearn_model(model):
        return estimator_predictor(model, policy)
    output = policy.features.output
    return lambda frame: as_frame(model.predict(None, frame), output, frame.index)


def estimator_predictor(estimator: Any, policy: Policy) -> Predict:
    """Score a scikit-learn estimator or pipeline on the columns it was fitted on, with confidence."""
    features = policy.features
    names = [str(c) for c in getattr(estimator, "feature_names_in_", features.inputs)]
    proba = getattr(estimator, "predict_proba", None)
    classes = np.asarray(getattr(estimator, "classes_", []))

    def predict(frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise RegistryError(f"the model was fitted on columns {missing} that the inputs lack")
        inputs = frame[names]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            answer = as_frame(estimator.predict(inputs), features.output, frame.index)
            if callable(proba) and len(classes) >= 2:
                probabilities = np.asarray(proba(inputs), dtype=float)
                answer[features.confidence] = predicted_class_probability(
                    probabilities, classes, answer[features.output].to_numpy()
                )
                if len(classes) == 2:
                    answer[SCORE] = probabilities[:, 1]  # classes_ are sorted: the last is the positive class
        return answer

    return predict


def predicted_class_probability(probabilities: np.ndarray, classes: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per row, the probability of the class the model predicted (the highest one when it cannot be matched)."""
    if len(classes) == probabilities.shape[1]:
        position = np.clip(np.searchsorted(classes, predicted), 0, len(classes) - 1)  # classes_ are sorted
        if (classes[position] == predicted).all():
            return np.asarray(probabilities[np.arange(len(predicted)), position])
    return np.asarray(probabilities.max(axis=1))


def as_frame(result: Any, output: str, index: pd.Index) -> pd.DataFrame:
    """A model's raw answer as a frame on the inputs' index: a frame (or one record per row) as
    it is; a bare series, array or list (a team's pyfunc, MLflow's sklearn flavor) as the
    policy's output column."""
    if isinstance(result, pd.DataFrame):
        return result if len(result) != len(index) or result.index.equals(index) else result.set_axis(index)
    if isinstance(result, pd.Series):
        return pd.DataFrame({output: result.to_numpy()}, index=index)
    if isinstance(result, list) and result and all(isinstance(row, dict) for row in result):
        return pd.DataFrame(result, index=index if len(result) == len(index) else None)
    return pd.DataFrame({output: np.asarray(result).reshape(len(index), -1)[:, 0]}, index=index)


def foreign_types(found: list[str], also: tuple[str, ...] = ()) -> list[str]:
    """The names in ``found`` (skops' untrusted types) Firebreak does not trust: outside
    scikit-learn, NumPy and SciPy, and not in ``also`` (names a model's own code vouches for)."""
    return sorted(t for t in found if t.split(".", 1)[0] not in TRUSTED_ROOTS and t not in also)


def skops_io() -> ModuleType:
    """``skops.io``, imported without its import-time warnings (:mod:`firebreak.quiet_import`); every
    Firebreak use of skops goes through here. MLflow's scikit-learn flavor imports skops too:
    importing it here first (:func:`firebreak.registry.verification.load_verified`) keeps those
    loads quiet as well."""
    return import_quietly("skops.io")


def trusted_types(estimator: Any) -> list[str]:
    """The types skops must be told to trust to load ``estimator`` back, computed from the fitted object.

    MLflow 3.17 saves scikit-learn models with skops and refuses, at log time, a model whose
    types skops does not trust by default (tree predictors, for one). A model Firebreak
    refits is a clone of a scikit-learn champion, so its types are scikit-learn's (and the
    arrays they hold); anything else is refused rather than trusted blindly.

    Raises:
        RegistryError: The estimator holds a type outside scikit-learn, NumPy and SciPy.
    """
    sio = skops_io()
    found = sorted(sio.get_untrusted_types(data=sio.dumps(estimator)))
    foreign = foreign_types(found)
    if foreign:
        raise RegistryError(f"will not log a model holding types outside scikit-learn as trusted: {foreign}")
    return found


def pip_requirements() -> list[str]:
    """What loading a scikit-learn model Firebreak logged needs (explicit: inferring them costs ~40 s)."""
    import sklearn
    import skops

    return [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"]
