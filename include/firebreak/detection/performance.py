"""Model figures on labelled data: error, sanity-floor breaches and confidence of a model's outputs.

What the detection, investigation and verification stages measure a model by, on any
labelled rows (the golden dataset, recent labelled traffic, one protected group's rows).

The figures follow the policy's task (:attr:`firebreak.policy.schema.Policy.task`):
a regression is measured by MAE, RMSE and MAPE; a classification by accuracy, F1, AUC and
log-loss (AUC and log-loss need a probability: the outputs' :data:`SCORE` column, which
:mod:`firebreak.registry.flavors` adds for a scikit-learn classifier, or a 0/1 output read
as one). MAE and MAPE are also kept for a classifier with 0/1 labels (the error rate), so
policies written before the task existed keep their figures. The gate reads the policy's
metric with :meth:`Figures.metric` and :func:`loss`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from firebreak.policy.metrics import HIGHER_IS_BETTER, METRIC_LABELS
from firebreak.registry.flavors import SCORE

if TYPE_CHECKING:
    from firebreak.policy.schema import Policy

__all__ = [
    "SCORE",
    "Figures",
    "Predictor",
    "as_numbers",
    "constant_answer",
    "evaluate",
    "finite_rows",
    "impact",
    "loss",
    "outcome_kind",
    "performance_change",
    "reported_figures",
    "served_by_model",
    "sanity_violations",
    "score_outputs",
    "wrong_answers",
]

Predictor = Callable[[pd.DataFrame], pd.DataFrame]
NAN = float("nan")
_EPS = 1e-15  # log-loss clips probabilities like scikit-learn does


@dataclass(frozen=True)
class Figures:
    """A model's figures on labelled rows; the task's metrics beside the ones every model gets."""

    rows: int
    mae: float
    mape: float
    sanity_violation_rate: float
    low_confidence_rate: float
    mean_confidence: float
    rmse: float | None = None
    accuracy: float | None = None
    f1: float | None = None
    auc: float | None = None
    log_loss: float | None = None

    def to_dict(self) -> dict[str, float | int]:
        """The figures that apply (a regression has no accuracy): what the golden baseline tags record."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def metric(self, name: str) -> float:
        """The figure named by a policy's ``gate.metric``; NaN when it could not be computed."""
        value = getattr(self, name, None)
        return NAN if value is None else float(value)


def loss(metric: str, value: float) -> float:
    """The metric as a loss (lower is better): itself, or ``1 - value`` for accuracy, AUC and F1.

    The gate and the golden tolerance apply their relative limits to this, so "5% worse"
    means 5% more error whichever way the metric points.
    """
    return 1.0 - value if metric in HIGHER_IS_BETTER else value


def from_loss(metric: str, value: float) -> float:
    """Back from :func:`loss` to the metric's own scale (for limits people read)."""
    return 1.0 - value if metric in HIGHER_IS_BETTER else value


