"""Lineage trace: every logged prediction back to its upstream source and pipeline version."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class LineageTrace:
    passed: bool
    rows: int
    groups: list[dict[str, Any]]  # one per (source, pipeline, model version): counts, first and last seen
    unknown_rows: int  # predictions whose source or pipeline is not allowed (or missing)
    new_since_window_start: list[dict[str, Any]]  # lineage combinations first seen inside the window

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.rows == 0:
            return "lineage: no predictions in the window"
        verdict = (
            "all traceable to allowed sources" if self.passed else f"{self.unknown_rows} rows from unallowed sources"
        )
        return f"lineage: {self.rows} predictions in {len(self.groups)} lineage group(s), {verdict}"


def trace_lineage(
    log: pd.DataFrame | Iterable[pd.DataFrame], allowed: dict[str, list[Any]], *, window_start: pd.Timestamp
) -> LineageTrace:
    """Group the log by lineage columns and model version; flag values outside ``allowed``.

    Args:
        log: prediction-log rows (with ``ts`` and ``model_version``), as one frame or as the
            batches of a streamed window (each batch is grouped, then the groups are merged:
            counts add up, first and last seen are the min and max).
        allowed: lineage column -> allowed values, taken from the model's contract.
        window_start: rows before it are history; combinations first seen after it are "new".
    """
    columns = list(allowed)
    keys = [*columns, "model_version"]
    pieces, rows, unknown = [], 0, 0
    for batch in [log] if isinstance(log, pd.DataFrame) else log:
        if batch.empty:
            continue
        frame = batch.copy()
        for column in keys:
            if column not in frame.columns:
                frame[column] = None
            elif isinstance(frame[column].dtype, pd.CategoricalDtype):
                frame[column] = frame[column].astype(object)  # group by values seen, not every category
        ok = pd.Series(True, index=frame.index)
        for column, values in allowed.items():
            ok &= frame[column].isin(values)
        rows += len(frame)
        unknown += int((~ok).sum())
        pieces.append(
            frame.assign(_ok=ok)
            .groupby(keys, dropna=False)
            .agg(rows=("ts", "size"), first_seen=("ts", "min"), last_seen=("ts", "max"), allowed=("_ok", "all"))
            .reset_index()
        )
    if rows == 0:
        return LineageTrace(True, 0, [], 0, [])
    grouped = (
        pd.concat(pieces, ignore_index=True)
        .groupby(keys, dropna=False)
        .agg(
            rows=("rows", "sum"),
            first_seen=("first_seen", "min"),
            last_seen=("last_seen", "max"),
            allowed=("allowed", "all"),
        )
    )
    groups = [
        {**dict(zip(keys, (None if pd.isna(v) else v for v in idx), strict=True)), **row}
        for idx, row in grouped.reset_index(drop=False).set_index(keys).iterrows()
    ]
    for g in groups:
        g["first_seen"] = str(g["first_seen"])
        g["last_seen"] = str(g["last_seen"])
        g["rows"] = int(g["rows"])
        g["allowed"] = bool(g["allowed"])
    new = [g for g in groups if pd.Timestamp(g["first_seen"]) >= window_start]
    return LineageTrace(unknown == 0, rows, groups, unknown, new)
