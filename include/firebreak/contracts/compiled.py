"""The contract suite compiled into vectorised checks over a whole frame: triage's contract.

SOP stage: investigate (``firebreak triage``). Great Expectations builds an ephemeral
context, a datasource, a suite and a validation definition on every call: about 400 ms per
table before it reads a row, and a 13 s import. Triage compares two tables in well under
that, so it runs the same suite compiled into numpy/pandas checks per column, with the
same :class:`~firebreak.contracts.validation.ContractResult` (same failures, same
``unexpected_percent`` relative to the non-null values, same samples). The incident's
``validate_contract`` keeps Great Expectations, and a suite holding an expectation this
module does not know is run there too (:func:`compile_suite` returns None).

The online contract (:mod:`firebreak.contracts.online`) is the same idea per request; this
is the same idea per batch, and it also evaluates ``mostly``, which only a batch can.

One departure, on purpose: types are judged by the values, not the container. An integer
column arriving as floats *because it holds nulls* (how pandas, CSV readers and Parquet
without nullable integers store it) is not a type change; one arriving as floats without
a null, or with fractional values, is. A float column arriving as whole numbers is fine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firebreak.contracts.online import _json_kind
from firebreak.contracts.validation import COLUMN_MISSING, ContractResult, ExpectationFailure, _distinct
from firebreak.errors import ContractError

__all__ = ["CompiledSuite", "compile_suite"]

_SAMPLE_ROWS = 50  # offending values looked at for the sample (GX's partial list is 20)


@dataclass(frozen=True)
class _Check:
    expectation: str
    column: str
    mostly: float
    run: Callable[[pd.Series, np.ndarray], tuple[np.ndarray | None, int, list[Any]]]
    # run(series, present) -> (offending mask over the rows, or None when the whole column
    # fails by type; the count it is relative to; a sample override). ``present``: the
    # series' non-null rows, computed once per column for all its checks.


@dataclass(frozen=True)
class CompiledSuite:
    """A suite's expectations as vectorised checks; :meth:`validate` gives GX's result shape."""

    name: str
    checks: list[_Check]

    def violations(self, frame: pd.DataFrame) -> np.ndarray:
        """Per row, whether it breaks a row-level check (a missing column or a type breaks every row)."""
        broken = np.zeros(len(frame), dtype=bool)
        present = _Present(frame)
        for check in self.checks:
            if check.column not in frame.columns:
                broken[:] = True
                continue
            mask, _, _ = check.run(frame[check.column], present[check.column])
            broken |= present[check.column] if mask is None else mask
        return broken

    def violated_columns(self, frame: pd.DataFrame) -> np.ndarray:
        """Per row, the columns whose checks it breaks, comma-joined ("" when none): what the gateway's
        online contract would have refused it for. A null breaks only a column that may hold none
        (``mostly`` 1): a few nulls are what a ``mostly`` below 1 allows the batch."""
        present = _Present(frame)
        by_column: dict[str, np.ndarray] = {}
        for check in self.checks:
            if check.expectation == "expect_column_values_to_not_be_null" and check.mostly < 1.0:
                continue
            if check.column not in frame.columns:
                broken = np.ones(len(frame), dtype=bool)
            else:
                mask, _, _ = check.run(frame[check.column], present[check.column])
                broken = present[check.column] if mask is None else mask
            by_column[check.column] = by_column.get(check.column, np.zeros(len(frame), dtype=bool)) | broken
        named = np.full(len(frame), "", dtype=object)
        if not by_column:
            return named
        names = list(by_column)
        rows = np.flatnonzero(np.logical_or.reduce([by_column[c] for c in names]))
        flags = np.column_stack([by_column[c][rows] for c in names])
        named[rows] = [", ".join(n for n, hit in zip(names, row, strict=True) if hit) for row in flags]
        return named

    def validate(self, frame: pd.DataFrame) -> ContractResult:
        """Run every check on ``frame`` (failures in suite order, like GX's)."""
        return self.validate_rows(frame)[0]

    def validate_rows(self, frame: pd.DataFrame) -> tuple[ContractResult, np.ndarray]:
        """:meth:`validate` and :meth:`violations` from one run of the checks."""
        rows = len(frame)
        failures = []
        broken = np.zeros(rows, dtype=bool)
        present = _Present(frame)
        for check in self.checks:
            if check.column not in frame.columns:
                failures.append(ExpectationFailure(check.expectation, check.column, rows, 100.0, [COLUMN_MISSING]))
                broken[:] = True
                continue
            if check.expectation == "expect_column_to_exist":
                continue
            series = frame[check.column]
            mask, base, sample = check.run(series, present[check.column])
            if mask is None:  # the column's type cannot hold what the expectation asks
                failures.append(ExpectationFailure(check.expectation, check.column, base, 100.0, sample))
                broken |= present[check.column]
                continue
            broken |= mask
            count = int(mask.sum())
            if count == 0:
                continue
            share = count / base if base else 1.0
            if check.expectation == "expect_column_values_to_not_be_null":
                ok = 1 - count / rows >= check.mostly
            else:
                ok = 1 - share >= check.mostly
            if ok:
                continue
            values = series[mask].head(_SAMPLE_ROWS).tolist()
            failures.append(
                ExpectationFailure(check.expectation, check.column, count, 100.0 * share, sample or _distinct(values))
            )
        result = ContractResult(
            suite=self.name,
            passed=not failures,
            evaluated_rows=rows,
            evaluated_expectations=len(self.checks),
            failures=failures,
        )
        return result, broken


def compile_suite(suite: dict[str, Any]) -> CompiledSuite | None:
    """Compile a GX suite (JSON dict); None when an expectation has no vectorised equivalent here."""
    checks: list[_Check] = []
    for exp in suite.get("expectations", []):
        kind, kwargs = exp.get("type"), exp.get("kwargs", {})
        column = kwargs.get("column")
        if not isinstance(column, str):
            return None
        mostly = float(kwargs.get("mostly", 1.0))
        run = _compile_one(str(kind), kwargs)
        if run is None:
            return None
        checks.append(_Check(str(kind), column, mostly, run))
    return CompiledSuite(str(suite.get("name") or "suite"), checks)


def _compile_one(kind: str, kwargs: dict[str, Any]) -> Callable[[pd.Series, np.ndarray], Any] | None:
    if kind == "expect_column_to_exist":
        return lambda s, _: (np.zeros(len(s), dtype=bool), len(s), [])
    if kind == "expect_column_values_to_not_be_null":
        return lambda s, present: (~present, len(s), [None])
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return lambda s, present: _between(s, present, low, high)
    if kind == "expect_column_values_to_be_in_set":
        values = kwargs.get("value_set")
        if not isinstance(values, list):
            return None
        allowed = list(values)
        return lambda s, present: _in_set(s, present, allowed)
    if kind in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        names = [kwargs["type_"]] if "type_" in kwargs else list(kwargs.get("type_list") or [])
        lowered = {str(n).lower() for n in names}
        integer = bool(lowered) and all(n.startswith(("int", "uint")) for n in lowered)
        if lowered and all(n.startswith(("int", "uint", "float")) for n in lowered):
            json_kind = "number"  # numpy/pandas dtype names (int8 ... Float64)
        else:
            try:
                json_kind = _json_kind(names, kind)
            except ContractError:  # a type list the compiled checks cannot express: GX runs the suite
                return None
        return lambda s, present: _typed(s, present, json_kind, integer)
    return None


class _Present(dict[str, np.ndarray]):
    """Each column's non-null rows in ``frame``, computed at first use (pandas' null test on text is costly)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        super().__init__()
        self.frame = frame

    def __missing__(self, column: str) -> np.ndarray:
        found = self[column] = self.frame[column].notna().to_numpy()
        return found


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _as_numbers(series: pd.Series) -> np.ndarray | None:
    """The column's values as floats, NaN where a value is not a number; None for booleans and
    values that are neither text nor numbers."""
    if _numeric(series):
        return series.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_bool_dtype(series):
        return None
    try:
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):  # lists, mappings: nothing to read as a number
        return None


def _between(series: pd.Series, present: np.ndarray, low: Any, high: Any) -> tuple[np.ndarray | None, int, list[Any]]:
    """Numbers outside [low, high]. In a column that arrived as text (a few "N/A" among numbers),
    the values that read as numbers are judged; the rest are the type check's to name."""
    base = int(present.sum())
    values = _as_numbers(series)
    if values is None:
        return None, base, [f"<error: values of type {series.dtype} cannot be compared with a range>"]
    bad = np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        if low is not None:
            bad |= values < float(low)
        if high is not None:
            bad |= values > float(high)
    return bad & present, base, []


def _in_set(series: pd.Series, present: np.ndarray, allowed: list[Any]) -> tuple[np.ndarray, int, list[Any]]:
    from firebreak.detection.columns import factorized, is_arrow_text

    if is_arrow_text(series) and all(isinstance(v, str) for v in allowed):
        # Arrow text against a set of text: each distinct value looked up once, through the
        # column's codes (shared with the other checks), not each row.
        codes, distinct = factorized(series)
        known = np.append(pd.Index(np.asarray(distinct, dtype=object), dtype=object).isin(allowed), False)
        inside = known[codes]  # code -1 (missing) takes the appended False
    else:
        inside = series.isin(allowed).to_numpy()
    return present & ~inside, int(present.sum()), []


def _typed(
    series: pd.Series, present: np.ndarray, kind: str, integer: bool
) -> tuple[np.ndarray | None, int, list[Any]]:
    base = int(present.sum())
    dtype = [str(series.dtype)]
    if kind == "number":
        if not _numeric(series):
            # Text where numbers are due. A few values that do not read as numbers ("N/A", "1,234",
            # "34 yrs") among ones that do: those rows, named by their values. Every value reading
            # as a number (numbers sent as text), or objects that are neither: the column, whole.
            numbers = _as_numbers(series)
            if numbers is None:
                return None, base, dtype
            unreadable = present & np.isnan(numbers)
            return (unreadable, base, []) if unreadable.any() else (None, base, dtype)
        if integer and not pd.api.types.is_integer_dtype(series):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            fractional = present & (values != np.round(values))
            if fractional.any():
                return fractional, base, []
            if base == len(series):  # whole numbers sent as floats with no null to explain it: the schema changed
                return None, base, dtype
        return np.zeros(len(series), dtype=bool), base, []
    if kind == "bool":
        ok = pd.api.types.is_bool_dtype(series) or series.dropna().map(lambda v: isinstance(v, bool | np.bool_)).all()
        return (None, base, dtype) if not ok else (np.zeros(len(series), dtype=bool), base, [])
    if _numeric(series) or pd.api.types.is_bool_dtype(series):
        return None, base, dtype
    return np.zeros(len(series), dtype=bool), base, []
