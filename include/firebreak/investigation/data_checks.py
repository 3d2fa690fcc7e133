"""The statistical rules that tell a changed pipeline (skew) from a moving world (drift).

SOP stage: investigate. A contract derived from a reference table is a guess from a
sample: a value the sample never showed, a null it never had, a number past its range can
all be the world being bigger than the sample. So each contract failure on a derived
contract is judged here against what the sample could have missed, and the verdict
carries the evidence it rests on (``docs/triage.md`` explains every rule):

* :func:`unknown_values` — values outside the reference's set, by **rate and
  significance**: an exact test of how many current rows a random split of the two
  tables together would leave holding values the reference lacks
  (:func:`firebreak.investigation.unseen.unseen_p_value`).
  Known values written differently (another case, white space around them) are an encoding
  change: skew. Then **who holds them**: codes substituted upstream land on rows like any others, while a
  part of the population the reference never covered (a new region, a new market) differs
  from the other rows in the other columns too; that is drift, not skew.
* :func:`null_changes` — a rise of the null rate, tested with the conditional binomial
  test of two counts (nulls in either table, split by the tables' sizes).
* :func:`beyond_range` — values past the reference's range: **skew** only with positive
  evidence of a format, unit, encoding or type change (a point mass across a sign the
  reference never had, or far out and unlike the column's own values: heavier than any
  value the reference holds, or past the range by more than its span: a sentinel; the
  values beyond the range are the reference's own distribution times a power of ten: a
  unit change on part of the rows);
  otherwise a **continuation** of the distribution: drift.
* :func:`spikes` — one value suddenly holding a share of rows it never had in a column
  of many distinct values (a default or sentinel filled in upstream), inside the range too,
  unless it is the column's cap or floor and the other values moved towards it (drift);
  or a column the reference holds constant whose rows (99% of them) now hold another value.
* :func:`rounded` — values written on a coarser grid than the reference's (rounded or
  truncated upstream).

Each function returns plain dicts (JSON-able evidence); :func:`data_checks` runs them all. A column
written in another form (answers, types, times) is :mod:`firebreak.investigation.forms`'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from firebreak.contracts.validation import bounded_sample
from firebreak.detection.columns import as_text, columns_of, sorted_counts, sorted_quantiles, value_counts
from firebreak.detection.stats import binomial_tail, ks_p_value
from firebreak.investigation.units import partial_unit_change
from firebreak.investigation.unseen import unseen_p_value

__all__ = [
    "SIGNIFICANCE",
    "allowed_range",
    "beyond_range",
    "data_checks",
    "exceedance_p_value",
    "null_changes",
    "rounded",
    "spikes",
    "unknown_values",
]

# A rule counts a change only below this p-value. Triage tests a few dozen things per table;
# 1e-3 keeps the chance of one false alarm on an unchanged table at a few percent.
SIGNIFICANCE = 1e-3
# ... and only when the change is big enough to matter to a pipeline: 0.1% of rows of
# unknown values, a null rate up by 0.2 points and by half again.
MIN_UNKNOWN_SHARE = 0.001
MIN_NULL_RISE = 0.002
MIN_NULL_RATIO = 1.5
# Allowed range = reference [min, max] widened by this share of its span on each side.
RANGE_MARGIN = 0.25
# A sentinel: one value holding nearly all the rows past the range, at least this many. (A
# discrete column moving into a new region also has point masses past the range: one or
# several, each like the levels the reference holds; :func:`_lone_point_mass` tells them apart.)
_SENTINEL_MIN_ROWS = 5
_SENTINEL_SHARE = 0.9
# A column moved whole: at least this share of its values past the (widened) range. A new region
# of the population comes with rows still inside the old one; a unit or encoding change moves all.
# (A unit change on part of the rows: firebreak.investigation.units.partial_unit_change.)
_WHOLE_SHARE = 0.99
_WHOLE_MIN_ROWS = 20  # a handful of rows past the range says nothing about a whole column
# A spike: a column whose reference has at least this many distinct values, none over this share.
_SPIKE_MIN_DISTINCT = 50
_SPIKE_REF_MAX_SHARE = 0.005  # or no more rows than a spike's least (ties of 4 in 750 rows of integers)
_SPIKE_MIN_SHARE = 0.01
_SPIKE_MIN_RATIO = 10.0
_SPIKE_MIN_ROWS = _SENTINEL_MIN_ROWS  # a filled-in default holds as many rows as a sentinel
# Rows holding unseen values are another part of the population when, in some other numeric
# column, they differ from the rows holding known values by a K-S distance of at least this,
# significant after Bonferroni over the columns compared; each side needs this many rows.
_POPULATION_MIN_DISTANCE = 0.3
_POPULATION_MIN_ROWS = 20
# Unknown values that are known ones in another case or with white space around them, on at
# least this share of the unknown rows, are an encoding change.
_RESPELLED_SHARE = 0.9


def allowed_range(values: np.ndarray, *, integer: bool) -> tuple[float, float]:
    """The derived contract's range for a reference column: [min, max] widened by :data:`RANGE_MARGIN`.

    Never below 0 when the reference is non-negative; whole numbers for integer columns.
    """
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else max(abs(high), 1.0)
    min_value = low - RANGE_MARGIN * span
    if low >= 0:
        min_value = max(min_value, 0.0)
    max_value = high + RANGE_MARGIN * span
    if integer:
        min_value, max_value = math.floor(min_value), math.ceil(max_value)
    return min_value, max_value


def unknown_values(
    reference: pd.Series, current: pd.Series, declared: Sequence[str] = (), *, others: pd.DataFrame | None = None
) -> dict[str, Any] | None:
    """Values of ``current`` the reference never showed (nor declared, for a categorical dtype).

    How many current rows a random split of one table would leave holding values its other
    part lacks is an exact test (:func:`~firebreak.investigation.unseen.unseen_p_value`): a
    value seen once in 30,000 rows, or a long tail of rare ones (the fiftieth state, the
    fortieth country) is what a second sample of the same world shows. Significant when the
    count is significant by that test *and* on at least 0.1% of rows.

    ``others``: the current table's other numeric columns, row-aligned with ``current``. A
    significant count is skew unless the rows holding the unseen values differ from the rows
    holding known ones in one of them (:func:`_another_population`): then the reference
    missed a part of the population, which is drift.

    Returns:
        None when every value is known; else ``column``, ``rows``, ``share``,
        ``expected_share``, ``p_value``, ``sample``, ``skew`` (bool) and, when significant,
        ``verdict`` (``skew`` or ``drift``) and ``because``.
    """
    seen = set(value_counts(as_text(reference)).index)
    known = seen | set(declared)
    if isinstance(reference.dtype, pd.CategoricalDtype):
        known |= {str(c) for c in reference.cat.categories}
    if set(value_counts(as_text(current)).index) <= known:
        return None  # one count per table settles the common case
    ref, cur = as_text(reference.dropna()), as_text(current.dropna())
    unseen = ~cur.isin(known)
    unknown = cur[unseen]
    if unknown.empty or cur.empty:
        return None
    rows, n = len(unknown), len(cur)
    # Every value's count in both tables together; a value declared without being seen is never unknown.
    pooled = pd.concat([ref, cur], ignore_index=True).value_counts()
    pooled = pooled[~pooled.index.isin(list(known - seen))]
    p_value, expected_rows = unseen_p_value(pooled.to_numpy(dtype=np.int64), rows, n_ref=len(ref), n_cur=n)
    expected = expected_rows / n
    share = rows / n
    found: dict[str, Any] = {
        "column": str(reference.name),
        "rows": rows,
        "share": round(share, 5),
        "expected_share": round(expected, 5),
        "p_value": p_value,
        "sample": [bounded_sample(v) for v in unknown.value_counts().index[:3].tolist()],
        "skew": p_value < SIGNIFICANCE and share >= MIN_UNKNOWN_SHARE,
    }
    if not found["skew"]:
        return found
    if respelled := _respelled(unknown, known):
        return {**found, "verdict": "skew", "because": respelled}
    if rows == n:
        return {**found, "verdict": "skew", "because": "no row holds a known value: the column was recoded"}
    present = np.flatnonzero(current.notna().to_numpy())  # ``others`` is row-aligned with ``current``
    apart = _another_population(others.iloc[present] if others is not None else None, unseen.to_numpy())
    if apart is None:
        because = "the rows holding them look like the other rows in every other column: codes substituted upstream"
        return {**found, "verdict": "skew", "because": because}
    return {**found, "skew": False, "verdict": "drift", "because": apart}


def _respelled(unknown: pd.Series, known: set[Any]) -> str | None:
    """Why unknown values are known ones written differently (case, white space), or None.

    A world that grows brings new values; a pipeline that changed its encoding brings the old
    ones respelled ("Web" for "web", " web" for "web"): at least 90% of the unknown rows.
    """
    folded = {str(k).strip().casefold(): str(k) for k in known}
    texts = unknown.astype(str)
    matched = texts.str.strip().str.casefold().isin(folded.keys())
    if matched.mean() < _RESPELLED_SHARE:
        return None
    example = str(texts[matched].iloc[0])
    return (
        f"{matched.mean():.0%} of them are known values written differently ({example!r} for "
        f"{folded[example.strip().casefold()]!r}: case or white space): an encoding change upstream"
    )


def _another_population(others: pd.DataFrame | None, unseen: np.ndarray) -> str | None:
    """How the rows marked ``unseen`` differ from the rest in another numeric column, or None."""
    if others is None or others.empty or min(int(unseen.sum()), int((~unseen).sum())) < _POPULATION_MIN_ROWS:
        return None
    best: tuple[float, float, str] | None = None
    for column in others.columns:
        values = pd.to_numeric(others[column], errors="coerce").to_numpy(dtype=float)
        inside, outside = values[unseen], values[~unseen]
        inside, outside = inside[np.isfinite(inside)], outside[np.isfinite(outside)]
        if min(len(inside), len(outside)) < _POPULATION_MIN_ROWS:
            continue
        distance = _ks_distance(inside, outside)
        if distance >= _POPULATION_MIN_DISTANCE and (best is None or distance > best[0]):
            p_value = ks_p_value(outside, inside)
            if p_value < SIGNIFICANCE / len(others.columns):
                best = (distance, p_value, str(column))
    if best is None:
        return None
    distance, p_value, column = best
    return (
        f"the rows holding them differ from the other rows in {column} (K-S distance {distance:.2f}, "
        f"p={p_value:.2g}): a part of the population the reference did not cover"
    )


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gaps = np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(gaps)))


def null_changes(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str], *, by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Columns whose null rate rose, each with its test.

    Conditional test of two counts: given ``k`` nulls in both tables together, the current
    table's share of them is Binomial(k, n_cur / (n_ref + n_cur)) when the rate did not
    change (exact, and sound for the rare counts a clean column has). Skew when
    significant, the rate rose by at least 0.2 points and to at least 1.5 times the
    reference's, unless the mix of traffic explains it (``by``: :func:`_nulls_of_the_mix`).
    """
    found = []
    n_ref, n_cur = len(reference), len(current)
    for column in columns:
        if column not in reference.columns or column not in current.columns:
            continue
        a, b = int(reference[column].isna().sum()), int(current[column].isna().sum())
        ref_rate, cur_rate = a / n_ref, b / n_cur
        if b == 0 or cur_rate <= ref_rate:
            continue
        p_value = float(binomial_tail(b, a + b, n_cur / (n_ref + n_cur)))
        item = {
            "column": str(column),
            "reference_rate": round(ref_rate, 5),
            "current_rate": round(cur_rate, 5),
            "p_value": p_value,
            "skew": p_value < SIGNIFICANCE
            and cur_rate - ref_rate >= MIN_NULL_RISE
            and cur_rate >= MIN_NULL_RATIO * ref_rate,
        }
        if item["skew"] and (mix := _nulls_of_the_mix(reference, current, column, [c for c in by if c != column])):
            item |= {"skew": False, "verdict": "drift", "because": mix}
        found.append(item)
    return found


