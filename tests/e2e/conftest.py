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
    return RunResult(str(dagrun.state), states, note)


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
