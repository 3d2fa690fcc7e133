"""The local stack on loopback: Airflow (with the alert intake plugin) and the MLflow UI.

Used by ``make up`` (``firebreak up``), the real-peer integration tests and the intake
benchmark. It launches the ``airflow`` and ``mlflow`` commands of this environment as
child processes; it never imports Airflow.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from firebreak.errors import FirebreakError
from firebreak.settings import INCLUDE_DIR, Settings

REPO = INCLUDE_DIR.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for an embedded Airflow on SQLite whose state lives under FIREBREAK_HOME.

    Used by `firebreak demo` and `firebreak up`; production runs Firebreak's DAGs on the
    team's own Airflow, configured there.
    """
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


@dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # A new session: stop() can signal the service and everything it started.
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue


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
            }
        )
        env["MLFLOW_TRACKING_URI"] = self.settings.mlflow_tracking_uri
        return env

    def start(self, timeout: float = 120) -> None:
        env = self.env()
        logs = self.settings.home / "stack-logs"
        airflow = executable("airflow")
        steps = [["db", "migrate"], ["dags", "reserialize"]]
        if self.unpause:  # a DAG first seen by `dags test` was created paused
            steps += [["dags", "unpause", "incident_response"]]
        for args in steps:
            done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise FirebreakError(f"airflow {' '.join(args)} failed: {done.stderr[-2000:]}")
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
        for service in reversed(self.services):
            service.stop()

    def admin_password(self) -> str | None:
        path = self.settings.home / "airflow" / "simple_auth_manager_passwords.json.generated"
        try:
            return str(json.loads(path.read_text()).get("admin"))
        except (OSError, ValueError):
            return None

    def api_token(self) -> str:
        """A JWT for Airflow's REST API, as the admin user."""
        password = self.admin_password()
        request = urllib.request.Request(
            f"{self.airflow_url}/auth/token",
            data=json.dumps({"username": "admin", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["access_token"])

    def api_get(self, path: str, token: str) -> dict[str, object]:
        return self.api_request("GET", path, token)

    def api_request(
        self, method: str, path: str, token: str, body: dict[str, object] | None = None
    ) -> dict[str, object]:
        """Call Airflow's REST API; raises urllib.error.HTTPError on 4xx/5xx."""
        request = urllib.request.Request(
            f"{self.airflow_url}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))
