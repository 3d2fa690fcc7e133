"""
### Incident response — the model-failure SOP, one run per incident

Open → triage → **contain** (traffic to the policy's fallback, before any root cause) →
investigate (Great Expectations contract with lineage, lineage trace, Evidently drift,
golden dataset) → diagnose → remediate (rollback | retrain | parameter update | upstream
fix | guardrail rule) → verify (promotion gate) → approve promotion (a named person, where the
policy requires it) → promote → restore traffic. The post-mortem and the close are teardowns:
they always run, and the run's own state stays honest — a refused gate or approval fails the
run and the incident ends `contained_needs_human`.

On-call: pages, Slack and mail go to the policy's targets for the incident's severity after
each stage (`notify:` routes); acknowledge with `firebreak ack ID --by NAME`; Deadline Alerts
escalate when the severity's acknowledge or contain target passes.

Start one from the trigger form (model, failure type, severity, description), from an
alert, or from a scheduled audit. The model's policy is `include/policies/<model>.yaml`;
the SOP document is `docs/SOP.md`.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DeadlineAlert, Param, SyncCallback, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

# The on-call loop's Airflow side lives in plugins/firebreak_oncall.py (Airflow only at import).
from firebreak_oncall import CADENCE_UPDATES, IncidentApproval, IncidentDeadline, OutboxNotifier
from firebreak_oncall import SEVERITIES as PAGED_SEVERITIES

# Values must match firebreak.incidents.enums (a DAG-integrity test checks): importing the
# library here would cost its import time on every parse.
FAILURE_TYPES = ["unknown", "drift", "skew", "bias", "hallucination", "feedback_poisoning", "bad_release"]
SEVERITIES = ["auto", "SEV1", "SEV2", "SEV3", "SEV4"]
REMEDIATIONS = ["auto", "rollback", "retrain", "parameter_update", "upstream_fix", "guardrail_rule"]
# The trigger form offers the models that have a policy, from the same folder the library
# reads (firebreak.settings). A plain name is its own file stem (firebreak.model_names.model_stem):
# no YAML read at parse time. Any other name ("Fraud Detector", "Crédit Scoring") is stored
# under its safe characters plus a hash, so only those policies are read for their `model:`.
POLICIES = Path(os.environ.get("FIREBREAK_POLICIES_DIR") or Path(__file__).parents[1] / "include" / "policies")
_HASHED_STEM = re.compile(r"-[0-9a-f]{10}$")


def _model_names(folder: Path) -> list[str]:
    names = []
    for path in folder.glob("*.yaml"):
        if not _HASHED_STEM.search(path.stem):
            names.append(path.stem)
            continue
        import yaml

        try:
            names.append(str(yaml.safe_load(path.read_text(encoding="utf-8"))["model"]))
        except Exception:  # noqa: BLE001 — an unreadable policy: `firebreak policy validate` says why
            log.warning("policy %s has no readable model name: not offered in the trigger form", path)
    return sorted(names)


log = logging.getLogger(__name__)
MODELS = _model_names(POLICIES)


def _incident_id(context: Any) -> str:
    from firebreak.incidents.identity import incident_id_from_conf

    return incident_id_from_conf(context["dag_run"].conf or {}, context["dag_run"].run_id)


def _on_task_event(kind: str) -> Any:
    def callback(context: Any) -> None:
        from firebreak.stages import record_task_event

        ti = context["ti"]
        error = context.get("exception")
        message = f"{ti.task_id} {kind.removeprefix('task_')}" + (f": {error}" if error else "")
        record_task_event(_incident_id(context), kind, message, {"task_id": ti.task_id, "try_number": ti.try_number})

    return callback


def _run(task_id: str) -> Any:
    """Call the library stage of one task for this run's incident (``firebreak.stages.STAGES``).

    The incident id is derived from the run's conf and run id, the same way in every task,
    so tasks need no XCom to find it. An expected Firebreak error (bad request, refused
    gate) fails the task without retries: retrying cannot change the answer.
    """
    from firebreak.bounded_json import finite
    from firebreak.errors import FirebreakError
    from firebreak.stages import STAGES

    try:
        # JSON for the XCom: a figure that cannot be computed is None (Airflow refuses NaN).
        return finite(STAGES[task_id](_incident_id(get_current_context())))
    except FirebreakError as exc:
        # The reason, readable in the task log (a refused gate lists its checks); no library stack trace.
        log.error("%s stopped: %s", task_id, exc)
        raise AirflowFailException(str(exc)) from None


# On-call: every severity's acknowledge and contain targets and its first update times, from
# the model's policy (IncidentDeadline); each callback acts only for the incident's severity.
# FIREBREAK_DEADLINE_ALERTS=off where no scheduler runs (`airflow dags test`, dag.test()): there
# nothing fires deadlines, and Airflow 3.3.2's dag.test() fails at the end of a successful run
# of a DAG that has them (its re-deserialized DAG holds encoded alerts where ids are expected).
DEADLINES_ON = os.environ.get("FIREBREAK_DEADLINE_ALERTS", "on").lower() != "off"
ONCALL_DEADLINES = [
    DeadlineAlert(
        reference=IncidentDeadline(severity, target, nth),
        interval=timedelta(0),
        callback=SyncCallback(
            "firebreak_oncall.on_deadline", kwargs={"severity": severity, "target": target, "nth": nth}
        ),
    )
    for severity in PAGED_SEVERITIES
    for target, nth in [("acknowledge", 1), ("contain", 1), *[("update", n) for n in range(1, CADENCE_UPDATES + 1)]]
    if DEADLINES_ON
]
DELIVER = OutboxNotifier()  # sends what a stage enqueued (pages, Slack, mail) right after it


@dag(
    dag_id="incident_response",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=8,
    doc_md=__doc__,
    tags=["firebreak", "sop", "incident"],
    default_args={
        "retries": 1,
        "retry_delay": pendulum.duration(seconds=10),
        "on_execute_callback": _on_task_event("task_started"),
        "on_success_callback": [_on_task_event("task_succeeded"), DELIVER],
        "on_failure_callback": [_on_task_event("task_failed"), DELIVER],
    },
    deadline=ONCALL_DEADLINES or None,
    params={
        "model": Param(
            "pricing" if "pricing" in MODELS or not MODELS else MODELS[0],
            type="string",
            # firebreak.model_names.PARAM_PATTERN (a DAG-integrity test checks): any name MLflow accepts.
            pattern=r"^(?!.*\.\.)(?!\s)[^/\\:\x00-\x1f\x7f]{1,100}$",
            title="Model",
            description="Registered model name as MLflow spells it; it must have a policy (firebreak onboard writes one).",
            section="Incident",
            **({"enum": MODELS} if MODELS else {}),
        ),
        "failure_type": Param(
            "unknown",
            type="string",
            enum=FAILURE_TYPES,
            title="Failure type",
            description="What you believe failed. 'unknown' lets triage and diagnosis decide from the evidence.",
            values_display={
                "unknown": "Unknown — let the evidence decide",
                "drift": "Drift — the world moved",
                "skew": "Skew — upstream data changed",
                "bias": "Bias — a group is harmed",
                "hallucination": "Hallucination / policy breach",
                "feedback_poisoning": "Feedback poisoning",
                "bad_release": "Bad release",
            },
            section="Incident",
        ),
        "severity": Param(
            "auto",
            type="string",
            enum=SEVERITIES,
            title="Severity",
            description="'auto' ranks the incident from the policy's severity matrix; SEV1 is user-visible harm.",
            section="Incident",
        ),
        "description": Param(
            "",
            type="string",
            maxLength=4000,
            title="Description",
            description="What was seen, by whom, and links to dashboards or alerts.",
            format="multiline",
            section="Incident",
        ),
        "remediation": Param(
            "auto",
            type="string",
            enum=REMEDIATIONS,
            title="Remediation",
            description="'auto' follows the policy's choice for the diagnosed failure class.",
            section="Response",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Investigate and plan only: no routing change, no new model version, no alias move.",
            section="Response",
        ),
        "dedup_key": Param(
            None,
            type=["null", "string"],
            maxLength=255,
            title="Dedup key",
            description="Alert dedup key; the same key always maps to the same incident. Leave empty from the UI.",
            section="Response",
        ),
        "model_version": Param(
            None,
            type=["null", "string"],
            pattern="^[A-Za-z0-9._-]{1,20}$",
            title="Model version the alert saw",
            description="Set by alerts that know it. An alert about a version that no longer serves, while the "
            "serving one shows no breach, is closed as stale without touching routing. Leave empty from the UI.",
            section="Response",
        ),
        "alert_started_at": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Alert episode start",
            description="When the alert's episode began (Alertmanager startsAt). Leave empty from the UI.",
            section="Response",
        ),
    },
)
def incident_response() -> None:
    @task
    def open_incident() -> dict[str, Any]:
        from firebreak.errors import FirebreakError
        from firebreak.stages import open_incident as open_

        run = get_current_context()["dag_run"]
        try:
            opened = open_(dict(run.conf or {}), run_id=run.run_id)
        except FirebreakError as exc:
            log.error("open_incident refused the request: %s", exc)
            raise AirflowFailException(str(exc)) from None
        if opened["replay"]:
            raise AirflowSkipException(f"incident {opened['incident_id']} is already {opened['status']}: nothing to do")
        return opened

    @task
    def triage() -> dict[str, Any]:
        triaged = _run("triage")
        if triaged.get("stale"):  # about a version that no longer serves: contain nothing, run nothing
            raise AirflowSkipException(f"stale alert, incident closed: {triaged['why']}")
        return triaged

    @task
    def contain() -> dict[str, Any]:
        return _run("contain")

    @task
    def validate_contract() -> dict[str, Any]:
        return _run("validate_contract")

    @task
    def trace_lineage() -> dict[str, Any]:
        return _run("trace_lineage")

    @task
    def drift_report() -> dict[str, Any]:
        return _run("drift_report")

    @task
    def golden_eval() -> dict[str, Any]:
        return _run("golden_eval")

    @task
    def fairness_audit() -> dict[str, Any]:
        return _run("fairness_audit")

    @task
    def feedback_review() -> dict[str, Any]:
        return _run("feedback_review")

    @task
    def diagnose() -> dict[str, Any]:
        return _run("diagnose")

    @task.branch
    def choose_remediation() -> str:
        return _run("choose_remediation")

    @task
    def rollback() -> dict[str, Any]:
        return _run("rollback")

    @task
    def retrain() -> dict[str, Any]:
        return _run("retrain")

    @task
    def parameter_update() -> dict[str, Any]:
        return _run("parameter_update")

    @task
    def upstream_fix() -> dict[str, Any]:
        return _run("upstream_fix")

    @task
    def guardrail_rule() -> dict[str, Any]:
        return _run("guardrail_rule")

    @task(trigger_rule="none_failed_min_one_success")
    def verify() -> dict[str, Any]:
        return _run("verify")

    # Waits for a person only where the policy requires an approval (SOP: the approver).
    approval = IncidentApproval(task_id="approve_promotion")

    @task(max_active_tis_per_dag=1)  # alias moves of concurrent incidents never interleave
    def promote() -> dict[str, Any]:
        return _run("promote")

    @task
    def restore_traffic() -> dict[str, Any]:
        return _run("restore_traffic")

    @task
    def postmortem() -> dict[str, Any]:
        return _run("postmortem")

    @task
    def close_incident() -> dict[str, Any]:
        return _run("close_incident")

    opened = open_incident()
    investigation = [validate_contract(), trace_lineage(), drift_report(), golden_eval()]
    investigation += [fairness_audit(), feedback_review()]
    branch = choose_remediation()
    opened >> triage() >> contain() >> investigation >> diagnose() >> branch
    restored = restore_traffic()
    (
        branch
        >> [rollback(), retrain(), parameter_update(), upstream_fix(), guardrail_rule()]
        >> verify()
        >> approval
        >> promote()
        >> restored
    )
    # Teardowns: they always run once open_incident succeeded, and never decide the run's state.
    restored >> postmortem().as_teardown(setups=opened) >> close_incident().as_teardown(setups=opened)


incident_response()