def sanity_violations(outputs: pd.DataFrame, inputs: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Boolean per row: the output breaks the policy's sanity floor (e.g. price below cost)."""
    floor = policy.detection.output_floor
    if floor is None:
        return np.zeros(len(outputs), dtype=bool)
    ratio = outputs[policy.features.output].to_numpy(dtype=float) / inputs[floor.relative_to].to_numpy(dtype=float)
    return np.asarray(ratio < floor.min_ratio)


def score_outputs(outputs: pd.DataFrame, labelled: pd.DataFrame, policy: Policy) -> Figures:
    """Figures for outputs already computed on ``labelled`` (same row order).

    Outputs without the policy's confidence column (a regressor, a classifier without
    ``predict_proba``) count no low-confidence answers and have no mean confidence.
    """
    if labelled.empty:
        return Figures(0, NAN, NAN, NAN, NAN, NAN)
    label = labelled[policy.features.label]
    predicted = outputs[policy.features.output]
    if policy.features.confidence in outputs.columns:
        confidence = outputs[policy.features.confidence].to_numpy(dtype=float)
        low, mean = round(float((confidence < policy.detection.confidence_floor).mean()), 4), _r(confidence.mean())
    else:
        low, mean = 0.0, NAN
    mae, mape, rmse = _errors(predicted, label)
    violations = round(float(sanity_violations(outputs, labelled, policy).mean()), 4)
    if policy.task == "classification":
        return Figures(
            len(labelled), mae, mape, violations, low, mean, **_classification(predicted, label, outputs.get(SCORE))
        )
    return Figures(len(labelled), mae, mape, violations, low, mean, rmse=rmse)


def evaluate(predict: Predictor, labelled: pd.DataFrame, policy: Policy) -> Figures:
    """Run ``predict`` on the policy's inputs and score it against the label column."""
    if labelled.empty:
        return score_outputs(labelled, labelled, policy)
    outputs = predict(labelled[policy.features.inputs].reset_index(drop=True))
    return score_outputs(outputs.reset_index(drop=True), labelled.reset_index(drop=True), policy)


def constant_answer(metric: str, label: pd.Series, task: str) -> tuple[float, object]:
    """``metric`` of one constant answer on ``label``, and that answer: the least a model must beat.

    A classifier's is the most common class, scored with the positive class's share (AUC 0.5,
    accuracy the no-information rate, log-loss the labels' entropy); a regression's the labels'
    median (their mean for RMSE). NaN when the metric cannot be computed on these labels.
    """
    rows = len(label)
    if not rows:
        return NAN, None
    if task == "classification":
        counts = label.value_counts()
        answer: object = counts.index[0]
        answer = answer.item() if isinstance(answer, np.generic) else answer
        classes = _sorted_classes(label.to_numpy())
        share = float((label == classes[-1]).mean()) if len(classes) <= 2 else float(counts.iloc[0]) / rows
        answers = pd.Series([answer] * rows, dtype=label.dtype)
        figures = _classification(answers, label.reset_index(drop=True), pd.Series(np.full(rows, share)))
    else:
        numbers = as_numbers(label)
        if numbers is None or not np.isfinite(numbers).all():
            return NAN, None
        answer = float(np.mean(numbers) if metric == "rmse" else np.median(numbers))
        mae, mape, rmse = _errors(pd.Series(np.full(rows, answer)), label.reset_index(drop=True))
        figures = {"mae": mae, "mape": mape, "rmse": rmse}
    return float(figures.get(metric, NAN)), answer


# -- the figures themselves -------------------------------------------------------------------------


def _r(value: float) -> float:
    return round(float(value), 4)


def as_numbers(values: pd.Series) -> np.ndarray | None:
    """``values`` as floats, or None when they are not all numbers (string class labels)."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float)
    numbers = pd.to_numeric(values, errors="coerce")
    if bool((numbers.isna() & values.notna()).any()):
        return None
    return numbers.to_numpy(dtype=float)


def _errors(predicted: pd.Series, label: pd.Series) -> tuple[float, float, float]:
    """MAE, MAPE and RMSE; NaN when the outputs or labels are not numbers (string classes)."""
    y, p = as_numbers(label), as_numbers(predicted)
    if y is None or p is None:
        return NAN, NAN, NAN
    error = np.abs(p - y)
    return (
        _r(error.mean()),
        _r((error / np.where(y == 0, 1.0, np.abs(y))).mean()),  # 0/1 labels: the error rate
        _r(np.sqrt((error**2).mean())),
    )


def _classification(predicted: pd.Series, label: pd.Series, score: pd.Series | None) -> dict[str, float]:
    """Accuracy, F1 (binary: the positive class; else macro), AUC and log-loss (binary, with a score)."""
    from sklearn.metrics import f1_score, roc_auc_score

    y = label.to_numpy()
    p = predicted.to_numpy()
    if y.dtype != p.dtype and as_numbers(label) is not None and as_numbers(predicted) is not None:
        y, p = label.to_numpy(dtype=float), predicted.to_numpy(dtype=float)  # 1 vs 1.0
    classes = _sorted_classes(np.concatenate([y, p]))
    figures = {"accuracy": _r((y == p).mean())}
    if len(classes) <= 2:
        positive = classes[-1]
        figures["f1"] = _r(f1_score(y == positive, p == positive, zero_division=0.0))
        probability = _positive_probability(score, p, positive)
        truth = (y == positive).astype(int)
        if len(np.unique(truth)) == 2:
            figures["auc"] = _r(roc_auc_score(truth, probability))
            clipped = np.clip(probability, _EPS, 1 - _EPS)
            figures["log_loss"] = _r(-np.mean(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped)))
        else:
            figures["auc"] = figures["log_loss"] = NAN  # one class only in the labels: not computable
    else:
        # Several classes: macro F1; AUC and log-loss would need every class's probability.
        figures["f1"] = _r(f1_score(y.astype(str), p.astype(str), average="macro", zero_division=0.0))
        figures["auc"] = figures["log_loss"] = NAN
    return figures


def _sorted_classes(values: np.ndarray) -> list[object]:
    """Distinct values sorted as scikit-learn sorts ``classes_`` (numbers numerically, text as text)."""
    distinct = pd.unique(pd.Series(values).dropna())
    try:
        return sorted(distinct.tolist())
    except TypeError:
        return sorted(distinct.tolist(), key=str)


def _positive_probability(score: pd.Series | None, predicted: np.ndarray, positive: object) -> np.ndarray:
    """The positive class's probability: the outputs' score, else the decision read as 0/1."""
    if score is not None:
        values = pd.to_numeric(score, errors="coerce").to_numpy(dtype=float)
        if np.isfinite(values).all():
            return values
    return np.asarray(predicted == positive, dtype=float)


# A drop in performance counts as evidence only below this p-value, and only when it is
# large enough to matter: 2 points of accuracy, or 10% more errors (wrong decisions, where a
# model of rare positives errs on 3% of rows: 2 points would be two thirds more), or a 10%
# larger mean absolute error or Brier score.
CHANGE_P_VALUE = 1e-3
MIN_ACCURACY_DROP = 0.02
MIN_ERROR_RISE = 0.10


# Integer labels with at most this many values, and integer outputs, are classes (0/1/2 of a
# multiclass classifier), not a regressor's target.
_MAX_INTEGER_CLASSES = 20


def outcome_kind(label: pd.Series, prediction: pd.Series) -> str:
    """How a model's answers are judged against their labels.

    ``decisions``: 0/1 or boolean labels, with 0/1 decisions or scores in [0, 1] (>= 0.5
    selected). ``numbers``: a regressor's, judged on the error. ``classes``: anything else
    (``"yes"``/``"no"``, class names, integer classes of a multiclass model, decisions in
    another vocabulary than the labels): right when equal to the label, compared as text.
    Missing values are ignored; give it both tables' rows, so both are judged alike.
    """
    from firebreak.detection.fairness import FairnessInputError, decisions

    label, prediction = label.dropna(), prediction.dropna()
    try:
        decisions(label, "label")
        decisions(prediction)
        return "decisions"
    except FairnessInputError:
        pass
    y, p = as_numbers(label), as_numbers(prediction)
    if y is None or p is None:
        return "classes"
    whole = np.isfinite(y).all() and np.isfinite(p).all() and (y == np.round(y)).all() and (p == np.round(p)).all()
    if whole and len(np.unique(y)) <= _MAX_INTEGER_CLASSES:
        return "classes"
    return "numbers"


def wrong_answers(label: pd.Series, prediction: pd.Series, kind: str) -> np.ndarray:
    """Per row, whether the answer was wrong: a decision or class unlike the label (``decisions``, ``classes``)."""
    from firebreak.detection.fairness import decisions

    if kind == "decisions":
        return np.asarray(decisions(label, "label") != decisions(prediction))
    y, p = as_numbers(label), as_numbers(prediction)
    if y is not None and p is not None:
        return np.asarray(y != p)  # class 1 logged as 1.0 is class 1
    return label.astype(str).to_numpy() != prediction.astype(str).to_numpy()


def finite_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows of ``frame`` where every one of ``columns`` has a value, and a finite one if it holds numbers."""
    keep = np.ones(len(frame), dtype=bool)
    for column in columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            keep &= np.isfinite(series.to_numpy(dtype=float, na_value=np.nan))  # NaN and NA too
        else:
            keep &= series.notna().to_numpy()
    # Every row kept (the usual case): the frame itself, not a copy of each of its columns.
    return frame if keep.all() else frame[keep]


def performance_change(
    reference: pd.DataFrame, current: pd.DataFrame, *, label: str, prediction: str
) -> dict[str, object] | None:
    """The model's realised figure on the current labelled rows against the reference's own.

    SOP stage: investigate (concept drift). With labels in both tables, a significant drop
    is a failure whether or not any input moved: the relation between inputs and labels
    changed. Classifiers (:func:`outcome_kind` ``decisions`` or ``classes``) are judged on
    accuracy with a one-sided two-proportion z-test, or with scores on the Brier score
    (:func:`_judge_on_brier`); regressors on the mean absolute error with a one-sided Welch
    t-test on the absolute errors. Rows without a label or an answer, or with an infinite
    one, are left out.

    Returns:
        None when a table has no labelled rows; else ``metric`` (``accuracy`` or ``mae``),
        ``reference``, ``current``, ``change`` (current - reference), ``p_value`` (None
        when the test is undefined: one row, or errors without spread), ``rows`` and
        ``significant``; judged on the Brier score, also ``test``, ``brier_reference`` and
        ``brier_current``.
    """
    ref = finite_rows(reference, [label, prediction])
    cur = finite_rows(current, [label, prediction])
    if ref.empty or cur.empty:
        return None
    kind = outcome_kind(pd.concat([ref[label], cur[label]]), pd.concat([ref[prediction], cur[prediction]]))
    if kind != "numbers":
        ref_wrong = wrong_answers(ref[label], ref[prediction], kind)
        cur_wrong = wrong_answers(cur[label], cur[prediction], kind)
        change = _accuracy_change(~ref_wrong, ~cur_wrong, rows=len(cur))
        if kind == "decisions":
            _judge_on_brier(change, ref, cur, label=label, prediction=prediction)
        return change
    ref_err = np.abs(ref[prediction].to_numpy(dtype=float) - ref[label].to_numpy(dtype=float))
    cur_err = np.abs(cur[prediction].to_numpy(dtype=float) - cur[label].to_numpy(dtype=float))
    before, after = float(ref_err.mean()), float(cur_err.mean())
    from scipy import stats  # ~1 s to import: only for a regressor's errors

    with np.errstate(all="ignore"):
        p_value = float(stats.ttest_ind(cur_err, ref_err, equal_var=False, alternative="greater").pvalue)
    defined = math.isfinite(p_value)
    significant = defined and p_value < CHANGE_P_VALUE and after >= (1 + MIN_ERROR_RISE) * before
    return _change("mae", before, after, p_value if defined else None, significant, rows=len(cur))


def _accuracy_change(ref_ok: np.ndarray, cur_ok: np.ndarray, *, rows: int) -> dict[str, object]:
    """Accuracy before and after, with a one-sided two-proportion z-test."""
    from scipy import special  # ndtr(-z) is scipy.stats.norm.sf(z), without importing scipy.stats

    before, after = float(ref_ok.mean()), float(cur_ok.mean())
    pooled = (ref_ok.sum() + cur_ok.sum()) / (len(ref_ok) + len(cur_ok))
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / len(ref_ok) + 1 / len(cur_ok)))
    p_value = float(special.ndtr(-(before - after) / se))
    material = before - after >= MIN_ACCURACY_DROP or (1 - after) >= (1 + MIN_ERROR_RISE) * (1 - before)
    significant = p_value < CHANGE_P_VALUE and material
    return _change("accuracy", before, after, p_value, significant, rows=rows)


