"""Pricing traffic through the gateway: the breaker trips in-process, the fallback serves,
the alert lands in the inbox, the incident DAG promotes the fix, and the gateway serves it."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import firebreak_env, pricing_conf, run_incident, settings
from tests.gateway_helpers import body, many_callers, pricing_records

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_db")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_serves_last_known_good_pricing_until_the_incident_promotes_the_fix(tmp_path: Any) -> None:
    from prometheus_client import REGISTRY

    home = tmp_path / "home"
    with firebreak_env(FIREBREAK_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}"):
        from firebreak.scenarios import pricing
        from firebreak.serving.app import create_app
        from firebreak.serving.gateway import Gateway
        from tests.state import State

        s = settings()
        pricing.setup(s)
        clock = Clock()
        gateway = Gateway("pricing", s, clock=clock, refresh_seconds=3600)
        gateway.refresh()
        http = TestClient(many_callers(create_app(gateway, start=False)))
        with http:
            # In season, v1 serves.
            for record in pricing_records(30, holiday=True, seed=21):
                assert http.post("/invocations", json=body(record)).headers["X-Firebreak-Route"] == "champion"
            # The season ends: v1 answers under cost and under the confidence floor; the breaker trips.
            off_season = pricing_records(60, holiday=False, seed=22)
            answers = [http.post("/invocations", json=body(r)) for r in off_season]
            routes = [a.headers["X-Firebreak-Route"] for a in answers]
            tripped_at = routes.index("heuristic") if "heuristic" in routes else None
            state = http.get("/serving").json()
        assert state["breaker"]["state"] == "open" and state["route"] == "heuristic"
        assert all(route == "heuristic" for route in routes[-30:])
        # What users got while open: last-known-good pricing, never a price under cost.
        served = [a.json()["predictions"][0]["recommended_price"] for a in answers]
        fallback = pricing.fallback_prices(pd.DataFrame(off_season), s)["recommended_price"].tolist()
        assert served[-30:] == pytest.approx(fallback[-30:])
        assert all(p >= r["unit_cost"] for p, r in zip(served, off_season, strict=True))
        assert tripped_at is not None
        assert REGISTRY.get_sample_value("firebreak_breaker_state", {"model": "pricing"}) == 2
        store = State(s.state_db_url)
        [event] = store.routing.breaker_events("pricing")
        assert (event["source"], event["target"], event["version"]) == ("closed", "open", "1")
        assert store.routing.get_breaker("pricing").state == "open"  # type: ignore[union-attr]
        # The trip became an alert the intake's inbox watcher turns into an incident.
        [alert_file] = list(s.alert_inbox_dir.glob("generic-gateway-pricing-*.json"))
        alert = json.loads(alert_file.read_text())
        assert alert["status"] == "firing" and alert["model"] == "pricing" and alert["source"] == "gateway"

        # The incident (as the intake would start it) retrains, gates and promotes v2.
        result = run_incident(pricing_conf(alert["dedup_key"], description=alert["description"]))
        assert result.state == "success", result.task_states
        [incident] = store.incidents.list_incidents("pricing")
        postmortem = (s.postmortem_dir / f"{incident.id}.md").read_text()
        assert "The serving gateway's breaker was already open on v1" in postmortem

        gateway.refresh()  # what the refresh thread does every 0.2 s
        with http:
            after = [http.post("/invocations", json=body(r)) for r in pricing_records(20, holiday=False, seed=23)]
            state = http.get("/serving").json()
        assert {a.headers["X-Firebreak-Route"] for a in after} == {"champion"}
        assert {a.headers["X-Firebreak-Model-Version"] for a in after} == {"2"}
        assert state["breaker"]["state"] == "closed" and state["champion"] == "2"
        gateway.drain()
