"""Evidence for diagnosis computed from two tables: a contract derived from the reference,
unit/scale changes per column, and (from :mod:`firebreak.detection.fairness`) group fairness figures.

SOP stage: investigate. ``firebreak triage`` gathers all of it from a reference and a current
table; the DAG's ``drift_report`` stage adds :func:`scale_changes` to its drift evidence, so
the classifier (:func:`firebreak.investigation.diagnosis.classify`) sees the same figures
on both paths.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from firebreak.errors import FirebreakError
from firebreak.investigation import data_checks, forms
from firebreak.investigation.column_kinds import TIME_REASON, comparable, counts_periods, numeric_columns, set_aside
from firebreak.investigation.reading import named_columns, one_vocabulary, read_unit_numbers, text_as_arrow
from firebreak.investigation.units import conversion_change

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
# (One home: firebreak.investigation.data_checks, which also judges values past it.)
RANGE_MARGIN = data_checks.RANGE_MARGIN
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
# Where quantiles are too coarse to agree: rescaled by the factor the values must match the
# reference's (K-S), and as they are they must not.
_SCALE_MATCH_P = 0.01
_SCALE_MISMATCH_P = 1e-3


def derive_contract(reference: pd.DataFrame, *, name: str = "derived_contract") -> dict[str, Any]:
    """A Great Expectations 1.x suite (as JSON) describing ``reference``.

    Per column: it must exist; its type (integer; float, which integers also satisfy; or any
    for text); its null rate (none if the reference has none, else 1.5x its rate plus one
    point); numeric values within the reference range widened by :data:`RANGE_MARGIN` of the
    span (never below 0 when the reference is non-negative); text and boolean values within
    the reference's set. A pandas categorical column (what Parquet gives back for a
    dictionary-encoded column) is a category whatever its values are, and its allowed set is
    its declared categories, seen in the reference or not (the dtype is the team's own
    statement of what may come). Rare values (under :data:`RARE_SHARE` of the rows) stay
    allowed — the model was trained on them — and are listed in the expectation's ``meta`` so
    a reviewer can decide. The suite's ``meta.derived_from_rows`` marks it derived: diagnosis
    judges its failures statistically (:mod:`firebreak.investigation.data_checks`).

    Raises:
        FirebreakError: If ``reference`` has no rows or no columns.
    """
    from firebreak.detection.columns import value_counts

    if reference.empty or len(reference.columns) == 0:
        raise FirebreakError("cannot derive a contract from an empty reference table")
    expectations: list[dict[str, Any]] = []

    def add(kind: str, meta: dict[str, Any] | None = None, **kwargs: Any) -> None:
        expectations.append({"type": kind, "kwargs": kwargs, "meta": meta or {}})

    for column in reference.columns:
        series = reference[column]
        name_ = str(column)
        add("expect_column_to_exist", column=name_)
        present = series.notna().to_numpy()  # once: pandas' null test on text is costly
        null_rate = float((~present).mean())
        if null_rate == 0:
            add("expect_column_values_to_not_be_null", column=name_)
        elif null_rate < 1:
            add(
                "expect_column_values_to_not_be_null",
                column=name_,
                mostly=round(max(0.0, 1 - (1.5 * null_rate + _NULL_SLACK)), 4),
            )
        rows = int(present.sum())
        if isinstance(series.dtype, pd.CategoricalDtype):
            declared = [_plain(v) for v in series.cat.categories]
            add(
                "expect_column_values_to_be_in_set",
                _rare_meta(value_counts(series), rows),
                column=name_,
                value_set=declared,
            )
            continue
        if not rows or not comparable(reference, name_):
            continue  # timestamps and identifiers: present and non-null is all a contract can say
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            counts = value_counts(series)  # one count: the values seen, and the rare ones
            add(
                "expect_column_values_to_be_in_set",
                _rare_meta(counts, rows),
                column=name_,
                value_set=sorted({_plain(v) for v in counts.index}, key=str),
            )
            continue
        values = series[present]
        is_int = pd.api.types.is_integer_dtype(series)
        # A float column takes integers too (3 is a valid 3.0); an integer column refuses floats.
        add(
            "expect_column_values_to_be_in_type_list",
            column=name_,
            type_list=_INT_TYPES if is_int else [*_FLOAT_TYPES, *_INT_TYPES],
        )
        min_value, max_value = data_checks.allowed_range(values.to_numpy(dtype=float), integer=is_int)
        add("expect_column_values_to_be_between", column=name_, min_value=min_value, max_value=max_value)
    return {"name": name, "expectations": expectations, "meta": {"derived_from_rows": len(reference)}}


# A value on fewer than this share of the reference's rows is rare: allowed, and named for review.
RARE_SHARE = 0.01


def _rare_meta(counts: pd.Series, rows: int) -> dict[str, Any]:
    """The rare values of a column and their counts, for the reviewer of a derived contract.

    Args:
        counts: The column's rows per value present (:func:`~firebreak.detection.columns.value_counts`).
        rows: The column's rows holding a value.
    """
    rare = counts[counts < RARE_SHARE * max(rows, 1)].sort_values(ascending=False, kind="stable")
    if rare.empty:
        return {}
    shown = {str(k): int(v) for k, v in rare.head(20).items()}
    return {"rare_values": shown, "note": f"seen on under {RARE_SHARE:.0%} of {rows} reference rows"}


def scale_changes(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Numeric columns whose values were multiplied by one factor: units (x100, /1000) or currency.

    Compares quantiles of the non-zero magnitudes: their ratios' median is the factor, which
    must be at least 5 either way, or under that the exact factor of a conversion
    (:func:`firebreak.investigation.units.conversion_change`: kilograms to pounds), pinned by
    the data to that factor. A column counts when every quantile ratio agrees on it
    (log10 spread <= 0.08), or, where two samples' quantiles are too coarse to agree (a small
    table, a skewed or few-valued column: 110 rows of investment figures, counts that are
    mostly 0), when the current magnitudes divided by the power of ten nearest the factor, or
    else by the factor itself, pass a two-sample K-S test against the reference's at p >= 0.01
    while as they are they fail it at p < 0.001 (the divisor that passed is the factor).

    Returns:
        One dict per changed column: ``column``, ``factor`` (current / reference, 4
        significant digits), ``quantile_ratios`` and ``because`` (the evidence in words).
    """
    from firebreak.detection.columns import sorted_quantiles
    from firebreak.detection.stats import ks_p_value

    found = []
    for column in columns:
        if column not in reference.columns or column not in current.columns:
            continue
        ref, cur = _magnitudes(reference[column]), _magnitudes(current[column])
        if ref is None or cur is None or len(ref) < _SCALE_MIN_ROWS or len(cur) < _SCALE_MIN_ROWS:
            continue
        ratios = sorted_quantiles(cur, _SCALE_QUANTILES) / sorted_quantiles(ref, _SCALE_QUANTILES)  # see _magnitudes
        logs = np.log10(ratios)
        factor = float(10 ** np.median(logs))
        if abs(math.log10(factor)) < math.log10(_SCALE_MIN_FACTOR):
            # Under the floor only a conversion's exact factor, pinned by the data.
            if (converted := conversion_change(ref, cur, factor)) is None:
                continue
            factor, because = converted
        else:
            because = "every quantile alike" if float(logs.max() - logs.min()) <= _SCALE_MAX_SPREAD else ""
        if not because and ks_p_value(ref, cur) < _SCALE_MISMATCH_P:
            # The power of ten nearest the estimate first (a unit change, and a few-valued
            # column's levels line up only under the exact factor), then the estimate (currency).
            for tried in dict.fromkeys((10.0 ** round(math.log10(factor)), factor)):
                if (matched := ks_p_value(ref, cur / tried)) >= _SCALE_MATCH_P:
                    factor = tried
                    because = f"divided by {tried:.4g} the values match the reference's, K-S p={matched:.2g}"
                    break
        if not because:
            continue
        found.append(
            {
                "column": str(column),
                "factor": float(f"{factor:.4g}"),
                "quantile_ratios": [round(float(r), 4) for r in ratios],
                "because": because,
            }
        )
    return found


