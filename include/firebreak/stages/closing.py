"""SOP stages *Learn* and *Close*: the post-mortem, written whatever happened, and the final status."""

from __future__ import annotations

from typing import Any

from firebreak.incidents.enums import ClockMark, EventKind, EvidenceKind, IncidentStatus
from firebreak.incidents.outcome import final_status
from firebreak.stages.context import Context


def _outcome(ctx: Context) -> tuple[IncidentStatus, str]:
    routing = ctx.routing.get_routing(ctx.model)
    return final_status(
        incident_id=ctx.incident_id,
        dry_run=ctx.dry_run,
        evidence=ctx.evidence(),
        events=ctx.store.events(ctx.incident_id),
        route=routing.route if routing else None,
        routed_by=routing.incident_id if routing else None,
    )


def write_postmortem(incident_id: str) -> dict[str, Any]:
    """Render the post-mortem, write it locally and to the incident's MLflow run."""
    from firebreak.incidents.clock import Clock
    from firebreak.oncall.outbox import Outbox
    from firebreak.postmortem.render import render_postmortem

    ctx = Context.load(incident_id)
    status, why = _outcome(ctx)
    if status == IncidentStatus.RESOLVED:
        ctx.mark(ClockMark.RESOLVED, by="postmortem")  # the clock in the post-mortem is the final one
    text = render_postmortem(
        ctx.incident,
        ctx.policy,
        ctx.evidence(),
        ctx.store.events(incident_id),
        status,
        why,
        ctx.registry.ledger.entries(ctx.model),
        ctx.routing.get_routing(ctx.model),
        clock=Clock(ctx.store.clock(incident_id)),
        notifications=Outbox(ctx.settings.state_db_url).for_incident(incident_id),
    )
    path = ctx.settings.postmortem_dir / f"{incident_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    uri = ctx.log_artifact(path, "postmortem") if ctx.incident.mlflow_run_id else None
    ctx.store.put_evidence(incident_id, EvidenceKind.POSTMORTEM, {"path": str(path), "artifact": uri})
    ctx.event(EvidenceKind.POSTMORTEM, f"post-mortem written to {path}")
    return {"path": str(path)}


def close_incident(incident_id: str) -> dict[str, Any]:
    """The incident's final status, said plainly, on the incident and its MLflow run."""
    ctx = Context.load(incident_id)
    status, why = _outcome(ctx)
    ctx.store.update_incident(incident_id, status=status, outcome=why)
    if status == IncidentStatus.RESOLVED:
        ctx.mark(ClockMark.RESOLVED, by="close_incident")
    ctx.event(EventKind.CLOSED, f"incident {status}: {why}")
    postmortem = ctx.evidence().get(EvidenceKind.POSTMORTEM, {})
    ctx.announce(
        "closed",
        f"{status}: {why}",
        details={"post-mortem": postmortem.get("artifact") or postmortem.get("path") or "not written"},
    )
    if ctx.incident.mlflow_run_id:
        ctx.registry.client.set_tag(ctx.incident.mlflow_run_id, "firebreak.status", str(status))
        ctx.registry.client.set_terminated(
            ctx.incident.mlflow_run_id, "FINISHED" if status == IncidentStatus.RESOLVED else "FAILED"
        )
    return {"status": str(status), "outcome": why}
