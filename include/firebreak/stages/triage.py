"""SOP stage *Triage*: severity from the policy's matrix and the prediction log's signals.

Also where an alert about a version that no longer serves ends: closed ``stale``, before
containment, so routing is never touched for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from firebreak.incidents.enums import ClockMark, EventKind, EvidenceKind, FailureClass, IncidentStatus, Severity
from firebreak.stages.context import Context


def triage(incident_id: str) -> dict[str, Any]:
    """Rank the incident on the champion's own traffic; the reported failure class stands unless ``unknown``.

    Returns ``stale=True`` when the alert is about a version that no longer serves and the
    serving one shows no breach: the incident is then closed ``stale`` and the caller must
    run nothing after triage (the DAG skips containment and everything downstream).
    """
    from firebreak.investigation.triage import staleness
    from firebreak.investigation.triage import triage as rank

    ctx = Context.load(incident_id)
    requested = ctx.requested("severity", "auto")
    result = rank(ctx.window(), ctx.policy, requested=None if requested == "auto" else Severity(requested))
    reported = FailureClass(ctx.requested("failure_type", "unknown"))
    failure = reported if reported != FailureClass.UNKNOWN else result.provisional_class
    since = ctx.evidence()[EvidenceKind.OPENING].get("champion_since")
    started = ctx.incident.request.get("alert_started_at")
    stale = staleness(
        result,
        champion=ctx.champion_version,
        champion_since=datetime.fromisoformat(since) if since else None,
        alert_version=ctx.incident.request.get("model_version"),
        alert_started_at=datetime.fromisoformat(started) if started else None,
    )
    ctx.store.update_incident(incident_id, severity=result.severity, failure_class=failure)
    signals = ", ".join(f"{k}={v:.1%}" for k, v in result.signals.items())
    who = ""
    if result.segments:
        from firebreak.investigation.segments import describe

        who = f"; who is hit: {describe(result.segments)}"
    ctx.record(
        EvidenceKind.TRIAGE,
        {**result.to_dict(), "champion_version": ctx.champion_version, "stale": stale},
        f"triaged {result.severity} ({failure}) on {result.rows} predictions of v{ctx.champion_version}: "
        f"{signals}{who}",
    )
    if result.first_breach_at:
        ctx.mark(ClockMark.FIRST_BREACH, datetime.fromisoformat(result.first_breach_at), "prediction log")
    if stale is not None:  # nothing to page anyone about: the version the alert saw no longer serves
        outcome = f"stale: {stale}; routing untouched"
        ctx.store.update_incident(incident_id, status=IncidentStatus.STALE, outcome=outcome)
        ctx.event(EventKind.STALE, outcome)
        _tag_run(ctx, result, failure)
        return {"severity": str(result.severity), "failure_class": str(failure), "stale": True, "why": stale}
    # The page goes out once severity decides who is paged (SOP: a SEV1 pages IC and owner at once).
    worst = max(result.signals.items(), key=lambda kv: kv[1], default=None)
    seen = f"{worst[0]} {worst[1]:.0%} over {result.rows} predictions" if worst else f"{result.rows} predictions"
    ctx.announce("opened", f"{result.severity} {failure}: {seen}", details={"signals": signals})
    _tag_run(ctx, result, failure)
    return {"severity": str(result.severity), "failure_class": str(failure), "stale": False}


def _tag_run(ctx: Context, result: Any, failure: str) -> None:
    """Severity and failure class as tags, the signals as metrics, on the incident's MLflow run.

    After the page: MLflow is another service, and who is told (and an acknowledgement
    racing the page) must not wait on it.
    """
    ctx.tag_run({"firebreak.severity": str(result.severity), "firebreak.failure_class": str(failure)})
    ctx.log_metrics({f"triage_{k}": v for k, v in result.signals.items()})
