"""
### Alert intake from an inbox — the Airflow-native path for alerts that arrive through a queue

An `AssetWatcher` (`AlertInboxTrigger`, in `plugins/firebreak_inbox.py`) watches
`$FIREBREAK_HOME/alert-inbox/` for `alertmanager-*.json` / `generic-*.json` files — the same
bodies the webhooks at `/firebreak/alerts/...` accept. Each claimed file is an asset event;
this DAG applies the **same** intake rules as the webhook (stored delivery, episode dedup,
resolved never reopens) and opens one `incident_response` run per new episode, with the
incident id as run id.

Trigger it by hand with conf `{"deliveries": [{"source": "alertmanager", "body": "..."}]}`
to replay a delivery.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, AssetWatcher, dag, get_current_context, task

from firebreak_inbox import AlertInboxTrigger

INBOX = str(Path(os.environ.get("FIREBREAK_HOME", ".firebreak")).resolve() / "alert-inbox")
alert_inbox = Asset(
    "firebreak_alert_inbox",
    uri=Path(INBOX).as_uri(),
    watchers=[AssetWatcher(name="firebreak_alert_inbox", trigger=AlertInboxTrigger(directory=INBOX))],
)


@dag(
    dag_id="alert_intake",
    schedule=[alert_inbox],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["firebreak", "alerts"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=5)},
)
def alert_intake() -> None:
    @task
    def plan_incidents() -> list[dict[str, Any]]:
        """Run the intake on each delivery; return the incident runs to open."""
        from firebreak.alerts.intake import receive
        from firebreak.settings import Settings

        context = get_current_context()
        deliveries = list((context["dag_run"].conf or {}).get("deliveries", []))
        for events in context["triggering_asset_events"].values():
            # A watcher's TriggerEvent payload arrives as the asset event's extra["payload"].
            payloads = [(e.extra or {}).get("payload") or {} for e in events]
            deliveries += [p for p in payloads if "body" in p and "source" in p]
        settings = Settings.from_env()
        planned: list[dict[str, Any]] = []

        def starter(run_id: str, conf: dict[str, Any]) -> bool:
            if any(p["trigger_run_id"] == run_id for p in planned):
                return False
            if context["ti"].get_dr_count(dag_id="incident_response", run_ids=[run_id]):
                return False
            planned.append({"trigger_run_id": run_id, "conf": conf})
            return True

        for delivery in deliveries:
            result = receive(
                delivery["source"],
                delivery["body"].encode(),
                state_db_url=settings.state_db_url,
                starter=starter,
                policies_dir=settings.policies_dir,
            )
            print(f"delivery {result.delivery_id} ({delivery['source']}): {result.status_code} {result.body()}")
        return planned

    TriggerDagRunOperator.partial(
        task_id="open_incidents",
        trigger_dag_id="incident_response",
        skip_when_already_exists=True,  # a concurrent webhook delivery may have opened it
        wait_for_completion=False,
    ).expand_kwargs(plan_incidents())


alert_intake()
