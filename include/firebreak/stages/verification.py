"""SOP stage *Verify*: the promotion gate. Records the verdict, then raises if it refused.

A candidate with no model change (an upstream fix) is verified on the newest traffic
against the contract; a model candidate by its kind's gate (figures and fairness for a
tabular model, served answers on the golden Q&A for an LLM app).
"""

from __future__ import annotations

from typing import Any

from firebreak.errors import GateRefused
from firebreak.incidents.enums import EvidenceKind, Remediation
from firebreak.stages.context import Context

NEWEST_ROWS = 200  # the upstream gate judges the traffic logged last, not the whole time since opening


def verify(incident_id: str) -> dict[str, Any]:
    """Run the gate that applies to the candidate; a refusal leaves traffic on the fallback."""
    from firebreak.remediation.upstream import contract_on_fresh
    from firebreak.verification.gate import upstream_gate

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
    verdict = ctx.kind.gate(ctx.registry, champion, challenger, ctx.settings, ctx.labelled_window)
    payload = {
        **verdict.to_dict(),
        "summary": verdict.summary(),
        "candidate_version": challenger.version,
        "champion_version": champion.version,
    }
    ctx.record(EvidenceKind.GATE, payload, f"v{challenger.version} vs v{champion.version}: {verdict.summary()}")
    ctx.log_metrics({"gate_passed": float(verdict.passed)})
    if not verdict.passed:
        raise GateRefused(
            f"promotion gate refused {ctx.model} v{challenger.version}: {verdict.summary()}\n"
            f"Every check (v{challenger.version} against v{champion.version}):\n{verdict.checklist()}"
        )
    if ctx.policy.gate.requires_approval:
        # Never promote past a required approval: stop here, contained, and say so.
        raise GateRefused(
            f"gate passed for {ctx.model} v{challenger.version}, but the policy requires a human approval before promotion"
        )
    return {"passed": True, "candidate_version": challenger.version}
