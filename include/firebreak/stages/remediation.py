"""SOP stage *Remediate*: each remediation offers one candidate; nothing serves before the gate.

Every remediation is idempotent: a candidate this incident already produced (a re-run after
a crash) is reused, never produced twice. The work itself lives in :mod:`firebreak.remediation`.
"""

from __future__ import annotations

from typing import Any

from firebreak.errors import RemediationError
from firebreak.incidents.enums import Alias, EventKind, EvidenceKind, Remediation
from firebreak.stages.context import ACTOR, Context


def rollback(incident_id: str) -> dict[str, Any]:
    """Offer the ``last-known-good`` version as the candidate."""
    from firebreak.remediation.rollback import rollback_target

    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.ROLLBACK):
        return found
    target = rollback_target(ctx.registry, ctx.model)
    detail = f"roll back to {Alias.LAST_KNOWN_GOOD} v{target.version}"
    return _offer_candidate(ctx, Remediation.ROLLBACK, target.version, detail)


def retrain(incident_id: str) -> dict[str, Any]:
    """Train the policy's recipe on its dataset (or refit the champion without one); register it as ``challenger``."""
    from firebreak.remediation.retrain import Champion, candidate_tags, describe
    from firebreak.remediation.retrain import retrain as train

    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.RETRAIN):
        return found
    champion = ctx.champion_at_opening()
    if ctx.dry_run:
        return _offer_candidate(ctx, Remediation.RETRAIN, None, f"dry run: would {describe(ctx.policy, champion)}")
    diagnosed = ctx.evidence().get(EvidenceKind.DIAGNOSIS, {}).get("failure_class")
    trained = train(ctx.policy, ctx.settings, Champion(ctx.registry, champion, ctx.labelled_window, diagnosed))
    version = _register(
        ctx,
        trained.python_model,
        reference=trained.reference,
        tags=candidate_tags(ctx.policy, champion),
        run_name="retrain",
    )
    return _offer_candidate(ctx, Remediation.RETRAIN, version, trained.detail, trained.training)


def parameter_update(incident_id: str) -> dict[str, Any]:
    """The champion with the policy's parameter changes, as a new version."""
    from firebreak.remediation.retrain import parameters_to_update, update_parameters

    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.PARAMETER_UPDATE):
        return found
    params = parameters_to_update(ctx.policy)
    if ctx.dry_run:
        return _offer_candidate(ctx, Remediation.PARAMETER_UPDATE, None, f"dry run: would set {params}")
    champion = ctx.champion_at_opening()
    update = update_parameters(ctx.policy, ctx.registry, champion)
    version = _register(
        ctx,
        update.python_model,
        reference=ctx.registry.reference_frame(champion),
        tags={"firebreak.parameters": str(params), **ctx.kind.carried_tags(champion)},
        run_name="parameter-update",
        model_config=update.model_config,
    )
    return _offer_candidate(ctx, Remediation.PARAMETER_UPDATE, version, f"v{champion.version} with {params}")


def upstream_fix(incident_id: str) -> dict[str, Any]:
    """No model change: the upstream owner fixes the data, and traffic logged since opening proves it.

    When there is no such traffic yet, or it still breaks the contract, the stage fails and
    says so (traffic stays on the fallback, the incident ends ``contained_needs_human``);
    when it passes, the fix is the candidate the gate verifies.
    """
    from firebreak.remediation.upstream import check_upstream

    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.UPSTREAM_FIX):
        return found
    if ctx.dry_run:
        detail = "dry run: would wait for fresh traffic to pass the contract"
        return _offer_candidate(ctx, Remediation.UPSTREAM_FIX, None, detail)
    check = check_upstream(ctx.traffic_since_opened(), ctx.policy, ctx.settings, ctx.opened_at)
    if check.passed is None:
        ctx.record(EvidenceKind.UPSTREAM_CHECK, check.payload, f"upstream fix: {check.summary}")
        raise RemediationError(
            f"upstream fix not verified: no traffic of {ctx.model} logged since the incident opened at "
            f"{ctx.opened_at:%Y-%m-%d %H:%M} UTC; traffic stays on the fallback until fresh traffic passes the contract"
        )
    ctx.record(
        EvidenceKind.UPSTREAM_CHECK,
        check.payload,
        f"upstream fix: {check.rows} predictions logged since opening: {check.summary}",
    )
    if not check.passed:
        raise RemediationError(
            f"upstream still broken: {check.rows} predictions logged since the incident opened break the "
            f"contract: {check.summary}"
        )
    shown = check.describe_sources(ctx.policy)
    detail = (
        f"no model change: {check.rows} predictions logged since opening pass the contract ({shown or 'no lineage'})"
    )
    return _offer_candidate(ctx, Remediation.UPSTREAM_FIX, None, detail)