# A drift verdict on a numeric column is confirmed by a two-sample K-S test at this p-value:
# the normed Wasserstein distance alone crosses 0.1 on fresh samples of heavy-tailed data. A
# categorical column's Jensen-Shannon or chi-square fit verdict, by a chi-square test of homogeneity.
CONFIRM_P_VALUE = 1e-3


def add_drift_checks(
    drift: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    declared: dict[str, list[str]] | None = None,
    ks_p_values: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Add the checks diagnosis needs beside the drift verdicts, in place; returns ``drift``.

    * ``confirm_p_value`` on each drifted numeric column: a two-sample K-S p-value on every row
      (given in ``ks_p_values`` when the window was streamed, and ``current`` is its sample);
      on a categorical column drifted by Jensen-Shannon distance or by the chi-square fit to a
      small reference, a chi-square test of homogeneity (``confirm_test``): with thousands of
      values (postcodes, product codes), two samples of one world are 0.3 apart by the
      distance alone; and the fit takes the reference's counts as exact, so one row of a value
      a small reference never held (an expected count of 0) reads p = 0.
    * ``scale_changes``: :func:`scale_changes` over the numeric columns of the verdicts.
    * ``data_checks``: :func:`firebreak.investigation.data_checks.data_checks` — unknown
      values by rate and significance, null-rate rises, values past the range (continuation
      or format change), spikes — the evidence skew verdicts on a derived contract rest on;
      ``declared``: a categorical column's declared categories, when the frames already
      hold its values as text.
    * ``multivariate``: :func:`firebreak.detection.multivariate.reconstruction_drift` over
      the same columns, for a joint change no single column shows.
    """
    from firebreak.detection.multivariate import reconstruction_drift
    from firebreak.detection.stats import CHI_SQUARE, JENSEN_SHANNON, homogeneity_p_value, ks_p_value

    numeric, categorical = [], []
    for column in drift.get("columns", []):
        name = column["column"]
        if name not in reference.columns or name not in current.columns:
            continue
        if not numeric_columns(reference, [name]) or not numeric_columns(current, [name]):
            categorical.append(name)
            if column.get("drifted") and column.get("method") in (JENSEN_SHANNON, CHI_SQUARE) and ks_p_values is None:
                column["confirm_p_value"] = homogeneity_p_value(reference[name], current[name])
                column["confirm_test"] = "chi-square"
            continue
        numeric.append(name)
        if column.get("drifted") and ks_p_values is not None:
            if name in ks_p_values:
                column["confirm_p_value"] = ks_p_values[name]
        elif column.get("drifted"):
            ref = reference[name].to_numpy(dtype=float, na_value=np.nan)
            cur = current[name].to_numpy(dtype=float, na_value=np.nan)
            ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
            if len(ref) and len(cur):
                column["confirm_p_value"] = ks_p_value(ref, cur)
    drift["scale_changes"] = scale_changes(reference, current, numeric)
    rescaled = [c["column"] for c in drift["scale_changes"]]
    drift["data_checks"] = data_checks.data_checks(
        reference, current, numeric=numeric, categorical=categorical, rescaled=rescaled, declared=declared or {}
    )
    drift["multivariate"] = reconstruction_drift(reference, current, numeric=numeric, categorical=categorical)
    return drift


def _magnitudes(series: pd.Series) -> np.ndarray | None:
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    values = series.to_numpy(dtype=float)
    values = np.abs(values[np.isfinite(values)])
    # Signed data (both signs in the reference) has no unit-free scale: quantiles of |x| still
    # scale with a unit change, so they are used as they are. Sorted: their quantiles are read
    # at their places (columns.sorted_quantiles), no partition per quantile set.
    return np.sort(values[values > 0])


def _plain(value: Any) -> Any:
    """A JSON-able Python scalar for a value set."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# A reference smaller than this says too little about its world to derive a contract from.
MIN_REFERENCE_ROWS = 30


def gather_evidence(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    contract: dict[str, Any] | None = None,
    label: str | None = None,
    prediction: str | None = None,
    confidence: str | None = None,
    protected: str | None = None,
    positive_class: str | None = None,
    drift_share: float = 0.5,
) -> dict[str, Any]:
    """Everything :func:`~firebreak.investigation.diagnosis.classify` needs, from two tables.

    SOP stage: investigate, by hand (``firebreak triage``). The contract (``contract``, a GX
    suite as JSON; derived from ``reference`` when None) is compiled into vectorised checks
    (:mod:`firebreak.contracts.compiled`; a suite with an expectation it does not know runs
    in Great Expectations); drift comes from :func:`firebreak.detection.stats.compute_drift`
    on the input columns both tables share with a usable type (label, prediction and
    confidence columns are outputs, not inputs), with :func:`add_drift_checks` beside it;
    fairness figures (``fairness`` on the current table, ``reference_fairness``) need
    ``protected`` and ``prediction`` (and ``positive_class`` when they hold class names):
    :func:`firebreak.detection.fairness.table_fairness`
    with :func:`~firebreak.detection.fairness.default_limits`, the figures and vocabulary of
    the incident's ``fairness_audit``. With ``label`` and ``prediction``: ``performance``
    (the realised figure against the reference's own: concept drift) and, with scores or
    ``confidence``, ``estimated_performance`` (CBPE/DLE: what the current rows cost before
    their labels are in). ``segments``: where the failure concentrates
    (:func:`firebreak.investigation.segments.localise`).

    Raises:
        FirebreakError: If a named column is missing from a table, or a table is empty;
            :class:`~firebreak.detection.fairness.FairnessInputError` if the prediction or
            label column does not hold decisions.
    """
    from firebreak.contracts.compiled import compile_suite
    from firebreak.contracts.validation import is_derived
    from firebreak.detection.columns import as_text, columns_of
    from firebreak.detection.performance import as_numbers
    from firebreak.detection.stats import compute_drift

    reference, current = named_columns(reference, "reference"), named_columns(current, "current")
    label, prediction, confidence, protected = (
        None if c is None else str(c) for c in (label, prediction, confidence, protected)
    )
    roles = {"label": label, "prediction": prediction, "confidence": confidence, "protected": protected}
    named = Counter(c for c in roles.values() if c is not None)
    for twice in sorted(c for c, k in named.items() if k > 1):
        both = " and ".join(role for role, c in roles.items() if c == twice)
        raise FirebreakError(f"the {both} columns are both {twice!r}: each role needs its own column")
    for table, frame in (("reference", reference), ("current", current)):
        if frame.empty:
            raise FirebreakError(f"the {table} table has no rows")
        if confidence is not None and confidence in frame.columns and as_numbers(frame[confidence]) is None:
            raise FirebreakError(f"confidence column {confidence!r} in the {table} table must hold numbers")
        for role, column in (("prediction", prediction), ("confidence", confidence)):
            if column is not None and column not in frame.columns:
                raise FirebreakError(f"{role} column {column!r} is not in the {table} table")
        if protected is not None and protected not in frame.columns:
            raise FirebreakError(f"protected column {protected!r} is not in the {table} table")
    if contract is None and len(reference) < MIN_REFERENCE_ROWS:
        raise FirebreakError(
            f"the reference table has {len(reference)} row(s): a contract derived from fewer than "
            f"{MIN_REFERENCE_ROWS} would read most new values as skew; give a larger reference or a --contract"
        )
    if label is not None and label not in reference.columns:
        # The current table may have no labels yet: that is what the estimate is for.
        raise FirebreakError(f"label column {label!r} is not in the reference table")
    as_given = reference, current
    if label is not None and prediction is not None:
        reference, current = one_vocabulary(
            reference, current, label=label, prediction=prediction, positive=positive_class
        )
    in_words = reference is not as_given[0]  # class names read as 0/1 through the positive class
    outputs = {c for c in (label, prediction, confidence) if c}
    inputs = [str(c) for c in reference.columns if c not in outputs]
    currency_changes: list[dict[str, Any]] = []
    if contract is None:
        reference, current, currency_changes = read_unit_numbers(
            reference, current, [c for c in inputs if c != protected]
        )
        reference, current = text_as_arrow(reference, inputs), text_as_arrow(current, inputs)
    derived = contract is None or is_derived(contract)
    # Columns that count periods (a store log's day number) continue past the reference by
    # construction: times, set aside before the contract is derived from the reference.
    periods = [c for c in inputs if c in current.columns and counts_periods(reference[c], current[c], c)]
    suite = (
        derive_contract(columns_of(reference, [c for c in inputs if c not in periods]))
        if contract is None
        else contract
    )
    current_inputs = columns_of(current, [c for c in current.columns if c not in outputs])
    compiled = compile_suite(suite)
    if compiled is not None:
        contract_result, current_broken = compiled.validate_rows(current_inputs)
    else:
        contract_result = _validate_with_gx(current_inputs, suite)
    shared, categorical, skipped = _comparable_inputs(reference, current, [c for c in inputs if c not in periods])
    skipped += [{"column": c, "reason": TIME_REASON} for c in periods]
    if inputs and not shared and label is None and all(_left_out_by_kind(s["reason"]) for s in skipped):
        from firebreak.inert import clean

        shown = "; ".join(f"{clean(s['column'], 60)}: {s['reason']}" for s in skipped[:5])
        raise FirebreakError(
            f"nothing to compare: no input column both tables hold can be compared ({shown}); "
            "a verdict on nothing would read 'no failure'"
        )
    drift: dict[str, Any] = {"dataset_drift": False, "columns": []}
    # Categories as text once, for every check after this (pandas' string conversion and its
    # null test are the costliest steps on a wide categorical table).
    ref_frame = columns_of(reference, replaced={c: as_text(reference[c]) for c in categorical})
    cur_frame = columns_of(current, replaced={c: as_text(current[c]) for c in categorical})
    if shared:
        drift = compute_drift(
            ref_frame, cur_frame, columns=shared, categorical=categorical, drift_share=drift_share
        ).to_dict()
    drift["skipped"] = skipped
    declared = {
        c: [str(v) for v in reference[c].cat.categories]
        for c in categorical
        if isinstance(reference[c].dtype, pd.CategoricalDtype)
    }
    add_drift_checks(drift, ref_frame, cur_frame, declared=declared)
    evidence: dict[str, Any] = {"contract": {**contract_result.to_dict(), "derived": derived}, "drift": drift}
    labelled = label is not None and prediction is not None and label in current.columns
    outcomes = [c for c in (label, prediction, confidence) if c is not None]
    changes = forms.outcome_changes(
        reference,
        current,
        outcomes,
        rescaled={c["column"]: c["factor"] for c in scale_changes(reference, current, outcomes)},
    )
    if in_words:  # a class name the reference never held reads as 0 there: judged as written
        changed = {c["column"] for c in changes}
        changes += [c for c in forms.outcome_changes(*as_given, outcomes) if c["column"] not in changed]
    # Answers or labels in another form than the reference's (a skew the findings name): the
    # performance figures would compare two forms, and say nothing. Answers missing on more
    # rows are skew too, but the rows that have one still compare.
    outcomes_changed = bool(changes)
    answers = [c for c in (prediction, confidence) if c is not None]
    drift["data_checks"]["outcome_changes"] = changes + forms.missing_answers(reference, current, answers)
    retyped = [s["column"] for s in skipped if s["reason"].startswith(_RETYPED)]
    timed = [s["column"] for s in skipped if s["reason"] == TIME_REASON]
    drift["data_checks"]["type_changes"] = (
        forms.type_changes(reference, current, retyped)
        + currency_changes
        + forms.time_form_changes(reference, current, timed)
        + forms.clock_shifts(reference, current, [c for c in shared if c not in categorical])
        + forms.swapped_codes(reference, current, shared)
    )
    labelled = labelled and not outcomes_changed
    # Labelled figures against the model's own training rows are its fit, not a baseline:
    # every new window would read worse. Then the tables are compared on their inputs and
    # decisions alone, and the realised figures are shown but not judged.
    fit_to_reference = False
    if labelled and label is not None and prediction is not None:
        from firebreak.detection.memorisation import memorised

        fit = memorised(reference, current, label=label, prediction=prediction, inputs=shared)
        if fit is not None:
            evidence["reference_fit"] = fit
            fit_to_reference = bool(fit["memorised"])
    judged = labelled and not fit_to_reference
    if protected and prediction:
        from firebreak.detection.fairness import decisions, default_limits, groups_inputs_moved, table_fairness

        rules = default_limits(protected, positive_class)
        # Labels arrive late: the figures with outcomes are on the rows that have one, in both
        # tables alike; with none yet, both tables are judged on their decisions alone.
        # A row the model gave no answer is no decision (the outcome checks judge how many).
        cur_rows, ref_rows = current[current[prediction].notna()], reference[reference[prediction].notna()]
        with_label = None
        if judged and label is not None and cur_rows[label].notna().any():
            cur_rows, ref_rows, with_label = cur_rows[cur_rows[label].notna()], ref_rows[ref_rows[label].notna()], label
        evidence["fairness"] = table_fairness(cur_rows, rules, prediction=prediction, label=with_label).to_dict()
        evidence["fairness"]["inputs_moved"] = groups_inputs_moved(
            ref_rows, cur_rows, protected, shared, answers=decisions(ref_rows[prediction], "prediction", positive_class)
        )
        evidence["reference_fairness"] = table_fairness(
            ref_rows, rules, prediction=prediction, label=with_label
        ).to_dict()
    if confidence:
        evidence["confidence"] = {
            f"{table}_mean": _finite_mean(frame[confidence])
            for table, frame in (("reference", reference), ("current", current))
        }
    if labelled:
        from firebreak.detection.performance import performance_change

        assert label is not None and prediction is not None
        evidence["performance"] = performance_change(reference, current, label=label, prediction=prediction)
        if fit_to_reference and evidence["performance"]:
            evidence["performance"]["significant"] = False
            evidence["performance"]["set_aside"] = "the reference is the model's training fit"
    if label is not None and prediction is not None and not outcomes_changed:
        estimate = _estimate(reference, current, shared, label=label, prediction=prediction, confidence=confidence)
        if estimate is not None:
            if labelled and evidence.get("performance"):
                estimate["realised"] = evidence["performance"]["current"]
                estimate["error"] = round(estimate["estimate"] - estimate["realised"], 4)
            evidence["estimated_performance"] = estimate
    contract_flags = None
    if not judged and not contract_result.passed and compiled is not None:
        # On the tables as given: the contract was derived from, and checks, the raw values.
        # The inputs' rows as validated, unless a given suite also checks an output.
        reads_outputs = any(check.column in outputs for check in compiled.checks)
        current_flags = compiled.violations(current) if reads_outputs else current_broken
        if not derived or _contract_is_the_signal(current_flags, drift.get("data_checks") or {}):
            contract_flags = (compiled.violations(reference), current_flags)
    evidence["segments"] = _segments(
        ref_frame,
        cur_frame,
        shared,
        contract_flags,
        label=label if judged else None,
        prediction=prediction,
    )
    return evidence


def _contract_is_the_signal(current_flags: np.ndarray, checks: dict[str, Any]) -> bool:
    """Whether a derived contract's broken rows are the failure to localise, not the traffic itself.

    They are when the data checks judged a failure skew, or when they are at least
    ``RANGE_SKEW_PERCENT`` of the rows. Fewer, unjudged, are a shift's tail past the derived
    ranges (the 2 values of 5,000 a lognormal column always leaves): localising them would
    answer "all users" for a drift that moved a part of the traffic.
    """
    from firebreak.investigation.findings import RANGE_SKEW_PERCENT

    judged = (item for key in ("unknown_values", "null_changes", "beyond_range") for item in checks.get(key, []))
    if any(item.get("verdict") == "skew" or item.get("skew") is True for item in judged):
        return True
    return bool(len(current_flags)) and 100 * float(np.mean(current_flags)) >= RANGE_SKEW_PERCENT


def _finite_mean(series: pd.Series) -> float | None:
    """The mean of a column's finite values (4 decimals); None when it has none."""
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 4) if len(values) else None


