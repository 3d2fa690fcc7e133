"""A table's columns as every check reads them: text as Arrow, values as codes, counts, frames sharing values.

SOP stage: detection and investigation (triage). Each check of a triage reads the same
columns: the drift tests, the data checks, the derived contract, the multivariate check, the
segments and the form rules all count a categorical column's values or code its rows. This
module is where a column is read, so that the reading is paid once:

* :func:`as_text` — a categorical column as Arrow-backed text (missing values on a bitmap,
  counts in C++), converted once per column;
* :func:`factorized` — Arrow text's codes and distinct values, computed once per column of
  values and kept while those values live (Arrow's values are immutable), from which
  :func:`value_counts`, :func:`ranked_levels` and :func:`level_codes` each read;
* :func:`columns_of` — a frame of some columns sharing their values, not a copy of them;
* :func:`sorted_counts`, :func:`sorted_quantiles` — the distinct values of sorted numbers and
  their counts, and their quantiles, without a second sort or partition.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "as_text",
    "columns_of",
    "factorized",
    "is_arrow_text",
    "level_codes",
    "ranked_levels",
    "sorted_counts",
    "sorted_quantiles",
    "value_counts",
]

_ARROW_TEXT = pd.StringDtype("pyarrow")
# Arrow text factorized, by the identity of its values while they live: (a weak reference to
# the values, their codes, their distinct values). At most _FACTORIZED_KEPT columns' codes
# are kept (the oldest go first): a triage reads a few dozen, and codes cost 8 bytes a row.
_FACTORIZED: dict[int, tuple[weakref.ref[Any], np.ndarray, Any]] = {}
_FACTORIZED_KEPT = 64
_FACTORIZED_LOCK = threading.RLock()


def as_text(series: pd.Series) -> pd.Series:
    """A column's values as Arrow-backed text; missing values stay missing (``pd.NA``).

    The one conversion every check on a categorical column shares. Arrow's text arrays test
    for missing values on a bitmap and count values in C++: on a 30,000-row column about 30x
    and 4x faster than pandas' default text (Python objects), and triage does both on each
    categorical column in several checks. A column already held as Arrow text is returned as is.

    Pandas' default text goes to Arrow directly, which takes half of ``astype``'s time; a column
    holding anything but text and missing values (numbers, dates) is written out by ``astype``.
    Either way bytes are decoded as UTF-8 and every missing marker becomes ``pd.NA``. Text that
    is not valid Unicode (a lone surrogate, which a JSON escape can carry) cannot be Arrow text:
    its bad characters are written as escapes (``\\ud800``), a value of its own that the checks
    see and show, never a crash.
    """
    if is_arrow_text(series):
        return series
    if series.dtype == object:
        import pyarrow as pa

        try:
            values = pa.array(series.to_numpy(), type=pa.large_string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        except UnicodeEncodeError:
            return as_text(series.map(_escaped))
        else:
            return pd.Series(pd.arrays.ArrowStringArray(values), index=series.index, name=series.name)
    return series.astype(_ARROW_TEXT)


def _escaped(value: object) -> object:
    """Text with the characters UTF-8 cannot carry (lone surrogates) written as escapes; other values as they are."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


def columns_of(
    frame: pd.DataFrame, names: Sequence[str] | None = None, replaced: Mapping[str, pd.Series] | None = None
) -> pd.DataFrame:
    """``frame``'s columns ``names`` (all by default), each in ``replaced`` (on ``frame``'s index) in
    its place, sharing their values with ``frame``: what ``frame[names].assign(**replaced)``
    holds, without the copy of every value pandas 2 makes there (4 ms for 30,000 rows of 12
    columns, paid once per check). For a frame only read after; a frame naming a column twice is
    copied as pandas would."""
    replaced = replaced or {}
    if not frame.columns.is_unique:
        return (frame if names is None else frame[list(names)]).assign(**replaced)
    names = list(frame.columns) if names is None else list(names)
    return pd.DataFrame(
        {c: replaced[c] if c in replaced else frame[c] for c in names}, index=frame.index, columns=names, copy=False
    )


def is_arrow_text(series: pd.Series) -> bool:
    """Whether ``series`` holds Arrow-backed text (what :func:`as_text` returns)."""
    return isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"


def factorized(text: pd.Series) -> tuple[np.ndarray, Any]:
    """``pd.factorize(text)``: each row's code (-1: missing) and the distinct values in the order
    they first appear. For Arrow text, computed once per column of values and kept while the
    values live: drift, the data checks, the contract, the multivariate check, the segments
    and the form rules each ask for it. The codes are read-only (they are shared)."""
    if not is_arrow_text(text):
        return pd.factorize(text)
    values = text.array._pa_array
    key = id(values)
    kept = _FACTORIZED.get(key)
    if kept is not None and kept[0]() is values:
        return kept[1], kept[2]
    codes, distinct = pd.factorize(text)
    codes.flags.writeable = False
    alive = weakref.ref(values, functools.partial(_forget, key))  # forgotten when the values die
    with _FACTORIZED_LOCK:
        for oldest in list(_FACTORIZED)[: max(len(_FACTORIZED) + 1 - _FACTORIZED_KEPT, 0)]:
            _FACTORIZED.pop(oldest, None)
        _FACTORIZED[key] = (alive, codes, distinct)
    return codes, distinct