# A column whose levels explain a null rise: at most this many levels in the reference.
_MIX_LEVELS = 20


def _nulls_of_the_mix(reference: pd.DataFrame, current: pd.DataFrame, column: str, by: Sequence[str]) -> str | None:
    """Why a null rise is the traffic's mix, not the pipeline, or None.

    Rows of some kinds always lack a field (a guest checkout has no account age): when such
    rows grow, the column's null rate rises with them. It does when, for a column of at most
    :data:`_MIX_LEVELS` levels, the nulls each level had in the reference, at the current
    rows' mix, account for the current count (binomial p >= 0.001 that it is no higher) and
    for most of the rise.
    """
    n_cur = len(current)
    a_rate = float(reference[column].isna().mean())
    observed = int(current[column].isna().sum())
    best: tuple[float, str, float] | None = None
    for other in by:
        ref_levels, cur_levels = reference[other].astype(object), current[other].astype(object)
        if ref_levels.nunique(dropna=False) > _MIX_LEVELS:
            continue
        # Missing levels count as a level of their own (fillna: pandas groups no NaN key).
        rates = reference[column].isna().groupby(ref_levels.fillna("<missing>")).mean()
        expected = float(cur_levels.fillna("<missing>").map(rates).fillna(a_rate).sum())
        if expected - a_rate * n_cur < 0.5 * (observed - a_rate * n_cur):
            continue  # the mix accounts for less than half of the rise
        p_value = float(binomial_tail(observed, n_cur, min(expected / n_cur, 1.0)))
        if p_value >= SIGNIFICANCE and (best is None or p_value > best[0]):
            best = (p_value, str(other), expected / n_cur)
    if best is None:
        return None
    _, other, rate = best
    return (
        f"the rows of the {other} levels that lacked it in the reference grew: at the current mix its nulls "
        f"would be {rate:.2%} of rows; the traffic moved, the pipeline did not"
    )


