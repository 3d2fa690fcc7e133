"""Which columns two tables can be compared on: not timestamps, identifiers, lists or mappings.

SOP stage: investigate (triage). Such columns move by construction (the next batch carries the
next ids and later times) or have no distribution to compare; every check of
:mod:`firebreak.investigation.evidence` sets them aside, with the reason in words.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "TIME_REASON",
    "comparable",
    "counts_periods",
    "currencies",
    "epoch_unit",
    "holds_text",
    "numbered_identifier",
    "numeric_columns",
    "read_like",
    "set_aside",
    "unit_numbers",
]


def numeric_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``frame`` (among ``columns``) that hold numbers (not booleans)."""
    return [c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


# A text column with more distinct values than this (and mostly unique) holds identifiers.
_MAX_CATEGORIES = 50


# A name that says "identifier": id, uuid, key... alone or after a separator ("customer_id",
# "order key"), or camel-cased ("PassengerId", "userID"); not "paid" or "valid".
_ID_NAME = re.compile(r"(?i:(?:^|[_\-\s.])(?:id|uuid|guid|key|idx|index))$|[a-z0-9](?:Id|ID)$")
_MIN_ID_ROWS = 50
# A name that says "time" ("ts", "created_at", "eventDate", "timestamp"), and dates written as text.
_TIME_NAME = re.compile(r"(?i:(?:^|[_\-\s.])(?:ts|timestamp|time|date|datetime|epoch))$|_at$|[a-z](?:At|Date|Time|Ts)$")
# A name that counts periods ("day", "week_no", "period", "step"): whole numbers that count
# days or steps since a start, which the next batch continues (:func:`counts_periods`).
_PERIOD_NAME = re.compile(
    r"(?i:(?:^|[_\-\s.])(?:day|week|month|quarter|period|step)s?(?:[_\-\s.]?(?:no|num|number|index|idx))?)$"
)
_PERIOD_MIN_VALUES = 7
_PERIOD_COVER = 0.9
_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_YEAR = r"(?:19|20)?\d{2}"
_DATE_TEXT = re.compile(
    r"\d{4}[-/]\d{1,2}(?:[-/]\d{1,2})?(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?)?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{4}(?: \d{1,2}:\d{2}(?::\d{2})?)?"
    # Months by name, as exports and spreadsheets write them: "Dec-2015", "December 2015",
    # "15-Dec-2015", "5 Dec 2015", "Dec 5, 2015", "2015-Dec"; and month/year: "12/2015".
    rf"|{_MONTH}[-\s/]{_YEAR}"
    rf"|\d{{1,2}}[-\s/]{_MONTH}[-\s/,]*{_YEAR}"
    rf"|{_MONTH}\s+\d{{1,2}},?\s+{_YEAR}"
    rf"|\d{{4}}[-\s/]{_MONTH}"
    r"|(?:0?[1-9]|1[0-2])[/.-](?:19|20)\d{2}"
)
# Whole numbers a time column holds: epoch seconds or milliseconds (2001-2039), or yyyymmdd.
_EPOCH_UNITS = {
    "epoch seconds": (1e9, 2.2e9),
    "epoch milliseconds": (1e12, 2.2e12),
    "yyyymmdd numbers": (19000101, 21001231),
}
# Why a time column is set aside (:func:`set_aside`); its form is judged by
# :func:`firebreak.investigation.forms.time_form_changes`.
TIME_REASON = "a time (dates, epoch numbers or a count of periods): not compared"


# A number written with its unit, as readers leave it: "13.56%", "$1,200.50", "€ 75", "-4.5 %".
_UNIT_NUMBER = re.compile(r"\s*[-+]?\s*[$€£¥]?\s*[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*%?\s*")
_UNIT_MARK = re.compile(r"[$€£¥%,]")
_NOT_DIGITS = re.compile(r"[\s$€£¥%,]")
_CURRENCY = re.compile(r"[$€£¥]")


def unit_numbers(series: pd.Series) -> pd.Series | None:
    """A text column of numbers written with a unit (``13.56%``, ``$1,200``) as those numbers, or None.

    Every distinct value must be such a number, and one must carry the mark: a percent
    sign, a currency or a thousands separator. Digits alone may be codes (``02139``,
    ``0042``), which stay text. The unit is dropped, not applied: ``13.56%`` is 13.56.
    """
    if not holds_text(series):
        return None
    if any(not (isinstance(v, str) and _UNIT_NUMBER.fullmatch(v)) for v in series.iloc[:50].dropna().tolist()):
        return None  # words (or lists) among the first rows: no pass over the whole column
    try:
        distinct = series.dropna().unique()
    except TypeError:  # lists, mappings further down
        return None
    if not len(distinct) or not all(isinstance(v, str) and _UNIT_NUMBER.fullmatch(v) for v in distinct):
        return None
    if not any(_UNIT_MARK.search(v) for v in distinct):
        return None
    return series.map({v: float(_NOT_DIGITS.sub("", v)) for v in distinct}).astype(float)


def read_like(series: pd.Series) -> pd.Series:
    """The current table's side of a column :func:`unit_numbers` read in the reference.

    Numbers with or without their unit become numbers; any other value stays as it is, for
    the type checks to name (a column of both is text, as a reader would leave it).
    """
    if not holds_text(series):
        return series
    try:
        distinct = series.dropna().unique()
    except TypeError:  # lists, mappings: nothing to read
        return series
    read = {v: float(_NOT_DIGITS.sub("", v)) for v in distinct if isinstance(v, str) and _UNIT_NUMBER.fullmatch(v)}
    if len(read) == len(distinct):
        return series.map(read).astype(float)
    return series.map(lambda v: read.get(v, v) if isinstance(v, str) else v)


def currencies(series: pd.Series) -> set[str]:
    """The currency signs a text column's values carry (``{"$"}`` for ``$1,200``)."""
    if not holds_text(series):
        return set()
    try:
        distinct = series.dropna().unique()
    except TypeError:
        return set()
    return {sign for v in distinct if isinstance(v, str) for sign in _CURRENCY.findall(v)}


def holds_text(series: pd.Series) -> bool:
    """Whether a column holds text (Python objects or pandas' string dtype), not declared categories."""
    return not isinstance(series.dtype, pd.CategoricalDtype) and (
        series.dtype == object or pd.api.types.is_string_dtype(series.dtype)
    )


def comparable(frame: pd.DataFrame, column: str) -> bool:
    """Whether a column's values can be compared between tables: not timestamps, identifiers, lists or mappings."""
    return set_aside(frame[column], str(column)) is None


def set_aside(series: pd.Series, name: str) -> str | None:
    """Why a column's values are not compared between tables, or None when they are.

    Timestamps (typed, dates written as text, or epoch numbers under a time's name),
    identifiers (mostly unique text, or numbers that number rows: :func:`numbered_identifier`),
    lists and mappings. Each moves by construction or has no distribution to compare.
    """
    time_kind = TIME_REASON
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return time_kind
    if isinstance(series.dtype, pd.CategoricalDtype):
        return None  # declared categories: a category, however many there are
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        if numbered_identifier(series, name):
            return "numbers rows (every value a distinct whole number): an identifier, not compared"
        return time_kind if _epoch_numbers(series, name) else None
    from firebreak.detection.columns import factorized

    try:
        # One hash pass, not a null test row by row (pandas' null test on text costs more than
        # the pass itself); on Arrow text, the pass every later check reads its codes from.
        distinct = factorized(series)[1]
    except TypeError:  # lists, mappings, arrays: values without equality to compare
        return "lists or mappings: not compared"
    values = distinct[~pd.isna(distinct)]
    if len(values) and all(_written_time(v) for v in values[:1000]):
        return time_kind
    if len(values) > _MAX_CATEGORIES and len(values) > 0.5 * series.notna().sum():
        return "mostly unique text: an identifier, not compared"
    return None


def counts_periods(reference: pd.Series, current: pd.Series, name: str) -> bool:
    """Whether a column counts periods: a time, set aside like one (:data:`TIME_REASON`).

    A period's name (``day``, ``week``, ``period``, ``step``), whole numbers that run without
    gaps in each table (at least 7 values in the reference, covering 90% of the whole numbers
    between its least and largest; the same in the current table), and the current ones all
    after the reference's: days 84-97 of a store log whose reference held days 0-83. A
    period of the cycle (a day of the week, the hour of the day) repeats its values in the
    next batch: it is compared.
    """
    if _PERIOD_NAME.search(name) is None:
        return False
    runs = []
    for series in (reference, current):
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            return False
        values = series.to_numpy(dtype=float, na_value=np.nan)
        values = np.unique(values[np.isfinite(values)])
        if not len(values) or not np.all(values == np.floor(values)):
            return False
        runs.append((float(values[0]), float(values[-1]), len(values)))
    (ref_low, ref_high, ref_count), (cur_low, cur_high, cur_count) = runs
    return (
        ref_count >= _PERIOD_MIN_VALUES
        and ref_count >= _PERIOD_COVER * (ref_high - ref_low + 1)
        and cur_count >= _PERIOD_COVER * (cur_high - cur_low + 1)
        and cur_low > ref_high
    )


def _written_time(value: object) -> bool:
    """A date or a time as a value: text a date reads in, or a date object (Parquet's ``date``
    columns come back as Python dates, in a column of objects)."""
    if isinstance(value, str):
        return _DATE_TEXT.fullmatch(value.strip()) is not None
    return isinstance(value, datetime.date | datetime.time | np.datetime64)


def _epoch_numbers(series: pd.Series, name: str) -> bool:
    """A time's name, and whole numbers in one epoch unit (:func:`epoch_unit`)."""
    return _TIME_NAME.search(name) is not None and epoch_unit(series) is not None


def epoch_unit(series: pd.Series) -> str | None:
    """The unit a column's whole numbers count time in, when they all lie in one unit's range
    (epoch seconds or milliseconds of 2001-2039, or ``yyyymmdd``); None otherwise."""
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    if not len(values) or not np.all(values == np.floor(values)):
        return None
    low, high = float(values.min()), float(values.max())
    return next((unit for unit, (start, end) in _EPOCH_UNITS.items() if start <= low and high <= end), None)


def numbered_identifier(series: pd.Series, name: str) -> bool:
    """Whether a numeric column numbers rows rather than measures them: every value a distinct whole number,
    and either an identifier's name or a run of numbers with few gaps (row numbers, sequence ids).

    Such a column moves by construction (the next batch carries the next ids): compared
    between tables it would read as drift, or as a column moved whole (skew).
    """
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if not numeric or len(series) < _MIN_ID_ROWS:
        return False
    named = _ID_NAME.search(name) is not None
    if not named and not pd.api.types.is_integer_dtype(series):
        return False
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    if len(values) < _MIN_ID_ROWS:
        return False
    span = float(values.max() - values.min()) + 1
    # Distinct whole numbers need a span of at least their count; a run with few gaps, at most a few times it.
    if span < len(values) or not (named or span <= 3 * len(values)):
        return False
    return bool(np.all(values == np.floor(values))) and bool(pd.Series(values).is_unique)
