"""Whether a reference's answers know its labels: a model scored on its own training rows.

SOP stage: investigate (``firebreak triage`` with labels). A flexible model (a forest,
boosted trees, a deep tree) is more accurate on the rows it was trained on than anywhere
else, so against such a reference every later window reads as concept drift, and a
group that the fit favoured reads as bias. The tell needs no model, only its answers:
on a training row the answer is pulled toward that row's own label, further than the
answer on the nearest other row is.

For each reference row *j* and the nearest other reference row *k* (numeric inputs, each
centred on its median and scaled by its interquartile range; a missing value sits at the
median):

* Scores (a probability of the positive class) and a regressor's numbers: ``T_j = (s_k -
  s_j) * (y_j - s_j)``. Where the answer is the expected label at each point (a calibrated
  score, an unbiased regressor: ``E[y_j | inputs] = s_j``), ``T`` has mean zero however far
  apart the neighbours are, because ``y_j - s_j`` is noise the neighbour's answer cannot
  know. An answer pulled toward its own label makes ``T`` negative. A model that misses part
  of the signal makes it positive (the neighbour's answer knows a little of what this one
  missed), which is not this test's business: it is one-sided.
* 0/1 decisions and classes: no verdict. Comparing the own answer with the neighbour's
  (right where the other is wrong) assumes the table holds every input the model used; a
  model that also reads columns the table does not carry is right on its own rows more often
  than its neighbour's answer is, trained on them or not. For scores the two-table rule of
  :func:`memorised` answers that: such answers pull in the current table too.

Measured (``docs/triage.md``): forests and boosted trees trained on one half of the
packages' five tables, triaged against the other half unchanged, read concept drift or bias
on 28 of 30 without this test and 9-10 with it (the 285-row table's six are ones it cannot
tell); a logistic regression on its own training rows stays below 3.09 on those tables but
one, 285 rows it nearly separates (3.4: it too is more accurate on its own rows, by less,
and the two-table rule keeps it judged).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# One-sided p = 0.001.
MEMORISED_Z = 3.09
# The current table's answers must show no pull of their own (one-sided p = 0.05): answers that
# know their labels through something the table does not hold pull in both tables, and pull
# less in a current table whose answers got worse, which is what the labelled figures judge.
NO_PULL_Z = 1.645
# Inputs count toward "nearest" by how strongly the answers follow them (their rank correlation):
# a column the model never read would move the nearest row away along nothing the answer knows.
# Below this for every input (answers that follow none of them), all count alike.
MIN_RELEVANCE = 0.05
# Below this many rows with an answer, a label and a numeric input, there is no verdict.
MIN_ROWS = 30
# At most this many rows of a table (a seeded sample of a larger one): the distances cost its square.
MAX_ROWS = 2_000


def memorised(
    reference: pd.DataFrame, current: pd.DataFrame, *, label: str, prediction: str, inputs: list[str]
) -> dict[str, Any] | None:
    """Whether ``reference``'s answers are a model's fit to these very rows.

    The statistic is taken in both tables. Answers that know their labels through something
    the table does not hold (a column left out of it, a score made from the label) show the
    same pull in the current table; a training fit shows it in the reference only. So the
    reference must pass :data:`MEMORISED_Z` on its own and pull harder than the current
    table by as many standard errors, and the current table's answers show no pull
    (:data:`NO_PULL_Z`).

    Returns:
        None for 0/1 decisions and classes (no test that holds for them, above), without
        numeric ``inputs``, or with fewer than :data:`MIN_ROWS` answered, labelled rows in
        either table; else ``memorised`` (bool), ``z`` (the reference's; larger means more
        memorised), ``z_current``, ``z_difference`` and ``rows``.
    """
    numeric = [  # numbers in both tables: a column of booleans here and text there is no distance
        c
        for c in inputs
        if c in reference.columns
        and c in current.columns
        and pd.api.types.is_numeric_dtype(reference[c])
        and pd.api.types.is_numeric_dtype(current[c])
    ]
    if not numeric:
        return None
    before, after = (_pull(frame, label, prediction, numeric) for frame in (reference, current))
    if before is None or after is None:
        return None
    (ref_mean, ref_se, rows), (cur_mean, cur_se, _) = before, after
    z = -ref_mean / ref_se
    difference = (cur_mean - ref_mean) / math.sqrt(ref_se**2 + cur_se**2)
    return {
        "memorised": bool(z >= MEMORISED_Z and difference >= MEMORISED_Z and -cur_mean / cur_se < NO_PULL_Z),
        "z": round(z, 2),
        "z_current": round(-cur_mean / cur_se, 2),
        "z_difference": round(difference, 2),
        "rows": rows,
    }


def _pull(frame: pd.DataFrame, label: str, prediction: str, numeric: list[str]) -> tuple[float, float, int] | None:
    """Mean and standard error of ``T`` over ``frame``'s answered, labelled rows, and their count."""
    from firebreak.detection.fairness import FairnessInputError, decisions
    from firebreak.detection.performance import as_numbers, finite_rows, outcome_kind

    if label not in frame.columns or prediction not in frame.columns:
        return None
    rows = finite_rows(frame, [label, prediction])
    if len(rows) < MIN_ROWS:
        return None
    kind = outcome_kind(rows[label], rows[prediction])
    answers = as_numbers(rows[prediction])
    if answers is None or kind == "classes" or (kind == "decisions" and np.isin(answers, (0, 1)).all()):
        return None
    try:
        truth = decisions(rows[label], "label") if kind == "decisions" else as_numbers(rows[label])
    except FairnessInputError:
        return None
    if truth is None:
        return None
    if len(rows) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(0).choice(len(rows), MAX_ROWS, replace=False))
        rows, answers, truth = rows.iloc[keep], answers[keep], np.asarray(truth)[keep]
    s, y = np.asarray(answers, dtype=float), np.asarray(truth, dtype=float)
    neighbour = _nearest_other(rows, numeric, s)
    if neighbour is None:
        return None
    t = (s[neighbour] - s) * (y - s)
    spread = float(t.std(ddof=1))
    if not math.isfinite(spread) or spread == 0.0:
        return None
    return float(t.mean()), spread / math.sqrt(len(t)), len(t)


