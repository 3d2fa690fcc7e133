"""Figures for a model on labelled data: the golden dataset or recent labelled traffic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from firebreak.errors import ConfigurationError
from firebreak.policy.schema import Policy
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version

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


def load_golden(settings: Settings, policy: Policy) -> pd.DataFrame:
    """The model's golden dataset (CSV or Parquet, versioned under include/golden/)."""
    path = settings.resolve(policy.golden)
    if not path.is_file():
        raise ConfigurationError(f"golden dataset {path} for model {policy.model!r} does not exist")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def evaluate_golden(registry: Registry, version: Version, settings: Settings, policy: Policy) -> dict[str, Any]:
    """A version on the golden dataset against the baseline recorded for it; ``regressed`` past the tolerance."""
    baseline = registry.golden_baseline(version)
    golden = load_golden(settings, policy)
    figures = evaluate(registry.load(version).predict, golden, policy)
    limit = baseline.get("mae", float("inf")) * (1 + policy.detection.golden_tolerance)
    return {
        "version": version.version,
        "figures": figures.to_dict(),
        "baseline": baseline,
        "limit_mae": limit,
        "regressed": bool(figures.mae > limit),
        "golden_rows": len(golden),
    }
