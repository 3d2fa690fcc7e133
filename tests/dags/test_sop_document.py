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


def test_every_task_runs_a_library_stage_and_every_stage_has_a_task() -> None:
    """The DAG's tasks and `firebreak.stages.STAGES` name the same steps (open_incident takes the run's conf)."""
    from airflow.dag_processing.dagbag import DagBag

    from firebreak.stages import STAGES

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["incident_response"]
    assert sorted(set(dag.task_ids) - {"open_incident"}) == sorted(STAGES)
