"""Where Firebreak keeps its state: one settings object, read from the environment.

Embedded defaults put everything under ``$FIREBREAK_HOME`` (default ``./.firebreak``):
SQLite files for MLflow and the state DB, local folders for artifacts, the
prediction log and post-mortems. Production points the URLs at PostgreSQL and an
MLflow server instead.

``FIREBREAK_HOME`` is resolved to an absolute path once per process (the first time it is
read): a relative value, or the default, means the working directory *then*, so code that
changes directory later still finds the same state, and every child process is handed the
absolute path (:func:`firebreak.embedded.airflow_env`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# include/ — the folder that holds this package, the policies, contracts and golden sets.
INCLUDE_DIR = Path(__file__).resolve().parents[1]
HOME_ENV = "FIREBREAK_HOME"
DEFAULT_HOME = ".firebreak"

# The value of FIREBREAK_HOME as first read -> the absolute path it meant then.
_resolved_homes: dict[str, Path] = {}


def resolve_home(raw: str | None = None) -> Path:
    """``FIREBREAK_HOME`` (or ``raw``) as an absolute path, resolved against the working directory once.

    A relative home used to follow the working directory, so a command run from another
    folder silently got an empty state. Absolute values pass through unchanged.
    """
    value = raw if raw is not None else os.environ.get(HOME_ENV, DEFAULT_HOME)
    if value not in _resolved_homes:
        _resolved_homes[value] = Path(value).expanduser().resolve()
    return _resolved_homes[value]


@dataclass(frozen=True)
class Settings:
    """Resolved locations of every store Firebreak uses."""

    home: Path
    policies_dir: Path
    state_db_url: str
    mlflow_tracking_uri: str
    artifact_root: Path
    # Where people open the Airflow and MLflow UIs (links in post-mortems and the console):
    # FIREBREAK_AIRFLOW_URL / FIREBREAK_MLFLOW_URL, else Airflow's own base URL and an HTTP
    # tracking URI, else the local stack's defaults (`make up`).
    airflow_url: str = "http://127.0.0.1:8080"
    mlflow_url: str = "http://127.0.0.1:5000"
    prediction_log_location: str | None = None  # FIREBREAK_PREDICTION_LOG_URL; None: prediction_log_dir

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from ``FIREBREAK_*`` and ``MLFLOW_TRACKING_URI``."""
        home = resolve_home()
        return cls(
            home=home,
            policies_dir=Path(os.environ.get("FIREBREAK_POLICIES_DIR", INCLUDE_DIR / "policies")).resolve(),
            state_db_url=os.environ.get("FIREBREAK_STATE_DB_URL", f"sqlite:///{home / 'state.db'}"),
            mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
            artifact_root=Path(os.environ.get("FIREBREAK_ARTIFACT_ROOT", home / "mlartifacts")).resolve(),
            airflow_url=_ui_url("FIREBREAK_AIRFLOW_URL", os.environ.get("AIRFLOW__API__BASE_URL"), cls.airflow_url),
            mlflow_url=_ui_url("FIREBREAK_MLFLOW_URL", os.environ.get("MLFLOW_TRACKING_URI"), cls.mlflow_url),
            prediction_log_location=os.environ.get("FIREBREAK_PREDICTION_LOG_URL") or None,
        )

    def airflow_run_url(self, dag_id: str, run_id: str) -> str:
        """The Airflow UI page of one DAG run."""
        return f"{self.airflow_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def mlflow_run_url(self, experiment_id: str, run_id: str) -> str:
        """The MLflow UI page of one run."""
        return f"{self.mlflow_url}/#/experiments/{quote(experiment_id, safe='')}/runs/{quote(run_id, safe='')}"

    def ensure_home(self) -> bool:
        """Create the home folder when it does not exist yet; True when this call created it.

        The ``firebreak`` command prints the path when it does, so a state that starts empty
        because of where the command ran is never silent.
        """
        if self.home.is_dir():
            return False
        self.home.mkdir(parents=True, exist_ok=True)
        return True

    @property
    def prediction_log_dir(self) -> Path:
        """The prediction log's local folder (the embedded default)."""
        return self.home / "predictions"

    @property
    def prediction_log_url(self) -> str:
        """Where the prediction log lives: an fsspec URL (``s3://bucket/log``) or the local folder."""
        return self.prediction_log_location or str(self.prediction_log_dir)

    @property
    def rejected_log_dir(self) -> Path:
        """Requests the serving gateway refused (contract, size), with the reason."""
        return self.home / "rejected"

    @property
    def shadow_log_dir(self) -> Path:
        """The challenger's shadow answers, keyed by the request id they shadowed."""
        return self.home / "shadow"

    @property
    def alert_inbox_dir(self) -> Path:
        """Alert files the ``alert_intake`` DAG's asset watcher claims."""
        return self.home / "alert-inbox"

    @property
    def labels_dir(self) -> Path:
        return self.home / "labels"

    @property
    def feedback_dir(self) -> Path:
        return self.home / "feedback"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def postmortem_dir(self) -> Path:
        return self.home / "postmortems"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"

    def resolve(self, path: str | Path) -> Path:
        """Resolve a policy path: absolute as is, ``include/...`` from the repo, ``policies/...``
        under ``FIREBREAK_POLICIES_DIR`` (files ``firebreak onboard`` writes beside the policy for
        review), else under home."""
        p = Path(path)
        if p.is_absolute():
            return p
        if p.parts and p.parts[0] == "include":
            return INCLUDE_DIR.parent / p
        if p.parts and p.parts[0] == "policies":
            return self.policies_dir.joinpath(*p.parts[1:])
        return self.home / p


def _ui_url(variable: str, fallback: str | None, default: str) -> str:
    """An explicit UI URL, else ``fallback`` when it is an HTTP URL, else the local default; no trailing slash."""
    for candidate in (os.environ.get(variable), fallback):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate.rstrip("/")
    return default
