"""SOP stage *Triage*: severity from the policy's matrix and the prediction log's signals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from firebreak.incidents.enums import ClockMark, EvidenceKind, FailureClass, Severity
from firebreak.stages.context import Context


def triage(incident_id: str) -> dict[str, Any]:
    """Rank the incident; the reported failure class stands unless it is ``unknown``."""
    from firebreak.investigation.triage import triage as rank

    ctx = Context.load(incident_id)
    requested = ctx.requested("severity", "auto")
    result = rank(ctx.window(), ctx.policy, requested=None if requested == "auto" else Severity(requested))
    reported = FailureClass(ctx.requested("failure_type", "unknown"))
    failure = reported if reported != FailureClass.UNKNOWN else result.provisional_class
    ctx.store.update_incident(incident_id, severity=result.severity, failure_class=failure)
    signals = ", ".join(f"{k}={v:.1%}" for k, v in result.signals.items())
    ctx.record(
        EvidenceKind.TRIAGE,
        result.to_dict(),
        f"triaged {result.severity} ({failure}) on {result.rows} predictions: {signals}",
    )
    if result.first_breach_at:
        ctx.mark(ClockMark.FIRST_BREACH, datetime.fromisoformat(result.first_breach_at), "prediction log")
    # The page goes out once severity decides who is paged (SOP: a SEV1 pages IC and owner at once).
    worst = max(result.signals.items(), key=lambda kv: kv[1], default=None)
    seen = f"{worst[0]} {worst[1]:.0%} over {result.rows} predictions" if worst else f"{result.rows} predictions"
    ctx.announce("opened", f"{result.severity} {failure}: {seen}", details={"signals": signals})
    return {"severity": str(result.severity), "failure_class": str(failure)}
