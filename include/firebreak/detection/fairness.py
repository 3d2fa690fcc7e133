"""Fairness across the groups of a protected attribute: the one home for these figures.

Two kinds of model, two sets of figures:

* a **classifier** (binary decisions; the policy's ``fairness:`` sets
  ``min_selection_rate_ratio`` / ``max_equalized_odds_difference`` /
  ``max_error_rate_difference``): per-group selection rate and, with labels, true- and
  false-positive rates and accuracy, computed with fairlearn's ``MetricFrame``; the
  selection-rate ratio (lowest group rate / highest: the four-fifths rule), the
  equalized-odds difference (largest gap in TPR or FPR between groups) and the error-rate
  difference (largest minus smallest per-group error rate, 1 - accuracy);
* a **regressor**: per-group error (MAPE), worst group's error over the best group's.

The same figures serve the incident's ``fairness_audit`` stage, the promotion gate, the
nightly audit and ``firebreak triage`` (which has no policy: :func:`default_limits`).
The worst group is named. ``balancing_weights`` is the remediation: sample weights that
make the label independent of the group in the weighted training data.

What counts as a decision (:func:`decisions`): a boolean, a 0/1 number, or a score in
[0, 1], where a score of at least 0.5 counts as selected. Labels are booleans or 0/1.
Numbers written as text ("0", "1") read as numbers. Anything else (other text, missing
values, numbers outside those ranges) is refused with
:class:`FairnessInputError` naming the column, rather than guessed at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from firebreak.errors import FirebreakError

if TYPE_CHECKING:
    from firebreak.policy.schema import Fairness, Policy

# A score at or above this counts as selected (a positive decision).
SCORE_THRESHOLD = 0.5
# Name of the group of rows whose protected attribute is missing.
NULL_GROUP = "<null>"


class FairnessInputError(FirebreakError):
    """The data cannot be scored for fairness as given (missing column, values that are not decisions)."""


@dataclass(frozen=True)
class FairnessResult:
    """Per-group figures and the verdict against the limits; ``breached`` None: not applicable.

    ``groups`` holds the groups compared (at least ``min_group_rows`` rows each);
    ``left_out`` the smaller ones with their row counts. ``limits`` are the limits the
    figures were judged against, keyed by figure (``selection_rate_ratio`` is a floor,
    the others are ceilings). ``worst`` / ``best``: lowest / highest selection rate (for a
    regressor: highest / lowest error); ``error_rate_worst``: the group with the highest
    error rate.
    """

    attribute: str
    breached: bool | None
    summary: str
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    worst: str | None = None
    best: str | None = None
    selection_rate_ratio: float | None = None
    equalized_odds_difference: float | None = None
    error_rate_difference: float | None = None
    error_rate_worst: str | None = None
    error_ratio: float | None = None
    rows: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_classification(policy: Policy) -> bool:
    """The policy asks for classification fairness (selection rates, equalized odds, error rates)."""
    rules = policy.fairness
    return rules is not None and (
        rules.min_selection_rate_ratio is not None
        or rules.max_equalized_odds_difference is not None
        or rules.max_error_rate_difference is not None
    )


def default_limits(attribute: str, positive_class: str | None = None) -> Fairness:
    """The limits where no policy applies (``firebreak triage``), as a policy ``fairness:`` section.

    The one place these numbers are set; everything else reads them from a ``Fairness``.
    """
    from firebreak.policy.schema import Fairness  # pydantic: only when the limits are made

    return Fairness(
        protected_attribute=attribute,
        # Four-fifths rule: a group's selection rate under 80% of the best-treated group's is
        # evidence of adverse impact (US EEOC Uniform Guidelines on Employee Selection
        # Procedures, 29 CFR 1607.4(D)).
        min_selection_rate_ratio=0.8,
        # Ten percentage points more errors than the best group: Firebreak's own line for
        # "materially worse outcomes"; no standard sets one. Generated bias cases start at 12.
        max_error_rate_difference=0.1,
        # Fewer rows than this and a group's rate is noise (the usual n >= 30 rule of thumb:
        # at 30 rows a rate's standard error is up to 9 points); such groups are not compared.
        min_group_rows=30,
        positive_class=positive_class,
    )


def decisions(values: pd.Series, role: str = "prediction", positive_class: str | None = None) -> np.ndarray:
    """0/1 per row: booleans as they are; numbers 0/1, or scores in [0, 1] with >= 0.5 selected.

    ``role`` ``"label"`` accepts booleans and 0/1 only (an outcome is not a score). With
    ``positive_class`` (class names: ``"approve"``), 1 where the value, as text, is that class;
    numbers beside a class named in words are a score or decisions for it, read as without one.

    Raises:
        FairnessInputError: Naming the column, if it holds text, missing values or numbers
            outside those ranges.
    """
    what = f"the {role}" + (f" column {values.name!r}" if values.name is not None else "")
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    # A class named in words beside numbers (a score, or 0/1 decisions, for "approve"): the
    # numbers already say yes or no to that class, and are read as below.
    if positive_class is not None and not (numeric and _in_words(positive_class)):
        if values.isna().any():
            raise FairnessInputError(f"{what} has {int(values.isna().sum())} missing values: no decision to compare")
        if numeric:  # classes 1, 2, 3: "1"
            return (values.to_numpy(dtype=float) == float(positive_class)).astype(int)
        return (values.astype("string").str.strip() == positive_class).to_numpy(dtype=bool).astype(int)
    if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
        return values.to_numpy(dtype=bool).astype(int)
    numbers = pd.to_numeric(values, errors="coerce")
    if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)) and bool(
        (numbers.isna() & values.notna()).any()
    ):
        raise FairnessInputError(f"{what} must hold numbers or booleans for fairness figures, not {values.dtype}")
    array = numbers.to_numpy(dtype=float)
    if role == "label":
        bad = ~np.isin(array, [0.0, 1.0])
        allowed = "0 or 1"
    else:
        bad = ~((array >= 0.0) & (array <= 1.0))  # NaN is bad too
        allowed = "0/1 or a score in [0, 1]"
    if bad.any():
        raise FairnessInputError(f"{what} must be {allowed} for fairness figures; {int(bad.sum())} rows are not")
    return (array >= SCORE_THRESHOLD).astype(int)


def _in_words(positive_class: str) -> bool:
    """Whether a positive class is a name (``"approve"``), not a number (class ``1`` of 0/1/2)."""
    return bool(pd.isna(pd.to_numeric(pd.Series([positive_class]), errors="coerce").iloc[0]))


def _group_keys(groups: pd.Series) -> np.ndarray:
    return groups.astype("string").fillna(NULL_GROUP).to_numpy(dtype=object).astype(str)


def classification_fairness(
    y_true: pd.Series | None,
    y_pred: pd.Series,
    groups: pd.Series,
    *,
    attribute: str,
    min_group_rows: int = 30,
    min_selection_rate_ratio: float | None = 0.8,
    max_equalized_odds_difference: float | None = None,
    max_error_rate_difference: float | None = None,
    positive_class: str | None = None,
) -> FairnessResult:
    """Selection-rate ratio, equalized-odds and error-rate differences across ``groups`` (fairlearn ``MetricFrame``).

    ``y_pred`` holds decisions or scores, or class names with ``positive_class`` the selected
    one (:func:`decisions`); ``y_true`` the labels, or None
    when there are none (selection rates only: no equalized odds, no error rates). Groups
    with fewer than ``min_group_rows`` rows are left out (their rates are noise). The worst
    group is the one with the lowest selection rate; ``error_rate_worst`` the one with the
    highest error rate.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    if not ((y_true is None or len(y_true) == len(y_pred)) and len(y_pred) == len(groups)):
        raise FairnessInputError(
            f"labels ({len(y_true) if y_true is not None else 'none'}), predictions ({len(y_pred)}) "
            f"and groups ({len(groups)}) differ in length"
        )
    predicted = decisions(y_pred, "prediction", positive_class)
    truth = decisions(y_true, "label", positive_class) if y_true is not None else None
    limits = {
        name: float(limit)
        for name, limit in (
            ("selection_rate_ratio", min_selection_rate_ratio),
            ("equalized_odds_difference", max_equalized_odds_difference),
            ("error_rate_difference", max_error_rate_difference),
        )
        if limit is not None
    }
    sensitive = _group_keys(groups)
    sizes = pd.Series(sensitive).value_counts()
    compared = sizes[sizes >= min_group_rows]
    left_out = {str(g): int(n) for g, n in sizes[sizes < min_group_rows].items()}
    if len(compared) < 2:
        return FairnessResult(
            attribute,
            None,
            f"fewer than two groups of '{attribute}' with {min_group_rows} labelled rows",
            rows=len(predicted),
            left_out=left_out,
            limits=limits,
        )
    kept = np.isin(sensitive, compared.index.to_numpy())
    # One row per (group, label, prediction) cell weighted by its count: the same figures as
    # row by row (every metric here is a weighted mean), at a cost that does not grow with the rows.
    columns = {"group": sensitive[kept], "y_pred": predicted[kept]}
    if truth is not None:
        columns["y_true"] = truth[kept]
    cells = pd.DataFrame(columns).value_counts().reset_index(name="n")
    weights = cells["n"].to_numpy(dtype=float)
    metrics: dict[str, Any] = {"selection_rate": selection_rate}
    if truth is not None:
        metrics |= {
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        }
    frame = MetricFrame(
        metrics=metrics,
        y_true=cells["y_true" if truth is not None else "y_pred"].to_numpy(),  # no labels: selection rate only
        y_pred=cells["y_pred"].to_numpy(),
        sensitive_features=pd.Series(cells["group"].to_numpy(), name=attribute),
        sample_params={name: {"sample_weight": weights} for name in metrics},
    )
    by_group = frame.by_group.copy()
    by_group.insert(0, "rows", cells.groupby("group")["n"].sum())
    if truth is not None:  # the rows a true-positive rate is of: its trials
        positive_rows = cells[cells["y_true"] == 1].groupby("group")["n"].sum()
        by_group.insert(1, "positives", positive_rows.reindex(by_group.index, fill_value=0))
    groups_out = {
        str(g): {k: (int(v) if k in ("rows", "positives") else round(float(v), 4)) for k, v in row.items()}
        for g, row in by_group.iterrows()
    }
    if truth is not None:
        _add_brier(groups_out, y_pred, predicted, truth, sensitive, kept, positive_class)
    rates = by_group["selection_rate"]
    ratio = float(rates.min() / rates.max()) if rates.max() > 0 else 1.0
    worst, best = str(rates.idxmin()), str(rates.idxmax())
    eod = gap = None
    error_worst = None
    if truth is not None:
        gaps = frame.difference(method="between_groups")
        eod = float(max(gaps["true_positive_rate"], gaps["false_positive_rate"]))
        errors = 1.0 - by_group["accuracy"]
        gap = float(errors.max() - errors.min())
        error_worst = str(errors.idxmax())
    failed = []
    if min_selection_rate_ratio is not None and ratio < min_selection_rate_ratio:
        failed.append(f"selection-rate ratio {ratio:.2f} < {min_selection_rate_ratio:g}")
    if max_equalized_odds_difference is not None and eod is not None and eod > max_equalized_odds_difference:
        failed.append(f"equalized-odds difference {eod:.2f} > {max_equalized_odds_difference:g}")
    if max_error_rate_difference is not None and gap is not None and gap > max_error_rate_difference:
        failed.append(f"error-rate difference {gap:.2f} > {max_error_rate_difference:g}")
    summary = (
        f"{attribute}={worst} is selected {groups_out[worst]['selection_rate']:.0%} of the time vs "
        f"{groups_out[best]['selection_rate']:.0%} for {attribute}={best} (ratio {ratio:.2f}); "
        + (
            f"equalized-odds difference {eod:.2f}; error-rate difference {gap:.2f} ({attribute}={error_worst} worst)"
            if eod is not None and gap is not None
            else "no labels: selection rates only"
        )
        + (f" — {'; '.join(failed)}" if failed else " — within policy")
    )
    return FairnessResult(
        attribute=attribute,
        breached=bool(failed),
        summary=summary,
        groups=groups_out,
        worst=worst,
        best=best,
        selection_rate_ratio=round(ratio, 4),
        equalized_odds_difference=round(eod, 4) if eod is not None else None,
        error_rate_difference=round(gap, 4) if gap is not None else None,
        error_rate_worst=error_worst,
        rows=int(kept.sum()),
        left_out=left_out,
        limits=limits,
    )


