"""Fairness across the groups of a protected attribute: the one home for these figures.

Two kinds of model, two sets of figures:

* a **classifier** (binary output, binary label; the policy's ``fairness:`` sets
  ``min_selection_rate_ratio`` / ``max_equalized_odds_difference``): per-group selection
  rate, true- and false-positive rates and accuracy computed with fairlearn's
  ``MetricFrame``; the selection-rate ratio (lowest group rate / highest: the four-fifths
  rule) and the equalized-odds difference (largest gap in TPR or FPR between groups);
* a **regressor**: per-group error (MAPE), worst group's error over the best group's.

The worst group is named in both. ``balancing_weights`` is the remediation: sample weights
that make the label independent of the group in the weighted training data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from firebreak.errors import FirebreakError
from firebreak.policy.schema import Policy


class FairnessInputError(FirebreakError):
    """The data cannot be scored for fairness as given (missing column, non-binary values)."""


@dataclass(frozen=True)
class FairnessResult:
    """Per-group figures and the verdict against the policy; ``breached`` None: not applicable."""

    attribute: str
    breached: bool | None
    summary: str
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    worst: str | None = None
    best: str | None = None
    selection_rate_ratio: float | None = None
    equalized_odds_difference: float | None = None
    error_ratio: float | None = None
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_classification(policy: Policy) -> bool:
    """The policy asks for classification fairness (selection rates, equalized odds)."""
    rules = policy.fairness
    return rules is not None and (
        rules.min_selection_rate_ratio is not None or rules.max_equalized_odds_difference is not None
    )


def _binary(values: pd.Series, name: str) -> np.ndarray:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(array, [0.0, 1.0])
    if bad.any():
        raise FairnessInputError(f"{name} must be 0 or 1 for fairness figures; {int(bad.sum())} rows are not")
    return array.astype(int)


def classification_fairness(
    y_true: pd.Series,
    y_pred: pd.Series,
    groups: pd.Series,
    *,
    attribute: str,
    min_group_rows: int = 30,
    min_selection_rate_ratio: float | None = 0.8,
    max_equalized_odds_difference: float | None = None,
) -> FairnessResult:
    """Selection-rate ratio and equalized-odds difference across ``groups`` (fairlearn ``MetricFrame``).

    Groups with fewer than ``min_group_rows`` rows are left out (their rates are noise).
    The worst group is the one with the lowest selection rate.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    if not (len(y_true) == len(y_pred) == len(groups)):
        raise FairnessInputError(
            f"labels ({len(y_true)}), predictions ({len(y_pred)}) and groups ({len(groups)}) differ in length"
        )
    truth = _binary(y_true, "the label")
    predicted = _binary(y_pred, "the prediction")
    sensitive = groups.astype(str).to_numpy()
    sizes = pd.Series(sensitive).value_counts()
    kept = np.isin(sensitive, sizes[sizes >= min_group_rows].index.to_numpy())
    if len(sizes[sizes >= min_group_rows]) < 2:
        return FairnessResult(
            attribute,
            None,
            f"fewer than two groups of '{attribute}' with {min_group_rows} labelled rows",
            rows=len(truth),
        )
    # One row per (group, label, prediction) cell weighted by its count: the same figures as
    # row by row (every metric here is a weighted mean), at a cost that does not grow with the rows.
    cells = (
        pd.DataFrame({"group": sensitive[kept], "y_true": truth[kept], "y_pred": predicted[kept]})
        .value_counts()
        .reset_index(name="n")
    )
    weights = cells["n"].to_numpy(dtype=float)
    metrics = {
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "accuracy": accuracy_score,
    }
    frame = MetricFrame(
        metrics=metrics,
        y_true=cells["y_true"].to_numpy(),
        y_pred=cells["y_pred"].to_numpy(),
        sensitive_features=pd.Series(cells["group"].to_numpy(), name=attribute),
        sample_params={name: {"sample_weight": weights} for name in metrics},
    )
    by_group = frame.by_group.copy()
    by_group.insert(0, "rows", cells.groupby("group")["n"].sum())
    groups_out = {
        str(g): {k: (int(v) if k == "rows" else round(float(v), 4)) for k, v in row.items()}
        for g, row in by_group.iterrows()
    }
    rates = by_group["selection_rate"]
    ratio = float(rates.min() / rates.max()) if rates.max() > 0 else 1.0
    gaps = frame.difference(method="between_groups")
    eod = float(max(gaps["true_positive_rate"], gaps["false_positive_rate"]))
    worst, best = str(rates.idxmin()), str(rates.idxmax())
    failed = []
    if min_selection_rate_ratio is not None and ratio < min_selection_rate_ratio:
        failed.append(f"selection-rate ratio {ratio:.2f} < {min_selection_rate_ratio:g}")
    if max_equalized_odds_difference is not None and eod > max_equalized_odds_difference:
        failed.append(f"equalized-odds difference {eod:.2f} > {max_equalized_odds_difference:g}")
    summary = (
        f"{attribute}={worst} is selected {groups_out[worst]['selection_rate']:.0%} of the time vs "
        f"{groups_out[best]['selection_rate']:.0%} for {attribute}={best} (ratio {ratio:.2f}); "
        f"equalized-odds difference {eod:.2f}" + (f" — {'; '.join(failed)}" if failed else " — within policy")
    )
    return FairnessResult(
        attribute=attribute,
        breached=bool(failed),
        summary=summary,
        groups=groups_out,
        worst=worst,
        best=best,
        selection_rate_ratio=round(ratio, 4),
        equalized_odds_difference=round(eod, 4),
        rows=int(kept.sum()),
    )