def _judge_on_brier(
    change: dict[str, object], ref: pd.DataFrame, cur: pd.DataFrame, *, label: str, prediction: str
) -> None:
    """With scores, the accuracy change is judged on the Brier score instead, in place.

    A score carries how sure the model was: labels that changed under answers it was sure of
    move the Brier score by up to 1 a row, where accuracy counts a miss at 0.51 and at 0.99
    alike. One-sided Welch z-test on the per-row squared errors, p < :data:`CHANGE_P_VALUE`;
    material when accuracy fell by :data:`MIN_ACCURACY_DROP` or the Brier score rose by
    :data:`MIN_ERROR_RISE`. 0/1 decisions keep the accuracy test: their Brier score is their
    error rate.
    """
    from scipy import special

    from firebreak.detection.fairness import decisions

    ref_scores, cur_scores = as_numbers(ref[prediction]), as_numbers(cur[prediction])
    if ref_scores is None or cur_scores is None:
        return
    if np.isin(ref_scores, (0, 1)).all() and np.isin(cur_scores, (0, 1)).all():
        return
    ref_errors = (decisions(ref[label], "label") - ref_scores) ** 2
    cur_errors = (decisions(cur[label], "label") - cur_scores) ** 2
    if len(ref_errors) < 2 or len(cur_errors) < 2:
        return
    before, after = float(ref_errors.mean()), float(cur_errors.mean())
    se = math.sqrt(float(ref_errors.var(ddof=1)) / len(ref_errors) + float(cur_errors.var(ddof=1)) / len(cur_errors))
    if not se > 0:
        return
    p_value = float(special.ndtr(-(after - before) / se))
    dropped = float(change["reference"]) - float(change["current"])  # type: ignore[arg-type]
    material = dropped >= MIN_ACCURACY_DROP or after >= (1 + MIN_ERROR_RISE) * before  # Brier: errors, weighed
    change.update(
        {
            "test": "Brier score",
            "brier_reference": round(before, 4),
            "brier_current": round(after, 4),
            "p_value": p_value,
            "significant": bool(p_value < CHANGE_P_VALUE and material),
        }
    )