def _forget(key: int, alive: weakref.ref[Any]) -> None:
    # Reentrant: values can die, and call this, while this thread holds the lock above.
    with _FACTORIZED_LOCK:
        entry = _FACTORIZED.get(key)
        if entry is not None and entry[0] is alive:  # a newer entry under a reused id stays
            del _FACTORIZED[key]


def level_codes(text: pd.Series, levels: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Each row's position in ``levels`` (-1: another value, or missing), for text from :func:`as_text`.

    What ``pd.Categorical(text, categories=levels).codes`` gives, from one hash pass over the
    rows and a lookup of the few distinct values (about 2.5x faster on Arrow text). ``rows``:
    only those rows (positions), as ``text.iloc[rows]`` would give, from the column's codes.
    """
    codes, distinct = factorized(text)
    if rows is not None:
        codes = codes[rows]
    lookup = np.append(pd.Index(list(levels), dtype=object).get_indexer(distinct.astype(object)), -1)
    return lookup[codes].astype(np.intp)  # code -1 (missing) takes the appended -1


def ranked_levels(text: pd.Series, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column's distinct values, most frequent first, and each row's position among them.

    One hash pass over the rows (:func:`factorized`) gives the codes, the values and, by a count
    of the codes, their frequencies: what ``value_counts()`` then a code per row would take
    two passes for. Ties keep the order in which the values first appear.

    Args:
        text: Values from :func:`as_text`.
        rows: Only those rows (positions): what ``ranked_levels(text.iloc[rows])`` gives, read
            from the column's codes instead of a pass over a sample's new values.

    Returns:
        Per row its rank (0: the most frequent value; -1: missing), the distinct values as an
        object array in that order, and their counts.
    """
    codes, distinct = factorized(text)
    if rows is not None:
        codes, distinct = _among(codes[rows], distinct)
    counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.intp)
    rank[order], rank[-1] = np.arange(len(order)), -1  # code -1 (missing) takes the last slot
    return rank[codes], np.asarray(distinct, dtype=object)[order], counts[order]


def _among(codes: np.ndarray, distinct: Any) -> tuple[np.ndarray, Any]:
    """Codes of some rows as those rows' own factorization: their values in the order they first
    appear among them, each row's position there (-1: missing)."""
    present = codes >= 0
    seen, first = np.unique(codes[present], return_index=True)
    kept = seen[np.argsort(first, kind="stable")]  # the values in the order they first appear
    renumbered = np.full(len(distinct) + 1, -1, dtype=np.intp)  # code -1 (missing) takes the last slot
    renumbered[kept] = np.arange(len(kept))
    return renumbered[codes], distinct[kept]


def value_counts(series: pd.Series) -> pd.Series:
    """How many rows hold each value present in ``series`` (missing values left out), unsorted.

    Args:
        series: The column; Arrow text (:func:`as_text`) is counted from its codes
            (:func:`factorized`), in the order its values first appear.

    Returns:
        Positive counts indexed by value.
    """
    if is_arrow_text(series):
        codes, distinct = factorized(series)
        found = np.bincount(codes[codes >= 0], minlength=len(distinct))
        return pd.Series(found, index=pd.Index(np.asarray(distinct, dtype=object), dtype=object))
    counts = series.value_counts(dropna=True, sort=False)
    return counts[counts > 0]  # a categorical dtype also lists unused categories, with count 0


def sorted_counts(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of sorted ``ordered`` and the rows holding each: what
    ``np.unique(ordered, return_counts=True)`` gives, without its sort (a tenth of its time)."""
    if not len(ordered):
        return ordered, np.zeros(0, dtype=np.intp)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def sorted_quantiles(ordered: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """``np.quantile(ordered, quantiles)`` (its linear method) for sorted values, read at their
    places: numpy partitions a copy of the values first (a fifth of a millisecond on 30,000
    rows, for every call). The same steps as numpy's, so the same floats.

    Raises:
        ValueError: If ``ordered`` is empty (numpy's quantile has nothing to read either).
    """
    if not len(ordered):
        raise ValueError("no values to take quantiles of")
    q = np.asarray(quantiles, dtype=float)
    virtual = (len(ordered) - 1) * q
    below = np.floor(virtual)
    above = below + 1
    top = virtual >= len(ordered) - 1  # numpy reads the last value there
    below[top], above[top] = -1, -1
    below_at, above_at = below.astype(np.intp), above.astype(np.intp)
    gamma = virtual - below_at
    low, high = ordered[below_at], ordered[above_at]
    step = high - low
    result = low + step * gamma
    np.subtract(high, step * (1 - gamma), out=result, where=gamma >= 0.5)
    return result
