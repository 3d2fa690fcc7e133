"""
### Shadow evaluation — hourly: challenger vs champion on the logged traffic

For each model with a `challenger`: both versions score the inputs logged in the policy's
shadow window (`shadow:` in `include/policies/<model>.yaml`); the audit reports their
disagreement rate and, where labels arrived, both MAEs. Evidence goes to an MLflow run in
`firebreak-audits`.

Beyond the policy: a worse **challenger** is blocked (tag `firebreak.blocked` on the version;
the promotion gate refuses it); a worse **champion** opens an `incident_response` run whose
id names the challenger version, so the same comparison never opens two incidents.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(
    dag_id="shadow_evaluation",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["firebreak", "audit", "shadow"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
)
def shadow_evaluation() -> None:
    @task
    def models_with_policies() -> list[str]:
        from firebreak.policy.schema import list_policies
        from firebreak.settings import Settings

        return list_policies(Settings.from_env().policies_dir)

    @task(max_active_tis_per_dagrun=2)
    def audit(model: str) -> dict[str, Any]:
        from firebreak.audits import run_audit

        return run_audit("shadow_evaluation", model)

    @task
    def incidents_to_open(audits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a["incident"] for a in audits if a["incident"]]

    TriggerDagRunOperator.partial(
        task_id="open_incidents",
        trigger_dag_id="incident_response",
        skip_when_already_exists=True,  # the same breach, audited again, finds its incident
        wait_for_completion=False,
    ).expand_kwargs(incidents_to_open(audit.expand(model=models_with_policies())))


shadow_evaluation()
