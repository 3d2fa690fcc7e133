"""The local stack behind ``make up``: what it unpauses, what it stops, where its secrets live.

Runs the real ``airflow`` commands of this environment against a SQLite metadata DB (the
same steps ``make up`` takes before it starts the services), and real child processes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_up_unpauses_every_dag_it_runs_and_keeps_the_password_private(
    firebreak_home: Path, tmp_path: Path
) -> None:
    from firebreak.embedded import executable
    from firebreak.settings import Settings
    from firebreak_dev.local import RUN_DAGS, LocalStack

    stack = LocalStack(Settings.from_env(), airflow_port=18080, mlflow_port=None, alert_token="t")
    airflow = executable("airflow")
    # What `make demo` leaves behind: DAGs first seen by `airflow dags test` are created paused.
    demo_env = {**stack.env(), "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"}
    for args in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([airflow, *args], env=demo_env, capture_output=True, check=True, timeout=300)

    stack.prepare()

    listed = subprocess.run(
        [airflow, "dags", "list", "-o", "json"],
        env=stack.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    table = next(line for line in listed.stdout.splitlines() if line.startswith("["))  # after Airflow's warnings
    paused = {d["dag_id"]: str(d["is_paused"]).lower() == "true" for d in json.loads(table)}
    assert {dag_id: paused.get(dag_id) for dag_id in RUN_DAGS} == dict.fromkeys(RUN_DAGS, False)
    assert {"alert_intake", "golden_dataset_audit", "shadow_evaluation", "feedback_loop_audit"} <= set(RUN_DAGS)

    password_file = firebreak_home / "airflow" / "simple_auth_manager_passwords.json.generated"
    assert _mode(password_file) == 0o600
    password = stack.admin_password()
    assert password and len(password) >= 16


def test_stopping_a_service_stops_every_process_it_started(tmp_path: Path) -> None:
    """A leader that exits on SIGTERM while its child ignores it (like `airflow standalone`'s scheduler)."""
    from firebreak_dev.services import Service

    child_pid = tmp_path / "child.pid"
    child = (
        "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"
    )
    leader = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}, {str(child_pid)!r}]); time.sleep(300)"
    service = Service(
        "stubborn", [sys.executable, "-c", leader], dict(os.environ), "http://127.0.0.1:9/", tmp_path / "logs" / "s.log"
    )
    service.start()
    deadline = time.monotonic() + 30
    while not (child_pid.exists() and child_pid.read_text()):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    pid = int(child_pid.read_text())

    service.stop(timeout=1)

    state = Path(f"/proc/{pid}/stat")
    alive = state.exists() and state.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    assert not alive, f"child {pid} of the stopped service is still running"
    assert _mode(tmp_path / "logs") == 0o700 and _mode(tmp_path / "logs" / "s.log") == 0o600