def _validate_with_gx(frame: pd.DataFrame, suite: dict[str, Any]) -> Any:
    import json
    import tempfile
    from pathlib import Path

    from firebreak.contracts.validation import validate_frame

    with tempfile.TemporaryDirectory(prefix="firebreak-triage-") as tmp:
        suite_path = Path(tmp) / "contract.json"
        suite_path.write_text(json.dumps(suite))
        return validate_frame(frame, suite_path)


_RETYPED = "type "  # a skipped column's reason when it holds numbers in one table, text in the other


def _comparable_inputs(
    reference: pd.DataFrame, current: pd.DataFrame, inputs: list[str]
) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """The inputs both tables can be compared on, which of them are categorical, and why the rest are not."""
    shared, categorical, skipped = [], [], []
    for column in inputs:
        if column not in current.columns:
            skipped.append({"column": column, "reason": "missing from the current table"})
            continue
        if (reason := set_aside(reference[column], column)) is not None:
            skipped.append({"column": column, "reason": reason})
            continue
        ref_num = column in numeric_columns(reference, [column])
        cur_num = column in numeric_columns(current, [column])
        if ref_num != cur_num:
            reason = f"{_RETYPED}{reference[column].dtype} -> {current[column].dtype}"
            skipped.append({"column": column, "reason": reason})
            continue
        if reference[column].notna().sum() == 0 or current[column].notna().sum() == 0:
            skipped.append({"column": column, "reason": "no values"})
            continue
        shared.append(column)
        if not ref_num:
            categorical.append(column)
    return shared, categorical, skipped


