"""Imports paid once per scheduler or Celery worker, not once per incident task.

Airflow's LocalExecutor forks its worker processes from the scheduler when the scheduler
starts, and each worker forks every task it runs; a Celery worker forks its pool the same
way. A module imported before those forks is already in every task. Left alone, each task of
``incident_response`` imports pandas, scikit-learn, MLflow, skops, Great Expectations or
Evidently for itself: in a fork of a process holding the scheduler's modules, about 6 s for
a task that loads a model and about 0.1 s with them preloaded (``benchmarks/bench_task_start.py``).

Airflow imports ``airflow_local_settings`` while it initialises, in every process
(``config/airflow_local_settings.py`` of this repo, on ``sys.path`` through
:func:`firebreak.embedded.airflow_env` and the compose file's ``config`` mount). That module
calls :func:`preload`, which acts only in the components that fork tasks. It runs inside
Airflow's own import, so nothing here imports Airflow, and a module that fails to import is
left for the task to import (and to fail on) itself. Only third-party libraries are preloaded:
Firebreak's own modules are imported by each task, so a task runs the code deployed now, not
the code of when the scheduler started (the compose file mounts ``include/`` for that).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from firebreak.quiet_import import import_quietly

log = logging.getLogger(__name__)

# The third-party libraries the stages import (lazily); none of Firebreak's own modules.
MODULES = (
    "evidently",
    "evidently.presets",
    "great_expectations",
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.pipeline",
    "skops.io",
    "fairlearn.metrics",
)
# ``FIREBREAK_PRELOAD=off`` turns it off (a component then starts seconds sooner; each task pays instead).
SWITCH = "FIREBREAK_PRELOAD"


def forks_tasks(argv: Sequence[str]) -> bool:
    """Whether the ``airflow`` command in ``argv`` is a component that forks tasks: the scheduler (its
    LocalExecutor) or a Celery worker."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    return words[:1] == ["scheduler"] or words[:2] == ["celery", "worker"]


def preload(argv: Sequence[str]) -> list[str]:
    """Import :data:`MODULES`, quietly, if ``argv`` is a component that forks tasks; returns what was imported."""
    if os.environ.get(SWITCH, "on").lower() == "off" or not forks_tasks(argv):
        return []
    done = []
    for name in MODULES:
        try:
            import_quietly(name)
        except Exception as exc:  # noqa: BLE001 — a preload never stops Airflow: the task imports it again
            log.warning("firebreak preload: %s not imported (%s); tasks import it themselves", name, exc)
        else:
            done.append(name)
    return done
