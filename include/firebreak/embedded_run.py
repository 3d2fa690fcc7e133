"""``python -m firebreak.embedded_run DAG_ID RUN_ID CONF_JSON``: one DAG run, in-process, named RUN_ID.

What ``firebreak demo`` runs the incident on, in place of ``airflow dags test``, so the run
in the Airflow UI carries the incident id (as runs opened by alerts and audits do) rather
than ``manual__<time>``. The one library module that imports Airflow; the CLI launches it
as a child process with the embedded Airflow's environment and never imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock


def main(argv: list[str] | None = None) -> int:
    dag_id, run_id, conf = (argv if argv is not None else sys.argv[1:])[:3]
    from airflow.configuration import conf as airflow_conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    dag = DagBag(dag_folder=str(Path(airflow_conf.get("core", "dags_folder")))).dags[dag_id]
    # Airflow 3.3.2's dag.test() takes no run id and names its run with DagRun.generate_run_id
    # (airflow/sdk/definitions/dag.py); naming it here is the only change to what it does.
    with mock.patch.object(DagRun, "generate_run_id", return_value=run_id):
        run = dag.test(run_conf=json.loads(conf))
    write_note(dag_id, run.run_id)
    print(f"dag run {run.run_id}: {run.state}", flush=True)
    return 0 if str(run.state) == "success" else 1


def write_note(dag_id: str, run_id: str) -> str:
    """The incident's outcome as the finished run's note (the plugin's listener does it for the scheduler)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from firebreak.errors import IncidentNotFound
    from firebreak.incidents.identity import incident_id_from_conf
    from firebreak.incidents.notes import run_note
    from firebreak.settings import Settings

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
        try:
            run.note = run_note(incident_id_from_conf(run.conf or {}, run.run_id), Settings.from_env())
        except IncidentNotFound:  # a refused request opened no incident
            return ""
        return str(run.note)


if __name__ == "__main__":
    raise SystemExit(main())
