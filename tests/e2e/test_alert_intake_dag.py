"""The Airflow-native intake path: alert_intake applies the webhook's rules and opens one run per episode."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from firebreak.incidents.identity import incident_id_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_dags")]

REPO = Path(__file__).resolve().parents[2]


def am_body(fingerprint: str, status: str = "firing") -> str:
    alert = {
        "status": status,
        "labels": {"alertname": "PricingDrift", "model": "pricing", "failure_class": "drift"},
        "annotations": {"summary": "psi above 0.2"},
        "startsAt": "2026-11-27T09:00:00Z",
        "fingerprint": fingerprint,
    }
    return json.dumps({"version": "4", "groupKey": "g", "status": status, "alerts": [alert]})


def incident_runs(run_id: str) -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            {"conf": r.conf, "type": str(r.run_type)}
            for r in session.query(DagRun).filter(DagRun.dag_id == "incident_response", DagRun.run_id == run_id)
        ]


def run_intake(deliveries: list[dict[str, str]]) -> dict[str, str | None]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["alert_intake"]
    run = dag.test(run_conf={"deliveries": deliveries})
    with create_session() as session:
        tis = session.query(TaskInstance).filter(
            TaskInstance.dag_id == "alert_intake", TaskInstance.run_id == run.run_id
        )
        return {f"{ti.task_id}[{ti.map_index}]": (str(ti.state) if ti.state else None) for ti in tis}


def test_inbox_deliveries_open_one_incident_per_episode(firebreak_home: Path) -> None:
    body = am_body("inbox-1")
    states = run_intake([{"source": "alertmanager", "body": body}, {"source": "alertmanager", "body": body}])
    assert states["plan_incidents[-1]"] == "success"
    assert (
        states["open_incidents[0]"] == "success" and "open_incidents[1]" not in states
    )  # the duplicate planned nothing
    incident_id = incident_id_for("pricing", "inbox-1|2026-11-27T09:00:00+00:00")
    [run] = incident_runs(incident_id)
    assert run["conf"]["failure_type"] == "drift" and run["conf"]["model"] == "pricing"

    # The same delivery again, later: the run exists, nothing new is opened.
    states = run_intake([{"source": "alertmanager", "body": body}])
    assert not any(k.startswith("open_incidents[") and k != "open_incidents[-1]" for k in states)
    assert len(incident_runs(incident_id)) == 1
    from firebreak.settings import Settings
    from tests.state import State

    kinds = [e.kind for e in State(Settings.from_env().state_db_url).incidents.events(incident_id)]
    assert kinds == ["alert_opened", "alert_duplicate", "alert_duplicate"]


def test_the_inbox_trigger_claims_each_file_once(tmp_path: Path) -> None:
    from firebreak_inbox import AlertInboxTrigger

    trigger = AlertInboxTrigger(directory=str(tmp_path), poll_interval=0.05)
    (tmp_path / "generic-1.json").write_text('{"model": "pricing"}')
    os.utime(tmp_path / "generic-1.json", (time.time() - 10, time.time() - 10))
    (tmp_path / "alertmanager-2.json").write_text(am_body("x"))
    (tmp_path / "notes.json").write_text("{}")

    async def next_event() -> dict[str, str]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("trigger ended without an event")

    first = asyncio.run(next_event())
    second = asyncio.run(next_event())
    assert (first["source"], Path(first["file"]).name) == ("generic", "generic-1.json")
    assert (second["source"], json.loads(second["body"])["alerts"][0]["fingerprint"]) == ("alertmanager", "x")
    assert sorted(p.name for p in (tmp_path / "claimed").iterdir()) == ["alertmanager-2.json", "generic-1.json"]
    assert trigger.claim_next() is None  # only a file of no known source is left ...
    assert [p.name for p in (tmp_path / "unknown").iterdir()] == ["notes.json"]  # ... set aside, never fired
    assert list(tmp_path.glob("*.json")) == []
    assert trigger.serialize() == (
        "firebreak_inbox.AlertInboxTrigger",
        {"directory": str(tmp_path), "poll_interval": 0.05},
    )
