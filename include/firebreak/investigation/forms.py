"""A column written in another form than the reference's: the pipeline changed (skew).

SOP stage: investigate (triage). The world changes what values are, not how they are
written: labels ``yes``/``no`` where the reference has 0/1, scores in percent, grades
``A``-``G`` sent as numbers, epoch seconds sent as milliseconds, ``2024-01-05`` sent as
``05/01/2024`` each mean a writer, a reader or a schema changed. Such a column cannot be
compared across the two forms (the performance figures, the drift tests would read
nonsense), and the change of form is itself the finding. Every function returns items of
one shape: ``column``, ``verdict`` (``skew``), ``because`` and a ``sample`` of current values.

* :func:`outcome_changes` — the model's answers or the labels;
* :func:`missing_answers` — the model's answers missing on more rows than in the reference;
* :func:`type_changes` — inputs holding text in the reference and numbers now;
* :func:`time_form_changes` — time columns (never compared for drift) in another unit or format;
* :func:`clock_shifts` — an hour of the day moved round the clock whole (a time zone changed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from firebreak.contracts.validation import bounded_sample
from firebreak.investigation.column_kinds import epoch_unit, holds_text
from firebreak.investigation.data_checks import SIGNIFICANCE, beyond_range, null_changes, unknown_values

__all__ = ["clock_shifts", "missing_answers", "outcome_changes", "time_form_changes", "type_changes"]

# Text times are compared by their shape (digits as 9, letters as a): a format change leaves
# most of the current rows in shapes the reference never wrote.
_SHAPE_ROWS = 2_000
_NEW_SHAPE_SHARE = 0.5


def outcome_changes(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
    *,
    rescaled: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The model's answers or the labels written in another form than the reference's: skew.

    Only a change of *form* is judged here: values of another type (``yes``/``no`` labels where
    the reference has 0/1), a scale (scores of 0-100 where the reference's are 0-1; house
    values in thousands where the reference's are in units: ``rescaled``, each column's
    factor from the scale check, which holds whether or not the values leave the range), or
    a set none of whose values the reference knows. A change of their distribution is what
    the performance figures judge; they mean nothing across two forms. Each item carries
    ``column``, ``verdict`` (``skew``), ``because`` and a ``sample`` of current values.
    """
    found = []
    rescaled = rescaled or {}
    for column in columns:
        if column not in reference.columns or column not in current.columns:
            continue
        ref, cur = reference[column].dropna(), current[column].dropna()
        if ref.empty or cur.empty:
            continue
        ref_numbers, cur_numbers = _numbers_of(ref), _numbers_of(cur)
        sample = _common(cur)
        if (ref_numbers is None) != (cur_numbers is None):
            found.append(_type_changed(str(column), ref, cur))
            continue
        if ref_numbers is not None and cur_numbers is not None:
            if column in rescaled:
                because = (
                    f"every value multiplied by {rescaled[column]:.4g}: the whole column is rescaled by one factor"
                )
                found.append({"column": str(column), "verdict": "skew", "because": because, "sample": sample})
                continue
            past = beyond_range(ref_numbers, cur_numbers)
            if past is not None and past["verdict"] == "skew":
                because = f"{past['share']:.1%} of values past the reference's range {past['range']}: {past['because']}"
                found.append({"column": str(column), "verdict": "skew", "because": because, "sample": sample})
            continue
        unseen = unknown_values(ref, cur)
        if unseen is not None and unseen.get("verdict") == "skew" and unseen["rows"] == len(cur):
            found.append({**unseen, "because": f"unknown values on every row; {unseen['because']}"})
    return found