def _finite(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values)]


def beyond_range(
    reference: pd.Series, current: pd.Series, *, rescaled: bool = False, columns: int = 1
) -> dict[str, Any] | None:
    """Values of a numeric column past the derived range, and whether they continue the distribution.

    ``rescaled``: the whole column was found rescaled by one factor (units, currency):
    that is the evidence, and nothing more is needed. ``columns``: how many columns are
    tested so (the significance of a continuation is family-wise).

    A continuation is drift only when that many values past the range are unlikely from one
    world: :func:`exceedance_p_value`, below :data:`SIGNIFICANCE` over ``columns``. A small
    reference of a heavy-tailed column leaves its range to the next sample's few largest values.

    Returns:
        None when nothing is past the range; else ``column``, ``rows``, ``share``, ``range``,
        ``farthest``, ``p_value``, ``verdict`` (``skew``, ``drift``, or ``sample``: no more than a
        sample of this size leaves) and ``because`` (the evidence in words).
    """
    ref, cur = _finite(reference), _finite(current)
    if len(ref) == 0 or len(cur) == 0:
        return None
    integer = pd.api.types.is_integer_dtype(reference)
    low, high = allowed_range(ref, integer=integer)
    outside = cur[(cur < low) | (cur > high)]
    if len(outside) == 0:
        return None
    farthest = float(outside[np.argmax(np.abs(outside - (low + high) / 2))])
    found: dict[str, Any] = {
        "column": str(reference.name),
        "rows": len(outside),
        "share": round(len(outside) / len(cur), 5),
        "range": [low, high],
        "farthest": farthest,
    }
    moved_whole = len(outside) >= max(_WHOLE_MIN_ROWS, _WHOLE_SHARE * len(cur))
    verdict, because = _judge_outside(ref, cur, outside, (low, high), rescaled=rescaled, moved_whole=moved_whole)
    above, below = int((outside > high).sum()), int((outside < low).sum())
    p_value = min(1.0, 2 * exceedance_p_value(len(ref), len(cur), max(above, below)))
    if verdict == "drift" and p_value >= SIGNIFICANCE / max(columns, 1):
        verdict = "sample"
        because = (
            f"{max(above, below)} of {len(cur)} values past one end of a {len(ref)}-row reference's range is what "
            f"a second sample of one world shows (p={p_value:.2g}): no evidence of a change"
        )
    return {**found, "p_value": p_value, "verdict": verdict, "because": because}


