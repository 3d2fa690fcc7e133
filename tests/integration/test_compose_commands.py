"""Every service of docker-compose.yaml, run outside Docker with the compose file's own command
line and environment, passes the compose file's own healthcheck.

No Docker engine runs here, so the containers' hostnames and ports are mapped onto loopback:
``postgres`` is the session's PostgreSQL cluster, ``redis``/``mlflow``/``airflow-apiserver``/
``gateway``/``alertmanager`` are processes on free ports. Everything else — the argv, the
``x-airflow-common`` environment (CeleryExecutor, result backend, broker, execution API URL),
the Prometheus rule and the Alertmanager receiver — comes from the repo's files. Then one
incident_response task runs on the Celery worker.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, system_binary

# A real scheduler on a shared machine: an incident takes minutes, the stack ~1 min to start.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
# One-shot services run to completion; the rest must stay up and answer their healthcheck.
ONE_SHOT = {"init-databases", "airflow-init"}


# In a container $HOSTNAME is the container's name, which is both Airflow's job hostname
# (airflow.utils.net.get_hostname()) and Celery's node name (socket.gethostname()); here they can differ.
def _airflow_hostname() -> str:
    from airflow.utils.net import get_hostname

    return str(get_hostname())


AIRFLOW_HOSTNAME, CELERY_HOSTNAME = _airflow_hostname(), socket.gethostname()


def command(name: str) -> list[str]:
    value = SERVICES[name]["command"]
    return value.split() if isinstance(value, str) else list(value)


def unescape(text: str) -> str:
    """Compose interpolation: ``${VAR:-default}`` / ``${VAR:?error}`` and ``$$``."""
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), text)
    text = re.sub(
        r"\$\{(\w+):\?[^}]*\}", lambda m: os.environ.get(m.group(1), f"compose-test-{m.group(1).lower()}"), text
    )
    return text.replace("$$", "$")


class Loopback:
    """The compose network's names, mapped onto this machine."""

    def __init__(self, postgres: Any, root: Path) -> None:
        from firebreak_dev.services import free_port

        self.postgres = postgres
        self.root = root
        self.ports = {
            name: free_port() for name in ("redis", "mlflow", "airflow-apiserver", "scheduler-health", "gateway")
        }
        self.ports |= {"alertmanager": free_port(), "prometheus": free_port()}
        self.token_file = root / "firebreak_alert_token"
        self.token_file.write_text("compose-test-alert-token\n")

    def url(self, value: str) -> str:
        """A compose URL rewritten to loopback (a database URL keeps its driver and database)."""
        value = unescape(value)
        db = re.fullmatch(r"(db\+)?(postgresql\+psycopg2)://[^@]+@postgres/(\w+)", value)
        if db:
            return (db.group(1) or "") + self.postgres.url(db.group(3), db.group(2))
        for host, container_port in (
            ("redis", 6379),
            ("mlflow", 5000),
            ("airflow-apiserver", 8080),
            ("gateway", 8000),
            ("alertmanager", 9093),
        ):
            value = value.replace(f"{host}:{container_port}", f"127.0.0.1:{self.ports[host]}")
        return value

    def env(self, name: str) -> dict[str, str]:
        from firebreak.embedded import REPO as STACK_REPO

        env = dict(os.environ)
        env.update({k: self.url(str(v)) for k, v in (SERVICES[name].get("environment") or {}).items()})
        env.update(
            {
                # The container paths of the compose file, on this checkout.
                "AIRFLOW_HOME": str(self.root / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(STACK_REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(STACK_REPO / "plugins"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.root / "airflow" / "logs"),
                "FIREBREAK_HOME": str(self.root / "firebreak"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.ports["airflow-apiserver"]),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.ports["scheduler-health"]),
                "HOSTNAME": CELERY_HOSTNAME if name == "airflow-worker" else AIRFLOW_HOSTNAME,
                "GIT_PYTHON_REFRESH": "quiet",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            }
        )
        if "FIREBREAK_ALERT_TOKEN_FILE" in env:
            env["FIREBREAK_ALERT_TOKEN_FILE"] = str(self.token_file)
        if "MLFLOW_AUTH_CONFIG_PATH" in env:  # the repo's ini, its auth DB on the service's volume here
            ini = (REPO / "deploy" / "mlflow" / Path(env["MLFLOW_AUTH_CONFIG_PATH"]).name).read_text()
            local = self.root / "mlflow-auth"
            local.mkdir(parents=True, exist_ok=True)
            (local / "basic_auth.ini").write_text(ini.replace("sqlite:////mlflow-auth/", f"sqlite:///{local}/"))
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(local / "basic_auth.ini")
        for key in ("FIREBREAK_POLICIES_DIR", "FIREBREAK_ARTIFACT_ROOT"):
            env.pop(key, None)
        return env

    def argv(self, name: str) -> list[str]:
        from firebreak.embedded import executable

        args = [unescape(a) for a in command(name)]
        if name.startswith("airflow-"):
            return [executable("airflow"), *args]
        if name == "redis":
            return [system_binary("redis-server"), *args[1:], "--port", str(self.ports["redis"]), "--bind", "127.0.0.1"]
        if name in ("mlflow", "gateway"):
            args = [executable(args[0]), *args[1:]]
            options = {"--host": "127.0.0.1", "--port": str(self.ports[name])}
            options["--backend-store-uri"] = self.postgres.url("mlflow")
            options["--artifacts-destination"] = str(self.root / "mlartifacts")
            return [
                options.get(prev, a) if prev in options else a for prev, a in zip(["", *args[:-1]], args, strict=True)
            ]
        if name == "prometheus":
            return [system_binary("prometheus"), *[self.flag(a, name) for a in args]]
        if name == "alertmanager":
            return [system_binary("prometheus-alertmanager"), *[self.flag(a, name) for a in args]]
        raise AssertionError(f"no loopback mapping for compose service {name}")

    def flag(self, arg: str, name: str) -> str:
        key, _, value = arg.partition("=")
        if key == "--config.file":
            return f"{key}={self.config(name, value)}"
        if key in ("--storage.tsdb.path", "--storage.path"):
            return f"{key}={self.root / name / 'data'}"
        if key == "--web.listen-address":
            return f"{key}=127.0.0.1:{self.ports[name]}"
        return arg

    def config(self, name: str, container_path: str) -> Path:
        """The repo's config file for ``container_path`` (through the service's bind mount), on loopback."""
        for volume in SERVICES[name]["volumes"]:
            source, target = volume.split(":")[:2]
            if container_path.startswith(target + "/"):
                folder = REPO / source / Path(container_path).relative_to(target).parent
                break
        else:
            raise AssertionError(f"{name}: {container_path} is not mounted from the repo")
        local = self.root / name
        local.mkdir(parents=True, exist_ok=True)
        for file in folder.glob("*.yml"):
            config = yaml.safe_load(file.read_text())
            if name == "prometheus" and "rule_files" in config:
                config["rule_files"] = [str(local / Path(p).name) for p in config["rule_files"]]
                for job in config["scrape_configs"]:
                    for static in job["static_configs"]:
                        static["targets"] = [self.url(t) for t in static["targets"]]
                for am in config["alerting"]["alertmanagers"]:
                    for static in am["static_configs"]:
                        static["targets"] = [self.url(t) for t in static["targets"]]
            if name == "alertmanager":
                for receiver in config["receivers"]:
                    for hook in receiver["webhook_configs"]:
                        hook["url"] = self.url(hook["url"])
                        hook["http_config"]["authorization"]["credentials_file"] = str(self.token_file)
            (local / file.name).write_text(yaml.safe_dump(config))
        return local / Path(container_path).name

    def healthcheck(self, name: str) -> list[str]:
        test = SERVICES[name]["healthcheck"]["test"]
        kind, rest = test[0], [unescape(t) for t in test[1:]]
        port_of = {
            "airflow-apiserver": ("localhost:8080", "airflow-apiserver"),
            "airflow-scheduler": ("localhost:8974", "scheduler-health"),
            "mlflow": ("localhost:5000", "mlflow"),
            "gateway": ("localhost:8000", "gateway"),
            "prometheus": ("localhost:9090", "prometheus"),
            "alertmanager": ("localhost:9093", "alertmanager"),
        }
        if name in port_of:
            container, key = port_of[name]
            rest = [r.replace(container, f"127.0.0.1:{self.ports[key]}") for r in rest]
        if name == "redis":
            rest = [rest[0], "-p", str(self.ports["redis"]), *rest[1:]]
        if name == "postgres":
            rest = [
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.postgres.port),
                "-U",
                self.postgres.user,
                "-d",
                rest[rest.index("-d") + 1],
            ]
        if kind == "CMD-SHELL":
            return ["bash", "-c", rest[0]]
        return rest