def guardrail_rule(incident_id: str) -> dict[str, Any]:
    """A reviewed prompt version plus new guardrail rules as the candidate (LLM apps; see
    :mod:`firebreak.remediation.prompt_fix`)."""
    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.GUARDRAIL_RULE):
        return found
    fixer = ctx.kind.prompt_fixer()
    plan = fixer.plan(ctx.settings, ctx.evidence().get(EvidenceKind.GOLDEN_QA, {}))
    if ctx.dry_run:
        return _offer_candidate(ctx, Remediation.GUARDRAIL_RULE, None, f"dry run: would {plan.describe()}")
    champion = ctx.champion_at_opening()
    fix = fixer.apply(plan, ctx.registry, champion, ctx.settings, incident_id=incident_id, actor=ACTOR)
    for line in fix.events:
        ctx.event(EventKind.GUARDRAILS, line)
    version = _register(
        ctx,
        fix.python_model,
        reference=ctx.registry.reference_frame(champion),
        tags=fix.tags,
        run_name="guardrail-rule",
        model_config=fix.model_config,
    )
    return _offer_candidate(ctx, Remediation.GUARDRAIL_RULE, version, fix.detail)


# -- the candidate --------------------------------------------------------------------------


def _existing_candidate(ctx: Context, kind: Remediation) -> dict[str, Any] | None:
    """A candidate this incident already produced (re-run after a crash): never remediate twice."""
    found = ctx.evidence().get(EvidenceKind.CANDIDATE)
    if found and found.get("remediation") == kind:
        ctx.event(EventKind.CANDIDATE_REUSED, f"{kind} already produced candidate {found.get('version')}; reused")
        return found
    return None


def _register(ctx: Context, python_model: Any, **kwargs: Any) -> str:
    from firebreak.remediation.candidates import register_candidate

    registered = register_candidate(
        ctx.registry,
        ctx.kind,
        ctx.settings,
        python_model,
        policy=ctx.policy,
        model=ctx.model,
        incident_id=ctx.incident_id,
        **kwargs,
    )
    if registered.reused:
        ctx.event(EventKind.CANDIDATE_REUSED, f"v{registered.version} was registered by an earlier attempt; reused")
    return registered.version


def _offer_candidate(
    ctx: Context, kind: Remediation, version: str | None, detail: str, training: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Record the candidate and point ``challenger`` at it (none for a change without a new version)."""
    payload: dict[str, Any] = {"remediation": str(kind), "version": version, "detail": detail, "dry_run": ctx.dry_run}
    if training:
        payload["training"] = training
    if version is not None and not ctx.dry_run:
        ctx.registry.move_alias(
            ctx.model, Alias.CHALLENGER, version, incident_id=ctx.incident_id, actor=ACTOR, reason=f"{kind}: {detail}"
        )
    suffix = f" -> {ctx.model} v{version} as {Alias.CHALLENGER}" if version else ""
    ctx.record(EvidenceKind.CANDIDATE, payload, f"{kind}: {detail}{suffix}")
    return payload