def _nearest_other(rows: pd.DataFrame, numeric: list[str], answers: np.ndarray) -> np.ndarray | None:
    """For each row, the position of its nearest other row on the scaled numeric inputs, each
    weighted by how strongly ``answers`` follow it (:func:`_relevance`).

    By blocks of squared distances (numpy only: a k-d tree would cost scipy.spatial's import
    on every triage from the shell); a row's own distance is set aside, so an exact duplicate
    is its twin's neighbour, not its own.
    """
    columns = []
    for column in numeric:
        values = rows[column].to_numpy(dtype=float, na_value=np.nan)
        values[~np.isfinite(values)] = np.nan
        if np.isnan(values).all():
            continue
        low, mid, high = np.nanpercentile(values, [25, 50, 75])
        scale = high - low or float(np.nanstd(values)) or 1.0
        columns.append(np.nan_to_num((values - mid) / scale, nan=0.0))
    if not columns:
        return None
    points = np.column_stack(columns)
    weights = _relevance(points, answers)
    if weights.max() >= MIN_RELEVANCE:
        points = points * (weights / weights.max())
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b; |a|^2 is the same along a row, so the argmin needs only the rest.
    norms = np.einsum("ij,ij->i", points, points)
    twice = np.ascontiguousarray(2.0 * points.T)
    nearest = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), _BLOCK):
        distances = points[start : start + _BLOCK] @ twice
        np.subtract(norms, distances, out=distances)
        own = np.arange(len(distances))
        distances[own, own + start] = np.inf
        nearest[start : start + len(distances)] = np.argmin(distances, axis=1)
    return nearest


def _relevance(points: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Each input's Spearman correlation with the answers, in absolute value (0 for a constant one)."""
    ranked = np.column_stack([pd.Series(points[:, i]).rank().to_numpy() for i in range(points.shape[1])])
    answer_ranks = pd.Series(answers).rank().to_numpy()
    ranked -= ranked.mean(axis=0)
    answer_ranks -= answer_ranks.mean()
    spread = np.sqrt((ranked**2).sum(axis=0) * (answer_ranks**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        found = np.abs(ranked.T @ answer_ranks) / spread
    return np.nan_to_num(found, nan=0.0)


# Rows per block of distances: 32 x 2,000 float64 is 0.5 MB, kept in cache (blocks of 500 run twice as long).
_BLOCK = 32