@pytest.fixture(scope="module")
def loop(postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from firebreak_dev.services import Service, stop_all

    for binary in ("redis-server", "redis-cli", "prometheus", "prometheus-alertmanager", "curl", "wget"):
        system_binary(binary)
    root = tmp_path_factory.mktemp("compose")
    lb = Loopback(postgres, root)
    logs = root / "logs"
    print(f"\n[artifacts] compose-command logs: {logs}")
    started: dict[str, Service] = {}
    results: dict[str, Any] = {"lb": lb, "services": started, "one_shot": {}}

    def run_one_shot(name: str) -> None:
        if name == "init-databases":
            script = unescape(command(name)[2])
            env = dict(
                os.environ,
                PGHOST="127.0.0.1",
                PGPORT=str(postgres.port),
                PGUSER=postgres.user,
                PGPASSWORD=postgres.password,
                PGDATABASE="postgres",
            )
            results["one_shot"][name] = subprocess.run(
                ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
            )
        else:  # airflow-init: the image's entrypoint is `airflow`; the same two steps on loopback
            env = lb.env(name)
            outputs = []
            for line in unescape(command(name)[1]).splitlines():
                if line.strip().startswith("/entrypoint airflow "):
                    args = line.strip().removeprefix("/entrypoint airflow ").split()
                    outputs.append(subprocess.run(["airflow", *args], env=env, capture_output=True, text=True))
            results["one_shot"][name] = outputs

    def start(name: str) -> None:
        service = Service(name, lb.argv(name), lb.env(name), "", logs / f"{name}.log")
        service.start()
        started[name] = service

    try:
        # The postgres image creates POSTGRES_DB at first start; the local cluster does the same.
        postgres.create_database(SERVICES["postgres"]["environment"]["POSTGRES_DB"])
        run_one_shot("init-databases")
        start("redis")
        start("mlflow")
        run_one_shot("airflow-init")
        for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
            start(name)
        start("airflow-worker")
        # The gateway serves the pricing model: set it up in this MLflow and state DB first.
        wait_healthy(lb, "mlflow", started, 180)
        with pytest.MonkeyPatch.context() as mp:
            # MLflow answers only with the stack's credentials (basic auth): this process logs in as the gateway does.
            for key in (
                "FIREBREAK_HOME",
                "MLFLOW_TRACKING_URI",
                "FIREBREAK_STATE_DB_URL",
                "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD",
            ):
                mp.setenv(key, lb.env("gateway")[key])
            from firebreak.scenarios import pricing
            from firebreak.settings import Settings

            pricing.setup(Settings.from_env())
        start("gateway")
        start("alertmanager")
        start("prometheus")
        yield results
    finally:
        stop_all(reversed(list(started.values())))
        if root_artifacts := os.environ.get("FIREBREAK_TEST_ARTIFACTS"):
            shutil.copytree(logs, Path(root_artifacts) / "compose-command-logs", dirs_exist_ok=True)


def healthy(lb: Loopback, name: str) -> bool:
    done = subprocess.run(
        lb.healthcheck(name),
        env=lb.env(name) if name.startswith("airflow-") else None,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode == 0


def wait_healthy(lb: Loopback, name: str, started: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(lb, name):
        service = started.get(name)
        if service is not None and service.process.poll() is not None:
            log = service.log_path.read_text()[-3000:]
            raise AssertionError(f"{name} ({' '.join(service.args)}) exited {service.process.returncode}:\n{log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not healthy after {timeout:.0f} s: {' '.join(lb.healthcheck(name))}")
        time.sleep(2)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_service_runs_and_passes_its_healthcheck(name: str, loop: dict[str, Any]) -> None:
    lb: Loopback = loop["lb"]
    if name == "init-databases":
        done = loop["one_shot"][name]
        assert done.returncode == 0, done.stderr
        # The script's last query lists the databases (after any CREATE DATABASE it printed).
        assert set(done.stdout.split("\n")[-4:-1]) == {"airflow", "mlflow", "firebreak"}, done.stdout
        return
    if name == "airflow-init":
        outputs = loop["one_shot"][name]
        assert len(outputs) == 2 and all(o.returncode == 0 for o in outputs), [o.stderr[-2000:] for o in outputs]
        return
    wait_healthy(lb, name, loop["services"], 240)
    if name == "prometheus":
        # The rule file loaded, and the gateway is a scrape target.
        rules = subprocess.run(
            ["curl", "-sf", f"http://127.0.0.1:{lb.ports['prometheus']}/api/v1/rules"], capture_output=True, text=True
        )
        assert "FirebreakBreakerOpen" in rules.stdout
        targets = subprocess.run(
            ["curl", "-sf", f"http://127.0.0.1:{lb.ports['prometheus']}/api/v1/targets"], capture_output=True, text=True
        )
        assert f"127.0.0.1:{lb.ports['gateway']}" in targets.stdout


def test_a_task_runs_on_the_celery_worker(loop: dict[str, Any]) -> None:
    """CeleryExecutor from the compose environment: the scheduler queues on redis, the worker runs it."""
    import json
    import urllib.error
    import urllib.request

    lb: Loopback = loop["lb"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker"):
        wait_healthy(lb, name, loop["services"], 240)
    env = lb.env("airflow-apiserver")
    password = "compose-test-admin"
    (Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({"admin": password})
    )
    base = f"http://127.0.0.1:{lb.ports['airflow-apiserver']}"

    def call(method: str, path: str, body: Any = None, token: str = "") -> Any:
        request = urllib.request.Request(
            base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    token = call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
    # A model without a policy is not one of the form's choices: refused before any run exists.
    with pytest.raises(urllib.error.HTTPError) as refused:
        conf = {"model": "no_such_model", "description": "celery check", "dedup_key": "celery-refused"}
        call("POST", "/api/v2/dags/incident_response/dagRuns", {"logical_date": None, "conf": conf}, token)
    assert refused.value.code == 400 and "no_such_model" in refused.value.read().decode()
    # A model with a policy but no champion in this MLflow: open_incident, on the worker, refuses it.
    run_id = "celery-no-champion"
    conf = {"model": "loan_approval", "description": "celery check", "dedup_key": "celery"}
    call(
        "POST",
        "/api/v2/dags/incident_response/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": conf},
        token,
    )
    deadline = time.monotonic() + 300
    while (run := call("GET", f"/api/v2/dags/incident_response/dagRuns/{run_id}", token=token))["state"] not in (
        "success",
        "failed",
    ):
        assert time.monotonic() < deadline, run
        time.sleep(2)
    ti = call("GET", f"/api/v2/dags/incident_response/dagRuns/{run_id}/taskInstances/open_incident", token=token)
    assert run["state"] == "failed" and ti["state"] == "failed"
    assert ti["executor"] in (None, "CeleryExecutor") and ti["hostname"]
    worker_log = loop["services"]["airflow-worker"].log_path.read_text()
    assert run_id in worker_log or "open_incident" in worker_log
