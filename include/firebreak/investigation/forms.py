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
* :func:`clock_shifts` — an hour of the day moved round the clock whole (a time zone changed);
* :func:`swapped_codes` — codes that changed places (what one held, another holds now).
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

__all__ = ["clock_shifts", "missing_answers", "outcome_changes", "swapped_codes", "time_form_changes", "type_changes"]

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
# A view of a key column's levels (hours, codes: their shares, or another column's mean by
# level) counts when the reference's levels differ in it far past chance (p < _LEVELS_DIFFER_P)
# and, for means, by at least _LEVELS_SPREAD of the column's standard deviation between the
# highest and the lowest: levels trading places must not be two close figures trading places
# (two genders' second incomes 2,600 apart at p = 0.0004, a tenth of the spread of incomes,
# read as swapped genders). A level's mean counts with _LEVEL_MIN_ROWS rows.
_LEVELS_DIFFER_P = 1e-6
_LEVELS_SPREAD = 0.5
_LEVEL_MIN_ROWS = 5
# Levels that moved (hours round the clock, codes that changed places): as written, the views
# differ from the reference's at p < SIGNIFICANCE; matched as they moved they agree (chi-square
# p at least _MOVED_FIT_P), and what differs beyond chance is at most _MOVED_REMAINING of what
# differed.
_MOVED_FIT_P = 0.01
_MOVED_REMAINING = 1 / 3
# Codes that changed places are looked for among at most this many codes.
_SWAP_MAX_LEVELS = 12


