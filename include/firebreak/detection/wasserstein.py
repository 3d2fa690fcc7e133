"""The normed Wasserstein-1 distance of Evidently's drift test, from counts on a grid instead of a sort.

SOP stage: detection. :mod:`firebreak.detection.stats` uses it for a numerical column of more
than 1,000 reference rows, and :mod:`firebreak.detection.streaming` adds the current sample's
counts up batch by batch and gets the very same figure from :func:`grid_estimate`.

Mirrors Evidently 0.7.23's ``evidently/legacy/calculations/stattests/wasserstein_distance_norm.py``:
``scipy.stats.wasserstein_distance(reference, current) / max(np.std(reference), 0.001)``.
"""

from __future__ import annotations

import math
import threading

import numpy as np

MIN_NORM = 0.001  # wasserstein_distance_norm.py: max(np.std(reference), 0.001)

# The grid is chosen so the score is within MAX_ERROR of the exact normed distance (1% of the
# 0.1 threshold, below Evidently's 3-decimal display); wider data falls back to the exact sort.
MAX_ERROR = 1e-3
MAX_GRID_CELLS = 1 << 22
_MIN_GRID_CELLS = 1 << 16
_SAFE_EXPONENT = 500  # |values| within 2**-500 .. 2**500: the grid's arithmetic cannot overflow
_CHUNK_ROWS = 1 << 22  # rows binned at once: bounds the index temporaries to ~64 MB at 10M+ rows

# Two rows of cell edges kept per thread for grids up to this size (2 MiB): the estimate's
# working arrays. Fresh arrays of this size are each mapped and faulted in by the allocator,
# which cost four times the arithmetic on a 65,536-cell grid; larger grids (wide or
# long-tailed columns) allocate their own.
_KEPT_EDGES = (1 << 17) + 1
_kept = threading.local()


def norm(reference: np.ndarray) -> float:
    """The reference's population std (ddof=0, as Evidently's ``np.std(series)``), floored at :data:`MIN_NORM`."""
    return max(float(np.std(reference)), MIN_NORM)


def normed_distance(reference: np.ndarray, current: np.ndarray, threshold: float) -> float:
    """Wasserstein-1 distance divided by the reference std, as Evidently's ``wasserstein_distance_norm.py``.

    Computed on a grid (:func:`grid_wasserstein`) and recomputed exactly with scipy when the
    grid's error bound exceeds :data:`MAX_ERROR` or could put the score on the other side of
    ``threshold``.

    Args:
        reference: Finite reference values.
        current: Finite current values.
        threshold: The drift threshold the score is compared with.

    Returns:
        The normed distance.
    """
    low = min(float(reference.min()), float(current.min()))
    high = max(float(reference.max()), float(current.max()))
    exponent = math.frexp(max(abs(low), abs(high)))[1]
    if -_SAFE_EXPONENT < exponent < _SAFE_EXPONENT:
        scale = norm(reference)
    else:
        # Values near the float limits (1e308, denormals): their span or the grid's scale
        # overflows. The normed distance is the same on the values times a power of two (exact
        # in binary floating point), with the std floor scaled alike; for values under 2**-500
        # the floor (0.001) is the norm and the distance is 0 to within 2**-490.
        reference, current = np.ldexp(reference, -exponent), np.ldexp(current, -exponent)
        low, high = math.ldexp(low, -exponent), math.ldexp(high, -exponent)
        floor = math.ldexp(MIN_NORM, -exponent) if exponent > 0 else math.inf
        scale = max(float(np.std(reference)), floor)
    width = high - low
    cells = grid_cells(width, scale)
    estimate, bound = grid_wasserstein(reference, current, low, width, cells)
    score, error = estimate / scale, bound / scale
    ambiguous = abs(score - threshold) <= error
    if ambiguous or not error <= MAX_ERROR:
        # Exact but sorts both samples (~1 s per million rows): rare by construction.
        from scipy import stats

        return float(stats.wasserstein_distance(reference, current)) / scale
    return score


def grid_cells(width: float, scale: float) -> int:
    """Grid cells for a normed distance within :data:`MAX_ERROR` (capped at :data:`MAX_GRID_CELLS`).

    The bound is at most 2 * width / cells: the power of two that keeps it under the limit.
    """
    wanted = 2 * width / (scale * MAX_ERROR)
    if not wanted <= MAX_GRID_CELLS:  # also catches inf/NaN from extreme values
        return MAX_GRID_CELLS
    return max(1 << math.ceil(math.log2(max(wanted, 1.0))), _MIN_GRID_CELLS)


