"""Which users are hit: where a failure concentrates, over single columns and pairs.

SOP stage: triage and investigate — the SOP's first question, *"is the model failing for
all users, or a specific subset?"*. Every row of both tables carries a failure flag (a
wrong decision or a large error where labels exist; a broken contract row); without flags,
the row itself is the signal and the question becomes where the traffic moved. Segments
are each column's levels (categories; for numbers, bins between the reference's
5/10/20/.../90/95% quantiles, or the values of an integer column with at most 12) and
pairs of a promising segment with every level of another column.

A segment is reported when:

* its current failure rate is above **the same segment's rate in the reference**
  (conditional binomial test of two counts, one-sided): a segment the model always served
  worse is not news, and unchanged data reports nothing;
* the tests survive **Benjamini-Hochberg** control of the false discovery rate at
  :data:`FDR` over every segment tested (singles and pairs);
* its **lift** (failure rate in the segment / overall current failure rate) is at least
  :data:`MIN_LIFT`, with at least :data:`MIN_ROWS` current rows: a failure spread evenly
  is "all users", not a segment;
* its failure rate is also above the current traffic's as a whole (binomial test against the
  overall rate): a failure that rose everywhere is everyone's;
* a pair is kept only when its lift beats each of its two single-column halves' by a quarter,
  and its failures are significantly more than the worse half's rate predicts.

Ranked by a conservative lift: the Wilson lower bound of the segment's rate over the
overall rate, so a small segment needs a clear excess to outrank a large one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firebreak.containment.segment import MISSING, Condition, Segment
from firebreak.detection.columns import as_text, level_codes, ranked_levels, sorted_quantiles
from firebreak.detection.stats import binomial_tail

__all__ = ["FDR", "MIN_LIFT", "MIN_ROWS", "localise"]

FDR = 0.005
MIN_LIFT = 1.5
MIN_ROWS = 30
_PAIR_GAIN = 1.25
_PAIR_PARENTS = 6
_QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
_FEW_VALUES = 12
_MAX_LEVELS = 20
_Z = 1.96  # Wilson interval, 95%


@dataclass
class _Coded:
    column: str
    ref: np.ndarray
    cur: np.ndarray
    conditions: list[Condition]


def _code_numeric(column: str, ref: pd.Series, cur: pd.Series, basis: pd.Series) -> _Coded:
    ref_values = ref.to_numpy(dtype=float, na_value=np.nan)
    cur_values = cur.to_numpy(dtype=float, na_value=np.nan)
    basis_values = ref_values if basis is ref else basis.to_numpy(dtype=float, na_value=np.nan)
    # Sorted once: the distinct values and the quantiles both read it.
    ordered = np.sort(basis_values[np.isfinite(basis_values)])
    distinct = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered
    if pd.api.types.is_integer_dtype(basis) and 0 < len(distinct) <= _FEW_VALUES:
        levels = [str(int(v)) for v in distinct]
        conditions = [Condition(column, values=(lv,)) for lv in levels]

        def code(values: np.ndarray) -> np.ndarray:
            at = np.minimum(np.searchsorted(distinct, values), len(distinct) - 1)
            return np.where(distinct[at] == values, at, len(levels))

        ref_codes, cur_codes = code(ref_values), code(cur_values)
        # Values the reference never had: one segment of their own, named by them (not "missing").
        unseen = np.unique(cur_values[(cur_codes == len(levels)) & np.isfinite(cur_values)])[:50]
        conditions.append(Condition(column, values=tuple(_level_text(v) for v in unseen) or ("<other>",)))
    else:
        edges = np.unique(sorted_quantiles(ordered, _QUANTILES)) if len(ordered) else np.array([])
        bounds = [None, *edges.tolist(), None]
        conditions = [Condition(column, low=bounds[i], high=bounds[i + 1]) for i in range(len(bounds) - 1)]
        ref_codes, cur_codes = _bins(edges, ref_values), _bins(edges, cur_values)
    # Missing values get the last code.
    missing = len(conditions)
    conditions.append(Condition(column, values=(MISSING,)))
    ref_codes = np.where(np.isfinite(ref_values), ref_codes, missing)
    cur_codes = np.where(np.isfinite(cur_values), cur_codes, missing)
    return _Coded(column, ref_codes, cur_codes, conditions)


def _bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, values, side="right")`` for a few edges: one comparison pass per
    edge, about 10x faster than a binary search per value on unsorted values, counted in bytes
    (a third of the time of counting in machine integers)."""
    if len(edges) > np.iinfo(np.uint8).max:
        return np.searchsorted(edges, values, side="right")
    codes = np.zeros(len(values), dtype=np.uint8)
    above = np.empty(len(values), dtype=bool)
    for edge in edges:
        np.greater_equal(values, edge, out=above)
        codes += above.view(np.uint8)
    return codes.astype(np.intp)


