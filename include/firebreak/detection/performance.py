"""Model figures on labelled data: error, sanity-floor breaches and confidence of a model's outputs.

What the detection, investigation and verification stages measure a model by, on any
labelled rows (the golden dataset, recent labelled traffic, one protected group's rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from firebreak.policy.schema import Policy

__all__ = ["Figures", "Predictor", "evaluate", "impact", "reported_figures", "sanity_violations", "score_outputs"]

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


# -- what fits the task: the figures people read, and the harm in the model's terms -----------

# Which labelled figures mean something for the policy's task, and their names for people.
# A 0/1 decision has no percentage error, and a classifier has no sanity floor; a regressor's
# floor-breach figure exists only where the policy sets a floor.
_FIGURES = {
    "regression": [
        ("mae", "MAE", "number"),
        ("mape", "MAPE", "share"),
        ("sanity_violation_rate", "below sanity bound", "share"),
        ("low_confidence_rate", "low confidence", "share"),
    ],
    "classification": [
        ("mae", "error rate", "share"),
        ("low_confidence_rate", "low confidence", "share"),
        ("mean_confidence", "mean confidence", "number"),
    ],
}


def reported_figures(policy: Policy) -> list[tuple[str, str, str]]:
    """The :class:`Figures` fields worth showing for this model: (field, name, format) in order.

    Format is ``number`` or ``share``. SOP stage *Learn*: the post-mortem and the console
    show only the figures that fit the model's task.
    """
    figures = _FIGURES[policy.task]
    if policy.detection.output_floor is None:
        figures = [f for f in figures if f[0] != "sanity_violation_rate"]
    return figures


def impact(window: pd.DataFrame, labelled: pd.DataFrame, policy: Policy) -> list[dict[str, object]]:
    """The harm a tabular model did in its own terms, from the answers users got.

    SOP stage *Learn*: the post-mortem's impact section. ``window`` is the triage window of
    the prediction log (what the model answered), ``labelled`` the same rows where labels
    arrived. Each item is ``{"key", "label", "value", "of", "format"}`` (format ``count``,
    ``money`` or ``share``). A regressor with a sanity floor counts the answers under the
    floor and the money between them and the floor; a classifier counts the decisions the
    labels prove wrong, and in the worst protected group where the policy names one.
    """
    subject = policy.impact.subject
    served = window[window["route"] == "champion"] if "route" in window.columns else window
    items: list[dict[str, object]] = [
        {
            "key": "answered",
            "label": f"{subject} answered by the model in the triage window",
            "value": len(served),
            "format": "count",
        }
    ]
    if served.empty:
        return items
    confidence = policy.features.confidence
    if confidence in served.columns:
        low = int((served[confidence].astype(float) < policy.detection.confidence_floor).sum())
        items.append(
            {
                "key": "low_confidence",
                "label": f"{subject} answered under the confidence floor",
                "value": low,
                "of": len(served),
                "format": "count",
            }
        )
    if policy.task == "regression":
        items += _regression_impact(served, policy)
    else:
        served_labelled = labelled[labelled["route"] == "champion"] if "route" in labelled.columns else labelled
        items += _classification_impact(served_labelled, policy)
    return items


def _regression_impact(served: pd.DataFrame, policy: Policy) -> list[dict[str, object]]:
    floor = policy.detection.output_floor
    if floor is None or floor.relative_to not in served.columns or policy.features.output not in served.columns:
        return []
    output = served[policy.features.output].to_numpy(dtype=float)
    bound = served[floor.relative_to].to_numpy(dtype=float) * floor.min_ratio
    below = output < bound
    subject = policy.impact.subject
    return [
        {
            "key": "below_floor",
            "label": f"{subject} answered below the sanity floor ({policy.features.output} under "
            f"{floor.min_ratio:g} x {floor.relative_to})",
            "value": int(below.sum()),
            "of": len(served),
            "format": "count",
        },
        {
            "key": "money_at_stake",
            "label": "money at stake: the gap between those answers and the floor"
            + ("" if policy.impact.unit else " (in the output's units)"),
            "value": round(float((bound - output)[below].sum()), 2),
            "format": "money",
            "unit": policy.impact.unit,
        },
    ]


def _classification_impact(labelled: pd.DataFrame, policy: Policy) -> list[dict[str, object]]:
    label, output = policy.features.label, policy.features.output
    if labelled.empty or label not in labelled.columns or output not in labelled.columns:
        return []
    truth = labelled[label].to_numpy(dtype=float) >= 0.5
    decided = labelled[output].to_numpy(dtype=float) >= 0.5
    subject = policy.impact.subject
    wrongly_declined = ~decided & truth
    items: list[dict[str, object]] = [
        {
            "key": "wrongly_declined",
            "label": f"{subject} wrongly declined (declined, and the outcome proved them good)",
            "value": int(wrongly_declined.sum()),
            "of": len(labelled),
            "format": "count",
        },
        {
            "key": "wrongly_approved",
            "label": f"{subject} wrongly approved (approved, and the outcome proved them bad)",
            "value": int((decided & ~truth).sum()),
            "of": len(labelled),
            "format": "count",
        },
    ]
    attribute = policy.fairness.protected_attribute if policy.fairness else None
    if attribute and attribute in labelled.columns and wrongly_declined.any():
        groups = labelled[attribute].astype(str)
        rates = pd.Series(wrongly_declined, index=labelled.index).groupby(groups).mean()
        worst = str(rates.idxmax())
        in_worst = groups == worst
        items.append(
            {
                "key": "wrongly_declined_worst_group",
                "label": f"wrongly declined in the group hit hardest ({attribute} {worst})",
                "value": int(wrongly_declined[in_worst.to_numpy()].sum()),
                "of": int(in_worst.sum()),
                "format": "count",
            }
        )
    return items