def _change(
    metric: str, before: float, after: float, p_value: float | None, significant: bool, *, rows: int
) -> dict[str, object]:
    return {
        "metric": metric,
        "reference": round(before, 4),
        "current": round(after, 4),
        "change": round(after - before, 4),
        "p_value": p_value,
        "rows": rows,
        "significant": bool(significant),
    }


# -- what fits the task: the figures people read, and the harm in the model's terms -----------

# Which labelled figures mean something for the policy's task, and their names for people.
# A 0/1 decision has no percentage error, and a classifier has no sanity floor; a regressor's
# floor-breach figure exists only where the policy sets a floor. The gate's metric comes first.
_FIGURES = {
    "regression": [
        ("mae", METRIC_LABELS["mae"], "number"),
        ("rmse", METRIC_LABELS["rmse"], "number"),
        ("mape", METRIC_LABELS["mape"], "share"),
        ("sanity_violation_rate", "below sanity bound", "share"),
        ("low_confidence_rate", "low confidence", "share"),
    ],
    "classification": [
        ("accuracy", METRIC_LABELS["accuracy"], "share"),
        ("auc", METRIC_LABELS["auc"], "number"),
        ("f1", METRIC_LABELS["f1"], "number"),
        ("log_loss", METRIC_LABELS["log_loss"], "number"),
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
    metric = policy.gate.metric
    return sorted(figures, key=lambda f: f[0] != metric)  # stable: the gate's metric first


def served_by_model(window: pd.DataFrame, subject: str) -> tuple[pd.DataFrame, dict[str, object]]:
    """The rows the model itself answered (not the fallback), and the impact item counting them.

    Every kind's impact starts here (:meth:`firebreak.kinds.base.ModelKind.impact`).
    """
    served = window[window["route"] == "champion"] if "route" in window.columns else window
    return served, {
        "key": "answered",
        "label": f"{subject} answered by the model in the triage window",
        "value": len(served),
        "format": "count",
    }


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
    served, answered = served_by_model(window, subject)
    items: list[dict[str, object]] = [answered]
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
    labelled = labelled.dropna(subset=[label, output])
    kind = outcome_kind(labelled[label], labelled[output]) if len(labelled) else "classes"
    if kind != "decisions":  # class names, several classes: no "approved" or "declined" to speak of
        return _classes_impact(labelled, policy, kind)
    truth = labelled[label].to_numpy(dtype=float) >= 0.5
    decided = labelled[output].to_numpy(dtype=float) >= 0.5
    subject = policy.impact.subject
    wrongly_declined = ~decided & truth
    items = [
        _counted(
            "wrongly_declined",
            f"{subject} wrongly declined (declined, and the outcome proved them good)",
            int(wrongly_declined.sum()),
            len(labelled),
        ),
        _counted(
            "wrongly_approved",
            f"{subject} wrongly approved (approved, and the outcome proved them bad)",
            int((decided & ~truth).sum()),
            len(labelled),
        ),
    ]
    attribute = policy.fairness.protected_attribute if policy.fairness else None
    if attribute and attribute in labelled.columns and wrongly_declined.any():
        groups = labelled[attribute].astype(str)
        rates = pd.Series(wrongly_declined, index=labelled.index).groupby(groups).mean()
        worst = str(rates.idxmax())
        in_worst = groups == worst
        items.append(
            _counted(
                "wrongly_declined_worst_group",
                f"wrongly declined in the group hit hardest ({attribute} {worst})",
                int(wrongly_declined[in_worst.to_numpy()].sum()),
                int(in_worst.sum()),
            )
        )
    return items


def _classes_impact(labelled: pd.DataFrame, policy: Policy, kind: str) -> list[dict[str, object]]:
    """Wrong classes, and the mistake made most often, for a model that answers classes."""
    label, output, subject = policy.features.label, policy.features.output, policy.impact.subject
    if kind == "numbers" or labelled.empty:
        return []
    wrong = wrong_answers(labelled[label], labelled[output], kind)
    items = [
        _counted(
            "wrong_class", f"{subject} answered with a class the outcome proved wrong", int(wrong.sum()), len(labelled)
        )
    ]
    if wrong.any():
        mistakes = pd.DataFrame(
            {
                "answered": labelled[output].astype(str).to_numpy()[wrong],
                "was": labelled[label].astype(str).to_numpy()[wrong],
            }
        ).value_counts()
        (answered, was), count = next(iter(mistakes.items()))
        mistake = f"the mistake made most often: answered {answered!r} where the outcome was {was!r}"
        items.append(_counted("most_common_mistake", mistake, int(count), int(wrong.sum())))
    return items


def _counted(key: str, label: str, value: int, of: int) -> dict[str, object]:
    """One impact item that counts requests: ``value`` of ``of``."""
    return {"key": key, "label": label, "value": value, "of": of, "format": "count"}
