"""Retrain without a recipe: refit a clone of a scikit-learn champion on the reference plus labelled traffic.

SOP stage *Remediate* (``retrain``) for a model a team registered itself: a scikit-learn
estimator or pipeline logged with MLflow's sklearn flavor, and a policy that names no
``training.recipe``. The champion's own estimator (hyper-parameters, preprocessing,
string-categorical encoders) is cloned with ``sklearn.base.clone`` and fitted again; nothing
about the model is re-invented. What changes is the data and its weights:

* **drift** (and any class but bias): the labelled traffic of the incident's window joins
  the training dataset, and weighs as much in total as the whole dataset does, the newest
  rows most: a row ``recency_half_life_hours`` older than the newest weighs half. The old
  regime stays in (retraining on the new window only forgets it: docs/SOP.md);
* **bias**: every row weighted ``P(group) x P(label) / P(group, label)``
  (:func:`firebreak.detection.fairness.balancing_weights`), so the label is independent of
  the protected group in the weighted data.

The weights reach the final step of a pipeline as ``<step>__sample_weight``; an estimator
whose ``fit`` takes no weights is fitted unweighted, and the detail says so.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from firebreak.errors import RemediationError
from firebreak.incidents.enums import FailureClass
from firebreak.policy.schema import Policy

if TYPE_CHECKING:
    from firebreak.settings import Settings


@dataclass(frozen=True)
class Refit:
    """The refitted clone, the inputs it saw (the new version's drift reference), and what to say about it."""

    estimator: Any
    inputs: pd.DataFrame
    detail: str
    training: dict[str, Any]


def read_table(path: Any) -> pd.DataFrame:
    """A training or reference table: Parquet, CSV or JSON lines, by suffix."""
    suffix = str(path).lower()
    if suffix.endswith(".parquet"):
        return pd.read_parquet(path)
    if suffix.endswith((".jsonl", ".json")):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def training_rows(policy: Policy, settings: Settings) -> pd.DataFrame:
    """The policy's training dataset (inputs and label), checked.

    Raises:
        RemediationError: The file is missing, or lacks an input or the label.
    """
    path = settings.resolve(policy.training.dataset)
    if not path.is_file():
        raise RemediationError(f"training dataset {path} for {policy.model} does not exist")
    frame = read_table(path)
    needed = [*policy.features.inputs, policy.features.label]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise RemediationError(f"training dataset {path} lacks columns {missing}")
    return frame


def refit(
    estimator: Any,
    policy: Policy,
    dataset: pd.DataFrame,
    traffic: pd.DataFrame,
    *,
    failure_class: str | None,
) -> Refit:
    """Fit a clone of ``estimator`` on ``dataset`` plus the labelled ``traffic``, weighted for ``failure_class``.

    Raises:
        RemediationError: Nothing to train on, or (bias) the protected attribute is missing.
    """
    from sklearn.base import clone

    features = policy.features
    columns = [*features.inputs, features.label]
    labelled = traffic.dropna(subset=[features.label]) if features.label in traffic.columns else traffic.iloc[0:0]
    usable = [c for c in columns if c in labelled.columns]
    if len(usable) < len(columns):
        labelled = labelled.iloc[0:0]
    frame = pd.concat([dataset[columns], labelled[columns]], ignore_index=True)
    if frame.empty:
        raise RemediationError(
            f"no rows to refit {policy.model} on: the training dataset and labelled traffic are empty"
        )
    if failure_class == FailureClass.BIAS:
        weights, weighting = _balancing(policy, dataset, labelled, frame)
    else:
        weights, weighting = _recency(policy, len(dataset), labelled)
    model = clone(estimator)
    fitted_with = _fit(model, frame[features.inputs], frame[features.label], weights)
    detail = (
        f"refitted a clone of the champion's {type(estimator).__name__} on {len(dataset)} reference rows "
        f"+ {len(labelled)} labelled traffic rows ({weighting}{'' if fitted_with else '; fit takes no weights: unweighted'})"
    )
    training = {
        "reference_rows": len(dataset),
        "traffic_rows": len(labelled),
        "weighting": weighting,
        "weighted": fitted_with,
    }
    return Refit(model, frame[features.inputs], detail, training)


def _recency(policy: Policy, reference_rows: int, labelled: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Reference rows weigh 1; the traffic weighs as much as the reference in total, halving with age."""
    base = np.ones(reference_rows)
    if labelled.empty:
        return base, "no labelled traffic: reference only"
    half_life = policy.training.recency_half_life_hours
    if "ts" in labelled.columns:
        ts = pd.to_datetime(labelled["ts"], utc=True)
        age_hours = ((ts.max() - ts).dt.total_seconds() / 3600).to_numpy(dtype=float)
    else:
        age_hours = np.zeros(len(labelled))
    decay = np.power(0.5, age_hours / half_life)
    scale = max(1.0, reference_rows / len(labelled))
    return np.concatenate([base, scale * decay]), f"recency-weighted traffic, half-life {half_life:g} h"


def _balancing(
    policy: Policy, dataset: pd.DataFrame, labelled: pd.DataFrame, frame: pd.DataFrame
) -> tuple[np.ndarray, str]:
    from firebreak.detection.fairness import balancing_weights

    if policy.fairness is None:
        raise RemediationError(f"policy of {policy.model} names no protected attribute (fairness:) to re-weight by")
    attribute = policy.fairness.protected_attribute
    groups = [part[attribute] for part in (dataset, labelled) if attribute in part.columns and not part.empty]
    if sum(len(g) for g in groups) != len(frame):
        raise RemediationError(f"protected attribute {attribute!r} is missing from the training rows of {policy.model}")
    weights = balancing_weights(pd.concat(groups, ignore_index=True), frame[policy.features.label])
    return weights, f"group x label re-weighted by {attribute}"


def _fit(model: Any, x: pd.DataFrame, y: pd.Series, weights: np.ndarray) -> bool:
    """Fit with sample weights where the (final) estimator takes them; returns whether it did."""
    final, key = model, "sample_weight"
    steps = getattr(model, "steps", None)
    if steps:
        name, final = steps[-1]
        key = f"{name}__sample_weight"
    fit = getattr(final, "fit", None)
    if fit is not None and "sample_weight" in inspect.signature(fit).parameters:
        model.fit(x, y, **{key: weights})
        return True
    model.fit(x, y)
    return False
