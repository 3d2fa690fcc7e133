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

__all__ = ["Figures", "Predictor", "evaluate", "sanity_violations", "score_outputs"]

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
