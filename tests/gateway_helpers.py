"""Shared by the gateway tests: pricing requests in the scoring protocol, and reading the logs."""

from __future__ import annotations

import json
from typing import Any


def pricing_records(n: int, *, holiday: bool, seed: int) -> list[dict[str, Any]]:
    """``n`` pricing requests as a client sends them (inputs plus lineage fields)."""
    from firebreak.scenarios import pricing

    frame = pricing.generate_requests(seed, n, holiday=holiday)[pricing.INPUTS]
    frame = frame.assign(upstream_source=pricing.UPSTREAM_SOURCE, feature_pipeline_version=pricing.PIPELINE_VERSION)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def body(*records: dict[str, Any]) -> dict[str, Any]:
    return {"dataframe_records": list(records)}
