"""Prometheus metrics of the gateway, summed over all worker processes.

Under ``firebreak serve`` each process (the workers and the background drainer) writes its
values to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them: a scrape sees the whole
gateway, whichever worker answers it. The directory must be set before this module is
imported. The request path touches a few counters per request; per-row metrics (the
champion's confidence) and shadow outcomes are counted by the drainer, off the path.

Every label value comes from the policy's schema or a fixed vocabulary, never from a
client: a field a client invents is counted as ``(not in the contract)``, so no caller can
grow the number of series.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from firebreak.containment.breaker import Transition

REQUESTS = Counter("firebreak_requests", "Requests answered, by route and outcome.", ["model", "route", "outcome"])
PREDICTIONS = Counter("firebreak_predictions", "Rows answered, by route.", ["model", "route"])
LATENCY = Histogram(
    "firebreak_request_latency_seconds",
    "Time from request received to answer ready, by route.",
    ["model", "route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CONFIDENCE = Histogram(
    "firebreak_confidence",
    "Confidence of the champion's answers.",
    ["model"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
BREAKER_STATE = Gauge(
    "firebreak_breaker_state",
    "Circuit breaker: 0 closed, 1 half-open, 2 open (the highest any worker sees).",
    ["model"],
    multiprocess_mode="livemax",
)
BREAKER_TRANSITIONS = Counter(
    "firebreak_breaker_transitions", "Breaker state changes made by this gateway.", ["model", "source", "target"]
)
CONTRACT_VIOLATIONS = Counter(
    "firebreak_contract_violations",
    "Contract violations in refused requests, by field and rule.",
    ["model", "field", "rule"],
)
SANITY_OVERRIDES = Counter(
    "firebreak_sanity_overrides", "Champion answers outside the sanity bound, answered by the fallback.", ["model"]
)
GUARDRAIL_HITS = Counter(
    "firebreak_guardrail_hits", "LLM answers the guardrails blocked (the user got the safe answer).", ["model", "rule"]
)
SHADOW = Counter("firebreak_shadow_predictions", "Challenger shadow scores, by outcome.", ["model", "outcome"])
STATE_STORE_UP = Gauge(
    "firebreak_state_store_up",
    "1 when the last refresh read the state DB; 0 while it is unreachable (serving on the last known state).",
    ["model"],
    multiprocess_mode="livemin",
)
MODEL_VERSION = Gauge(
    "firebreak_serving_version", "The champion version loaded.", ["model"], multiprocess_mode="livemax"
)


UNKNOWN_FIELD = "(not in the contract)"


class ModelMetrics:
    """The metric children of one model, looked up once (``labels()`` is not free).

    Args:
        model: The served model.
        fields: The contract's fields: the only field names that become label values.
    """

    def __init__(self, model: str, fields: Iterable[str] = ()) -> None:
        self.model = model
        self.fields = frozenset(fields)
        self.breaker = BREAKER_STATE.labels(model)
        self.version = MODEL_VERSION.labels(model)
        self.confidence = CONFIDENCE.labels(model)
        self.sanity = SANITY_OVERRIDES.labels(model)
        self._cache: dict[tuple[str, ...], Any] = {}

    @cached_property
    def store_up(self) -> Any:
        """Made on first use: a child is 0 from the moment it exists, and under ``livemin`` the
        drainer process, which never reads the routing state, would pin the gateway's gauge at 0."""
        return STATE_STORE_UP.labels(self.model)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._cache.get(key)
        if child is None:
            child = self._cache[key] = metric.labels(self.model, *labels)
        return child

    def answered(self, route: str, outcome: str, latency: float, rows: int) -> None:
        self._child(REQUESTS, route, outcome).inc()
        self._child(LATENCY, route).observe(latency)
        if rows:
            self._child(PREDICTIONS, route).inc(rows)

    def guardrail(self, rule: str) -> None:
        self._child(GUARDRAIL_HITS, rule).inc()

    def violation(self, field_: str, rule: str) -> None:
        self._child(CONTRACT_VIOLATIONS, field_ if field_ in self.fields else UNKNOWN_FIELD, rule).inc()

    def transition(self, t: Transition) -> None:
        self._child(BREAKER_TRANSITIONS, t.source, t.target).inc()

    def shadowed(self, outcome: str, rows: int = 1) -> None:
        self._child(SHADOW, outcome).inc(rows)


def render() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
