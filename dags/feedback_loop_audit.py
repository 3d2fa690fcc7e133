"""
### Feedback loop audit — the feedback loop as a critical dependency

For each model with feedback (thumbs up/down with actor id and time): the share of the
window's feedback from the few most active actors, the rise of the thumbs-down rate, and how
often thumbs down land on predictions the arriving labels call good (policy section
`feedback:`). Evidence goes to an MLflow run in `firebreak-audits`.

Poisoning — concentration *and* contradiction by the labels — marks the slice (actors, time
range) so every later read of the feedback excludes it, and opens an `incident_response`
run (failure type `feedback_poisoning`) whose id names the day: one incident per breach.
A failing model earns thumbs down honestly; that alone is not poisoning.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(
    dag_id="feedback_loop_audit",
    schedule="30 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["firebreak", "audit", "feedback"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
)
def feedback_loop_audit() -> None:
    @task
    def models_with_policies() -> list[str]:
        from firebreak.policy.schema import list_policies
        from firebreak.settings import Settings

        return list_policies(Settings.from_env().policies_dir)

    @task(max_active_tis_per_dagrun=2)
    def audit(model: str) -> dict[str, Any]:
        from firebreak.audits import run_audit

        return run_audit("feedback_loop_audit", model)

    @task
    def incidents_to_open(audits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a["incident"] for a in audits if a["incident"]]

    TriggerDagRunOperator.partial(
        task_id="open_incidents",
        trigger_dag_id="incident_response",
        skip_when_already_exists=True,  # the same breach, audited again, finds its incident
        wait_for_completion=False,
    ).expand_kwargs(incidents_to_open(audit.expand(model=models_with_policies())))


feedback_loop_audit()