def type_changes(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Input columns holding text in the reference and numbers now: skew.

    The world does not turn grades ``A``-``G`` into numbers: a reader, a parser or a schema
    changed. Such a column cannot be compared for drift, and that is itself the finding.
    (Text where the reference held numbers is the derived contract's type check, which
    names the rows.) Items as :func:`outcome_changes`'.
    """
    found = []
    for column in columns:
        ref, cur = reference[column].dropna(), current[column].dropna()
        if not ref.empty and not cur.empty and _numbers_of(ref) is None and _numbers_of(cur) is not None:
            found.append(_type_changed(str(column), ref, cur))
    return found


def _type_changed(column: str, ref: pd.Series, cur: pd.Series) -> dict[str, Any]:
    before, sample = _common(ref), _common(cur)
    because = (
        f"its values changed type: {', '.join(map(str, before))} in the reference, {', '.join(map(str, sample))} now"
    )
    return {"column": column, "verdict": "skew", "because": because, "sample": sample}


def _common(values: pd.Series) -> list[Any]:
    """A column's three most common values, each bounded for a report."""
    return [bounded_sample(v) for v in values.astype(object).value_counts().index[:3].tolist()]


def missing_answers(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The model's answers (prediction, confidence) missing on more rows than in the reference: skew.

    A model that stops answering part of its traffic (a feature it cannot read, a timeout
    written as an empty answer) fails those rows whatever the rest say. The test is
    :func:`~firebreak.investigation.data_checks.null_changes`'. Labels are not judged: they
    arrive late by nature. Items as :func:`outcome_changes`'.
    """
    return [
        {
            "column": item["column"],
            "verdict": "skew",
            "because": (
                f"the model's answers are missing on {item['current_rate']:.1%} of rows, against "
                f"{item['reference_rate']:.1%} in the reference (p={item['p_value']:.2g})"
            ),
            "sample": [],
        }
        for item in null_changes(reference, current, columns)
        if item["skew"]
    ]


def _numbers_of(values: pd.Series) -> pd.Series | None:
    """``values`` as numbers, or None for text (:func:`~firebreak.detection.performance.as_numbers`
    decides, as it does for the performance figures); a numeric column keeps its dtype, so an
    integer column keeps its whole-number range, and booleans read as the integers 0/1."""
    from firebreak.detection.performance import as_numbers

    if pd.api.types.is_bool_dtype(values):
        return values.astype(int)
    if pd.api.types.is_numeric_dtype(values):
        return values
    numbers = as_numbers(values)
    return None if numbers is None else pd.Series(numbers, index=values.index, name=values.name)


def time_form_changes(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Time columns written in another form than the reference's: skew.

    A time column is not compared for drift (the next batch is later by construction), but
    the form it is written in does not move with the world: epoch seconds that arrive as
    milliseconds, or ``2024-01-05`` that arrives as ``05/01/2024``, mean a writer or a parser
    changed. Like is compared with like: epoch numbers by their unit, text by its shape (at
    least half of the current rows in shapes the reference never wrote). Typed times against
    text are left alone: that is how two readers differ, not the data. Items as
    :func:`type_changes`' (``column``, ``verdict``, ``because``, ``sample``).
    """
    found = []
    for column in columns:
        if column not in reference.columns or column not in current.columns:
            continue
        ref, cur = reference[column].dropna(), current[column].dropna()
        before, now = epoch_unit(ref), epoch_unit(cur)
        if before is not None and now is not None and before != now:
            because = f"its time unit changed: {before} in the reference, {now} now"
            found.append({"column": str(column), "verdict": "skew", "because": because, "sample": []})
            continue
        before_shapes, now_shapes = _shapes(ref), _shapes(cur)
        if before_shapes is None or now_shapes is None:
            continue
        (ref_text, ref_shapes), (cur_text, cur_shapes) = before_shapes, now_shapes
        new = ~np.isin(cur_shapes, ref_shapes)
        if new.mean() >= _NEW_SHAPE_SHARE:
            shapes, counts = np.unique(ref_shapes, return_counts=True)
            was = bounded_sample(ref_text[ref_shapes == shapes[np.argmax(counts)]][0])
            sample = [bounded_sample(v) for v in cur_text[new][:3]]
            because = (
                f"its time format changed: {was} in the reference, {sample[0]} now "
                f"({new.mean():.0%} of the rows in a form the reference never wrote)"
            )
            found.append({"column": str(column), "verdict": "skew", "because": because, "sample": sample})
    return found


# An hour of the day: its name says so (``hour``, ``pickup_hour``, ``hr``, ``hour_of_day``; not
# ``hours``, a duration), and it holds whole numbers 0-23 in both tables, at least
# _CLOCK_MIN_ROWS of them, over at least _CLOCK_MIN_HOURS hours in the reference.
_HOUR_NAME = re.compile(r"(?:^|[^a-z])(?:hour|hr)(?:$|[^a-z])|hour_?of_?day", re.IGNORECASE)
_CLOCK_MIN_ROWS = 200
_CLOCK_MIN_HOURS = 8
# A view of the day (the hours' shares, or another column's mean by hour) has a shape when the
# reference's differs from a flat day at p < SIGNIFICANCE; an hour's mean counts with 5 rows.
_CLOCK_HOUR_ROWS = 5
# Moved round the clock: as written, the views differ from the reference's at p < SIGNIFICANCE;
# turned back by the best whole number of hours they match it (chi-square p at least
# _CLOCK_FIT_P), and what differs beyond chance is at most _CLOCK_REMAINING of what differed.
_CLOCK_FIT_P = 0.01
_CLOCK_REMAINING = 1 / 3


def clock_shifts(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Hour-of-day columns whose current hours are the reference's moved round the clock: skew.

    A time zone changed upstream (local time written as UTC, a server moved): every hour moves
    by the same offset, and the day's shape arrives whole, hours later. The shape is read in
    two views: the hours' shares (a quiet night, an evening peak), and the mean by hour of each
    other numeric column in ``columns`` (the load that peaks at six, each table's own level
    taken out), which shows the move when every hour holds the same rows (an hourly meter).
    People who change their habits change the shape instead: an evening that fills, a night
    that empties. So, over the views whose reference has a shape, the current hours must
    differ from the reference's significantly and match them once turned back by one offset
    (a chi-square statistic summed over the views). Items as :func:`type_changes`'.
    """
    found = []
    for column in columns:
        if _HOUR_NAME.search(str(column)) is None:
            continue
        ref_hours, cur_hours = _whole_hours(reference[column]), _whole_hours(current[column])
        if ref_hours is None or cur_hours is None or len(np.unique(ref_hours[ref_hours >= 0])) < _CLOCK_MIN_HOURS:
            continue
        views: list[_ShareView | _MeanView] = [_ShareView(ref_hours, cur_hours)]
        for other in columns:
            if other != column and pd.api.types.is_numeric_dtype(reference[other]):
                views.append(_MeanView(ref_hours, cur_hours, reference[other], current[other]))
        views = [view for view in views if view.shaped()]
        if not views:
            continue
        fits = [
            (sum(s for s, _ in parts), sum(d for _, d in parts))
            for parts in ([v.fit(k) for v in views] for k in range(24))
        ]
        written, written_dof = fits[0]
        if _chi_square_p(written, written_dof) >= SIGNIFICANCE:
            continue
        offset = min(range(1, 24), key=lambda k: fits[k][0] - fits[k][1])
        turned, turned_dof = fits[offset]
        fit = _chi_square_p(turned, turned_dof)
        if not turned_dof or fit < _CLOCK_FIT_P or turned - turned_dof > _CLOCK_REMAINING * (written - written_dof):
            continue
        hours = offset if offset <= 12 else offset - 24
        because = (
            f"its hours moved {hours:+d} round the clock (a time zone changed upstream): turned back "
            f"{-hours:+d} hours they match the reference's (p={fit:.2f}), as written they do not"
        )
        found.append({"column": str(column), "verdict": "skew", "because": because, "sample": []})
    return found


def _whole_hours(values: pd.Series) -> np.ndarray | None:
    """Each row's hour (-1 where missing) of a column holding only whole hours 0-23, or None."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    held = ~np.isnan(numbers)
    kept = numbers[held]
    if len(kept) < _CLOCK_MIN_ROWS or not np.all((kept >= 0) & (kept <= 23) & (kept == np.round(kept))):
        return None
    return np.where(held, np.nan_to_num(numbers, nan=-1.0), -1).astype(np.intp)


class _ShareView:
    """The hours' shares: rows per hour."""

    def __init__(self, ref_hours: np.ndarray, cur_hours: np.ndarray) -> None:
        self.ref = np.bincount(ref_hours[ref_hours >= 0], minlength=24)
        self.cur = np.bincount(cur_hours[cur_hours >= 0], minlength=24)

    def shaped(self) -> bool:
        from firebreak.detection.stats import counts_chi_square

        held = self.ref[self.ref > 0]
        statistic, dof = counts_chi_square(held, np.full(len(held), held.mean()))
        return _chi_square_p(statistic, dof) < SIGNIFICANCE

    def fit(self, offset: int) -> tuple[float, int]:
        from firebreak.detection.stats import counts_chi_square

        return counts_chi_square(np.roll(self.ref, offset), self.cur)


class _MeanView:
    """Another column's mean by hour, each table's own level taken out."""

    def __init__(self, ref_hours: np.ndarray, cur_hours: np.ndarray, ref: pd.Series, cur: pd.Series) -> None:
        self.ref = _hourly(ref_hours, ref)
        self.cur = _hourly(cur_hours, cur)

    def shaped(self) -> bool:
        mean, error, rows = self.ref
        held = rows >= _CLOCK_HOUR_ROWS
        if held.sum() < _CLOCK_MIN_HOURS:
            return False
        weights = 1 / np.maximum(error[held], 1e-12)
        level = float(np.sum(mean[held] * weights) / weights.sum())
        statistic = float(np.sum((mean[held] - level) ** 2 * weights))
        return _chi_square_p(statistic, int(held.sum()) - 1) < SIGNIFICANCE

    def fit(self, offset: int) -> tuple[float, int]:
        (ref_mean, ref_error, ref_rows), (cur_mean, cur_error, cur_rows) = self.ref, self.cur
        ref_mean, ref_error, ref_rows = np.roll(ref_mean, offset), np.roll(ref_error, offset), np.roll(ref_rows, offset)
        held = (ref_rows >= _CLOCK_HOUR_ROWS) & (cur_rows >= _CLOCK_HOUR_ROWS)
        if held.sum() < 2:
            return 0.0, 0
        gap = (cur_mean[held] - np.mean(cur_mean[held])) - (ref_mean[held] - np.mean(ref_mean[held]))
        return float(np.sum(gap**2 / np.maximum(ref_error[held] + cur_error[held], 1e-12))), int(held.sum()) - 1


def _hourly(hours: np.ndarray, values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column's mean per hour, the squared standard error of each mean, and the rows behind it."""
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    held = (hours >= 0) & np.isfinite(numbers)
    at, x = hours[held], numbers[held]
    x = x - x.mean() if len(x) else x  # centred: the squares below keep their precision at any level
    rows = np.bincount(at, minlength=24).astype(float)
    total, squares = np.bincount(at, weights=x, minlength=24), np.bincount(at, weights=x * x, minlength=24)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(rows > 0, total / rows, 0.0)
        variance = np.where(rows > 1, (squares - rows * mean**2) / (rows - 1), 0.0)
        error = np.where(rows > 0, np.maximum(variance, 0.0) / rows, np.inf)
    return mean, error, rows


def _chi_square_p(statistic: float, dof: int) -> float:
    from scipy import special

    return float(special.chdtrc(dof, statistic)) if dof > 0 else 1.0


def _shapes(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(A seeded sample of) a text column's values, and the shape of each: runs of digits as 9, of letters as a."""
    if not holds_text(values) or values.empty:
        return None
    sample = values.sample(min(len(values), _SHAPE_ROWS), random_state=0) if len(values) > _SHAPE_ROWS else values
    text = sample.to_numpy(dtype=object)
    if not all(isinstance(v, str) for v in text):
        return None
    shapes = pd.Series(text, dtype=object).str.strip().str.replace(r"\d+", "9", regex=True)
    return text, shapes.str.replace(r"[^\W\d_]+", "a", regex=True).to_numpy(dtype=object)
