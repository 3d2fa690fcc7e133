"""Streamed drift verdicts equal the in-memory engine's on the same rows, whatever the batching."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from firebreak.detection.drift import DriftInputError
from firebreak.detection.stats import compute_drift
from firebreak.detection.streaming import stream_drift

COLUMNS = ["normal", "lognormal", "integers", "few", "flag", "channel", "units"]
CATEGORICAL = ["channel"]


def world(seed: int, n: int, *, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "normal": rng.normal(10 + shift, 2, n),
            "lognormal": rng.lognormal(1 + shift / 4, 0.8, n),
            "integers": rng.poisson(20 + 10 * shift, n).astype(float),
            "few": rng.choice([1.0, 2.0, 3.0], n, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5]),
            "flag": rng.choice([0.0, 1.0], n),
            "channel": rng.choice(["web", "store", "phone"], n, p=[0.5, 0.3, 0.2] if shift < 0.5 else [0.2, 0.3, 0.5]),
            "units": rng.gamma(2, 50 * (1 + shift), n),
        }
    )
    frame.loc[rng.choice(n, n // 50, replace=False), "normal"] = np.nan  # 2% nulls, dropped by both
    frame.loc[rng.choice(n, 3, replace=False), "units"] = np.inf
    return frame


def batched(frame: pd.DataFrame, seed: int) -> Iterator[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = 0
    while start < len(frame):
        size = int(rng.integers(1, max(2, len(frame) // 3)))
        chunk = frame.iloc[start : start + size].copy()
        chunk["channel"] = chunk["channel"].astype("category")  # as the log's batches give text
        yield chunk
        start += size


@pytest.mark.parametrize(
    ("reference_rows", "current_rows", "shift"),
    [(5000, 20000, 0.0), (5000, 30000, 0.3), (800, 15000, 0.2), (800, 600, 0.0), (3000, 4000, 1.0)],
)
def test_streamed_verdicts_and_scores_equal_compute_drift(reference_rows: int, current_rows: int, shift: float) -> None:
    reference = world(1, reference_rows, shift=0.0)
    current = world(2, current_rows, shift=shift)
    whole = compute_drift(reference, current, columns=COLUMNS, categorical=CATEGORICAL)
    streamed = stream_drift(
        reference, lambda: batched(current, 3), columns=COLUMNS, categorical=CATEGORICAL, sample_rows=1000
    )
    expected = {c.column: (c.method, c.drifted, round(c.score, 9)) for c in whole.columns}
    assert {c.column: (c.method, c.drifted, round(c.score, 9)) for c in streamed.result.columns} == expected
    assert streamed.result.dataset_drift == whole.dataset_drift
    assert streamed.result.current_rows == current_rows
    assert len(streamed.sample) == min(1000, current_rows)
    assert streamed.approximate == []


def test_the_k_s_confirmation_equals_scipy_on_every_row() -> None:
    from scipy import stats

    reference, current = world(1, 4000, shift=0.0), world(2, 25000, shift=0.1)
    streamed = stream_drift(reference, lambda: batched(current, 4), columns=COLUMNS, categorical=CATEGORICAL)
    for column in ("normal", "lognormal", "units"):
        ref = reference[column].to_numpy()
        cur = current[column].to_numpy()
        exact = stats.ks_2samp(ref[np.isfinite(ref)], cur[np.isfinite(cur)]).pvalue
        assert streamed.ks_p_values[column] == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_an_empty_window_is_refused_as_compute_drift_refuses_it() -> None:
    with pytest.raises(DriftInputError, match="current frame is empty"):
        stream_drift(world(1, 100, shift=0), lambda: iter([]), columns=COLUMNS, categorical=CATEGORICAL)


def test_a_part_written_before_a_column_existed_counts_as_nulls_there_as_a_whole_read_does() -> None:
    reference, current = world(1, 3000, shift=0.0), world(2, 6000, shift=0.2)
    older, newer = current.iloc[:2000].drop(columns=["units"]), current.iloc[2000:]
    whole = compute_drift(reference, pd.concat([older, newer]), columns=COLUMNS, categorical=CATEGORICAL)
    streamed = stream_drift(reference, lambda: iter([older, newer]), columns=COLUMNS, categorical=CATEGORICAL)
    assert {c.column: (c.drifted, round(c.score, 9)) for c in streamed.result.columns} == {
        c.column: (c.drifted, round(c.score, 9)) for c in whole.columns
    }
    with pytest.raises(DriftInputError, match=r"columns \['units'\] are missing from the current frame"):
        stream_drift(reference, lambda: iter([older]), columns=COLUMNS, categorical=CATEGORICAL)