def _level_text(value: float) -> str:
    """A level of a few-valued integer column as :meth:`Condition.matches` compares it (``6``, not ``6.0``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _code_categorical(column: str, ref: pd.Series, cur: pd.Series, basis: pd.Series) -> _Coded:
    ref_text, cur_text = as_text(ref).fillna(MISSING), as_text(cur).fillna(MISSING)
    basis_text = ref_text if basis is ref else as_text(basis).fillna(MISSING)
    ranks, distinct, _ = ranked_levels(basis_text)
    levels = [str(v) for v in distinct[:_MAX_LEVELS]]
    other = len(levels)
    conditions = [Condition(column, values=(v,)) for v in levels]
    # A hash pass per table in C, not a Python call per row: -1, not a kept level.
    ref_codes = ranks if basis is ref else level_codes(ref_text, levels)
    cur_codes = level_codes(cur_text, levels)
    unseen = sorted({str(v) for v in cur_text[cur_codes < 0].unique()})[:50]
    conditions.append(Condition(column, values=tuple(unseen) or ("<other>",)))
    return _Coded(
        column,
        np.where((ref_codes < 0) | (ref_codes >= other), other, ref_codes),
        np.where(cur_codes < 0, other, cur_codes),
        conditions,
    )


def _wilson_low(hits: np.ndarray, n: np.ndarray) -> np.ndarray:
    n = np.maximum(n, 1)
    p = hits / n
    centre = p + _Z**2 / (2 * n)
    margin = _Z * np.sqrt(p * (1 - p) / n + _Z**2 / (4 * n**2))
    return np.asarray((centre - margin) / (1 + _Z**2 / n))


def _tests(
    ref_n: np.ndarray,
    ref_bad: np.ndarray,
    cur_n: np.ndarray,
    cur_bad: np.ndarray,
    totals: tuple[float, float],
    baseline: bool = True,
) -> dict[str, np.ndarray]:
    """Per segment: p-value (current rate above the segment's reference rate), lift and its lower bound."""
    n_cur, bad_cur = totals
    overall = max(bad_cur / max(n_cur, 1), 1e-12)
    # Two questions, both must be answered yes: worse than this segment was in the reference,
    # and worse than the current traffic as a whole (else the failure is everyone's).
    changed = binomial_tail(cur_bad, cur_bad + ref_bad, cur_n / np.maximum(cur_n + ref_n, 1))
    if not baseline:
        changed = np.zeros_like(changed)  # no baseline (an incident's window): concentration alone
    concentrated = binomial_tail(cur_bad, cur_n, np.full(len(cur_n), overall))
    p = np.maximum(changed, concentrated)
    rate = cur_bad / np.maximum(cur_n, 1)
    return {"p": p, "lift": rate / overall, "lift_low": _wilson_low(cur_bad, cur_n) / overall, "rate": rate}


def localise(
    reference: pd.DataFrame | None,
    current: pd.DataFrame,
    *,
    columns: Sequence[str],
    reference_flags: np.ndarray | None = None,
    current_flags: np.ndarray | None = None,
    signal: str = "traffic share",
    top: int = 5,
) -> dict[str, Any]:
    """Where the failure concentrates (see the module docstring).

    Args:
        reference: Reference rows; None when there is no baseline (an incident's window,
            where the failure is established): the segment is then judged against the
            current overall rate only.
        current: Current rows.
        columns: Input columns to segment by (present in both tables).
        reference_flags: Per reference row, whether it failed; None (with
            ``current_flags`` None) asks where the traffic moved instead.
        current_flags: Per current row, whether it failed.
        signal: What the flags are, in words (``wrong decisions``, ``contract violations``).
        top: Segments reported at most.

    Returns:
        ``signal``, ``scope`` (``all users``, ``segment`` or ``none`` when nothing failed),
        ``tested`` (segments tested), ``overall_rate`` and ``segments`` (best first): each
        ``segment`` (its :meth:`Segment.to_dict`), ``description``, ``rows``, ``share``,
        ``rate``, ``reference_rate``, ``lift``, ``p_value``.
    """
    baseline = reference is not None
    basis = reference if reference is not None else current  # where the bins and levels come from
    if reference is None:
        # No baseline: only the concentration test decides (see _tests).
        reference, reference_flags = current.iloc[:0], np.zeros(0, dtype=bool)
    share_mode = current_flags is None
    cur_flags = np.ones(len(current), dtype=bool) if share_mode else np.asarray(current_flags, dtype=bool)
    ref_flags = np.ones(len(reference), dtype=bool) if share_mode else np.asarray(reference_flags, dtype=bool)
    n_ref, n_cur = len(reference), len(current)
    overall = float(cur_flags.mean()) if n_cur else 0.0
    result: dict[str, Any] = {"signal": signal, "tested": 0, "overall_rate": round(overall, 5), "segments": []}
    if share_mode:
        # Rows are the signal: a segment's "rate" is its share of the table, tested against its reference share.
        result["overall_rate"] = 1.0
    if (baseline and not n_ref) or not n_cur or (not share_mode and not cur_flags.any()):
        result["scope"] = "none"
        return result
    coded = []
    for column in columns:
        ref, cur = reference[column], current[column]
        numeric = pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref)
        if numeric and not (pd.api.types.is_numeric_dtype(cur) and not pd.api.types.is_bool_dtype(cur)):
            continue
        coded.append((_code_numeric if numeric else _code_categorical)(str(column), ref, cur, basis[column]))

    def counts(
        codes_ref: np.ndarray,
        codes_cur: np.ndarray,
        size: int,
        flags_ref: np.ndarray = ref_flags,
        flags_cur: np.ndarray = cur_flags,
    ) -> tuple[np.ndarray, ...]:
        return (
            np.bincount(codes_ref, minlength=size).astype(float),
            np.bincount(codes_ref, weights=flags_ref, minlength=size),
            np.bincount(codes_cur, minlength=size).astype(float),
            np.bincount(codes_cur, weights=flags_cur, minlength=size),
        )

    def measured(ref_n: np.ndarray, ref_bad: np.ndarray, cur_n: np.ndarray, cur_bad: np.ndarray) -> dict[str, Any]:
        if share_mode:
            # Share of the table: the "failures" are the rows, the trials both tables' rows in the segment.
            tests = _tests(ref_n, ref_n, cur_n, cur_n, (n_cur, n_cur))
            tests["p"] = binomial_tail(cur_n, cur_n + ref_n, np.full(len(cur_n), n_cur / (n_cur + n_ref)))
            ref_share = ref_n / n_ref
            tests["rate"] = cur_n / n_cur
            tests["lift"] = tests["rate"] / np.maximum(ref_share, 1e-12)
            tests["lift_low"] = _wilson_low(cur_n, np.full(len(cur_n), float(n_cur))) / np.maximum(ref_share, 1e-12)
            tests["reference_rate"] = ref_share
        else:
            tests = _tests(ref_n, ref_bad, cur_n, cur_bad, (n_cur, float(cur_flags.sum())), baseline)
            tests["reference_rate"] = ref_bad / np.maximum(ref_n, 1)
        tests["cur_n"] = cur_n
        return tests

    # Every candidate is its conditions and a place in one block of tests (a column's levels, or
    # a parent's pairs): the figures of a row are read only for the few segments reported.
    candidates: list[tuple[tuple[Condition, ...], dict[str, np.ndarray], int]] = []
    blocks: list[np.ndarray] = []  # each block's p-values, in the candidates' order
    singles = [measured(*counts(col.ref, col.cur, len(col.conditions))) for col in coded]
    for col, tests in zip(coded, singles, strict=True):
        candidates += [((condition,), tests, level) for level, condition in enumerate(col.conditions)]
        blocks.append(tests["p"])
    # Pairs: the most promising single segments, each crossed with every level of every other column.
    promising = sorted(
        (
            (index, level)
            for index, tests in enumerate(singles)
            for level in np.flatnonzero((tests["p"] < 0.05) & (tests["lift"] > 1) & (tests["cur_n"] >= MIN_ROWS))
        ),
        key=lambda single: -singles[single[0]]["lift_low"][single[1]],
    )[:_PAIR_PARENTS]
    for index, level in promising:
        first, parent = coded[index], {k: float(v[level]) for k, v in singles[index].items()}
        others = [(other_index, other) for other_index, other in enumerate(coded) if other_index != index]
        if not others:
            continue
        # The parent's rows as positions, once; every other column's levels side by side (each
        # column's codes shifted past the ones before), so one count and one test per parent.
        in_ref, in_cur = np.flatnonzero(first.ref == level), np.flatnonzero(first.cur == level)
        starts = np.cumsum([0] + [len(other.conditions) for _, other in others])
        tests = measured(
            *counts(
                np.concatenate(
                    [other.ref[in_ref] + start for (_, other), start in zip(others, starts[:-1], strict=True)]
                ),
                np.concatenate(
                    [other.cur[in_cur] + start for (_, other), start in zip(others, starts[:-1], strict=True)]
                ),
                int(starts[-1]),
                np.tile(ref_flags[in_ref], len(others)),
                np.tile(cur_flags[in_cur], len(others)),
            )
        )
        # The other half of each pair: its own single figures, in the pairs' order.
        half_lift = np.concatenate([singles[i]["lift"] for i, _ in others])
        p_pair = tests["p"].copy()
        if not share_mode:
            # Sharper beyond noise: its failures against the worse half's rate.
            half = np.maximum(parent["rate"], np.concatenate([singles[i]["rate"] for i, _ in others]))
            p_pair = np.maximum(p_pair, binomial_tail(np.round(tests["rate"] * tests["cur_n"]), tests["cur_n"], half))
        # Not sharper than both its halves: tested, never reported.
        p_pair[tests["lift"] < _PAIR_GAIN * np.maximum(parent["lift"], half_lift)] = 1.0
        tests["p"] = p_pair
        halves = [condition for _, other in others for condition in other.conditions]
        candidates += [
            ((first.conditions[level], condition), tests, position) for position, condition in enumerate(halves)
        ]
        blocks.append(p_pair)
    result["tested"] = len(candidates)
    if not candidates:
        result["scope"] = "all users"
        return result
    p_values = np.concatenate(blocks)
    order = np.argsort(p_values)
    m = len(p_values)
    passed = p_values[order] <= FDR * np.arange(1, m + 1) / m
    cutoff = int(np.max(np.nonzero(passed)[0])) + 1 if passed.any() else 0
    reported = []
    for i in sorted(order[:cutoff].tolist()):
        conditions, tests, position = candidates[i]
        row = {k: float(v[position]) for k, v in tests.items()}
        # A segment holding every current row is everyone: no segment to name or contain alone.
        if row["lift"] >= MIN_LIFT and MIN_ROWS <= row["cur_n"] < n_cur:
            reported.append((Segment(conditions), row))
    reported.sort(key=lambda pair: -pair[1]["lift_low"])
    # A pair is reached from either of its halves when both are promising: one report per set of conditions.
    seen: set[frozenset[Condition]] = set()
    unique = []
    for segment, row in reported:
        if frozenset(segment.conditions) not in seen:
            seen.add(frozenset(segment.conditions))
            unique.append((segment, row))
    reported = unique
    result["segments"] = [
        {
            "segment": segment.to_dict(),
            "description": segment.describe(),
            "rows": int(row["cur_n"]),
            "share": round(row["cur_n"] / n_cur, 4),
            "rate": round(row["rate"], 4),
            "reference_rate": round(row["reference_rate"], 4),
            # A share of traffic the reference never had has no finite lift: None, "new since the reference".
            "lift": round(row["lift"], 2) if not share_mode or row["reference_rate"] > 0 else None,
            "p_value": row["p"],
        }
        for segment, row in reported[:top]
    ]
    result["scope"] = "segment" if result["segments"] else "all users"
    if share_mode and not result["segments"]:
        result["scope"] = "none"
    return result


def describe(report: dict[str, Any]) -> str:
    """One line: ``all users`` or ``segment X: n rows, share, lift``."""
    if report.get("scope") != "segment":
        return str(report.get("scope", "none"))
    best = report["segments"][0]
    return (
        f"segment {best['description']}: {best['rows']:,} rows, {best['share']:.1%} of traffic, "
        f"{lift_text(best['lift'])} ({report['signal']})"
    )


def lift_text(lift: float | None) -> str:
    """A reported segment's lift as people read it (None: a share of traffic the reference never had)."""
    return "new since the reference" if lift is None else f"lift {lift:.1f}"
