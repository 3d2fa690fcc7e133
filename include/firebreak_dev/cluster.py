"""PostgreSQL and Airflow as separate components: the production shape, on loopback.

What docker-compose.yaml runs, as processes of this machine: the integration tests'
harness. It launches ``initdb``/``pg_ctl``, ``airflow`` and ``mlflow`` as child processes;
it never imports Airflow.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from firebreak.embedded import airflow_env, executable
from firebreak.errors import FirebreakError
from firebreak.settings import Settings
from firebreak_dev.services import HOST, Service, airflow_api_request, airflow_api_token, free_port, stop_all


def postgres_bin_dir() -> Path:
    """Directory of PostgreSQL's server binaries (``initdb``, ``pg_ctl``): Debian keeps them
    under /usr/lib/postgresql/<version>/bin, off PATH."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    if not candidates:
        raise FirebreakError("PostgreSQL is not installed: no initdb (Debian package `postgresql`)")
    return candidates[-1].parent


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of its own on loopback, for the metadata, MLflow and state databases.

    PostgreSQL refuses to run as root: as root, the cluster's files belong to the ``postgres``
    user and its commands run through ``su postgres``.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    user: str = "firebreak"
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    started: bool = False

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        command = [str(postgres_bin_dir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(shlex.quote(a) for a in command)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def _check(self, args: list[str]) -> None:
        done = self._run(args)
        if done.returncode != 0:
            raise FirebreakError(f"{args[0]} failed: {(done.stderr or done.stdout)[-2000:]}")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir / "pgdata"
        pwfile = self.data_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        if not (pgdata / "PG_VERSION").exists():
            self._check(
                [
                    "initdb",
                    "-D",
                    str(pgdata),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            )
        pwfile.unlink()
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses={HOST} -c max_connections=300"
        self._check(["pg_ctl", "start", "-w", "-t", "60", "-D", str(pgdata), "-o", options, "-l", str(self.log_path)])
        self.started = True

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists; returns its SQLAlchemy URL (psycopg2)."""
        psql = ["psql", "-h", str(self.data_dir), "-p", str(self.port), "-U", self.user, "-d", "postgres", "-tA"]
        exists = self._run([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"])
        if exists.stdout.strip() != "1":
            self._check([*psql, "-c", f'CREATE DATABASE "{name}"'])
        return self.url(name)

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}:{self.password}@{HOST}:{self.port}/{database}"

    def stop(self) -> None:
        if self.started:
            self._run(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir / "pgdata")])
            self.started = False


AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class AirflowCluster:
    """Airflow 3 as separate components on PostgreSQL, with an ``mlflow server`` on the same
    cluster: what docker-compose.yaml runs, as processes on loopback.

    The metadata DB, MLflow's backend and Firebreak's state DB are three databases of one
    :class:`PostgresCluster`. ``executor="CeleryExecutor"`` also needs ``broker_url`` (redis)
    and adds a ``celery worker``.

    Only ``active_dags`` are unpaused: the scheduled audits would otherwise run on the
    clock and open incidents of their own beside the ones a test starts.
    """

    settings: Settings
    postgres: PostgresCluster
    executor: str = "LocalExecutor"
    broker_url: str | None = None
    airflow_port: int = field(default_factory=free_port)
    mlflow_port: int = field(default_factory=free_port)
    alert_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    admin_password_value: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    extra_env: dict[str, str] = field(default_factory=dict)
    active_dags: tuple[str, ...] = ("incident_response", "alert_intake")
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def airflow_url(self) -> str:
        return f"http://{HOST}:{self.airflow_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def logs(self) -> Path:
        return self.settings.home / "stack-logs"

    def env(self) -> dict[str, str]:
        env = airflow_env(self.settings)
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url("airflow"),
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "FIREBREAK_STATE_DB_URL": self.postgres.url("firebreak"),
                "MLFLOW_TRACKING_URI": self.mlflow_url,
                "FIREBREAK_ALERT_TOKEN": self.alert_token,
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__API__HOST": HOST,
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__BASE_URL": self.airflow_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # A real scheduler runs here: escalation by Deadline Alerts is on.
                "FIREBREAK_DEADLINE_ALERTS": "on",
            }
        )
        if self.executor == "CeleryExecutor":
            if not self.broker_url:
                raise FirebreakError("CeleryExecutor needs a broker_url (redis://...)")
            env["AIRFLOW__CELERY__BROKER_URL"] = self.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + self.postgres.url("airflow")
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "4"
        env.update(self.extra_env)
        return env

    def component(self, name: str) -> Service:
        """The Service for one Airflow component (``scheduler``, ``celery worker``, ...)."""
        args = [executable("airflow"), *name.split()]
        health = f"{self.airflow_url}/api/v2/monitor/health" if name == "api-server" else ""
        return Service(name, args, self.env(), health, self.logs / f"{name.replace(' ', '-')}.log")

    def start(self, timeout: float = 240) -> None:
        for database in ("airflow", "mlflow", "firebreak"):
            self.postgres.create_database(database)
        env = self.env()
        airflow_home = Path(env["AIRFLOW_HOME"])
        airflow_home.mkdir(parents=True, exist_ok=True)
        # SimpleAuthManager reads the admin password from this file: a known one for the API and UI.
        (airflow_home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({"admin": self.admin_password_value})
        )
        airflow = executable("airflow")
        for args in (["db", "migrate"], ["dags", "reserialize"]):
            done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise FirebreakError(f"airflow {' '.join(args)} failed: {done.stderr[-2000:]}")
        self.services["mlflow"] = Service(
            "mlflow",
            [
                executable("mlflow"),
                "server",
                "--backend-store-uri",
                self.postgres.url("mlflow"),
                "--artifacts-destination",
                str(self.settings.home / "mlartifacts"),
                "--serve-artifacts",
                "--host",
                HOST,
                "--port",
                str(self.mlflow_port),
                "--workers",
                "1",
            ],
            env,
            f"{self.mlflow_url}/health",
            self.logs / "mlflow.log",
        )
        names = list(AIRFLOW_COMPONENTS) + (["celery worker"] if self.executor == "CeleryExecutor" else [])
        for name in names:
            self.services[name] = self.component(name)
        for service in self.services.values():
            service.start()
        try:
            self.wait_healthy(timeout)
            token = self.api_token()
            for dag_id in self.active_dags:
                self.api_request("PATCH", f"/api/v2/dags/{dag_id}", token, {"is_paused": False})
        except (FirebreakError, urllib.error.URLError):
            self.stop()
            raise

    def wait_healthy(self, timeout: float = 120) -> None:
        """Until MLflow answers and Airflow reports its scheduler, dag-processor and triggerer healthy."""
        deadline = time.monotonic() + timeout
        for service in self.services.values():
            if service.health_url:
                self._wait(service, deadline)
        while True:
            for service in self.services.values():
                self._alive(service)
            if self.components_healthy():
                return
            if time.monotonic() > deadline:
                raise FirebreakError(f"Airflow components not healthy after {timeout:.0f} s; see {self.logs}")
            time.sleep(1)

    def components_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.airflow_url}/api/v2/monitor/health", timeout=5) as response:
                health = json.loads(response.read())
        except (urllib.error.URLError, OSError, TimeoutError, ValueError):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all(health.get(p, {}).get("status") == "healthy" for p in parts)

    def _alive(self, service: Service) -> None:
        if service.process is not None and service.process.poll() is not None:
            raise FirebreakError(f"{service.name} exited with {service.process.returncode}; see {service.log_path}")

    def _wait(self, service: Service, deadline: float) -> None:
        while not service.healthy():
            self._alive(service)
            if time.monotonic() > deadline:
                raise FirebreakError(f"{service.name} not healthy in time; see {service.log_path}")
            time.sleep(0.5)

    def restart(self, name: str, timeout: float = 120) -> None:
        """Start a stopped or killed component again (a fault-recovery drill)."""
        service = self.services[name]
        service.stop()
        service.start()
        deadline = time.monotonic() + timeout
        if service.health_url:
            self._wait(service, deadline)

    def kill(self, name: str) -> None:
        """SIGKILL one component and everything it started, as a crash would."""
        service = self.services[name]
        if service.process is not None and service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop every component at once; the PostgreSQL cluster is the caller's to stop."""
        stop_all(reversed(list(self.services.values())))

    def api_token(self) -> str:
        """A JWT for Airflow's REST API, as the admin user."""
        return airflow_api_token(self.airflow_url, self.admin_password_value)

    def api_request(
        self, method: str, path: str, token: str, body: dict[str, object] | None = None
    ) -> dict[str, object]:
        """Call Airflow's REST API; raises urllib.error.HTTPError on 4xx/5xx."""
        return airflow_api_request(self.airflow_url, method, path, token, body, timeout=30)

    def trigger(self, dag_id: str, conf: dict[str, object], run_id: str, token: str) -> dict[str, object]:
        return self.api_request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", token, {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )

    def wait_for_run(self, dag_id: str, run_id: str, token: str, timeout: float = 600) -> str:
        """Poll a run until it finishes; returns its state (``success`` / ``failed``)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.api_request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token)
            if run["state"] in ("success", "failed"):
                return str(run["state"])
            if time.monotonic() > deadline:
                raise FirebreakError(f"run {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(2)

    def task_states(self, dag_id: str, run_id: str, token: str) -> dict[str, str | None]:
        body = self.api_request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100", token)
        instances = body["task_instances"]
        assert isinstance(instances, list)
        return {str(ti["task_id"]): ti["state"] for ti in instances}
