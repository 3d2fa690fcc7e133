"""The embedded Airflow: Firebreak's DAGs on an Airflow of this environment, state under FIREBREAK_HOME.

What ``firebreak demo`` runs the real ``incident_response`` DAG on, and what
``firebreak airflow-env`` prints for ``eval``. Production runs Firebreak's DAGs on the
team's own Airflow, configured there. This module never imports Airflow: it launches the
``airflow`` command of this environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from firebreak.errors import FirebreakError
from firebreak.settings import INCLUDE_DIR, Settings

REPO = INCLUDE_DIR.parent


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for an embedded Airflow on SQLite whose state lives under FIREBREAK_HOME."""
    airflow_home = settings.home / "airflow"
    env = dict(os.environ)
    env.update(
        {
            "FIREBREAK_HOME": str(settings.home),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Always its own metadata DB: the embedded stack never touches an Airflow configured elsewhere.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "GIT_PYTHON_REFRESH": "quiet",
            # Airflow's own children (standalone, LocalExecutor) call `airflow` from PATH.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # config/airflow_local_settings.py: the scheduler imports what tasks need before forking them.
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "config"), env.get("PYTHONPATH", "")) if p),
        }
    )
    return env


def executable(name: str) -> str:
    """A command of this environment (the venv's bin), else from PATH."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FirebreakError(f"the {name!r} command is not installed in this environment")
    return str(found)


def migrate(settings: Settings) -> subprocess.CompletedProcess[str]:
    """``airflow db migrate`` on the embedded metadata DB (a no-op when it is current)."""
    return subprocess.run(
        [executable("airflow"), "db", "migrate"], env=airflow_env(settings), text=True, capture_output=True, check=False
    )


def run_incident(conf: dict[str, Any], settings: Settings, log_path: Path, run_id: str) -> int:
    """Run the real ``incident_response`` DAG once on the embedded Airflow, as the run ``run_id``.

    In-process ``dag.test()`` through :mod:`firebreak.embedded_run`, so the run in the
    Airflow UI carries the incident id and its note. The conf goes as one argument list
    element, never through a shell. Airflow's output goes to ``log_path``; returns the
    command's exit code (the incident's own outcome is in the state DB).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        result = subprocess.run(
            [sys.executable, "-m", "firebreak.embedded_run", "incident_response", run_id, json.dumps(conf)],
            # No scheduler fires deadlines under a test run (and Airflow 3.3.2's test run fails at the end
            # of a successful run of a DAG that has Deadline Alerts): the run goes without escalation.
            env={**airflow_env(settings), "FIREBREAK_DEADLINE_ALERTS": "off"},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return result.returncode
