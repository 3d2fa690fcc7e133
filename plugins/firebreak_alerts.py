"""Airflow plugin: Firebreak's alert intake inside the api-server, at ``/firebreak/alerts/...``.

The logic is in ``firebreak.alerts`` (no Airflow there); this module only supplies the
starter that creates ``incident_response`` runs with the incident id as run id, so a
duplicate alert finds the run that exists (``DagRunAlreadyExists``) instead of a second one.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

DAG_ID = "incident_response"


def start_incident(run_id: str, conf: dict[str, Any]) -> bool:
    """Create the incident's DAG run; False when it already exists. Internal API: Airflow is pinned."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy.exc import IntegrityError, OperationalError

    from firebreak.alerts.intake import IntakeUnavailable, StartRejected

    try:
        trigger_dag(
            DAG_ID, run_id=run_id, conf=conf, triggered_by=DagRunTriggeredByType.REST_API, replace_microseconds=False
        )
    except DagRunAlreadyExists:
        return False
    except IntegrityError:  # a concurrent duplicate created it between the check and the insert
        return False
    except DagNotFound as exc:  # not parsed yet (new deployment): the sender retries
        raise IntakeUnavailable(f"DAG {DAG_ID} is not available yet: {exc}") from exc
    except OperationalError as exc:  # metadata DB down or locked: the sender retries
        raise IntakeUnavailable(f"Airflow metadata DB unavailable: {exc.orig}") from exc
    except (ValueError, TypeError) as exc:  # Param validation and unknown DAG surface as these
        raise StartRejected(f"incident_response refused the alert's params: {exc}") from exc
    return True


def deliver_notifications(incident_id: str) -> Any:
    """Send an incident's pending notifications (an acknowledgement's page) through Airflow's notifiers."""
    from firebreak.oncall.notifiers import deliver_now

    return deliver_now(incident_id)


def _intake_app() -> Any:
    from firebreak.alerts.api import create_app

    return create_app(start_incident, deliver=deliver_notifications)


class FirebreakAlertsPlugin(AirflowPlugin):
    name = "firebreak_alerts"
    fastapi_apps = [{"app": _intake_app(), "url_prefix": "/firebreak", "name": "Firebreak alert intake"}]
