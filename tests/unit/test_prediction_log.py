"""The prediction log partitions by model and hour and reads windows back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from firebreak.prediction_log import LabelStore, PredictionLog


def rows(start: datetime, n: int, model: str = "pricing") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "ts": [start + timedelta(minutes=30 * i) for i in range(n)],
            "model": model,
            "model_version": "1",
            "route": "champion",
            "confidence": 0.9,
        }
    )


def test_window_reads_exactly_the_rows_after_the_cutoff(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    files = log.append(pd.concat([rows(start, 10), rows(start, 3, model="other")]))
    assert len({f.parent for f in files}) == 5 + 2  # hour partitions per model
    window = log.read_window("pricing", 2, now=start + timedelta(hours=4, minutes=10))
    assert list(window["request_id"]) == ["r5", "r6", "r7", "r8"]  # 02:30 .. 04:00 in [02:10, 04:10)
    assert set(log.read("other")["model"]) == {"other"}
    # A window that ended in the past holds nothing logged after its end.
    earlier = log.read_window("pricing", 1, now=start + timedelta(hours=2))
    assert list(earlier["request_id"]) == ["r2", "r3"]


def test_missing_required_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lack required columns \['route'\]"):
        PredictionLog(tmp_path).append(rows(datetime.now(UTC), 2).drop(columns=["route"]))


def test_labels_join_on_request_id_and_last_label_wins(tmp_path: Path) -> None:
    labels = LabelStore(tmp_path)
    labels.append("pricing", pd.DataFrame({"request_id": ["r1", "r2"], "price": [1.0, 2.0]}))
    labels.append("pricing", pd.DataFrame({"request_id": ["r2"], "price": [3.0]}))
    joined = labels.join("pricing", rows(datetime.now(UTC), 4), "price")
    assert dict(zip(joined["request_id"], joined["price"], strict=True)) == {"r1": 1.0, "r2": 3.0}