def _left_out_by_kind(reason: str) -> bool:
    """Whether a skipped column was left out by its kind (identifiers, timestamps, empty), not found changed."""
    return reason.endswith("not compared") or reason == "no values"


def _is_score(series: pd.Series) -> bool:
    """Scores in [0, 1] that are not all 0/1: a probability the estimate can calibrate."""
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    return bool(len(values)) and bool(((values >= 0) & (values <= 1)).all()) and not bool(np.isin(values, [0, 1]).all())


def _estimate(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    *,
    label: str,
    prediction: str,
    confidence: str | None,
) -> dict[str, Any] | None:
    """CBPE (decisions with a score or a confidence) or DLE (numbers), calibrated on the reference's labels."""
    from firebreak.detection import estimation
    from firebreak.detection.fairness import decisions
    from firebreak.detection.performance import finite_rows, outcome_kind, wrong_answers

    ref = finite_rows(reference, [label, prediction])
    if len(ref) < 100:
        return None
    cur = finite_rows(current, [prediction])
    kind = outcome_kind(ref[label], pd.concat([ref[prediction], cur[prediction]]))
    if kind == "numbers":
        if not features:
            return None
        return estimation.estimate_mae(ref, cur, features=features, label=label, prediction=prediction)
    if kind == "decisions" and _is_score(ref[prediction]):
        ref_decided, ref_conf = estimation.decision_confidence(ref[prediction].to_numpy(dtype=float))
        _, cur_conf = estimation.decision_confidence(cur[prediction].to_numpy(dtype=float))
        ref_right = ref_decided == decisions(ref[label], "label")
    elif confidence is not None:
        ref, cur = finite_rows(ref, [confidence]), finite_rows(cur, [confidence])
        if len(ref) < 100 or cur.empty:
            return None
        ref_right = ~wrong_answers(ref[label], ref[prediction], kind)
        ref_conf = ref[confidence].to_numpy(dtype=float)
        cur_conf = cur[confidence].to_numpy(dtype=float)
    else:
        return None  # bare decisions carry no confidence to estimate from
    if cur_conf.size == 0:
        return None
    return estimation.estimate_accuracy(ref_conf, ref_right, cur_conf)


