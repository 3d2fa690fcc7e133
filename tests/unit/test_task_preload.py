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


def test_other_components_and_the_switch_preload_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(task_preload.SWITCH, raising=False)
    assert task_preload.preload(["airflow", "api-server"]) == []
    monkeypatch.setenv(task_preload.SWITCH, "off")
    assert task_preload.preload(["airflow", "scheduler"]) == []


def run_airflow_process(argv: list[str], probe: str) -> object:
    """``import airflow`` in a process started as Firebreak starts Airflow (airflow_env), as ``argv``; returns ``probe``'s value."""
    script = f"import json, sys; sys.argv = {argv!r}; import airflow; print(json.dumps({probe}))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=airflow_env(Settings.from_env()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_scheduler_holds_every_library_the_tasks_need_and_none_of_firebreaks_code(firebreak_home: Path) -> None:
    """The tasks it forks find the libraries loaded, and import Firebreak's own modules themselves
    (so they run the code deployed now, not the code of when the scheduler started)."""
    loaded = run_airflow_process(
        ["airflow", "scheduler"],
        f"[[m for m in {list(task_preload.MODULES)!r} if m not in sys.modules], "
        "sorted(m for m in sys.modules if m.split('.')[0] == 'firebreak')]",
    )
    assert loaded == [[], ["firebreak", "firebreak.quiet_import", "firebreak.task_preload"]]


def test_airflow_started_by_firebreak_finds_the_local_settings(firebreak_home: Path) -> None:
    """Through airflow_env (every stack Firebreak starts), Airflow imports config/airflow_local_settings.py;
    an api-server's process is left without the heavy libraries."""
    found = run_airflow_process(
        ["airflow", "api-server"], "[m in sys.modules for m in ('airflow_local_settings', 'evidently', 'mlflow')]"
    )
    assert found == [True, False, False]