def _add_brier(
    groups: dict[str, dict[str, Any]],
    y_pred: pd.Series,
    predicted: np.ndarray,
    truth: np.ndarray,
    sensitive: np.ndarray,
    kept: np.ndarray,
    positive_class: str | None,
) -> None:
    """Each group's mean Brier score (score minus outcome, squared) and its variance, beside its rates.

    A score says how sure the model was: labels that changed under confident answers move
    the Brier score far more than its noise, where the error rate counts them as any other
    miss (:func:`firebreak.investigation.findings.fairness_change` tests the change on it).
    Decisions without a score (0/1, class names) give the error rate itself.
    """
    scores = predicted.astype(float)
    if (positive_class is None or _in_words(positive_class)) and pd.api.types.is_numeric_dtype(y_pred.dtype):
        scores = pd.to_numeric(y_pred, errors="coerce").to_numpy(dtype=float)
    loss = pd.DataFrame({"group": sensitive[kept], "brier": (scores[kept] - truth[kept]) ** 2})
    figures = loss.groupby("group")["brier"].agg(["mean", "var"]).fillna(0.0)
    for group, row in figures.iterrows():
        groups[str(group)] |= {"brier": round(float(row["mean"]), 6), "brier_variance": round(float(row["var"]), 6)}


def table_fairness(
    frame: pd.DataFrame, rules: Fairness, *, prediction: str, label: str | None = None
) -> FairnessResult:
    """Classification fairness of the decisions in one table, judged against ``rules``.

    ``firebreak triage`` calls it on each of its tables with :func:`default_limits`.

    Raises:
        FairnessInputError: If a column is missing, or its values are not decisions (:func:`decisions`).
    """
    attribute = rules.protected_attribute
    for column in (attribute, prediction, *([label] if label else [])):
        if column not in frame.columns:
            raise FairnessInputError(
                f"column {column!r} is not in the table (columns: {', '.join(map(str, frame.columns))})"
            )
    return classification_fairness(
        frame[label] if label else None,
        frame[prediction],
        frame[attribute],
        **_classification_rules(rules),
    )


