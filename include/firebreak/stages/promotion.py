"""SOP stage *Promote*: the only path that moves ``champion``; every move goes to the alias ledger."""

from __future__ import annotations

from typing import Any

from firebreak.errors import GateRefused
from firebreak.incidents.enums import Alias, EvidenceKind
from firebreak.stages.context import ACTOR, Context


def promote(incident_id: str) -> dict[str, Any]:
    """Move ``champion`` to the verified candidate (and whatever serves with it, by the model's kind)."""
    from firebreak.registry.promotion import promote_candidate

    ctx = Context.load(incident_id)
    ev = ctx.evidence()
    candidate = ev.get(EvidenceKind.CANDIDATE, {})
    if ctx.dry_run or not candidate.get("version"):
        reason = "dry run" if ctx.dry_run else "no model change"
        ctx.record(
            EvidenceKind.PROMOTION, {"promoted": False, "reason": reason}, f"promotion: nothing to move ({reason})"
        )
        return {"promoted": False}
    old, new = ev[EvidenceKind.OPENING]["champion_version"], candidate["version"]
    approved_by = None
    if ctx.policy.gate.requires_approval:
        # Never promote past a required approval, whoever calls this stage.
        approval = ev.get(EvidenceKind.APPROVAL, {})
        if not approval.get("approved"):
            reason = approval.get("reason") or "the policy requires a human approval before promotion; none was given"
            ctx.record(EvidenceKind.PROMOTION, {"promoted": False, "reason": reason}, f"not promoted: {reason}")
            raise GateRefused(reason)
        approved_by = approval.get("by")

    def with_champion(why: str) -> None:
        version = ctx.registry.get_version(ctx.model, new)
        ctx.kind.on_promote(ctx.registry, ctx.registry.ledger, version, ctx.settings, incident_id=incident_id, why=why)

    # The version this incident diagnosed as the cause never becomes last-known-good.
    cause = old if ev.get(EvidenceKind.DIAGNOSIS, {}).get("implicates_champion") else None
    try:
        promoted = promote_candidate(
            ctx.registry,
            ctx.model,
            old=old,
            new=new,
            remediation=candidate["remediation"],
            incident_id=incident_id,
            actor=ACTOR,
            with_champion=with_champion,
            cause=cause,
            approved_by=approved_by,
        )
    except GateRefused as exc:
        ctx.record(EvidenceKind.PROMOTION, {"promoted": False, "reason": str(exc)}, f"not promoted: {exc}")
        raise
    lkg = promoted.last_known_good
    move = f"{Alias.CHAMPION} v{old} -> v{new}" + (f", approved by {approved_by}" if approved_by else "")
    ctx.record(
        EvidenceKind.PROMOTION,
        {
            "promoted": True,
            "from": old,
            "to": new,
            "last_known_good": lkg,
            "note": promoted.note,
            "approved_by": approved_by,
        },
        f"{move}; {Alias.LAST_KNOWN_GOOD} "
        + (f"v{lkg}" if lkg else "unset")
        + (f" ({promoted.note})" if promoted.note else ""),
    )
    what = "rollback" if candidate["remediation"] == "rollback" else f"promotion after {candidate['remediation']}"
    ctx.announce("change", f"{what}: {move}", key=f"champion-v{new}", details={"remediation": candidate["remediation"]})
    return {"promoted": True, "champion": new}
