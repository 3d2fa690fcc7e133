"""The scheduler and Celery workers import what incident tasks need before forking them; nothing else does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firebreak import task_preload
from firebreak.embedded import airflow_env
from firebreak.settings import Settings


@pytest.mark.parametrize(
    ("argv", "forks"),
    [
        (["airflow", "scheduler"], True),
        (["/venv/bin/airflow", "scheduler", "--num-runs", "5"], True),
        (["airflow", "celery", "worker", "--concurrency", "4"], True),
        (["airflow", "api-server"], False),
        (["airflow", "dag-processor"], False),
        (["airflow", "triggerer"], False),
        (["airflow", "celery", "flower"], False),
        (["airflow", "db", "migrate"], False),
        (["/repo/include/firebreak/embedded_run.py", "incident_response", "run", "{}"], False),
        (["airflow"], False),
    ],
)
def test_only_the_components_that_fork_tasks_preload(argv: list[str], forks: bool) -> None:
    assert task_preload.forks_tasks(argv) is forks


def test_a_scheduler_imports_every_module_the_tasks_need(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(task_preload.SWITCH, raising=False)
    assert task_preload.preload(["airflow", "api-server"]) == []
    assert task_preload.preload(["airflow", "scheduler"]) == [*task_preload.MODULES, "skops.io"]
    monkeypatch.setenv(task_preload.SWITCH, "off")
    assert task_preload.preload(["airflow", "scheduler"]) == []


def test_airflow_started_by_firebreak_finds_the_local_settings(firebreak_home: Path) -> None:
    """Through airflow_env (every stack Firebreak starts), Airflow imports config/airflow_local_settings.py;
    an api-server's argv leaves the heavy modules out of it."""
    env = airflow_env(Settings.from_env())
    script = (
        "import sys, json; sys.argv = ['airflow', 'api-server']; import airflow; "
        "print(json.dumps([m in sys.modules for m in ('airflow_local_settings', 'evidently', 'mlflow')]))"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [True, False, False]