def exceedance_p_value(n_reference: int, n_current: int, k: int) -> float:
    """The chance that ``k`` or more of ``n_current`` values exceed the largest of ``n_reference``, from one world.

    Exchangeable rows: the ``k`` largest of all the rows are all current ones, C(m, k) / C(n + m, k).
    (Past the widened range is past the largest value too: the p-value is conservative.)
    """
    if k <= 0:
        return 1.0
    n, m = n_reference, n_current
    if k > m:
        return 0.0
    log_p = math.lgamma(m + 1) - math.lgamma(m - k + 1) - math.lgamma(n + m + 1) + math.lgamma(n + m - k + 1)
    return math.exp(log_p)


def _lone_point_mass(ref: np.ndarray, share: float, gap: float) -> bool:
    """Whether a point mass holding ``share`` of the current rows, ``gap`` past the range, is unlike the column.

    A column made of a few levels (years of schooling, a 1-7 scale) that moves into a new
    region reaches a new level the way it holds its others: one value with many rows, a
    step or two past the old maximum. A sentinel is either heavier than any value the
    reference holds, or farther past the range than the reference's whole span (999 on a
    column of 0-15).
    """
    span = float(ref.max() - ref.min())
    if gap >= span:
        return True
    _, counts = np.unique(ref, return_counts=True)
    return share > counts.max() / len(ref)


