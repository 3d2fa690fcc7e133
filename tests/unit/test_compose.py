"""docker-compose.yaml stays a valid, complete description of the local stack.

No Docker engine runs here, so this checks structure, not containers: the services a user
expects, their dependencies, and that every bind mount points at something in the repo.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_services_in_the_shape_of_the_official_airflow_file() -> None:
    services = compose()["services"]
    expected = {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "mlflow",
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