def _classification_rules(rules: Fairness) -> dict[str, Any]:
    return {
        "attribute": rules.protected_attribute,
        "min_group_rows": rules.min_group_rows,
        "min_selection_rate_ratio": rules.min_selection_rate_ratio,
        "max_equalized_odds_difference": rules.max_equalized_odds_difference,
        "max_error_rate_difference": rules.max_error_rate_difference,
        "positive_class": rules.positive_class,
    }


def regression_fairness(labelled: pd.DataFrame, outputs: pd.DataFrame, policy: Policy) -> FairnessResult:
    """Per-group error (MAPE) on labelled rows; worst group's error over the best's against ``max_error_ratio``."""
    from firebreak.detection.performance import score_outputs

    rules = policy.fairness
    assert rules is not None
    attribute = rules.protected_attribute
    limits = {"error_ratio": float(rules.max_error_ratio)}
    groups = {
        str(group): score_outputs(outputs.loc[part.index], part, policy).to_dict()
        for group, part in labelled.groupby(attribute)
        if len(part) >= rules.min_group_rows
    }
    sizes = labelled[attribute].value_counts()
    left_out = {str(group): int(n) for group, n in sizes.items() if n < rules.min_group_rows}
    if len(groups) < 2:
        return FairnessResult(
            attribute,
            None,
            f"fewer than two groups of '{attribute}' with {rules.min_group_rows} labelled rows",
            left_out=left_out,
            limits=limits,
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
        left_out=left_out,
        limits=limits,
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
        **_classification_rules(rules),
    )


