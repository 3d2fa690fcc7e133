"""Grafana, Arize and Fiddler alerts become the one internal Alert, with episode dedup keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from firebreak.alerts.schemas import VENDOR_PARSERS
from firebreak.incidents.enums import FailureClass, Severity

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def test_grafana_alerts_are_alertmanager_episodes_of_their_own_source() -> None:
    pricing, cpu = VENDOR_PARSERS["grafana"](fixture("grafana_firing.json"))
    assert (pricing.source, pricing.model, pricing.status) == ("grafana", "pricing", "firing")
    assert pricing.dedup_key == "grafana:c6eadffa33fcdf37|2021-10-12T09:51:03.157076+02:00"
    assert (pricing.severity, pricing.failure_type) == (Severity.SEV1, FailureClass.DRIFT)
    assert pricing.description == "[PricingBelowCost] pricing: 95% of prices below cost"
    assert pricing.started_at is not None and pricing.started_at.isoformat() == "2021-10-12T09:51:03.157076+02:00"
    assert cpu.model == ""  # no model label: the intake rejects it, names why, and opens nothing


def test_arize_triggered_fires_healthy_resolves_no_data_is_ignored() -> None:
    (alert,) = VENDOR_PARSERS["arize"](fixture("arize_triggered.json"))
    assert (alert.source, alert.model, alert.status, alert.severity) == ("arize", "pricing", "firing", Severity.SEV2)
    assert alert.dedup_key == "arize:TW9uaXRvcjo0NTY3|2026-11-30T08:15:00+00:00"
    assert alert.failure_type == FailureClass.DRIFT and "psi 0.41 vs 0.2" in alert.description
    (healthy,) = VENDOR_PARSERS["arize"]({**fixture("arize_triggered.json"), "status": "Healthy"})
    assert healthy.status == "resolved" and healthy.dedup_key == alert.dedup_key
    assert VENDOR_PARSERS["arize"]({**fixture("arize_triggered.json"), "status": "No Data"}) == []
    camel = {"monitorId": "m1", "modelName": "pricing", "status": "Triggered"}
    assert VENDOR_PARSERS["arize"](camel)[0].dedup_key == "arize:m1|open"


def test_fiddler_alert_records_map_severity_and_the_evaluation_bucket() -> None:
    (alert,) = VENDOR_PARSERS["fiddler"](fixture("fiddler_alert.json"))
    assert (alert.source, alert.model, alert.severity) == ("fiddler", "pricing", Severity.SEV1)
    assert alert.dedup_key == "fiddler:0b6d3f0e-8f7c-4a3e-9e1a-3c1f4b2a7d10|2026-11-30T00:00:00+00:00"
    assert alert.failure_type == FailureClass.DRIFT
    assert "Jensen-Shannon distance (drift) = 0.37 on demand_index" in alert.description


@pytest.mark.parametrize(
    ("source", "body", "field"),
    [
        ("grafana", {"status": "firing", "alerts": []}, "alerts"),
        ("arize", {"monitor_id": "m", "status": "Triggered"}, "model_name"),
        ("fiddler", {"alert_rule_id": "r"}, "model"),
    ],
)
def test_bodies_that_break_the_schema_name_the_field(source: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        VENDOR_PARSERS[source](body)
