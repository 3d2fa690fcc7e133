"""Multivariate drift: a broken relation no column shows alone is caught; unchanged tables are quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from firebreak.detection.multivariate import MAX_ROWS, reconstruction_drift
from firebreak.detection.stats import compute_drift

NUMERIC = ["a", "b", "c", "d", "e", "f"]


def world(rng: np.random.Generator, n: int, *, correlation: float) -> pd.DataFrame:
    shared = rng.normal(size=n)
    a = shared
    b = correlation * shared + np.sqrt(1 - correlation**2) * rng.normal(size=n)  # same N(0, 1) margin
    return pd.DataFrame(
        {
            "a": np.exp(a).round(3),  # a heavy-tailed column: the copula scores do not care
            "b": b.round(3),
            "c": rng.gamma(3, 2, n).round(3),
            "d": rng.normal(5, 2, n).round(3),
            "e": rng.uniform(0, 10, n).round(3),
            "f": rng.poisson(4, n).astype("int64"),
            "g": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_correlation_only_drift_is_caught_in_90_percent_of_seeds_and_no_column_shows_it() -> None:
    caught, columns_drifted = 0, 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        reference = world(rng, 3000, correlation=0.8)
        current = world(rng, 3000, correlation=0.0)
        found = reconstruction_drift(reference, current, numeric=NUMERIC, categorical=["g"])
        assert found is not None
        caught += found["drifted"]
        verdicts = compute_drift(reference, current, columns=[*NUMERIC, "g"], categorical=["g"])
        columns_drifted += bool(verdicts.drifted_columns)
    assert caught >= 27
    assert columns_drifted <= 3  # the per-column tests see (almost) nothing: the margins did not move


def test_unchanged_tables_raise_at_most_2_percent_false_alarms() -> None:
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(500 + seed)
        found = reconstruction_drift(
            world(rng, 3000, correlation=0.8), world(rng, 3000, correlation=0.8), numeric=NUMERIC, categorical=["g"]
        )
        assert found is not None
        alarms += found["drifted"]
    assert alarms <= 2


def test_big_tables_are_compared_on_a_bounded_seeded_sample_that_still_sees_a_broken_relation() -> None:
    rng = np.random.default_rng(7)
    reference, same, broken = (world(rng, 40_000, correlation=c) for c in (0.8, 0.8, 0.4))
    found = reconstruction_drift(reference, broken, numeric=NUMERIC, categorical=["g"])
    assert found is not None and found["drifted"]
    assert found["rows"] == [2 * MAX_ROWS, MAX_ROWS]
    assert found == reconstruction_drift(reference, broken, numeric=NUMERIC, categorical=["g"])  # seeded
    quiet = reconstruction_drift(reference, same, numeric=NUMERIC, categorical=["g"])
    assert quiet is not None and not quiet["drifted"]
    small = reconstruction_drift(reference.head(3000), same.head(2000), numeric=NUMERIC, categorical=["g"])
    assert small is not None and small["rows"] == [3000, 2000]