def _judge_outside(
    ref: np.ndarray,
    current: np.ndarray,
    outside: np.ndarray,
    bounds: tuple[float, float],
    *,
    rescaled: bool,
    moved_whole: bool,
) -> tuple[str, str]:
    if rescaled:
        return "skew", "the whole column is rescaled by one factor (units or currency)"
    if moved_whole:
        return "skew", (
            "every value lies past the reference's range, none inside it: the column moved whole, as a unit, "
            "format or encoding change moves it (a world that moves keeps some of its old region)"
        )
    values, counts = np.unique(outside, return_counts=True)
    top = int(np.argmax(counts))
    q1, q3 = sorted_quantiles(np.sort(ref), [0.25, 0.75])
    spread = float(q3 - q1) or float(np.std(ref)) or 1.0
    ref_low, ref_high = float(ref.min()), float(ref.max())
    value = float(values[top])
    gap = max(ref_low - value, value - ref_high, 0.0)
    # A reference holding one value has no spread to call another value far by (a flag that
    # never fired in the sample, then fires): only a sign it never had says sentinel.
    constant = ref_low == ref_high
    level = ""  # a point mass past the range that is like the column's own levels
    if counts[top] >= _SENTINEL_MIN_ROWS and counts[top] >= _SENTINEL_SHARE * len(outside):
        sign_flip = ref_low >= 0 > value
        far = gap >= spread and not constant
        if sign_flip or (far and _lone_point_mass(ref, counts[top] / len(current), gap)):
            why = "a sign the reference never has" if sign_flip else f"{gap / spread:.1f} interquartile ranges out"
            return "skew", f"{counts[top]} rows hold the single value {value:g}, {why}: a sentinel or default"
        if far:
            level = (
                f"{counts[top]} rows hold the single value {value:g}, no heavier than values the reference holds "
                "and nearer than its span: a new level of a column made of levels"
            )
    if (unit := partial_unit_change(ref, current, outside, *bounds)) is not None:
        return "skew", unit
    if constant:
        return "drift", (
            f"the reference holds the single value {ref_low:g}, so nothing measures how far a new value is; "
            "no sign it never had and no unit factor: a new region"
        )
    if level:
        return "drift", f"{level}; no unit factor: a new region"
    return "drift", "no point mass and no unit factor: the values continue the distribution (a new region)"


