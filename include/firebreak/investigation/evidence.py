"""Evidence for diagnosis computed from two tables: a contract derived from the reference,
unit/scale changes per column, and (from :mod:`firebreak.detection.fairness`) group fairness figures.

SOP stage: investigate. ``firebreak triage`` gathers all of it from a reference and a current
table; the DAG's ``drift_report`` stage adds :func:`scale_changes` to its drift evidence, so
the classifier (:func:`firebreak.investigation.diagnosis.classify`) sees the same figures
on both paths.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from firebreak.errors import FirebreakError

__all__ = [
    "RANGE_MARGIN",
    "CONFIRM_P_VALUE",
    "add_drift_checks",
    "comparable",
    "derive_contract",
    "gather_evidence",
    "numeric_columns",
    "scale_changes",
]

# Allowed range = reference [min, max] widened by this share of its span on each side:
# the world may move a little past what the reference saw; a unit change moves it far.
RANGE_MARGIN = 0.25
# A column whose reference has no nulls allows none; otherwise 1.5x its rate plus one point.
_NULL_SLACK = 0.01
_INT_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "Int64", "Int32"]
_FLOAT_TYPES = ["float16", "float32", "float64", "Float64", "Float32"]

# Scale change: every quantile moved by the same factor, and that factor is far from 1.
# Additive shifts move low and high quantiles by different factors; a unit or currency
# conversion multiplies them all alike.
_SCALE_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
# A factor of at least 5 either way: units (x10, x100, /1000) and most currency pairs. The
# world also moves multiplicatively (seasonal stock levels x1.7, inflation), and a factor
# that small is drift, not a broken pipeline.
_SCALE_MIN_FACTOR = 5.0
_SCALE_MAX_SPREAD = 0.08  # max - min of the log10 quantile ratios (pure scaling: sampling noise only)
_SCALE_MIN_ROWS = 50


def numeric_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``frame`` (among ``columns``) that hold numbers (not booleans)."""
    return [c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


# A text column with more distinct values than this (and mostly unique) holds identifiers.
_MAX_CATEGORIES = 50


def comparable(frame: pd.DataFrame, column: str) -> bool:
    """Whether a column's values can be compared between tables: not timestamps, not identifiers."""
    series = frame[column]
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return True
    distinct = series.nunique(dropna=True)
    return not (distinct > _MAX_CATEGORIES and distinct > 0.5 * series.notna().sum())


def derive_contract(reference: pd.DataFrame, *, name: str = "derived_contract") -> dict[str, Any]:
    """A Great Expectations 1.x suite (as JSON) describing ``reference``.

    Per column: it must exist; its type (integer, float, or any for text); its null rate
    (none if the reference has none); numeric values within the reference range widened by
    :data:`RANGE_MARGIN` of the span (never below 0 when the reference is non-negative);
    text and boolean values within the reference's set.

    Raises:
        FirebreakError: If ``reference`` has no rows or no columns.
    """
    if reference.empty or len(reference.columns) == 0:
        raise FirebreakError("cannot derive a contract from an empty reference table")
    expectations: list[dict[str, Any]] = []

    def add(kind: str, **kwargs: Any) -> None:
        expectations.append({"type": kind, "kwargs": kwargs, "meta": {}})

    for column in reference.columns:
        series = reference[column]
        name_ = str(column)
        add("expect_column_to_exist", column=name_)
        null_rate = float(series.isna().mean())
        if null_rate == 0:
            add("expect_column_values_to_not_be_null", column=name_)
        elif null_rate < 1:
            add(
                "expect_column_values_to_not_be_null",
                column=name_,
                mostly=round(max(0.0, 1 - (1.5 * null_rate + _NULL_SLACK)), 4),
            )
        values = series.dropna()
        if values.empty or not comparable(reference, name_):
            continue  # timestamps and identifiers: present and non-null is all a contract can say
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            add(
                "expect_column_values_to_be_in_set",
                column=name_,
                value_set=sorted({_plain(v) for v in values}, key=str),
            )
            continue
        is_int = pd.api.types.is_integer_dtype(series)
        add("expect_column_values_to_be_in_type_list", column=name_, type_list=_INT_TYPES if is_int else _FLOAT_TYPES)
        low, high = float(values.min()), float(values.max())
        span = high - low if high > low else max(abs(high), 1.0)
        min_value = low - RANGE_MARGIN * span
        if low >= 0:
            min_value = max(min_value, 0.0)
        max_value = high + RANGE_MARGIN * span
        if is_int:
            min_value, max_value = math.floor(min_value), math.ceil(max_value)
        add("expect_column_values_to_be_between", column=name_, min_value=min_value, max_value=max_value)
    return {"name": name, "expectations": expectations, "meta": {"derived_from_rows": len(reference)}}


def scale_changes(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Numeric columns whose values were multiplied by one factor: units (x100, /1000) or currency.

    Compares quantiles of the non-zero magnitudes. A column counts when every quantile
    ratio agrees (log10 spread <= 0.08) on a factor of at least 5 either way.

    Returns:
        One dict per changed column: ``column``, ``factor`` (current / reference, 4
        significant digits), ``quantile_ratios``.
    """
    found = []
    for column in columns:
        if column not in reference.columns or column not in current.columns:
            continue
        ref, cur = _magnitudes(reference[column]), _magnitudes(current[column])
        if ref is None or cur is None or len(ref) < _SCALE_MIN_ROWS or len(cur) < _SCALE_MIN_ROWS:
            continue
        ratios = np.quantile(cur, _SCALE_QUANTILES) / np.quantile(ref, _SCALE_QUANTILES)
        logs = np.log10(ratios)
        factor = float(10 ** np.median(logs))
        if float(logs.max() - logs.min()) <= _SCALE_MAX_SPREAD and abs(math.log10(factor)) >= math.log10(
            _SCALE_MIN_FACTOR
        ):
            found.append(
                {
                    "column": str(column),
                    "factor": float(f"{factor:.4g}"),
                    "quantile_ratios": [round(float(r), 4) for r in ratios],
                }
            )
    return found


# A drift verdict on a numeric column is confirmed by a two-sample K-S test at this p-value:
# the normed Wasserstein distance alone crosses 0.1 on fresh samples of heavy-tailed data.
CONFIRM_P_VALUE = 1e-3


def add_drift_checks(
    drift: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    ks_p_values: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Add the checks diagnosis needs beside the drift verdicts, in place; returns ``drift``.

    * ``confirm_p_value`` on each drifted numeric column: a two-sample K-S p-value on every row
      (given in ``ks_p_values`` when the window was streamed, and ``current`` is its sample).
    * ``scale_changes``: :func:`scale_changes` over the numeric columns of the verdicts.
    """
    from scipy import stats

    numeric = []
    for column in drift.get("columns", []):
        name = column["column"]
        if name not in reference.columns or name not in current.columns:
            continue
        if not numeric_columns(reference, [name]) or not numeric_columns(current, [name]):
            continue
        numeric.append(name)
        if column.get("drifted") and ks_p_values is not None:
            if name in ks_p_values:
                column["confirm_p_value"] = ks_p_values[name]
        elif column.get("drifted"):
            ref = reference[name].to_numpy(dtype=float)
            cur = current[name].to_numpy(dtype=float)
            ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
            if len(ref) and len(cur):
                column["confirm_p_value"] = float(stats.ks_2samp(ref, cur).pvalue)
    drift["scale_changes"] = scale_changes(reference, current, numeric)
    return drift


def _magnitudes(series: pd.Series) -> np.ndarray | None:
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    values = series.to_numpy(dtype=float)
    values = np.abs(values[np.isfinite(values)])
    values = values[values > 0]
    # Signed data (both signs in the reference) has no unit-free scale: quantiles of |x| still
    # scale with a unit change, so they are used as they are.
    return values


def _plain(value: Any) -> Any:
    """A JSON-able Python scalar for a value set."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def gather_evidence(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    contract: dict[str, Any] | None = None,
    label: str | None = None,
    prediction: str | None = None,
    confidence: str | None = None,
    protected: str | None = None,
    drift_share: float = 0.5,
) -> dict[str, Any]:
    """Everything :func:`~firebreak.investigation.diagnosis.classify` needs, from two tables.

    SOP stage: investigate, by hand (``firebreak triage``). The contract (``contract``, a GX
    suite as JSON; derived from ``reference`` when None) runs in Great Expectations on the
    current table; drift comes from :func:`firebreak.detection.stats.compute_drift` on the
    input columns both tables share with a usable type (label, prediction and confidence
    columns are outputs, not inputs); ``scale_changes`` ride along in the drift evidence;
    fairness figures (``fairness`` on the current table, ``reference_fairness``) need
    ``protected`` and ``prediction``: :func:`firebreak.detection.fairness.table_fairness`
    with :func:`~firebreak.detection.fairness.default_limits`, the figures and vocabulary of
    the incident's ``fairness_audit``.

    Raises:
        FirebreakError: If a named column is missing from a table, or a table is empty;
            :class:`~firebreak.detection.fairness.FairnessInputError` if the prediction or
            label column does not hold decisions.
    """
    import tempfile
    from pathlib import Path

    from firebreak.contracts.validation import validate_frame
    from firebreak.detection.fairness import default_limits, table_fairness
    from firebreak.detection.stats import compute_drift

    for table, frame in (("reference", reference), ("current", current)):
        if frame.empty:
            raise FirebreakError(f"the {table} table has no rows")
        for role, column in (("label", label), ("prediction", prediction), ("confidence", confidence)):
            if column is not None and column not in frame.columns:
                raise FirebreakError(f"{role} column {column!r} is not in the {table} table")
        if protected is not None and protected not in frame.columns:
            raise FirebreakError(f"protected column {protected!r} is not in the {table} table")
    outputs = {c for c in (label, prediction, confidence) if c}
    inputs = [str(c) for c in reference.columns if c not in outputs]
    suite = contract if contract is not None else derive_contract(reference[inputs])
    with tempfile.TemporaryDirectory(prefix="firebreak-triage-") as tmp:
        suite_path = Path(tmp) / "contract.json"
        suite_path.write_text(json.dumps(suite))
        contract_result = validate_frame(current.drop(columns=[c for c in outputs if c in current.columns]), suite_path)
    shared, categorical, skipped = [], [], []
    for column in inputs:
        if column not in current.columns:
            skipped.append({"column": column, "reason": "missing from the current table"})
            continue
        if not comparable(reference, column):
            skipped.append({"column": column, "reason": "timestamps or identifiers: not compared"})
            continue
        ref_num = column in numeric_columns(reference, [column])
        cur_num = column in numeric_columns(current, [column])
        if ref_num != cur_num:
            skipped.append({"column": column, "reason": f"type {reference[column].dtype} -> {current[column].dtype}"})
            continue
        if reference[column].notna().sum() == 0 or current[column].notna().sum() == 0:
            skipped.append({"column": column, "reason": "no values"})
            continue
        shared.append(column)
        if not ref_num:
            categorical.append(column)
    drift: dict[str, Any] = {"dataset_drift": False, "columns": []}
    if shared:
        as_text = {c: reference[c].astype("string") for c in categorical}
        ref_frame = reference[shared].assign(**as_text)
        cur_frame = current[shared].assign(**{c: current[c].astype("string") for c in categorical})
        drift = compute_drift(
            ref_frame, cur_frame, columns=shared, categorical=categorical, drift_share=drift_share
        ).to_dict()
    drift["skipped"] = skipped
    add_drift_checks(drift, reference, current)
    evidence: dict[str, Any] = {"contract": contract_result.to_dict(), "drift": drift}
    if protected and prediction:
        rules = default_limits(protected)
        for key, frame in (("fairness", current), ("reference_fairness", reference)):
            evidence[key] = table_fairness(frame, rules, prediction=prediction, label=label).to_dict()
    if confidence:
        evidence["confidence"] = {
            "reference_mean": round(float(reference[confidence].astype(float).mean()), 4),
            "current_mean": round(float(current[confidence].astype(float).mean()), 4),
        }
    return evidence
