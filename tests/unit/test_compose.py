"""docker-compose.yaml stays a valid, complete description of the local stack.

No Docker engine runs here, so this checks structure, not containers: the services a user
expects, their dependencies, and that every bind mount points at something in the repo.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_services_in_the_shape_of_the_official_airflow_file() -> None:
    services = compose()["services"]
    expected = {
        "postgres",
        "redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "mlflow",
        "gateway",
        "prometheus",
        "alertmanager",
    }
    assert expected <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}) or {}:
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_bind_mounts_exist_in_the_repo() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and source != "./logs" and not source.startswith("./.firebreak"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_secrets_are_required_not_defaulted() -> None:
    env = compose()["x-airflow-common"]["environment"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${FIREBREAK_JWT_SECRET:?")


def test_valid_against_the_compose_specification_schema() -> None:
    schema = json.loads((REPO / "tests/unit/schemas/compose_spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert errors == [], [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_schema_catches_a_broken_file() -> None:
    """The schema check can fail: a misspelt key and a wrong type are both reported."""
    schema = json.loads((REPO / "tests/unit/schemas/compose_spec.json").read_text())
    broken = compose()
    broken["services"]["redis"]["healthchek"] = broken["services"]["redis"].pop("healthcheck")
    broken["services"]["airflow-worker"]["depends_on"] = "redis"
    messages = [e.message for e in jsonschema.Draft201909Validator(schema).iter_errors(broken)]
    assert any("healthchek" in m for m in messages), messages
    assert len(messages) >= 2, messages


def test_celery_executor_with_postgres_and_redis() -> None:
    env = compose()["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["FIREBREAK_STATE_DB_URL"].startswith("postgresql+psycopg2://")
    services = compose()["services"]
    assert "/api/v2/version" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert services["airflow-worker"]["command"] == "celery worker"
    mlflow = services["mlflow"]["command"]
    assert mlflow[mlflow.index("--backend-store-uri") + 1].startswith("postgresql+psycopg2://")
    assert any(
        v.endswith(":" + mlflow[mlflow.index("--artifacts-destination") + 1]) for v in services["mlflow"]["volumes"]
    )


def test_gateway_is_scraped_and_its_open_breaker_alerts_the_intake() -> None:
    services = compose()["services"]
    assert services["gateway"]["command"][:2] == ["firebreak", "serve"]
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    port = services["gateway"]["command"][services["gateway"]["command"].index("--port") + 1]
    assert f"gateway:{port}" in targets
    rules = yaml.safe_load((REPO / "deploy/prometheus/rules.yml").read_text())
    (breaker,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "FirebreakBreakerOpen"]
    assert "firebreak_breaker_state" in breaker["expr"] and "== 2" in breaker["expr"]
    assert breaker["labels"]["severity"] == "critical"
    alertmanager = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    (hook,) = [w for r in alertmanager["receivers"] for w in r["webhook_configs"]]
    assert hook["url"] == "http://airflow-apiserver:8080/firebreak/alerts/alertmanager"
    # The token is a secret shared by Alertmanager and the api-server, never inline.
    secret = hook["http_config"]["authorization"]["credentials_file"]
    assert secret == "/run/secrets/firebreak_alert_token"
    assert "firebreak_alert_token" in services["alertmanager"]["secrets"]
    assert "firebreak_alert_token" in services["airflow-apiserver"]["secrets"]
    assert services["airflow-apiserver"]["environment"]["FIREBREAK_ALERT_TOKEN_FILE"] == secret


def test_mlflow_requires_authentication_and_is_not_public() -> None:
    """Reliability case 32: anyone who can write to MLflow could register code the workers load."""
    import configparser

    services = compose()["services"]
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_SECRET_KEY:?")
    ini = configparser.ConfigParser()
    ini.read(REPO / "deploy" / "mlflow" / Path(env["MLFLOW_AUTH_CONFIG_PATH"]).name)
    assert ini["mlflow"]["default_permission"] == "NO_PERMISSIONS" and "admin_password" not in ini["mlflow"]
    # Every client of MLflow authenticates with the same required secret.
    for name in ("airflow-worker", "airflow-scheduler", "gateway"):
        client_env = services[name].get("environment") or compose()["x-airflow-common"]["environment"]
        assert client_env["MLFLOW_TRACKING_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"], name
    # UIs nobody outside this host needs are bound to loopback; only Airflow and the gateway are public.
    public = {
        name: [p for p in s.get("ports", []) if not str(p).startswith("127.0.0.1:")] for name, s in services.items()
    }
    assert {name for name, ports in public.items() if ports} == {"airflow-apiserver", "gateway"}
