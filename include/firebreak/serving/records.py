"""The rows the gateway logs: answered (prediction log), refused (rejected log) and shadowed.

All three begin alike (request id, time, model, version, route) so the monitors, the
investigation and the shadow comparison read them by the same keys. A row of a
multi-row request is logged as ``<request id>/<i>``: one log row per scored row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from firebreak.contracts.online import Violation
    from firebreak.serving.gateway import Request


def row_ids(batch: Sequence[Request]) -> list[str]:
    """One id per scored row: the request's id, or ``<id>/<i>`` in a multi-row request."""
    return [
        r.request_id if len(r.records) == 1 else f"{r.request_id}/{i}" for r in batch for i in range(len(r.records))
    ]


def _head(request_id: str, ts: datetime, model: str, version: str, route: str) -> dict[str, Any]:
    return {"request_id": request_id, "ts": ts, "model": model, "model_version": version, "route": route}


def prediction_rows(
    model: str,
    batch: Sequence[Request],
    predictions: list[dict[str, Any]],
    routes: list[str],
    versions: dict[str, str],
    *,
    ts: datetime,
    done: float,
) -> list[dict[str, Any]]:
    """One row per answered row: its input, the answer (and the guardrail rule, if any), route and latency.

    ``versions`` maps a route to the version that answered on it; ``done`` is the
    ``perf_counter`` time the answers were ready.
    """
    ids = row_ids(batch)
    rows: list[dict[str, Any]] = []
    for request in batch:
        latency_ms = round((done - request.received) * 1000, 3)
        for record in request.records:
            i = len(rows)
            rows.append(
                {  # the gateway's own fields last: no input or answer key writes over them
                    **record,
                    **predictions[i],
                    **_head(ids[i], ts, model, versions.get(routes[i], routes[i]), routes[i]),
                    "latency_ms": latency_ms,
                    "contract_violations": "",
                }
            )
    return rows


def rejection_row(
    model: str, request_id: str, status: int, reason: str, violations: list[Violation], body: str, *, ts: datetime
) -> dict[str, Any]:
    """A refused request with its reason (the model never saw it); long texts truncated."""
    return {
        **_head(request_id, ts, model, "", "rejected"),
        "status": status,
        "reason": reason[:2000],
        "violations": json.dumps([v.to_dict() for v in violations[:50]]),
        "body": body[:2000],
    }


def shadow_rows(
    model: str, ids: list[str], version: str, outputs: pd.DataFrame, *, ts: datetime
) -> list[dict[str, Any]]:
    """The challenger's answers to the rows the champion answered, by the same row ids."""
    return [
        {**_head(rid, ts, model, version, "shadow"), **_plain(o)}
        for rid, o in zip(ids, outputs.to_dict("records"), strict=True)
    ]


def _plain(record: dict[Any, Any]) -> dict[str, Any]:
    """numpy scalars to JSON-able Python values."""
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
