"""The incident clock as Prometheus histograms, by model and severity.

``firebreak_incident_time_to_{detect,acknowledge,contain,resolve}_seconds`` are built on
each scrape from the clocks in the state DB (a collector, not in-process counters: the
api-server that serves ``/firebreak/metrics`` is not where the incidents ran). Label values
come only from the policies on disk and the severity enum (RELIABILITY.md, case 35).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from firebreak.incidents.clock import DURATIONS, Clock
from firebreak.incidents.enums import Severity
from firebreak.incidents.store import IncidentStore
from firebreak.policy.schema import list_policies

# From 10 s (the breaker's own containment) to a week (SEV4's target of five business days).
BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ClockCollector(Collector):
    def __init__(self, state_db_url: str, policies_dir: Path) -> None:
        self.state_db_url = state_db_url
        self.policies_dir = policies_dir

    def collect(self) -> Iterator[Metric]:
        store = IncidentStore(self.state_db_url)
        models = set(list_policies(self.policies_dir))
        severities = {str(s) for s in Severity}
        samples: dict[str, dict[tuple[str, str], list[float]]] = {name: {} for name in DURATIONS}
        clocks = store.clocks()
        for incident in store.list_incidents():
            if incident.model not in models or incident.severity not in severities or incident.dry_run:
                continue
            durations = Clock(clocks.get(incident.id, {})).durations()
            for name, seconds in durations.items():
                if seconds is not None and seconds >= 0:
                    samples[name].setdefault((incident.model, str(incident.severity)), []).append(seconds)
        for name, (start, end) in DURATIONS.items():
            family = HistogramMetricFamily(
                f"firebreak_incident_{name}_seconds",
                f"Seconds from {start} to {end} per incident (the incident clock)",
                labels=["model", "severity"],
            )
            for (model, severity), values in sorted(samples[name].items()):
                buckets = [(str(float(b)), float(sum(v <= b for v in values))) for b in BUCKETS]
                buckets.append(("+Inf", float(len(values))))
                family.add_metric([model, severity], buckets, sum_value=sum(values))
            yield family


def render(state_db_url: str, policies_dir: Path) -> bytes:
    """The exposition text of the clock histograms."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClockCollector(state_db_url, policies_dir))
    return generate_latest(registry)