def _segments(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    contract_flags: tuple[np.ndarray, np.ndarray] | None,
    *,
    label: str | None,
    prediction: str | None,
) -> dict[str, Any]:
    """Where the failure concentrates: wrong answers with labels, else broken contract rows, else moved traffic."""
    from firebreak.detection.performance import finite_rows, outcome_kind, wrong_answers
    from firebreak.investigation.segments import localise

    if label is not None and prediction is not None:
        ref, cur = finite_rows(reference, [label, prediction]), finite_rows(current, [label, prediction])
        kind = outcome_kind(pd.concat([ref[label], cur[label]]), pd.concat([ref[prediction], cur[prediction]]))
        if kind != "numbers":
            ref_bad, cur_bad = (
                wrong_answers(ref[label], ref[prediction], kind),
                wrong_answers(cur[label], cur[prediction], kind),
            )
            signal = "wrong decisions" if kind == "decisions" else "wrong classes"
        else:  # numbers: a large error is one past the reference's 90th percentile
            ref_err = np.abs(ref[label].to_numpy(dtype=float) - ref[prediction].to_numpy(dtype=float))
            cur_err = np.abs(cur[label].to_numpy(dtype=float) - cur[prediction].to_numpy(dtype=float))
            limit = float(np.quantile(ref_err, 0.9)) if len(ref_err) else 0.0
            ref_bad, cur_bad = ref_err > limit, cur_err > limit
            signal = f"errors over {limit:.3g} (the reference's 90th percentile)"
        return localise(ref, cur, columns=columns, reference_flags=ref_bad, current_flags=cur_bad, signal=signal)
    if contract_flags is not None:
        return localise(
            reference,
            current,
            columns=columns,
            reference_flags=contract_flags[0],
            current_flags=contract_flags[1],
            signal="contract violations",
        )
    return localise(reference, current, columns=columns, signal="traffic share")