def regression_fairness(labelled: pd.DataFrame, outputs: pd.DataFrame, policy: Policy) -> FairnessResult:
    """Per-group error (MAPE) on labelled rows; worst group's error over the best's against ``max_error_ratio``."""
    from firebreak.detection.performance import score_outputs

    rules = policy.fairness
    assert rules is not None
    attribute = rules.protected_attribute
    groups = {
        str(group): score_outputs(outputs.loc[part.index], part, policy).to_dict()
        for group, part in labelled.groupby(attribute)
        if len(part) >= rules.min_group_rows
    }
    if len(groups) < 2:
        return FairnessResult(
            attribute, None, f"fewer than two groups of '{attribute}' with {rules.min_group_rows} labelled rows"
        )
    worst = max(groups, key=lambda g: groups[g]["mape"])
    best = min(groups, key=lambda g: groups[g]["mape"])
    ratio = groups[worst]["mape"] / max(groups[best]["mape"], 1e-9)
    summary = (
        f"{attribute}={worst} gets {ratio:.2f}x the error of {attribute}={best} "
        f"(MAPE {groups[worst]['mape']:.1%} vs {groups[best]['mape']:.1%}; limit {rules.max_error_ratio:g}x)"
    )
    return FairnessResult(
        attribute=attribute,
        breached=ratio > rules.max_error_ratio,
        summary=summary,
        groups={g: {k: float(v) for k, v in f.items()} for g, f in groups.items()},
        worst=worst,
        best=best,
        error_ratio=round(ratio, 4),
        rows=len(labelled),
    )


def fairness_on(labelled: pd.DataFrame, outputs: pd.DataFrame, policy: Policy) -> FairnessResult:
    """The policy's fairness figures for ``outputs`` computed on ``labelled`` (same row order and index)."""
    rules = policy.fairness
    if rules is None:
        return FairnessResult("", None, "not applicable: the policy names no protected attribute")
    attribute = rules.protected_attribute
    if labelled.empty or attribute not in labelled.columns:
        return FairnessResult(attribute, None, f"no labelled rows with '{attribute}'")
    if not is_classification(policy):
        return regression_fairness(labelled, outputs, policy)
    return classification_fairness(
        labelled[policy.features.label],
        outputs[policy.features.output],
        labelled[attribute],
        attribute=attribute,
        min_group_rows=rules.min_group_rows,
        min_selection_rate_ratio=rules.min_selection_rate_ratio,
        max_equalized_odds_difference=rules.max_equalized_odds_difference,
    )


def balancing_weights(groups: pd.Series, labels: pd.Series) -> np.ndarray:
    """Reweighing (Kamiran & Calders): weight P(group) x P(label) / P(group, label) per row.

    In the weighted data the label is independent of the group: a group whose positive
    labels were suppressed gets its remaining positives weighted up. Weights average 1.
    """
    if len(groups) != len(labels):
        raise FairnessInputError(f"groups ({len(groups)}) and labels ({len(labels)}) differ in length")
    if len(groups) == 0:
        raise FairnessInputError("no rows to weight")
    frame = pd.DataFrame({"g": groups.astype(str).to_numpy(), "y": labels.to_numpy()})
    n = len(frame)
    p_group = frame.groupby("g")["y"].transform("size") / n
    p_label = frame.groupby("y")["g"].transform("size") / n
    joint = frame.groupby(["g", "y"])["g"].transform("size") / n
    weights = (p_group * p_label / joint).to_numpy(dtype=float)
    return np.asarray(weights / weights.mean())
