"""Airflow's local settings for Firebreak's deployments (``$AIRFLOW_HOME/config`` or ``PYTHONPATH``).

The scheduler and the Celery workers import what incident tasks need once, before they fork
the tasks (:mod:`firebreak.task_preload`); every other Airflow process is left as it is.
"""

import sys

__all__: list[str] = []  # no cluster policies: Airflow reads hooks only from the names listed here


def _preload() -> None:
    from firebreak.task_preload import preload

    preload(sys.argv)


_preload()
