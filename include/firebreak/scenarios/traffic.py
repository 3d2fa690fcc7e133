"""Building blocks the pricing-family scenarios share: a clean slate for one model, all-year
requests, and logged traffic with its lineage and labels.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from firebreak.scenarios import pricing
from firebreak.settings import Settings

__all__ = ["all_year_requests", "log_traffic", "forget_state", "reset_model", "write_history"]


def reset_model(settings: Settings, model: str) -> None:
    """Forget everything about ``model``: registry, state DB rows, prediction log, labels, data."""
    from firebreak.registry.mlflow_registry import Registry

    Registry(settings).delete_model(model)
    forget_state(settings, model)
    for folder in (
        settings.prediction_log_dir / f"model={model}",
        settings.labels_dir / f"model={model}",
        settings.data_dir / model,
    ):
        shutil.rmtree(folder, ignore_errors=True)


def forget_state(settings: Settings, model: str) -> None:
    """Delete every state-DB row recorded for ``model``: incidents, their notifications, routing and breakers, alias ledger."""
    from firebreak.containment.state import RoutingStore
    from firebreak.incidents.store import IncidentStore
    from firebreak.oncall.outbox import Outbox
    from firebreak.registry.ledger import AliasLedger

    Outbox(settings.state_db_url).forget_incidents(
        [i.id for i in IncidentStore(settings.state_db_url).list_incidents(model)]
    )
    for store in (IncidentStore, RoutingStore, AliasLedger):
        store(settings.state_db_url).forget_model(model)


def write_history(settings: Settings, model: str, dataset: str, seed: int) -> pd.DataFrame:
    """Two years of pricing history as the model's training dataset, and its fallback markups."""
    history = pricing.generate_history(seed)
    path = settings.resolve(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    history.to_parquet(path, index=False)
    folder = settings.data_dir / model
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fallback.json").write_text(json.dumps(pricing.fallback_markups(history), indent=2))
    return history


def fallback_prices_for(model: str, frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The pricing heuristic with ``model``'s own markups (written by :func:`write_history`)."""
    markups = json.loads((settings.data_dir / model / "fallback.json").read_text())
    return pricing.heuristic_price(frame, markups)


def all_year_requests(seed: int, n: int) -> pd.DataFrame:
    """Production requests spread over the whole year, labelled with the optimal price."""
    rng = np.random.default_rng(seed)
    return pricing._observations(rng, rng.integers(1, 366, size=n), rng.integers(0, 7, size=n))


def log_traffic(
    settings: Settings,
    model: str,
    served: Any,
    version: str,
    requests: pd.DataFrame,
    *,
    start: datetime,
    hours: float,
    source: str = pricing.UPSTREAM_SOURCE,
    pipeline: str = pricing.PIPELINE_VERSION,
    violations: str = "",
    route: str = "champion",
    label_share: float = 0.8,
    seed: int = 0,
    prefix: str = "req",
) -> pd.DataFrame:
    """Score ``requests`` with ``served`` and log them over ``hours`` from ``start``; labels follow.

    ``violations`` is what the serving gateway's contract check wrote on each row (empty:
    none). Returns the logged rows (with the label column).
    """
    from firebreak.prediction_log import LabelStore, PredictionLog

    started = time.perf_counter()
    outputs = pd.DataFrame(served.predict(requests[pricing.INPUTS]))
    latency_ms = (time.perf_counter() - started) * 1000 / max(len(requests), 1)
    offsets = np.sort(np.random.default_rng(seed).uniform(0, hours * 3600, len(requests)))
    rows = pd.DataFrame(
        {
            "request_id": [f"{prefix}-{i:05d}" for i in range(len(requests))],
            "ts": [start + timedelta(seconds=float(s)) for s in offsets],
            "model": model,
            "model_version": version,
            "route": route,
        }
    )
    for column in pricing.INPUTS:
        rows[column] = requests[column].to_numpy()
    rows["recommended_price"] = outputs["recommended_price"].to_numpy()
    rows["confidence"] = outputs["confidence"].to_numpy()
    rows["latency_ms"] = round(latency_ms, 3)
    rows["contract_violations"] = violations
    rows["upstream_source"] = source
    rows["feature_pipeline_version"] = pipeline
    PredictionLog(settings.prediction_log_dir).append(rows)
    labelled = rows.assign(**{pricing.LABEL: requests[pricing.LABEL].to_numpy()})
    if label_share > 0:
        sample = labelled.sample(frac=label_share, random_state=seed)[["request_id", pricing.LABEL]]
        LabelStore(settings.labels_dir).append(model, sample)
    return labelled
