"""The prediction log and the label store: Parquet files partitioned by model and hour.

Each row is one answered request: request id, time, model, version served, route,
the inputs, the outputs, confidence, latency, contract violations and lineage fields
(upstream source, feature-pipeline version). Labels arrive later, keyed by request id.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS = ("request_id", "ts", "model", "model_version", "route")


class PredictionLog:
    """Append-only Parquet log under ``root/model=<m>/date=<d>/hour=<h>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def append(self, rows: pd.DataFrame, *, name: str | None = None) -> list[Path]:
        """Write rows into their hour partitions; returns the files written.

        Each part is written under a temporary name and renamed into place, so a reader
        never sees half a file. ``name`` makes the part names deterministic
        (``part-<name>.parquet``): writing the same rows again replaces the part instead
        of adding a copy (the gateway's journal replays what a crash left uncommitted).
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"prediction log rows lack required columns {missing}")
        if rows.empty:
            return []
        ts = pd.to_datetime(rows["ts"], utc=True)
        written = []
        for (model, day, hour), part in rows.groupby([rows["model"], ts.dt.strftime("%Y-%m-%d"), ts.dt.hour]):
            folder = self.root / f"model={model}" / f"date={day}" / f"hour={hour:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{name or uuid.uuid4().hex}.parquet"
            tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
            part.to_parquet(tmp, index=False)
            os.replace(tmp, path)
            written.append(path)
        return written

    def read(self, model: str, *, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Rows of ``model`` logged in ``[since, until)`` (either bound optional), oldest first."""
        base = self.root / f"model={model}"
        files = sorted(base.glob("date=*/hour=*/*.parquet"))
        if since is not None:
            cutoff = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            files = [f for f in files if _partition_hour(f) >= cutoff]
        if not files:
            return pd.DataFrame(columns=list(REQUIRED_COLUMNS))
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        if since is not None:
            frame = frame[frame["ts"] >= pd.Timestamp(since)]
        if until is not None:
            frame = frame[frame["ts"] < pd.Timestamp(until)]
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)

    def read_window(self, model: str, hours: float, *, now: datetime | None = None) -> pd.DataFrame:
        now = now or datetime.now(UTC)
        return self.read(model, since=now - timedelta(hours=hours), until=now)


def _partition_hour(path: Path) -> datetime:
    day = path.parent.parent.name.removeprefix("date=")
    hour = int(path.parent.name.removeprefix("hour="))
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class LabelStore:
    """Ground truth that arrived after the prediction, keyed by request id."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def append(self, model: str, labels: pd.DataFrame) -> Path:
        folder = self.root / f"model={model}"
        folder.mkdir(parents=True, exist_ok=True)
        # Time-ordered names: when a request is labelled twice, the later label wins on read.
        path = folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        labels.to_parquet(path, index=False)
        return path

    def read(self, model: str) -> pd.DataFrame:
        files = sorted((self.root / f"model={model}").glob("*.parquet"))
        if not files:
            return pd.DataFrame(columns=["request_id"])
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).drop_duplicates(
            "request_id", keep="last"
        )

    def join(self, model: str, predictions: pd.DataFrame, label: str) -> pd.DataFrame:
        """Predictions whose label has arrived, with the label column added."""
        labels = self.read(model)
        if label not in labels.columns:
            return predictions.iloc[0:0].assign(**{label: pd.Series(dtype=float)})
        return predictions.merge(labels[["request_id", label]], on="request_id", how="inner")