def spikes(reference: pd.Series, current: pd.Series, *, others: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """One value newly holding a share of rows in a column of many distinct values (a filled-in default),
    or a column the reference holds constant whose rows now hold another value (a changed constant).

    Not a default: the column's cap or floor gaining rows as the world moves towards it
    (:func:`_piling_at_edge`), and whole records repeated (``others``: the current table's
    numeric columns, row-aligned; this one is left out): a sample weighted towards a record repeats its
    value with every other, and the spike must stand on the rows that are not copies.
    """
    ref, cur = np.sort(_finite(reference)), np.sort(_finite(current))
    if len(ref) == 0 or len(cur) == 0:
        return None
    ref_values, ref_counts = sorted_counts(ref)
    if len(ref_values) == 1 and len(ref) >= _WHOLE_MIN_ROWS:
        return _constant_changed(str(reference.name), float(ref_values[0]), len(ref), cur)
    if len(ref_values) < _SPIKE_MIN_DISTINCT:
        return None
    values, counts = sorted_counts(cur)
    top = int(np.argmax(counts))
    if counts[top] < _SPIKE_MIN_ROWS:
        return None  # a value seen once or twice is any value of a continuous column, not a filled-in default
    share = counts[top] / len(cur)
    lumpy = ref_counts.max() > max(_SPIKE_REF_MAX_SHARE * len(ref), _SPIKE_MIN_ROWS)
    if lumpy and share < _SPIKE_MIN_RATIO * ref_counts.max() / len(ref):
        # A reference with values of its own that hold many rows (years rounded to 0.1): only a
        # value towering over every one of them is a spike (0 on 30% of rows, where none held 1.4%).
        return None
    position = np.searchsorted(ref_values, values[top])
    seen = int(ref_counts[position]) if position < len(ref_values) and ref_values[position] == values[top] else 0
    ref_share = max(seen, 1) / len(ref)
    p_value = _spike_p_value(int(counts[top]), len(cur), ref_share)
    if p_value is None:
        return None
    if seen and values[top] in (ref_values[0], ref_values[-1]) and _piling_at_edge(ref, cur, float(values[top])):
        return None  # a cap the world moved towards: drift, which the drift tests judge
    if others is not None:
        # Copies of one whole record are that record's value: the spike must stand without them.
        others = others.drop(columns=[current.name], errors="ignore")  # only the others: here, not per column
        copies = _copies(others, current.to_numpy(dtype=float, na_value=np.nan) == values[top])
        if copies and _spike_p_value(int(counts[top]) - copies, len(cur), ref_share) is None:
            return None
    return {
        "column": str(reference.name),
        "value": float(values[top]),
        "share": round(float(share), 5),
        "reference_share": round(seen / len(ref), 5),
        "p_value": p_value,
    }


def _spike_p_value(rows: int, n_current: int, ref_share: float) -> float | None:
    """The binomial p-value of ``rows`` holding one value, or None unless they make a spike: at least
    :data:`_SPIKE_MIN_ROWS`, 1% of rows and 10 times the reference's share, at p < :data:`SIGNIFICANCE`."""
    share = rows / n_current
    if rows < _SPIKE_MIN_ROWS or share < _SPIKE_MIN_SHARE or share < _SPIKE_MIN_RATIO * ref_share:
        return None
    p_value = float(binomial_tail(rows, n_current, ref_share))
    return p_value if p_value < SIGNIFICANCE else None


def _copies(others: pd.DataFrame, rows: np.ndarray) -> int:
    """How many of ``rows`` repeat another of them whole: alike in every column of ``others``, two or
    more of which vary across the table (constant columns say nothing). 0 for no such columns."""
    varying = [c for c in others.columns if others[c].nunique() > 1]
    if len(varying) < 2:
        return 0
    held = pd.DataFrame(others[varying].to_numpy(dtype=float, na_value=np.nan)[rows])
    return int(len(held) - len(held.drop_duplicates()))


def _piling_at_edge(ref: np.ndarray, cur: np.ndarray, edge: float) -> bool:
    """Whether a column's cap or floor gains rows because the world moved towards it.

    A column recorded with a cap (house values at 500,001, incomes at 15.0001, ages at 90)
    holds the cap at the edge of its range already in the reference; when the population
    moves towards the cap, the cap gains rows *and* the other values move towards it too. A default filled in upstream gains rows while the others stay as they
    were: the rows not at the edge must differ significantly (K-S, p below
    :data:`SIGNIFICANCE`), and in the direction of the edge.
    """
    rest_ref, rest_cur = ref[ref != edge], cur[cur != edge]
    if min(len(rest_ref), len(rest_cur)) < _POPULATION_MIN_ROWS:
        return False
    towards = (float(np.median(rest_cur)) - float(np.median(rest_ref))) * (edge - float(np.median(rest_ref)))
    return towards > 0 and ks_p_value(rest_ref, rest_cur) < SIGNIFICANCE


def _constant_changed(column: str, constant: float, n_reference: int, cur: np.ndarray) -> dict[str, Any] | None:
    """A reference column of one value whose rows, all but a few, now hold others: a constant
    changed upstream (a default, a version, a flag), as a column moved whole. A flag that never
    fired in the sample and now fires on some rows is a new region instead (:func:`beyond_range`).
    The p-value: that many other values from a world where the reference's ``n`` rows saw none
    (a rate of at most ``1 / n``, as for unseen categories)."""
    changed = cur[cur != constant]
    if len(changed) < max(_WHOLE_MIN_ROWS, _WHOLE_SHARE * len(cur)):
        return None
    p_value = float(binomial_tail(len(changed), len(cur), 1.0 / n_reference))
    if p_value >= SIGNIFICANCE:
        return None
    values, counts = np.unique(changed, return_counts=True)
    top = int(np.argmax(counts))
    return {
        "column": column,
        "value": float(values[top]),
        "share": round(float(counts[top] / len(cur)), 5),
        "reference_share": 0.0,
        "p_value": p_value,
        "because": (
            f"the reference holds the single value {constant:g} on every row; now "
            + (f"{values[top]:g}" if len(values) == 1 else f"other values (most often {values[top]:g})")
            + f" on {len(changed) / len(cur):.1%} of rows: a constant changed upstream (a default, a version or a flag)"
        ),
    }


# A column rounded upstream: the coarsest of these grids that holds 99% of the current non-zero
# values holds at most half of the reference's (at least 50 non-zero values each). A grid is
# ruled out on the first _ROUNDED_HEAD_ROWS current values when they alone hold more values off
# it than the share allows off it in all.
_GRIDS = (100.0, 10.0, 1.0, 0.5, 0.1, 0.05, 0.01, 0.001)
_ROUNDED_SHARE = 0.99
_ROUNDED_REFERENCE_SHARE = 0.5
_ROUNDED_MIN_ROWS = 50
_ROUNDED_HEAD_ROWS = 1_000


def rounded(reference: pd.Series, current: pd.Series) -> dict[str, Any] | None:
    """Values rounded to a coarser grid upstream than the reference's: skew.

    A discount of 0.05-0.35 now written 0, 0.1, 0.2 or 0.3; amounts to the cent now whole:
    a writer that truncates or rounds, where the world does not move every value onto a
    grid. Among the non-zero values, the coarsest grid (100 down to 0.001) holding 99% of the
    current ones must hold at most half of the reference's. Returns ``column``, ``grid``,
    ``share``, ``reference_share`` and ``because``, or None.
    """
    ref, cur = _finite(reference), _finite(current)
    ref, cur = ref[ref != 0], cur[cur != 0]
    if len(ref) < _ROUNDED_MIN_ROWS or len(cur) < _ROUNDED_MIN_ROWS:
        return None

    def on_grid(values: np.ndarray, grid: float) -> float:
        steps = values / grid
        # Off the grid by no more than a float's rounding (1e-12 of the value) and a little.
        return float(np.mean(np.abs(steps - np.round(steps)) <= 1e-6 + 1e-12 * np.abs(steps)))

    def too_few(grid: float) -> bool:
        # More current values off the grid among the first rows than the whole may hold off it:
        # below the share for certain, without a pass over every row (a coarse grid, most often).
        head = cur[:_ROUNDED_HEAD_ROWS]
        return len(cur) > len(head) and (1 - on_grid(head, grid)) * len(head) > (1 - _ROUNDED_SHARE) * len(cur) + 1

    # The grids nest (a multiple of 0.5 is one of 0.1, of 0.05...): values off the finest are
    # off every one, and most columns stop at this one pass.
    if on_grid(cur, _GRIDS[-1]) < _ROUNDED_SHARE:
        return None
    for grid in _GRIDS:
        if too_few(grid):
            continue
        share = on_grid(cur, grid)
        if share < _ROUNDED_SHARE:
            continue
        reference_share = on_grid(ref, grid)
        if reference_share > _ROUNDED_REFERENCE_SHARE:
            return None  # the reference keeps that grid too
        because = (
            f"{share:.0%} of its non-zero values are multiples of {grid:g} now, {reference_share:.0%} in the "
            "reference: rounded or truncated upstream"
        )
        return {
            "column": str(reference.name),
            "grid": grid,
            "share": round(share, 4),
            "reference_share": round(reference_share, 4),
            "because": because,
        }
    return None


def data_checks(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    rescaled: Sequence[str] = (),
    declared: dict[str, list[str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every rule above over the columns both tables share: the evidence behind skew verdicts.

    ``declared``: categories declared for a column (a pandas categorical dtype) that the
    frames no longer carry.
    """
    declared = declared or {}
    numbers = columns_of(current, [c for c in numeric if c in current.columns])
    unknown = [
        u
        for c in categorical
        if (
            u := unknown_values(
                reference[c],
                current[c],
                declared.get(c, ()),
                others=columns_of(numbers, [n for n in numbers.columns if n != c]),
            )
        )
        is not None
    ]
    ranges = [
        r
        for c in numeric
        if (r := beyond_range(reference[c], current[c], rescaled=c in rescaled, columns=len(numeric))) is not None
    ]
    found_spikes = [
        s for c in numeric if c not in rescaled and (s := spikes(reference[c], current[c], others=numbers)) is not None
    ]
    columns = [c for c in reference.columns if c in current.columns]
    return {
        "unknown_values": unknown,
        "null_changes": null_changes(reference, current, columns, by=categorical),
        "beyond_range": ranges,
        "spikes": found_spikes,
        "rounded": [r for c in numeric if c not in rescaled and (r := rounded(reference[c], current[c])) is not None],
    }
