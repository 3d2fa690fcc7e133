"""SOP stage *Detect & open*: validate the request, open (or find) the incident, keep its timeline."""

from __future__ import annotations

from typing import Any

from firebreak.errors import RegistryError
from firebreak.incidents.enums import Alias, ClockMark, EventKind, EvidenceKind
from firebreak.incidents.identity import incident_id_from_conf
from firebreak.incidents.request import IncidentRequest
from firebreak.incidents.store import IncidentStore
from firebreak.policy.schema import load_policy
from firebreak.settings import Settings
from firebreak.stages.context import Context


def open_incident(conf: dict[str, Any], *, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Validate the request and the model's policy, then open (or find) the incident.

    Raises before anything is written when the request or the model's policy is bad.
    Returns ``replay=True`` when the incident already exists under another run or is
    closed: the caller must then change nothing.
    """
    from firebreak.registry.mlflow_registry import INCIDENT_EXPERIMENT, Registry

    settings = settings or Settings.from_env()
    request = IncidentRequest.from_conf(conf)
    load_policy(request.model, settings.policies_dir)  # UnknownModelError / PolicyError name the problem
    registry = Registry(settings)
    champion = registry.version_for(request.model, Alias.CHAMPION)
    if champion is None:
        raise RegistryError(f"model {request.model!r} has no '{Alias.CHAMPION}' version in the registry")
    store = IncidentStore(settings.state_db_url)
    incident_id = incident_id_from_conf(conf, run_id)
    created = store.create_incident(
        incident_id=incident_id,
        model=request.model,
        description=request.description,
        dedup_key=request.dedup_key or run_id,
        dag_run_id=run_id,
        dry_run=request.dry_run,
        request=request.model_dump(mode="json"),
    )
    existing = store.get_incident(incident_id)
    assert existing is not None
    if not created and (existing.status.is_final or existing.dag_run_id != run_id):
        store.add_event(
            incident_id, EventKind.REPLAY, f"run {run_id} found the incident already {existing.status}: nothing changed"
        )
        return {"incident_id": incident_id, "replay": True, "status": str(existing.status)}
    if created:
        run = registry.start_incident_run(incident_id, request.model)
        store.update_incident(incident_id, mlflow_run_id=run)
        since = registry.ledger.moved_at(request.model, Alias.CHAMPION, champion.version)
        ctx = Context(incident_id, settings)
        # An alert set `detected` (its startsAt) before the run existed; opened by hand, detection is now.
        ctx.mark(ClockMark.DETECTED, existing.opened_at, "opened by hand")
        ctx.mark(ClockMark.OPENED, existing.opened_at, "incident_response")
        ctx.record(
            EvidenceKind.OPENING,
            {
                "champion_version": champion.version,
                "champion_since": since.isoformat() if since else None,
                "request": request.model_dump(mode="json"),
                "run_id": run_id,
                "mlflow_experiment_id": registry.experiment_id(INCIDENT_EXPERIMENT),  # for links to the run
            },
            f"incident opened for {request.model} (champion v{champion.version}): {request.description or 'no description'}",
        )
        # MLflow shows mlflow.note.content as the run's description.
        ctx.tag_run({"mlflow.note.content": request.description, "firebreak.description": request.description})
    return {"incident_id": incident_id, "replay": False, "model": request.model, "dry_run": request.dry_run}


def record_task_event(incident_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    """Timeline entry from the orchestrator (task started, succeeded, failed); the incident need not exist yet."""
    IncidentStore(Settings.from_env().state_db_url).add_event(incident_id, kind, message, data)
