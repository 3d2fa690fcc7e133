"""Test environment: an isolated Airflow home and Firebreak home, set before Airflow is imported.

Airflow reads its configuration at import time, so the variables are set here at module
level; each test then gets its own ``FIREBREAK_HOME`` (state DB, MLflow, prediction log).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="firebreak-airflow-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_AIRFLOW_HOME / "logs"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "firebreak-tests-only-jwt-secret",
        "GIT_PYTHON_REFRESH": "quiet",
        # dag.test() runs no scheduler to fire Deadline Alerts, and Airflow 3.3.2's dag.test() fails at
        # the end of a successful run of a DAG that has them; the real-scheduler tests switch them on.
        "FIREBREAK_DEADLINE_ALERTS": "off",
    }
)
for _var in (
    "FIREBREAK_HOME",
    "FIREBREAK_POLICIES_DIR",
    "FIREBREAK_STATE_DB_URL",
    "MLFLOW_TRACKING_URI",
    "FIREBREAK_ARTIFACT_ROOT",
):
    os.environ.pop(_var, None)


LAYERS = ("dags", "unit", "integration", "e2e")
# `make test` runs test files on two workers (pytest-xdist, --dist loadfile): the longest
# modules start first so that neither worker is left with one of them at the end.
LONGEST_FIRST = ("integration", "e2e", "unit", "dags")
LONGEST_MODULE = "integration/test_production_stack.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test is marked with its layer: the folder under tests/ it lives in (``-m unit``, ``-m e2e``...)."""
    for item in items:
        parts = item.path.relative_to(REPO / "tests").parts
        if len(parts) < 2 or parts[0] not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live under tests/<layer>/, one of {', '.join(LAYERS)}")
        item.add_marker(getattr(pytest.mark, parts[0]))
    items.sort(key=_start_order)


def _start_order(item: pytest.Item) -> int:
    """Where a test starts in the run (a stable sort: the order inside a layer stays the files')."""
    relative = item.path.relative_to(REPO / "tests").as_posix()
    return -1 if relative == LONGEST_MODULE else LONGEST_FIRST.index(relative.split("/", 1)[0])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def firebreak_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FIREBREAK_HOME for one test: its own state DB, MLflow and prediction log."""
    home = tmp_path / "firebreak"
    monkeypatch.setenv("FIREBREAK_HOME", str(home))
    # Explicit, because mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI to the process
    # environment (MLflow 3.17): without this, a test would inherit the previous test's MLflow.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A migrated Airflow metadata DB (SQLite) for dag.test()."""
    from airflow.utils import db

    db.resetdb()
    yield


def _serialize_dags() -> None:
    """Serialize the repo's DAGs into the metadata DB, as the dag-processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        assert bag.import_errors == {}, bag.import_errors
        sync_bag_to_db(bag, bundle.name, bundle.version)


@pytest.fixture(scope="session")
def airflow_dags(airflow_db: None) -> None:
    """The repo's DAGs serialized into the metadata DB once per worker, as the dag-processor would."""
    _serialize_dags()


@pytest.fixture
def fresh_dags(airflow_dags: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repo's DAGs serialized again for this test, as the dag-processor re-parses them.

    For a test whose DAG triggers ``incident_response``: the run's conf is validated against
    the serialized DAG, whose ``model`` choices are the policies it was parsed with, and
    ``dag.test()`` of an earlier test on this worker may have stored it seconds ago with that
    test's policies (a folder holding only ``loan_approval``). Airflow skips a DAG written
    less than ``min_serialized_dag_update_interval`` (30 s) ago: 0 here.
    """
    with monkeypatch.context() as scoped:
        scoped.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
        _serialize_dags()


def system_binary(name: str) -> str:
    """Path of a system binary a real-peer test needs.

    Missing on a laptop: the test skips and says why. Missing in CI
    (``FIREBREAK_REQUIRE_SYSTEM=1``, set by ``.ci/run`` after installing it): the test fails.
    """
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (Debian package; .ci/run installs it)"
    if os.environ.get("FIREBREAK_REQUIRE_SYSTEM") == "1":
        pytest.fail(f"FIREBREAK_REQUIRE_SYSTEM=1 but {reason}")
    pytest.skip(reason)
