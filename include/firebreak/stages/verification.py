"""SOP stage *Verify*: the promotion gate, then the approver. Records each verdict, then raises if it refused.

A candidate with no model change (an upstream fix) is verified on the newest traffic
against the contract; a model candidate by its kind's gate (figures and fairness for a
tabular model, served answers on the golden Q&A for an LLM app). Where the policy requires
it, a passed gate then waits for a named person's approval (the DAG's ``approve_promotion``
task, Airflow's human-in-the-loop ``ApprovalOperator``): :func:`approval_request` says what
to ask, :func:`record_approval` judges the answer.
"""

from __future__ import annotations

from typing import Any

from firebreak.errors import GateRefused
from firebreak.incidents.clock import target_words
from firebreak.incidents.enums import EventKind, EvidenceKind, Remediation
from firebreak.stages.context import Context

NEWEST_ROWS = 200  # the upstream gate judges the traffic logged last, not the whole time since opening


def verify(incident_id: str) -> dict[str, Any]:
    """Run the gate that applies to the candidate; a refusal leaves traffic on the fallback."""
    from firebreak.remediation.upstream import contract_on_fresh
    from firebreak.verification.gate import upstream_gate
    from firebreak.verification.held_out import describe, split

    ctx = Context.load(incident_id)
    candidate = ctx.evidence().get(EvidenceKind.CANDIDATE, {})
    if ctx.dry_run:
        ctx.record(EvidenceKind.GATE, {"passed": None, "dry_run": True}, "dry run: gate not evaluated")
        return {"passed": None}
    if candidate.get("remediation") == Remediation.UPSTREAM_FIX:
        verdict = upstream_gate(
            contract_on_fresh(ctx.traffic_since_opened().tail(NEWEST_ROWS), ctx.policy, ctx.settings)
        )
        ctx.record(EvidenceKind.GATE, verdict.to_dict(), f"gate for upstream fix: {verdict.checks[0]['candidate']}")
        if not verdict.passed:
            raise GateRefused(f"upstream data still breaks the contract: {verdict.checks[0]['candidate']}")
        return {"passed": True}
    if not candidate.get("version"):
        raise GateRefused("no candidate version to verify")
    champion = ctx.champion_at_opening()
    challenger = ctx.registry.get_version(ctx.model, candidate["version"])
    # A candidate that learnt from the labelled window (a refit) is judged on the part held out
    # from it, split as the refit split it; any other candidate (a recipe's, a rollback) on all of it.
    share = candidate.get("training", {}).get("held_out_share")
    recent = (lambda: split(ctx.labelled_window(), share).held_out) if share else ctx.labelled_window
    verdict = ctx.kind.gate(ctx.registry, champion, challenger, ctx.settings, recent)
    payload = {
        **verdict.to_dict(),
        "summary": verdict.summary(),
        "candidate_version": challenger.version,
        "champion_version": champion.version,
    }
    if share and "candidate" in verdict.figures:
        payload["recent_rows"] = describe(verdict.figures["candidate"]["recent"]["rows"], share)
    ctx.record(EvidenceKind.GATE, payload, f"v{challenger.version} vs v{champion.version}: {verdict.summary()}")
    ctx.log_metrics({"gate_passed": float(verdict.passed)})
    if not verdict.passed:
        raise GateRefused(
            f"promotion gate refused {ctx.model} v{challenger.version}: {verdict.summary()}\n"
            f"Every check (v{challenger.version} against v{champion.version}):\n{verdict.checklist()}"
            + (f"\nRecent figures on {payload['recent_rows']}" if "recent_rows" in payload else "")
        )
    return {"passed": True, "candidate_version": challenger.version}


BUILT_BY_TAG = "firebreak.built_by"  # set by whoever registers a candidate by hand; else MLflow's user_id


def approval_request(incident_id: str) -> dict[str, Any]:
    """What the approver is asked, or ``{"required": False}`` when nothing needs a sign-off.

    Asked only for a model candidate that passed the gate, on a policy with
    ``gate.requires_approval``. The body is the gate report the approver signs off.
    """
    ctx = Context.load(incident_id)
    ev = ctx.evidence()
    candidate, gate = ev.get(EvidenceKind.CANDIDATE, {}), ev.get(EvidenceKind.GATE, {})
    rules = ctx.policy.gate.approval
    if not ctx.policy.gate.requires_approval or ctx.dry_run or not candidate.get("version") or not gate.get("passed"):
        return {"required": False}
    builder = _builder(ctx, str(candidate["version"]))
    checks = "\n".join(
        f"| {c['name']} | {c['candidate']} | {c['limit']} | {'yes' if c['passed'] else 'NO'} |"
        for c in gate.get("checks", [])
    )
    subject = f"Promote {ctx.model} v{candidate['version']} to champion? ({incident_id})"
    body = (
        f"**Incident** `{incident_id}` — {ctx.incident.severity or 'untriaged'}, {ctx.incident.failure_class}.\n\n"
        f"**Candidate** v{candidate['version']} ({candidate.get('remediation')}; built by {builder or 'the pipeline'}) "
        f"passed the promotion gate against v{gate.get('champion_version')}:\n\n"
        f"| check | candidate | limit | passed |\n|---|---|---|---|\n{checks}\n\n"
        + (f"Recent figures on {gate['recent_rows']}.\n\n" if gate.get("recent_rows") else "")
        + f"Approve moves `champion` to v{candidate['version']} and restores traffic; Reject (or no answer within "
        f"{target_words(rules.timeout)}) leaves traffic on the fallback and hands the incident to a person."
        + (" The candidate's builder may not approve it." if rules.forbid_builder and builder else "")
    )
    waiting = f"waiting for approval to promote v{candidate['version']}" + (
        f" (approvers: {', '.join(rules.approvers)})" if rules.approvers else ""
    )
    ctx.event(EventKind.STATUS_UPDATE, waiting)
    ctx.announce("approval_needed", waiting, details={"gate": gate.get("summary", "passed")})
    return {
        "required": True,
        "subject": subject,
        "body": body,
        "approvers": list(rules.approvers),
        "timeout_seconds": rules.timeout.total_seconds(),
        "builder": builder,
    }


def record_approval(incident_id: str, *, chosen: list[str], by: str | None, timed_out: bool = False) -> dict[str, Any]:
    """Judge the approver's answer and record it; anything but a permitted Approve raises GateRefused."""
    from firebreak.verification.approval import judge_answer

    ctx = Context.load(incident_id)
    candidate = ctx.evidence().get(EvidenceKind.CANDIDATE, {})
    builder = _builder(ctx, str(candidate["version"])) if candidate.get("version") else None
    verdict = judge_answer(ctx.policy.gate.approval, chosen=chosen, by=by, builder=builder, timed_out=timed_out)
    ctx.record(EvidenceKind.APPROVAL, {**verdict.to_dict(), "builder": builder}, verdict.reason)
    if not verdict.approved:
        raise GateRefused(verdict.reason)
    return {"approved": True, "by": verdict.by}


def _builder(ctx: Context, version: str) -> str | None:
    """Who built the candidate: its ``firebreak.built_by`` tag, else who registered it in MLflow."""
    found = ctx.registry.client.get_model_version(ctx.model, version)
    return (found.tags or {}).get(BUILT_BY_TAG) or found.user_id or None
