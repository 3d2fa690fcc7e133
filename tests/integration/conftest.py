"""Shared real servers for the integration layer: one PostgreSQL cluster per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import system_binary


def artifacts_dir(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a test keeps what a human may want to look at (screenshots, logs):
    ``$FIREBREAK_TEST_ARTIFACTS/<name>`` when set (CI), else pytest's tmp dir. Printed."""
    root = os.environ.get("FIREBREAK_TEST_ARTIFACTS")
    path = Path(root) / name if root else tmp_path_factory.mktemp(name)
    path.mkdir(parents=True, exist_ok=True)
    print(f"\n[artifacts] {name}: {path}")
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL cluster of the session's own (Debian `postgresql`), on a free loopback port."""
    system_binary("psql")
    from firebreak.errors import FirebreakError
    from firebreak_dev.cluster import PostgresCluster, postgres_bin_dir

    try:
        postgres_bin_dir()
    except FirebreakError as exc:
        if os.environ.get("FIREBREAK_REQUIRE_SYSTEM") == "1":
            pytest.fail(f"FIREBREAK_REQUIRE_SYSTEM=1 but {exc}")
        pytest.skip(str(exc))
    # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
    data = Path(tempfile.mkdtemp(prefix="firebreak-pg-"))
    data.chmod(0o755)
    cluster = PostgresCluster(data)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_api_app(airflow_dags: None) -> Any:
    """Airflow's api-server app with the Firebreak plugins, built once per worker (about 2 s a build).

    Each test opens its own ``TestClient`` on it; the plugins read their tokens and settings
    from the environment on each request, so a test's ``monkeypatch.setenv`` still applies.
    """
    from airflow.api_fastapi.app import create_app

    return create_app()
