"""docs/SOP.md and the incident_response DAG describe the same procedure."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def sop_stage_tasks() -> dict[str, list[str]]:
    """Stage -> task ids from the 'Stages and tasks' table of docs/SOP.md."""
    text = (REPO / "docs" / "SOP.md").read_text()
    section = text.split("## Stages and tasks", 1)[1].split("\n## ", 1)[0]
    stages: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in {"Stage", ""} or set(cells[0]) <= {"-", ":"}:
            continue
        stages[cells[0]] = re.findall(r"`([a-z_]+)`", cells[1])
    return stages


def test_every_stage_has_a_task_and_every_task_a_stage() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["incident_response"]
    stages = sop_stage_tasks()
    assert stages, "docs/SOP.md has no 'Stages and tasks' table"
    empty = [s for s, tasks in stages.items() if not tasks]
    assert empty == [], f"SOP stages without a task: {empty}"
    documented = [t for tasks in stages.values() for t in tasks]
    assert len(documented) == len(set(documented)), "a task is listed under two stages"
    assert sorted(set(documented) - set(dag.task_ids)) == [], "SOP.md names tasks the DAG lacks"
    assert sorted(set(dag.task_ids) - set(documented)) == [], "DAG tasks missing from SOP.md"


def sop_severity_signals() -> dict[str, set[str]]:
    """Severity -> the policy signals the SOP's severity matrix names for it."""
    text = (REPO / "docs" / "SOP.md").read_text()
    section = text.split("## Severity matrix", 1)[1].split("\n## ", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("|")
    ]
    header = rows[0]
    column = header.index("Policy signals")
    return {r[0]: set(re.findall(r"`([a-z_]+)`", r[column])) for r in rows[2:]}


def applies(signal: str, policy) -> bool:  # type: ignore[no-untyped-def]
    """Whether a model has the signal at all (the SOP table's note says the same in words)."""
    return {
        "sanity_violation_rate": policy.detection.output_floor is not None,
        "guardrail_hit_rate": policy.llm is not None,
        "protected_group_harm": policy.fairness is not None,
        "low_confidence_rate": policy.llm is None,
        "contract_violation_rate": True,
    }[signal]


def test_the_severity_matrix_and_the_policies_agree_both_ways() -> None:
    """Reliability: a protected group harmed was ranked SEV3 although the SOP says SEV1."""
    from firebreak.incidents.enums import Signal
    from firebreak.policy.schema import list_policies, load_policy
    from firebreak.settings import INCLUDE_DIR

    matrix = sop_severity_signals()
    assert set(matrix) == {"SEV1", "SEV2", "SEV3", "SEV4"}
    named = {s for signals in matrix.values() for s in signals}
    assert named == {str(s) for s in Signal}, "the SOP names every triage signal, and only those"
    policies = {m: load_policy(m, INCLUDE_DIR / "policies") for m in list_policies(INCLUDE_DIR / "policies")}
    assert len(policies) == 6
    # Policy -> SOP: a policy ranks each signal at the severity the SOP's matrix gives it.
    ranked = {(m, str(r.severity), str(s)) for m, p in policies.items() for r in p.severity.rules for s in r.when}
    assert sorted((m, sev, s) for m, sev, s in ranked if s not in matrix[sev]) == []
    # SOP -> policy: every model that has a signal ranks it at the SOP's severity.
    missing = [
        (m, sev, s)
        for sev, signals in matrix.items()
        for s in sorted(signals)
        for m, p in policies.items()
        if applies(s, p) and (m, sev, s) not in ranked
    ]
    assert missing == []


def test_every_task_runs_a_library_stage_and_every_stage_has_a_task() -> None:
    """The DAG's tasks and `firebreak.stages.STAGES` name the same steps.

    Two tasks call stages their own way: open_incident takes the run's conf, and
    approve_promotion (Airflow's approval operator) asks with `approval_request` and records
    the answer with `record_approval`.
    """
    from airflow.dag_processing.dagbag import DagBag

    from firebreak.stages import STAGES

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["incident_response"]
    assert sorted(set(dag.task_ids) - {"open_incident", "approve_promotion"}) == sorted(STAGES)