def grid_wasserstein(
    reference: np.ndarray, current: np.ndarray, low: float, width: float, cells: int
) -> tuple[float, float]:
    """Wasserstein-1 distance from both samples' histograms on one uniform grid.

    W1 is the integral of ``|F_ref(x) - F_cur(x)|``. Each sample is counted
    into ``cells`` equal cells over ``[low, low + width]`` (an O(n) pass, no
    sort), each CDF is taken as linear inside a cell, and the integral of the
    piecewise-linear difference is exact per cell. Error bound: inside cell
    ``i`` the true difference departs from the linear one by at most
    ``max(p_ref_i, p_cur_i)`` (the cell's mass in either sample), so
    ``|estimate - W1| <= cell_width * sum_i max(p_ref_i, p_cur_i) <= 2 * cell_width``.
    Rounding can put a value that lies on a cell edge into the neighbouring
    cell; that moves it by far less than a cell and is covered by the bound.

    Args:
        reference: Finite reference values.
        current: Finite current values.
        low: Smallest value of both samples.
        width: Largest minus smallest value (> 0).
        cells: Number of grid cells.

    Returns:
        The estimate and its error bound (both unnormalised).
    """
    ref_counts = grid_counts(reference, low, width, cells)
    cur_counts = grid_counts(current, low, width, cells)
    return grid_estimate(ref_counts, cur_counts, width / cells)


def grid_estimate(ref_counts: np.ndarray, cur_counts: np.ndarray, cell_width: float) -> tuple[float, float]:
    """The Wasserstein-1 estimate and its bound from both samples' counts on one grid (see :func:`grid_wasserstein`).

    With ``gap`` the difference of the two CDFs at the cell edges (0 at both ends), a cell
    from ``a`` to ``b`` integrates ``|.|`` to ``(|a| + |b|) / 2`` when the line keeps its sign
    and to ``(a^2 + b^2) / (2 (|a| + |b|))`` when it crosses zero. The first form summed over
    every cell is the sum of ``|gap|``; the few crossing cells are then corrected. The bound's
    ``sum_i max(p_ref_i, p_cur_i)`` is ``1 + sum_i |p_ref_i - p_cur_i| / 2``, and those mass
    differences are the steps of ``gap``. Two arrays of cell edges in all, kept per thread.
    """
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    cells = len(ref_counts)
    gap, work = _edge_rows(cells + 1)
    gap[0] = 0.0
    # Summed as integers (exact, and several times faster than a running float sum), then scaled.
    np.multiply(np.cumsum(ref_counts), 1.0 / n_ref, out=gap[1:])
    np.multiply(np.cumsum(cur_counts), 1.0 / n_cur, out=work[1:])
    gap[1:] -= work[1:]
    left, right = gap[:-1], gap[1:]

    steps = np.subtract(right, left, out=work[:cells])
    bound = (1.0 + 0.5 * float(np.abs(steps, out=steps).sum())) * cell_width

    total = float(np.abs(gap, out=work).sum()) - 0.5 * float(work[0] + work[-1])
    crossing = np.flatnonzero(np.multiply(left, right, out=work[:cells]) < 0)
    if len(crossing):
        a, b = left[crossing], right[crossing]
        both = np.abs(a) + np.abs(b)
        total -= float((both / 2 - (a * a + b * b) / (2 * both)).sum())
    return total * cell_width, bound


def _edge_rows(size: int) -> np.ndarray:
    """Two float rows of ``size`` cells to write into: this thread's kept pair, or a new one if larger."""
    if size > _KEPT_EDGES:
        return np.empty((2, size))
    rows = getattr(_kept, "rows", None)
    if rows is None:
        rows = _kept.rows = np.empty((2, _KEPT_EDGES))
    return rows[:, :size]


def grid_counts(values: np.ndarray, low: float, width: float, cells: int) -> np.ndarray:
    """Count values into ``cells`` equal cells over ``[low, low + width]``, in chunks.

    Args:
        values: Finite values within the range.
        low: Left edge of the grid.
        width: Width of the grid (> 0).
        cells: Number of cells.

    Returns:
        Count per cell.
    """
    scale = cells / width
    if len(values) <= _CHUNK_ROWS:
        return np.bincount(_cells_of(values, low, scale, cells), minlength=cells)
    counts = np.zeros(cells, dtype=np.int64)
    for start in range(0, len(values), _CHUNK_ROWS):
        counts += np.bincount(_cells_of(values[start : start + _CHUNK_ROWS], low, scale, cells), minlength=cells)
    return counts


def _cells_of(values: np.ndarray, low: float, scale: float, cells: int) -> np.ndarray:
    """Each value's cell on the grid from ``low``, ``scale`` cells per unit."""
    shifted = values - low
    shifted *= scale
    index = shifted.astype(np.intp)
    np.minimum(index, cells - 1, out=index)  # the maximum lands on the last edge
    return index
