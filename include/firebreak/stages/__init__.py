"""The stage layer: one module per SOP stage, each task's function composing calls to the stage packages.

Each stage takes the incident id (and small JSON-able inputs), does one SOP step, persists
its evidence in the state DB (and artifacts in the incident's MLflow run) before it decides
anything, and returns a small dict. A DAG task wraps exactly one of these; the CLI and the
tests call them directly. Every stage is idempotent: a re-run after a heartbeat timeout
changes nothing that is already done. Decisions live in the stage packages
(:mod:`firebreak.containment`, :mod:`firebreak.remediation`, :mod:`firebreak.verification`,
...); what differs between a tabular model and an LLM app, in :mod:`firebreak.kinds`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firebreak.incidents.identity import incident_id_from_conf
from firebreak.stages.closing import close_incident, write_postmortem
from firebreak.stages.containment import contain, restore_traffic
from firebreak.stages.diagnosis import choose_remediation, diagnose
from firebreak.stages.investigation import (
    drift_report,
    fairness_audit,
    feedback_review,
    golden_eval,
    trace_lineage,
    validate_contract,
)
from firebreak.stages.opening import open_incident, record_task_event
from firebreak.stages.promotion import promote
from firebreak.stages.remediation import guardrail_rule, parameter_update, retrain, rollback, upstream_fix
from firebreak.stages.triage import triage
from firebreak.stages.verification import approval_request, record_approval, verify

# The incident_response task ids and the stage each one runs (open_incident takes the run's conf).
STAGES: dict[str, Callable[[str], Any]] = {
    "triage": triage,
    "contain": contain,
    "validate_contract": validate_contract,
    "trace_lineage": trace_lineage,
    "drift_report": drift_report,
    "golden_eval": golden_eval,
    "fairness_audit": fairness_audit,
    "feedback_review": feedback_review,
    "diagnose": diagnose,
    "choose_remediation": choose_remediation,
    "rollback": rollback,
    "retrain": retrain,
    "parameter_update": parameter_update,
    "upstream_fix": upstream_fix,
    "guardrail_rule": guardrail_rule,
    "verify": verify,
    "promote": promote,
    "restore_traffic": restore_traffic,
    "postmortem": write_postmortem,
    "close_incident": close_incident,
}

__all__ = [
    "STAGES",
    "approval_request",
    "choose_remediation",
    "close_incident",
    "contain",
    "diagnose",
    "drift_report",
    "fairness_audit",
    "feedback_review",
    "golden_eval",
    "guardrail_rule",
    "incident_id_from_conf",
    "open_incident",
    "parameter_update",
    "promote",
    "record_approval",
    "record_task_event",
    "restore_traffic",
    "retrain",
    "rollback",
    "trace_lineage",
    "triage",
    "upstream_fix",
    "validate_contract",
    "verify",
    "write_postmortem",
]
