"""The champion's golden baseline at onboarding: whether it can be one, and the gate's slack.

SOP stage: before any incident. The golden figure onboarding records is what the nightly
audit and the promotion gate compare every later version with, so it must mean something:

* it must be a number, and beat a constant answer on the same rows
  (:func:`~firebreak.detection.performance.constant_answer`); a baseline no better would let
  every candidate through. That almost always means the reference is not read as the model
  was trained (column order, units, codes) or ``--label`` names another column, so the
  refusal says which to check (``--allow-weak-baseline`` records it anyway, with a note);
* a champion far behind a clone of itself refitted on the reference gets a note naming the
  same suspects;
* the slack (:func:`measured_slack`): how much better the champion scores rows it was
  trained on than a clone fitted without them, which no candidate can reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.onboarding.errors import OnboardingError

if TYPE_CHECKING:
    from firebreak.detection.performance import Figures
    from firebreak.policy.schema import Policy

# Sampling noise of a golden set, in the metric's units, on top of the measured optimism of a
# champion that trained on the golden rows (:func:`measured_slack`); the whole slack when it
# cannot be measured (a model that is not scikit-learn).
GOLDEN_SLACK = 0.01
_IN_LABEL_UNITS = frozenset({"mae", "rmse"})  # no unit-free noise margin: the gate's relative limit covers it
# Said in a note, and in a refusal, when the model declares no input names of its own.
UNNAMED_INPUTS = (
    "the model names no inputs (no signature, fitted on an array), so it is given the reference's columns in "
    "the reference's order"
)


def noise(metric: str) -> float:
    """The golden set's sampling noise allowed for ``metric`` (none for a metric in the label's units)."""
    return 0.0 if metric in _IN_LABEL_UNITS else GOLDEN_SLACK


@dataclass(frozen=True)
class Refit:
    """The champion's estimator cloned and fitted on the training rows alone, scored on the golden rows."""

    figure: float | None  # None: the clone could not be fitted or could not score
    estimator: str
    failure: str = ""


def refit_figure(estimator: Any, training: pd.DataFrame, golden: pd.DataFrame, policy: Policy) -> Refit:
    from sklearn.base import clone

    from firebreak.detection.performance import evaluate
    from firebreak.registry.flavors import object_predictor

    inputs, label = policy.features.inputs, policy.features.label
    try:
        fitted = clone(estimator).fit(training[inputs], training[label])
        figure = evaluate(object_predictor(fitted, policy), golden, policy).metric(policy.gate.metric)
    except Exception as exc:  # noqa: BLE001 — the team's estimator raises what it raises: say so, go on
        return Refit(None, type(estimator).__name__, type(exc).__name__)
    return Refit(figure, type(estimator).__name__)


def baseline_notes(
    figures: Figures,
    golden: pd.DataFrame,
    policy: Policy,
    *,
    champion: str,
    refit: Refit | None,
    unnamed_inputs: bool,
    allow_weak: bool,
) -> list[str]:
    """The notes the champion's golden figures earn (see the module docstring).

    Args:
        champion: How to name it ("Loans v1").
        unnamed_inputs: The model names no inputs, so it was given the reference's column order.
        allow_weak: ``--allow-weak-baseline``: record a weak baseline with a note.

    Raises:
        OnboardingError: The figure is not a number, or it is weak and ``allow_weak`` is not set.
    """
    metric = policy.gate.metric
    value = figures.metric(metric)
    if value != value:  # NaN
        raise OnboardingError(
            f"{champion}'s {metric} on the {len(golden)} golden rows cannot be computed from its answers "
            f"(--output {policy.features.output!r}) against --label {policy.features.label!r}: a baseline that is "
            "not a number would let every check pass; pick another --metric or the right --label"
        )
    weak = _weak(value, golden, policy, champion, refit, unnamed_inputs)
    if weak and not allow_weak:
        raise OnboardingError(
            f"{weak}. Nothing was written; if that is truly how the model scores, pass --allow-weak-baseline"
        )
    if weak:
        return [f"weak baseline recorded as asked (--allow-weak-baseline): {weak}"]
    if refit is not None and refit.figure is not None and _far_behind(value, refit.figure, metric):
        return [
            f"a {refit.estimator} refitted on the reference's other rows scores {metric} {refit.figure:.4f} on the "
            f"golden rows, the champion {value:.4f}: a model trained on this kind of data does about as well; check "
            "the reference's column order, units and --label" + (f" ({UNNAMED_INPUTS})" if unnamed_inputs else "")
        ]
    return []


def _weak(
    value: float, golden: pd.DataFrame, policy: Policy, champion: str, refit: Refit | None, unnamed_inputs: bool
) -> str | None:
    """Why ``value`` is no baseline, or None when it beats a constant answer on the golden rows."""
    from firebreak.detection.performance import constant_answer, loss

    metric, label = policy.gate.metric, policy.features.label
    constant, answer = constant_answer(metric, golden[label], policy.task)
    if constant != constant or loss(metric, value) < loss(metric, constant):
        return None
    shown = f"{answer:.4g}" if isinstance(answer, float) else repr(answer)
    said = [
        f"{champion} scores {metric} {value:.4f} on the {len(golden)} golden rows of its reference, no better "
        f"than always answering {shown} ({constant:.4f})"
    ]
    if refit is not None and refit.figure is not None and refit.figure == refit.figure:
        said.append(f"a {refit.estimator} refitted on the reference's other rows scores {refit.figure:.4f} on them")
    if unnamed_inputs:
        said.append(
            f"{UNNAMED_INPUTS}; if it was trained on another order, log it with a signature "
            "(mlflow.models.infer_signature) or order the reference's columns as it was trained"
        )
    else:
        said.append(
            f"check that the reference holds what the model was trained on (the same units and codes) and that "
            f"--label {label!r} is the column it predicts"
        )
    return "; ".join(said)


def _far_behind(champion: float, refit: float, metric: str) -> bool:
    """The champion's loss is more than twice a refit's on the same golden rows (and, for a metric
    in [0, 1], at least 0.05 more): the reference does not look like what the champion learnt from."""
    from firebreak.detection.performance import loss
    from firebreak.policy.metrics import HIGHER_IS_BETTER

    if refit != refit:
        return False
    behind, ahead = loss(metric, champion), loss(metric, refit)
    return behind > 2 * ahead + noise(metric) and (metric not in HIGHER_IS_BETTER or behind - ahead >= 0.05)


def measured_slack(refit: Refit, policy: Policy, figures: Figures) -> tuple[float, str]:
    """How much better the champion scores the golden rows than a refit that never saw them, plus noise.

    The reference is usually the champion's own training data, so the champion has seen the
    golden rows and scores them better than any candidate can; the gate would refuse every
    refit. A clone of the champion fitted on the training rows alone measures that optimism.
    """
    from firebreak.detection.performance import loss

    metric = policy.gate.metric
    if refit.figure is None:
        return noise(metric), f"default: a clone could not be refitted to measure it ({refit.failure})"
    held_out, champion = refit.figure, figures.metric(metric)
    if held_out != held_out or champion != champion:  # NaN: the metric could not be computed
        return noise(metric), "default: the metric could not be computed on the golden rows"
    gap = max(0.0, loss(metric, held_out) - loss(metric, champion))
    seen = "(it saw them)" if gap > 0 else "(no better: nothing to allow for)"
    return round(gap + noise(metric), 4), (
        f"measured: a clone fitted without the golden rows scores {metric} {held_out:.4f} on them, the champion "
        f"{champion:.4f} {seen}" + (f"; plus {noise(metric)} for noise" if noise(metric) else "")
    )
