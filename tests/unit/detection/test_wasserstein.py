"""Tests for firebreak.detection.wasserstein: the grid's estimate against scipy's exact distance."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import stats as scipy_stats

from firebreak.detection import wasserstein


def _draw(kind: str, rng: np.random.Generator, shift: float) -> np.ndarray:
    return {
        "normal": lambda: rng.normal(shift, 1, 30_000),
        "lognormal": lambda: rng.lognormal(shift, 1, 30_000),
        "integers": lambda: rng.poisson(5 + 3 * shift, 30_000).astype(float),
        "outliers": lambda: np.concatenate([rng.normal(shift, 1, 29_990), rng.normal(0, 1e3, 10)]),
        "crossing": lambda: rng.normal(0, 1 + shift * 3, 30_000),  # wider, same centre: the CDFs cross
    }[kind]()


@pytest.mark.parametrize("cells", [64, 4096, 1 << 16, (1 << 18) + 8])
@pytest.mark.parametrize("kind", ["normal", "lognormal", "integers", "outliers", "crossing"])
def test_grid_wasserstein_stays_within_its_bound(cells: int, kind: str) -> None:
    rng = np.random.default_rng(14)
    reference, current = _draw(kind, rng, 0.0), _draw(kind, rng, 0.2)
    low = min(reference.min(), current.min())
    width = max(reference.max(), current.max()) - low

    estimate, bound = wasserstein.grid_wasserstein(reference, current, low, width, cells)

    exact = scipy_stats.wasserstein_distance(reference, current)
    assert abs(estimate - exact) <= bound
    assert bound <= 2 * width / cells


def test_the_estimate_is_the_integral_of_the_linear_cdf_gap() -> None:
    # The per-cell integral written out directly, on counts whose CDFs cross many times.
    rng = np.random.default_rng(3)
    ref_counts = rng.poisson(3, 5000)
    cur_counts = rng.poisson(3, 5000)
    gap = np.concatenate(([0.0], np.cumsum(ref_counts) / ref_counts.sum() - np.cumsum(cur_counts) / cur_counts.sum()))
    left, right = gap[:-1], gap[1:]
    both = np.abs(left) + np.abs(right)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_cell = np.where(left * right >= 0, both / 2, (left**2 + right**2) / (2 * both))
    masses = np.maximum(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())

    estimate, bound = wasserstein.grid_estimate(ref_counts, cur_counts, 0.5)

    assert np.sum(left * right < 0) > 50
    assert estimate == pytest.approx(per_cell.sum() * 0.5, rel=1e-12)
    assert bound == pytest.approx(masses.sum() * 0.5, rel=1e-12)


def test_threads_get_their_own_working_arrays() -> None:
    rng = np.random.default_rng(5)
    pairs = [(rng.poisson(4, 1 << 16), rng.poisson(4 + k % 3, 1 << 16)) for k in range(24)]
    alone = [wasserstein.grid_estimate(ref, cur, 1.0) for ref, cur in pairs]

    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda pair: wasserstein.grid_estimate(pair[0], pair[1], 1.0), pairs))

    assert together == alone
    assert len(set(alone)) > 1


def test_counts_cover_every_value_and_put_the_maximum_in_the_last_cell() -> None:
    values = np.array([0.0, 0.25, 0.5, 0.999, 1.0])

    counts = wasserstein.grid_counts(values, 0.0, 1.0, 4)

    assert counts.tolist() == [1, 1, 1, 2]
    assert wasserstein.grid_counts(np.array([]), 0.0, 1.0, 4).tolist() == [0, 0, 0, 0]
