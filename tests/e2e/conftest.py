"""Helpers for whole incidents through ``dag.test()`` on a real (SQLite) Airflow metadata DB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunResult:
    state: str
    task_states: dict[str, str | None]
    note: str = ""  # the run's note, as the Airflow UI shows it


@contextmanager
def firebreak_env(**values: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        yield


def run_incident(conf: dict[str, Any]) -> RunResult:
    """Run incident_response once in-process; return the run's and each task's state."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from firebreak.embedded_run import write_note

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["incident_response"]
    dagrun = dag.test(run_conf=conf)
    write_note("incident_response", dagrun.run_id)  # as the demo's runner does; the scheduler's is the plugin's
    with create_session() as session:
        tis = session.query(TaskInstance).filter(
            TaskInstance.dag_id == "incident_response", TaskInstance.run_id == dagrun.run_id
        )
        states = {ti.task_id: (str(ti.state) if ti.state else None) for ti in tis}
        run = session.query(DagRun).filter(DagRun.dag_id == "incident_response", DagRun.run_id == dagrun.run_id).one()
        note = str(run.note or "")
    check_clocks(dagrun.run_id)
    return RunResult(str(dagrun.state), states, note)


def check_clocks(run_id: str) -> None:
    """Every incident a run opened has a clock that holds together (what its post-mortem shows); a dry run none."""
    from firebreak.incidents.clock import Clock
    from firebreak.incidents.enums import ClockMark, IncidentStatus
    from firebreak.incidents.store import IncidentStore

    store = IncidentStore(settings().state_db_url)
    for incident in (i for i in store.search() if i.dag_run_id == run_id):
        clock = Clock(store.clock(incident.id))
        if incident.dry_run:  # a plan, not an incident anyone is measured by: no clock at all
            assert not clock.marks, f"{incident.id}: a dry run set {sorted(clock.marks)}"
            continue
        assert clock.problems() == [], f"{incident.id}: {clock.problems()}"
        assert {ClockMark.DETECTED, ClockMark.OPENED} <= set(clock.marks), f"{incident.id}: {sorted(clock.marks)}"
        if incident.status == IncidentStatus.RESOLVED:
            assert ClockMark.RESOLVED in clock.marks, f"{incident.id}: resolved, but its clock says not"


def pricing_conf(dedup_key: str, **overrides: Any) -> dict[str, Any]:
    conf = {
        "model": "pricing",
        "failure_type": "unknown",
        "severity": "auto",
        "description": "pricing confidence under the 0.70 floor",
        "remediation": "auto",
        "dry_run": False,
        "dedup_key": dedup_key,
    }
    conf.update(overrides)
    return conf


def settings():  # type: ignore[no-untyped-def]
    from firebreak.settings import Settings

    return Settings.from_env()


__all__ = ["RunResult", "firebreak_env", "run_incident", "pricing_conf", "settings", "os"]
