"""Shared by the gateway tests: pricing requests in the scoring protocol, and reading the logs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def pricing_records(n: int, *, holiday: bool, seed: int) -> list[dict[str, Any]]:
    """``n`` pricing requests as a client sends them (inputs plus lineage fields)."""
    from firebreak.scenarios import pricing

    frame = pricing.generate_requests(seed, n, holiday=holiday)[pricing.INPUTS]
    frame = frame.assign(upstream_source=pricing.UPSTREAM_SOURCE, feature_pipeline_version=pricing.PIPELINE_VERSION)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def body(*records: dict[str, Any]) -> dict[str, Any]:
    return {"dataframe_records": list(records)}


def many_callers(app: Asgi, n: int = 4) -> Asgi:
    """``app`` as traffic from ``n`` callers in turn sees it (one peer address per request, round robin).

    TestClient sends every request from one peer address; a model's traffic comes from
    many, and the breaker reaches no verdict on one caller alone (issue 17).
    """
    peers = itertools.cycle([f"10.0.0.{i}" for i in range(1, n + 1)])

    async def from_callers(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (next(peers), 50000)}
        await app(scope, receive, send)

    return from_callers
