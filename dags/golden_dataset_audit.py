"""
### Golden dataset audit — nightly, for every model that has a policy

For each model in `include/policies/`: the champion on its golden dataset against the
baseline recorded for it, the Great Expectations contract on the last day of logged
inputs, and drift of that day against the champion's training data (full-data verdicts,
Evidently report on samples). Evidence goes to an MLflow run in `firebreak-audits`.

A breach opens an `incident_response` run whose id comes from the model, the day and the
breached checks: the same breach never opens two incidents, however often this runs.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(
    dag_id="golden_dataset_audit",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["firebreak", "audit"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=5)},
)
def golden_dataset_audit() -> None:
    @task
    def models_with_policies() -> list[str]:
        from firebreak.policy.schema import list_policies
        from firebreak.settings import Settings

        return list_policies(Settings.from_env().policies_dir)

    @task(max_active_tis_per_dagrun=2)
    def audit(model: str) -> dict[str, Any]:
        from firebreak.audits import run_audit

        return run_audit("golden_dataset_audit", model)

    @task
    def incidents_to_open(audits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a["incident"] for a in audits if a["incident"]]

    TriggerDagRunOperator.partial(
        task_id="open_incidents",
        trigger_dag_id="incident_response",
        skip_when_already_exists=True,  # the same breach, audited again, finds its incident
        wait_for_completion=False,
    ).expand_kwargs(incidents_to_open(audit.expand(model=models_with_policies())))


golden_dataset_audit()