def clock_shifts(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Hour-of-day columns whose current hours are the reference's moved round the clock: skew.

    A time zone changed upstream (local time written as UTC, a server moved): every hour moves
    by the same offset, and the day's shape arrives whole, hours later. The shape is read in
    two views (:class:`_Views`): the hours' shares (a quiet night, an evening peak), and the
    mean by hour of each other numeric column in ``columns`` (the load that peaks at six),
    which shows the move when every hour holds the same rows (an hourly meter). People who
    change their habits change the shape instead: an evening that fills, a night that empties.
    So the current hours must differ from the reference's significantly and match them once
    turned back by one offset. Items as :func:`type_changes`'.
    """
    found = []
    numbers = _Numbers(reference, current, columns)
    for column in columns:
        if _HOUR_NAME.search(str(column)) is None:
            continue
        ref_hours, cur_hours = _whole_hours(reference[column]), _whole_hours(current[column])
        if ref_hours is None or cur_hours is None or len(np.unique(ref_hours[ref_hours >= 0])) < _CLOCK_MIN_HOURS:
            continue
        others = [c for c in numbers.columns if c != column]
        views = _Views(ref_hours, cur_hours, 24, numbers, others, own_level=True)
        hour = np.arange(24)
        turned = min(((hour - k) % 24 for k in range(1, 24)), key=views.excess)
        fit = views.moved(turned)
        if fit is None:
            continue
        offset = int((hour[0] - turned[0]) % 24)
        hours = offset if offset <= 12 else offset - 24
        because = (
            f"its hours moved {hours:+d} round the clock (a time zone changed upstream): turned back "
            f"{-hours:+d} hours they match the reference's (p={fit:.2f}), as written they do not"
        )
        found.append({"column": str(column), "verdict": "skew", "because": because, "sample": []})
    return found


def swapped_codes(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Categorical columns whose codes changed places: what one code held, another holds now (skew).

    A lookup or an encoder changed upstream: plan ``P20`` now arrives as ``P45`` and back, so
    each code carries another code's rows whole, its share and its customers (their charges,
    their tenure). The world moves a code's customers, not its name. Read in the same two views
    as :func:`clock_shifts`, per code: its share, and each numeric column's mean among its rows;
    at least one column's means must tell the codes apart (a few codes' shares alone can trade
    places as the world moves: 27% of one plan's customers moving to another).
    Each current code is matched to the reference code whose views it is nearest (least
    chi-square); when no two are nearest the same one, that match is not the codes as
    written, as written the views differ significantly, and matched they agree, the codes
    changed places. For a column of 2 to :data:`_SWAP_MAX_LEVELS` codes the reference and the
    current table both hold, each on at least :data:`_LEVEL_MIN_ROWS` rows. Items as
    :func:`type_changes`'.
    """
    from firebreak.detection.columns import as_text, level_codes, ranked_levels
    from firebreak.inert import clean

    found = []
    numbers = _Numbers(reference, current, columns)
    for column in columns:
        if column in numbers.columns or not numbers.columns:
            continue
        ref_codes, distinct, counts = ranked_levels(as_text(reference[column]))
        levels = [str(v) for v in distinct]
        if not 2 <= len(levels) <= _SWAP_MAX_LEVELS or counts.min() < _LEVEL_MIN_ROWS:
            continue
        cur_codes = level_codes(as_text(current[column]), levels)
        cur_counts = np.bincount(cur_codes[cur_codes >= 0], minlength=len(levels))
        if cur_counts.min() < _LEVEL_MIN_ROWS or (cur_codes < 0).mean() > 0.01:
            continue  # codes the reference lacks: the unknown-value rule's
        views = _Views(ref_codes, cur_codes, len(levels), numbers, numbers.columns)
        if not views.means:
            continue  # shares alone: a few codes' shares can trade places as the world moves
        # Each current code beside the reference code it looks most like: a match only when no
        # two look most like the same one.
        match = views.costs().argmin(axis=1)
        changed = len(set(match.tolist())) == len(levels) and not np.array_equal(match, np.arange(len(levels)))
        fit = views.moved(match) if changed else None
        if fit is None:
            continue
        pairs = [(levels[i], levels[j]) for i, j in enumerate(match) if i != j][:3]
        shown = ", ".join(f"{clean(a, 40)} holds what {clean(b, 40)} held" for a, b in pairs)
        because = f"its codes changed places upstream: {shown} (matched so, p={fit:.2f}; as written they differ)"
        found.append({"column": str(column), "verdict": "skew", "because": because, "sample": [a for a, _ in pairs]})
    return found


class _Views:
    """A key column's levels (hours, codes) seen through what each holds, in both tables.

    Two views of a level: its share of the rows, and the mean among its rows of each column of
    ``numbers`` (a level's mean counts with :data:`_LEVEL_MIN_ROWS` rows; ``own_level``: each
    table's overall mean taken out first, for hours, whose readings move with the days a table
    covers). A view counts when the reference's levels differ in it (p <
    :data:`_LEVELS_DIFFER_P` against every level alike; means also by :data:`_LEVELS_SPREAD` of
    the column's standard deviation). Matching current level ``i`` with reference level
    ``match[i]`` gives a chi-square statistic summed over the views that count: Pearson's terms
    for the shares, squared gaps over their standard errors for the means.
    """

    def __init__(
        self,
        ref_keys: np.ndarray,
        cur_keys: np.ndarray,
        levels: int,
        numbers: _Numbers,
        columns: Sequence[str],
        *,
        own_level: bool = False,
    ) -> None:
        ref_rows = np.bincount(ref_keys[ref_keys >= 0], minlength=levels).astype(float)
        cur_rows = np.bincount(cur_keys[cur_keys >= 0], minlength=levels).astype(float)
        # Pearson's chi-square of the shares, cell by cell: current level i beside reference level j.
        total = cur_rows[:, None] + ref_rows[None, :]
        n_ref, n_cur = ref_rows.sum(), cur_rows.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            e_ref, e_cur = total * n_ref / (n_ref + n_cur), total * n_cur / (n_ref + n_cur)
            share = np.where(
                total > 0, (ref_rows[None, :] - e_ref) ** 2 / e_ref + (cur_rows[:, None] - e_cur) ** 2 / e_cur, 0.0
            )
        parts = [(share, total > 0)] if _counts_flat_p(ref_rows) < _LEVELS_DIFFER_P else []
        self.means = 0  # the views of means kept
        ref_at, cur_at = ref_keys + 1, cur_keys + 1  # bin 0: no level (bincount takes no -1)
        for column in columns:
            ref = numbers.reference(column)
            r_mean, r_rows = ref.means(ref_at, levels)
            held_ref = r_rows >= _LEVEL_MIN_ROWS
            # The spread first: it needs no squares, and most columns stop at it.
            if held_ref.sum() < 2 or np.ptp(r_mean[held_ref]) < _LEVELS_SPREAD * ref.spread:
                continue
            r_error = ref.errors(ref_at, levels, r_mean, r_rows)
            if _means_flat_p(r_mean[held_ref], r_error[held_ref]) >= _LEVELS_DIFFER_P:
                continue
            cur = numbers.current(column)
            c_mean, c_rows = cur.means(cur_at, levels)
            c_error = cur.errors(cur_at, levels, c_mean, c_rows)
            if not own_level:  # both tables' means less the reference's
                c_mean = c_mean + (cur.level - ref.level)
            held = (c_rows[:, None] >= _LEVEL_MIN_ROWS) & held_ref[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                gap = (c_mean[:, None] - r_mean[None, :]) ** 2 / np.maximum(c_error[:, None] + r_error[None, :], 1e-12)
            parts.append((np.where(held, gap, 0.0), held))
            self.means += 1
        self.parts = parts

    def costs(self) -> np.ndarray:
        """Per current level and reference level, the statistic their match adds."""
        return np.sum([cost for cost, _ in self.parts], axis=0)

    def statistic(self, match: np.ndarray) -> tuple[float, int]:
        """The chi-square statistic and its degrees of freedom for ``match`` (current level -> reference level)."""
        level = np.arange(len(match))
        statistic = sum(float(cost[level, match].sum()) for cost, _ in self.parts)
        dof = sum(max(int(held[level, match].sum()) - 1, 0) for _, held in self.parts)
        return statistic, dof

    def excess(self, match: np.ndarray) -> float:
        statistic, dof = self.statistic(match)
        return statistic - dof

    def moved(self, match: np.ndarray) -> float | None:
        """The p-value of ``match`` when the levels moved so: as written the views differ (p <
        :data:`SIGNIFICANCE`), matched so they agree (p >= :data:`_MOVED_FIT_P`), and what
        differs beyond chance is at most :data:`_MOVED_REMAINING` of what differed; else None."""
        if not self.parts:
            return None
        written, written_dof = self.statistic(np.arange(len(match)))
        moved, moved_dof = self.statistic(match)
        fit = _chi_square_p(moved, moved_dof)
        if _chi_square_p(written, written_dof) >= SIGNIFICANCE or not moved_dof or fit < _MOVED_FIT_P:
            return None
        return fit if moved - moved_dof <= _MOVED_REMAINING * (written - written_dof) else None


def _counts_flat_p(counts: np.ndarray) -> float:
    """Pearson's p-value that a reference's levels hold their rows alike (a flat day, codes of one size)."""
    expected = np.full(len(counts), counts.mean())
    return _chi_square_p(float(np.sum((counts - expected) ** 2 / expected)), len(counts) - 1) if counts.any() else 1.0


def _means_flat_p(means: np.ndarray, errors: np.ndarray) -> float:
    """The p-value that a reference's levels' means (``errors``: their squared standard errors) are one mean."""
    weights = 1 / np.maximum(errors, 1e-12)
    level = float(np.sum(means * weights) / weights.sum())
    return _chi_square_p(float(np.sum((means - level) ** 2 * weights)), len(means) - 1)


def _whole_hours(values: pd.Series) -> np.ndarray | None:
    """Each row's hour (-1 where missing) of a column holding only whole hours 0-23, or None."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    held = ~np.isnan(numbers)
    kept = numbers[held]
    if len(kept) < _CLOCK_MIN_ROWS or not np.all((kept >= 0) & (kept <= 23) & (kept == np.round(kept))):
        return None
    return np.nan_to_num(numbers, nan=-1.0).astype(np.intp)


class _Column:
    """One numeric column of one table, read once for every key column it is viewed by: its
    values less its mean (0 where not finite; the squares below keep their precision at any
    level), which of them are finite, its mean and its standard deviation."""

    def __init__(self, values: pd.Series) -> None:
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(numbers)
        kept = numbers[finite]
        self.level, self.spread = (float(kept.mean()), float(kept.std())) if len(kept) else (0.0, 0.0)
        self.weights = None if finite.all() else finite.astype(float)
        self.values = np.where(finite, numbers - self.level, 0.0)

    def means(self, at: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
        """Per level (``at``: each row's level + 1, 0 for none) the mean less the column's, and the rows behind it."""
        rows = np.bincount(at, weights=self.weights, minlength=levels + 1)[1:]
        total = np.bincount(at, weights=self.values, minlength=levels + 1)[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(rows > 0, total / rows, 0.0), rows

    def errors(self, at: np.ndarray, levels: int, mean: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per level the squared standard error of its mean (``mean``, ``rows``: :meth:`means`')."""
        squares = np.bincount(at, weights=self.values * self.values, minlength=levels + 1)[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = np.where(rows > 1, (squares - rows * mean**2) / (rows - 1), 0.0)
            return np.where(rows > 0, np.maximum(variance, 0.0) / rows, np.inf)


class _Numbers:
    """The numeric columns (not booleans) of two tables, each column of each table read when first viewed, once."""

    def __init__(self, reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> None:
        self._tables = reference, current
        self.columns = [
            c
            for c in columns
            if pd.api.types.is_numeric_dtype(reference[c]) and not pd.api.types.is_bool_dtype(reference[c])
        ]
        self._read: dict[tuple[int, str], _Column] = {}

    def reference(self, name: str) -> _Column:
        return self._column(0, name)

    def current(self, name: str) -> _Column:
        return self._column(1, name)

    def _column(self, table: int, name: str) -> _Column:
        if (table, name) not in self._read:
            self._read[table, name] = _Column(self._tables[table][name])
        return self._read[table, name]


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
