"""Unit changes: a column's values multiplied by one factor, on every row or on part of them.

SOP stage: investigate (triage). A writer that switched from kilograms to pounds, or one
source of several that now sends cents, changes numbers the world did not. Two forms are
told apart from the world's own moves here:

* **A whole column, by a conversion under 5.** The scale rule
  (:func:`firebreak.investigation.evidence.scale_changes`) asks a factor of at least 5,
  since the world moves multiplicatively too (stock levels x1.7). Under it only the exact
  factor of a conversion tables are written in counts (:data:`CONVERSIONS`, within
  :data:`CONVERSION_TOLERANCE`), and only when the current values divided by it match the
  reference's (K-S) while as they are, and divided by a factor 5% away, they do not: the
  data must pin the factor to the conversion's.
* **A share of the rows, by a power of ten.** The values past the range, divided by the
  factor, fall inside it and match the reference (when the factor carries nearly every row
  it touches past the range); or, for x100 and x1000 (cents, thousandths) on a heavy-tailed
  column where the rescaled rows spread across the range's top as well, the rows past the
  range match the reference's rows the factor would carry there, and the current values as
  a whole match the mixture of the reference and its rescaled copy, in the share the rows
  past the range imply (K-S tests, the second against the mixture's distribution). A world
  that moves shifts the body of the distribution too, or puts new values where no rescaled
  copy would.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = ["CONVERSIONS", "CONVERSION_TOLERANCE", "PINNED", "conversion_change", "partial_unit_change"]

# current / reference: the factor a column's values are multiplied by when its unit changes.
CONVERSIONS = {
    2.20462: "kilograms to pounds",
    0.453592: "pounds to kilograms",
    2.54: "inches to centimetres",
    0.393701: "centimetres to inches",
    3.28084: "metres to feet",
    0.3048: "feet to metres",
    1.60934: "miles to kilometres",
    0.621371: "kilometres to miles",
    3.78541: "US gallons to litres",
    0.264172: "litres to US gallons",
}
CONVERSION_TOLERANCE = 0.02
PINNED = 0.05
_DIFFER_P = 1e-3
_POWERS_OF_TEN = (10.0, 100.0, 1000.0, 0.1, 0.01, 0.001)
_INSIDE_SHARE = 0.9  # of the rescaled rows past the range, back inside it
_MATCH_P = 0.01
_MIN_ROWS = 20
# The mixture is judged for cents and thousandths only: a new segment of values about ten
# times the others' (richer customers, bigger claims) is a world that moved, and a lognormal
# column cannot tell x7 from x10.
_MIXED_FACTORS = (100.0, 1000.0, 0.01, 0.001)
# The mixture is read from the share of rows past the range: the factor must carry most of
# the reference's values past it, or that share says little about how many rows it touched.
_MIN_CARRIED = 0.5


def conversion_change(ref: np.ndarray, cur: np.ndarray, factor: float) -> tuple[float, str] | None:
    """A whole column converted between units by a factor under 5: the exact factor and the evidence, or None.

    ``factor`` is the estimate from the quantiles (current / reference), ``ref`` and ``cur``
    the two tables' magnitudes. It must be within :data:`CONVERSION_TOLERANCE` of a
    conversion's factor; the values as they are must differ (K-S p < 0.001), divided by the
    exact factor match (p >= 0.01), and divided by a factor :data:`PINNED` away from it
    either way differ again (p < 0.001): the data pins the factor to the conversion's. A
    heavy-tailed column cannot tell x1.5 from x1.61, and a world that grew by about that
    much is drift, not a change of unit.
    """
    from firebreak.detection.stats import ks_p_value

    known = [(exact, name) for exact, name in CONVERSIONS.items() if abs(factor / exact - 1) <= CONVERSION_TOLERANCE]
    if not known or ks_p_value(ref, cur) >= _DIFFER_P:
        return None
    exact, name = known[0]
    if (matched := ks_p_value(ref, cur / exact)) < _MATCH_P:
        return None
    if max(ks_p_value(ref, cur / (exact * (1 + PINNED))), ks_p_value(ref, cur / (exact / (1 + PINNED)))) >= _DIFFER_P:
        return None
    return (
        exact,
        f"{name}: divided by {exact:g} the values match the reference's (K-S p={matched:.2g}), and by 5% more or less they do not",
    )


def partial_unit_change(ref: np.ndarray, cur: np.ndarray, outside: np.ndarray, low: float, high: float) -> str | None:
    """Why the values past ``[low, high]`` are a unit change on part of the rows, or None.

    ``ref`` and ``cur`` are the finite values of the two tables, ``outside`` the current
    values past the range (see the module docstring).
    """
    from firebreak.detection.stats import ks_p_value

    if len(outside) < _MIN_ROWS:
        return None
    ref_low, ref_high = float(ref.min()), float(ref.max())
    for factor in _POWERS_OF_TEN:
        scaled = outside / factor
        inside = (scaled >= ref_low) & (scaled <= ref_high)
        if inside.mean() >= _INSIDE_SHARE and ks_p_value(scaled, ref) >= _MATCH_P:
            return (
                f"divided by {factor:g} they match the reference's own distribution: a unit change on part of the rows"
            )
    ordered, values = np.sort(ref), cur
    past = len(outside) / len(cur)
    for factor in _MIXED_FACTORS:
        moved = (ordered * factor < low) | (ordered * factor > high)
        carried = float(np.mean(moved))
        if carried < _MIN_CARRIED or past > carried:
            continue
        share = past / carried
        # The rows past the range are the rescaled copy's rows it carries there (their
        # distribution, divided back), and the whole column is the mixture.
        if ks_p_value(outside / factor, ordered[moved]) < _MATCH_P:
            continue
        p_value = _mixture_p_value(ordered, values, factor, share)
        if p_value >= _MATCH_P:
            return (
                f"{share:.0%} of the rows multiplied by {factor:g} and the rest as they were match the current "
                f"values (K-S p={p_value:.2g}): a unit change on part of the rows"
            )
    return None


def _mixture_p_value(ordered: np.ndarray, values: np.ndarray, factor: float, share: float) -> float:
    """K-S p-value of ``values`` against ``(1 - share) F(x) + share F(x / factor)``, F the
    empirical distribution of ``ordered`` (the sorted reference): the asymptotic Kolmogorov
    distribution at the two samples' effective size, since F is itself a sample."""

    def mixture(x: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        below = np.searchsorted(ordered, x, side=side) / len(ordered)
        rescaled = np.searchsorted(ordered, x / factor, side=side) / len(ordered)
        return (1 - share) * below + share * rescaled

    n = len(values)
    distinct, counts = np.unique(values, return_counts=True)
    after = np.cumsum(counts) / n
    # The empirical CDF jumps at each distinct value: compare its value after the jump with
    # the mixture at the value, and before the jump with the mixture just below it.
    statistic = max(
        float(np.max(np.abs(after - mixture(distinct, "right")))),
        float(np.max(np.abs(after - counts / n - mixture(distinct, "left")))),
    )
    effective = n * len(ordered) / (n + len(ordered))
    return _kolmogorov_sf(statistic * math.sqrt(effective))


def _kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 sum (-1)^(k-1) exp(-2 k^2 x^2)."""
    if x < 0.2:
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2 * total))
