"""SOP stages *Diagnose* and *Choose remediation*: a failure class from the evidence, then what to do."""

from __future__ import annotations

from typing import Any

from firebreak.incidents.enums import EventKind, EvidenceKind, FailureClass, IncidentStatus, Severity
from firebreak.stages.context import Context


def diagnose(incident_id: str) -> dict[str, Any]:
    """Failure class and root cause from the collected evidence (the classifier ``firebreak triage`` shares).

    Also the severity again: triage ranked the incident before the investigation existed;
    harm to a protected group (``fairness_audit``) is SEV1 by the SOP's matrix, so the
    matrix is applied again with every signal now known, and the severity only rises
    (:func:`firebreak.investigation.triage.rerank`). The re-rank is evidence and a timeline line.
    """
    from firebreak.investigation.diagnosis import diagnose as decide
    from firebreak.investigation.triage import rerank

    ctx = Context.load(incident_id)
    ev = ctx.evidence()
    result = decide(
        ctx.policy,
        contract=ev.get(EvidenceKind.CONTRACT, {}),
        lineage=ev.get(EvidenceKind.LINEAGE, {}),
        drift=ev.get(EvidenceKind.DRIFT, {}),
        golden=ev.get(EvidenceKind.GOLDEN, {}),
        golden_qa=ev.get(EvidenceKind.GOLDEN_QA),
        reported=FailureClass(ctx.requested("failure_type", "unknown")),
        fairness=ev.get(EvidenceKind.FAIRNESS, {}),
        feedback=ev.get(EvidenceKind.FEEDBACK, {}),
    )
    requested = ctx.requested("severity", "auto")
    ranked = rerank(
        ctx.policy,
        triaged=ev.get(EvidenceKind.TRIAGE, {}),
        fairness=ev.get(EvidenceKind.FAIRNESS),
        current=Severity(ctx.incident.severity or ctx.policy.severity.default),
        requested=None if requested == "auto" else Severity(requested),
    )
    ctx.store.update_incident(incident_id, failure_class=result.failure_class, severity=ranked.after)
    severity = {"before": str(ranked.before), "after": str(ranked.after), "why": ranked.why, "signals": ranked.signals}
    ctx.record(
        EvidenceKind.DIAGNOSIS,
        {**result.to_dict(), "severity": severity},
        f"diagnosis: {result.failure_class}: {result.root_cause}",
    )
    if ranked.changed:
        ctx.event(EventKind.SEVERITY_RERANKED, f"severity {ranked.why}")
    ctx.tag_run({"firebreak.failure_class": str(result.failure_class), "firebreak.root_cause": result.root_cause})
    return {"failure_class": str(result.failure_class), "remediation": result.remediation and str(result.remediation)}


def choose_remediation(incident_id: str) -> str:
    """The form's choice, else the policy's choice for the diagnosed class; the branch's task id."""
    from firebreak.errors import RemediationError
    from firebreak.remediation.choice import choose_remediation as choose

    ctx = Context.load(incident_id)
    try:
        choice, source = choose(
            ctx.requested("remediation", "auto"), ctx.evidence().get(EvidenceKind.DIAGNOSIS, {}), model=ctx.model
        )
    except RemediationError:
        ctx.record(EvidenceKind.REMEDIATION_CHOICE, {"choice": None}, "no automated remediation for this failure class")
        raise
    ctx.record(
        EvidenceKind.REMEDIATION_CHOICE, {"choice": str(choice), "source": source}, f"remediation: {choice} ({source})"
    )
    if not ctx.dry_run:
        ctx.store.update_incident(incident_id, status=IncidentStatus.REMEDIATING)
    return str(choice)
