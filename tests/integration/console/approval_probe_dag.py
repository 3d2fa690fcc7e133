"""Tests only: a stand-in for incident_response's ``approve_promotion`` step, one ApprovalOperator.

The console's approval action answers whatever human-in-the-loop step waits on an
incident's run id. Reaching incident_response's own step takes a whole incident run to a
passed gate; the browser test runs this DAG under the incident's id instead, so the answer
still goes through a real Airflow HITL under the real scheduler and triggerer.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import dag


@dag(
    dag_id="firebreak_approval_probe",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["firebreak", "test"],
)
def firebreak_approval_probe() -> None:
    ApprovalOperator(
        task_id="approve_promotion",
        subject="Promote pricing-approval v2 to champion?",
        body="The gate passed every check against v1.",
    )


firebreak_approval_probe()