def groups_inputs_moved(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    protected: str,
    inputs: list[str],
    *,
    answers: np.ndarray | None = None,
) -> dict[str, float]:
    """Per group of ``protected`` in both tables: the p-value that none of its inputs moved.

    A group's decisions follow its inputs: poorer applicants of one group are approved less,
    and that is the traffic, not the model turning on the group. Each input of the group's
    rows is compared between the tables (numbers by a Welch z-test of their means, other
    values by a chi-square test of homogeneity); the least p-value times the inputs compared
    (Bonferroni) is the group's. Groups of fewer than 30 rows in either table are left out.
    ``answers``: the reference's decisions (0/1, row-aligned); a column of scores in [0, 1]
    that ranks them almost perfectly (AUC of at least 0.99 either way) is the model's own
    score logged beside them, an output, and is not an input here.
    """
    from scipy import special

    from firebreak.detection.columns import as_text
    from firebreak.detection.stats import homogeneity_p_value

    columns = [c for c in inputs if c != protected and c in reference.columns and c in current.columns]
    if answers is not None:
        columns = [c for c in columns if not _ranks_the_answers(reference[c], answers)]
    ref_groups, cur_groups = _group_keys(reference[protected]), _group_keys(current[protected])
    moved = {}
    for group in sorted(set(ref_groups) & set(cur_groups)):
        ref, cur = reference[ref_groups == group], current[cur_groups == group]
        if len(ref) < 30 or len(cur) < 30 or not columns:
            continue
        p_values = []
        for column in columns:
            if pd.api.types.is_numeric_dtype(ref[column]) and pd.api.types.is_numeric_dtype(cur[column]):
                a = ref[column].to_numpy(dtype=float, na_value=np.nan)
                b = cur[column].to_numpy(dtype=float, na_value=np.nan)
                a, b = a[np.isfinite(a)], b[np.isfinite(b)]
                if len(a) < 2 or len(b) < 2:
                    continue
                se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
                p_values.append(float(2 * special.ndtr(-abs(b.mean() - a.mean()) / se)) if se > 0 else 1.0)
            else:
                p_values.append(homogeneity_p_value(as_text(ref[column]), as_text(cur[column])))
        if p_values:
            moved[str(group)] = min(1.0, min(p_values) * len(p_values))
    return moved


def _ranks_the_answers(values: pd.Series, answers: np.ndarray) -> bool:
    """Whether a column of scores in [0, 1] orders the 0/1 ``answers`` almost perfectly (AUC >= 0.99
    or <= 0.01). A measurement a one-input rule thresholds (an amount) is an input: only a
    probability is taken for the model's own score."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    kept = np.isfinite(numbers)
    if not kept.any() or numbers[kept].min() < 0 or numbers[kept].max() > 1 or np.isin(numbers[kept], (0, 1)).all():
        return False
    chosen = np.asarray(answers, dtype=float)[kept] == 1
    positives, negatives = int(chosen.sum()), int((~chosen).sum())
    if not positives or not negatives:
        return False
    ranks = pd.Series(numbers[kept]).rank(method="average").to_numpy()
    auc = (float(ranks[chosen].sum()) - positives * (positives + 1) / 2) / (positives * negatives)
    return auc >= 0.99 or auc <= 0.01


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
