"""The local stack on loopback: Airflow (with the alert intake plugin) and the MLflow UI.

Used by ``make up`` (``python -m firebreak_dev up``), the real-peer integration tests and
the intake benchmark. It launches the ``airflow`` and ``mlflow`` commands of this
environment as child processes; it never imports Airflow.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field

from firebreak.embedded import airflow_env, executable
from firebreak.errors import FirebreakError
from firebreak.settings import Settings
from firebreak_dev.services import HOST, Service, airflow_api_request, airflow_api_token, stop_all

# What the local stack exists to run: incidents, the alert inbox (the gateway's breaker alerts)
# and the three audits. A DAG first seen by `airflow dags test` (the demo) was created paused,
# and a paused DAG leaves its runs queued and its asset watcher idle.
RUN_DAGS = ("incident_response", "alert_intake", "golden_dataset_audit", "shadow_evaluation", "feedback_loop_audit")
# For a stack whose DAG and policy files are all written before it starts (the tests'): the
# dag-processor parses a file again only when it changes (the default re-parses every file
# every 30 s, about 2.7 s of CPU a round for the repo's DAGs). Not for a stack that unpauses
# a DAG with an asset watcher after its first parse: Airflow registers a watcher's trigger
# when it parses an unpaused DAG, so the inbox would go unwatched until the next parse.
STATIC_DAGS = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600"}
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"


@dataclass
class LocalStack:
    """Airflow standalone + MLflow UI on loopback, sharing the demo's FIREBREAK_HOME."""

    settings: Settings
    airflow_port: int = 8080
    mlflow_port: int | None = 5000
    alert_token: str = field(
        default_factory=lambda: os.environ.get("FIREBREAK_ALERT_TOKEN") or secrets.token_urlsafe(24)
    )
    jwt_secret: str = field(
        default_factory=lambda: os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET") or secrets.token_hex(32)
    )
    unpause: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. another DAGs folder, for a test
    services: list[Service] = field(default_factory=list)

    @property
    def airflow_url(self) -> str:
        return f"http://{HOST}:{self.airflow_port}"

    @property
    def mlflow_url(self) -> str | None:
        return f"http://{HOST}:{self.mlflow_port}" if self.mlflow_port else None

    @property
    def intake_url(self) -> str:
        return f"{self.airflow_url}/firebreak/alerts"

    def env(self) -> dict[str, str]:
        env = airflow_env(self.settings)
        env.update(
            {
                "FIREBREAK_ALERT_TOKEN": self.alert_token,
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__API__HOST": HOST,
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__BASE_URL": self.airflow_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(not self.unpause),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # A real scheduler runs here: escalation by Deadline Alerts is on.
                "FIREBREAK_DEADLINE_ALERTS": "on",
            }
        )
        env["MLFLOW_TRACKING_URI"] = self.settings.mlflow_tracking_uri
        env.update(self.extra_env)
        return env

    def prepare(self) -> None:
        """Migrate the metadata DB, serialize the DAGs, unpause what the stack runs, write the admin password.

        The password file is written here, owner-only, before Airflow starts: Airflow then
        finds it and never prints a generated password into the stack's log.
        """
        env = self.env()
        airflow = executable("airflow")
        self._write_password_file()
        steps = [["db", "migrate"], ["dags", "reserialize"]]
        if self.unpause:  # one command for all of them: each `airflow` start costs seconds
            steps += [["dags", "unpause", "--treat-dag-id-as-regex", "--yes", f"^({'|'.join(RUN_DAGS)})$"]]
        for args in steps:
            done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise FirebreakError(f"airflow {' '.join(args)} failed: {done.stderr[-2000:]}")

    def _write_password_file(self) -> None:
        path = self.settings.home / "airflow" / PASSWORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"admin": secrets.token_urlsafe(16)}, f)
        os.chmod(path, 0o600)  # also a file an earlier Airflow wrote world-readable

    def start(self, timeout: float = 120) -> None:
        env = self.env()
        logs = self.settings.home / "stack-logs"
        airflow = executable("airflow")
        self.prepare()
        self.services = [
            Service(
                "airflow",
                [airflow, "standalone"],
                env,
                f"{self.airflow_url}/api/v2/monitor/health",
                logs / "airflow.log",
            )
        ]
        if self.mlflow_port:
            self.services.append(
                Service(
                    "mlflow",
                    [
                        executable("mlflow"),
                        "ui",
                        "--host",
                        HOST,
                        "--port",
                        str(self.mlflow_port),
                        "--workers",
                        "1",
                        "--backend-store-uri",
                        self.settings.mlflow_tracking_uri,
                    ],
                    env,
                    f"{self.mlflow_url}/health",
                    logs / "mlflow.log",
                )
            )
        for service in self.services:
            service.start()
        deadline = time.monotonic() + timeout
        for service in self.services:
            while not service.healthy():
                assert service.process is not None
                if service.process.poll() is not None:
                    self.stop()
                    raise FirebreakError(
                        f"{service.name} exited with {service.process.returncode}; see {service.log_path}"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise FirebreakError(f"{service.name} not healthy after {timeout:.0f} s; see {service.log_path}")
                time.sleep(0.5)

    def stop(self) -> None:
        stop_all(reversed(self.services))

    def admin_password(self) -> str | None:
        path = self.settings.home / "airflow" / PASSWORD_FILE
        try:
            return str(json.loads(path.read_text()).get("admin"))
        except (OSError, ValueError):
            return None

    def api_token(self) -> str:
        """A JWT for Airflow's REST API, as the admin user."""
        return airflow_api_token(self.airflow_url, self.admin_password())

    def api_get(self, path: str, token: str) -> dict[str, object]:
        return self.api_request("GET", path, token)

    def api_request(
        self, method: str, path: str, token: str, body: dict[str, object] | None = None
    ) -> dict[str, object]:
        """Call Airflow's REST API; raises urllib.error.HTTPError on 4xx/5xx.

        ``airflow standalone`` answers from one process on SQLite: while the scheduler writes a
        burst of runs it can take tens of seconds, so a call waits up to a minute.
        """
        return airflow_api_request(self.airflow_url, method, path, token, body, timeout=60)
