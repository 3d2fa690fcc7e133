"""Airflow plugin: Firebreak inside the api-server — the alert intake at ``/firebreak/alerts/...``,
the incident console at ``/firebreak/console/`` (an "Incidents" entry in the UI's menu), and
run notes that summarise each incident's outcome.

The logic is in ``firebreak.alerts`` and ``firebreak.console`` (no Airflow there); this
module supplies what only Airflow has: the starter that creates ``incident_response`` runs
with the incident id as run id (a duplicate alert finds the run that exists,
``DagRunAlreadyExists``), the console's login check against Airflow's own auth manager
(plugin apps are not protected by Airflow: anonymous requests get 401, users without the
right 403), the console's access to Airflow's human-in-the-loop approvals, and a listener
that writes the incident's outcome as the DAG run's note. These are internal APIs: the
Airflow version is pinned.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from airflow.listeners import hookimpl
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


# -- the incident console ------------------------------------------------------------------------


async def authenticate(request: Any, act: bool) -> Any:
    """The console's login check: Airflow's JWT, verified by Airflow's auth manager, and its rights.

    Seeing needs read access to ``incident_response`` runs; acting (acknowledge, force the
    breaker, answer an approval) needs edit access, as clearing or marking a run does.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from jwt import ExpiredSignatureError, InvalidTokenError

    from firebreak.console.auth import NotAllowed, Viewer, token_of

    token = token_of(request)
    if not token:
        raise NotAllowed(401, "log in to Airflow first")
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except ExpiredSignatureError as exc:
        raise NotAllowed(401, "your Airflow session expired: log in again") from exc
    except InvalidTokenError as exc:
        raise NotAllowed(403, "the Airflow token is not valid") from exc

    def allowed(method: str) -> bool:
        return bool(
            manager.is_authorized_dag(
                method=method,  # type: ignore[arg-type]
                access_entity=DagAccessEntity.RUN,
                details=DagDetails(id=DAG_ID),
                user=user,
            )
        )

    can_read, can_act = allowed("GET"), allowed("PUT")
    if not can_read or (act and not can_act):
        raise NotAllowed(403, "your Airflow role may not " + ("act on" if act else "see") + " incidents")
    return Viewer(name=str(user.get_name()), can_act=can_act)


class AirflowApprovals:
    """Human-in-the-loop approvals of the incident's run, through Airflow's own REST API.

    Calls go to this api-server with the viewer's own token, so Airflow decides who may
    answer and records who did.
    """

    async def pending(self, request: Any, incident: Any) -> Any:
        if not incident.dag_run_id:
            return []
        # Any DAG's approval step on the incident's run id ("~": every DAG): incident_response's
        # own, or a team's approval DAG run under the incident id.
        path = f"/api/v2/dags/~/dagRuns/{urllib.parse.quote(incident.dag_run_id, safe='')}/hitlDetails"
        try:
            found = await asyncio.to_thread(_airflow_call, request, "GET", path, None)
        except (urllib.error.URLError, OSError, ValueError):
            return None  # Airflow's API not reachable from here: the page shows the waiting state only
        from firebreak.console.approvals import PendingApproval

        return [
            PendingApproval(
                dag_id=str(d["task_instance"]["dag_id"]),
                task_id=str(d["task_instance"]["task_id"]),
                map_index=int(d["task_instance"].get("map_index", -1)),
                subject=str(d.get("subject") or "approval"),
                body=str(d.get("body") or ""),
                options=[str(o) for o in d.get("options", [])],
            )
            for d in found.get("hitl_details", [])
            if not d.get("response_received")
        ]

    async def answer(self, request: Any, incident: Any, task_id: str, map_index: int, choice: str, reason: str) -> str:
        from firebreak.console.approvals import option_for
        from firebreak.errors import ActionRefused

        waiting = await self.pending(request, incident)
        match = next((w for w in waiting or [] if w.task_id == task_id and w.map_index == map_index), None)
        if match is None:
            raise ActionRefused("no approval is waiting there (answered already, or timed out)")
        option = option_for(choice, match.options)
        if option is None:
            raise ActionRefused(f"the approval offers no option to {choice}: {match.options}")
        path = (
            f"/api/v2/dags/{urllib.parse.quote(match.dag_id, safe='')}/dagRuns/"
            f"{urllib.parse.quote(incident.dag_run_id, safe='')}/taskInstances/"
            f"{urllib.parse.quote(task_id, safe='')}/{map_index}/hitlDetails"
        )
        try:
            await asyncio.to_thread(_airflow_call, request, "PATCH", path, {"chosen_options": [option]})
        except urllib.error.HTTPError as exc:
            raise ActionRefused(f"Airflow refused the answer ({exc.code})") from exc
        return option


def _airflow_call(request: Any, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """Airflow's REST API on this api-server, as the viewer (their token)."""
    from firebreak.console.auth import token_of

    base = f"{request.url.scheme}://{request.url.netloc}"
    call = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token_of(request)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(call, timeout=30) as response:
        return dict(json.loads(response.read()))


class RunNotes:
    """When an incident's run ends, its note says the outcome (Airflow shows it on the run)."""

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        _note(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        _note(dag_run)


def _note(dag_run: Any) -> None:
    if dag_run.dag_id != DAG_ID:
        return
    from firebreak.errors import FirebreakError
    from firebreak.incidents.identity import incident_id_from_conf
    from firebreak.incidents.notes import run_note
    from firebreak.settings import Settings

    try:
        note = run_note(incident_id_from_conf(dag_run.conf or {}, dag_run.run_id), Settings.from_env())
    except FirebreakError:
        return  # a bad request never opened an incident: nothing to summarise
    from sqlalchemy.orm import object_session

    # The scheduler hands the run in its own session (it holds the run's row lock): the note
    # commits with the run's final state. dag.test() hands a detached run; the embedded
    # runner (firebreak.embedded_run) writes its note once the run is over.
    if note and object_session(dag_run) is not None:
        dag_run.note = note


def _firebreak_app() -> Any:
    from firebreak.alerts.api import create_app
    from firebreak.console.app import create_app as create_console

    app = create_app(start_incident, deliver=deliver_notifications)
    app.mount("/console", create_console(authenticate, AirflowApprovals(), deliver=deliver_notifications))
    return app


class FirebreakAlertsPlugin(AirflowPlugin):
    name = "firebreak_alerts"
    fastapi_apps = [{"app": _firebreak_app(), "url_prefix": "/firebreak", "name": "Firebreak alert intake and console"}]
    external_views = [
        {
            "name": "Incidents",
            "href": "/firebreak/console/",
            "url_route": "firebreak-incidents",  # the UI shows it at /plugin/firebreak-incidents
            "destination": "nav",
            "nav_top_level": True,
            "icon": "/firebreak/console/static/icon.svg",
        }
    ]
    listeners = [RunNotes()]
