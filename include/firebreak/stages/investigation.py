"""SOP stage *Investigate*: the checks run on the incident's traffic, each recorded as evidence.

Each task records its evidence before anything decides on it; :mod:`firebreak.stages.diagnosis`
reads them all. The checks themselves are composed once in
:mod:`firebreak.investigation.checks` (the scheduled audits run the same ones).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from firebreak.incidents.enums import EvidenceKind
from firebreak.investigation import checks
from firebreak.stages.context import Context


def validate_contract(incident_id: str) -> dict[str, Any]:
    """The model's Great Expectations contract on the recent traffic (lineage columns included)."""
    from firebreak.contracts.validation import is_derived, load_suite

    ctx = Context.load(incident_id)
    result_path = ctx.artifact_dir() / "contract_result.json"
    result = checks.check_contract(ctx.log_window(), ctx.policy, ctx.settings, result_path=result_path)
    payload = result.to_dict()
    # Onboarding's contract is a guess from the reference: diagnosis judges its failures (docs/triage.md).
    payload["derived"] = is_derived(load_suite(ctx.settings.resolve(ctx.policy.contract)))
    payload["artifact"] = ctx.log_artifact(result_path, "contract")
    ctx.record(EvidenceKind.CONTRACT, payload, result.summary())
    return {"passed": result.passed, "failures": len(result.failures)}


def trace_lineage(incident_id: str) -> dict[str, Any]:
    """Every logged prediction traced to an allowed upstream source and feature pipeline."""
    from firebreak.contracts.validation import allowed_value_sets, load_suite
    from firebreak.investigation.lineage import trace_lineage as trace

    ctx = Context.load(incident_id)
    suite = load_suite(ctx.settings.resolve(ctx.policy.contract))
    allowed = allowed_value_sets(suite, ctx.policy.features.lineage, name=ctx.policy.contract)
    start = pd.Timestamp(ctx.opened_at) - pd.Timedelta(hours=ctx.policy.detection.window_hours)
    window = ctx.log_window()
    frame = checks.in_memory(window)
    rows = frame if frame is not None else window.batches([*ctx.policy.features.lineage, "model_version"])
    result = trace(rows, allowed, window_start=start)
    ctx.record(EvidenceKind.LINEAGE, result.to_dict(), result.summary())
    return {"passed": result.passed, "groups": len(result.groups)}


def drift_report(incident_id: str) -> dict[str, Any]:
    """Drift of recent inputs against the champion's training data (Evidently report as evidence)."""
    ctx = Context.load(incident_id)
    reference = ctx.registry.reference_frame(ctx.champion_at_opening())
    drift = checks.check_drift(reference, ctx.log_window(), ctx.policy, ctx.artifact_dir())
    drift.payload["artifacts"] = [ctx.log_artifact(path, "drift") for path in drift.reports]
    ctx.record(EvidenceKind.DRIFT, drift.payload, f"drift: {drift.summary()}")
    ctx.log_metrics({"drift_share": drift.result.drift_share})
    return {"dataset_drift": drift.result.dataset_drift, "top": [c.column for c in drift.result.top(3)]}


def golden_eval(incident_id: str) -> dict[str, Any]:
    """The champion on its golden set against its recorded baseline (the kind says how it is judged)."""
    ctx = Context.load(incident_id)
    champion = ctx.champion_at_opening()
    golden = ctx.kind.golden_check(ctx.registry, champion, ctx.settings, ctx.window(), full=True)
    ctx.log_metrics(golden.metrics)
    ctx.record(golden.kind, golden.payload, golden.summary)
    return {"check": str(golden.kind), "breached": golden.breached, **golden.metrics}


def fairness_audit(incident_id: str) -> dict[str, Any]:
    """Per-group fairness of the decisions users got, on recent labelled traffic; the worst group named.

    Classifiers: selection-rate ratio (four-fifths rule) and equalized-odds difference per the
    policy's ``fairness:`` section (fairlearn); regressors: each group's error.
    """
    ctx = Context.load(incident_id)
    if ctx.policy.fairness is None:
        ctx.record(
            EvidenceKind.FAIRNESS,
            {"breached": None},
            "fairness: not applicable (the policy names no protected attribute)",
        )
        return {"breached": None}
    result = checks.check_fairness(ctx.labelled_window(), ctx.policy)
    ctx.record(EvidenceKind.FAIRNESS, result.to_dict(), f"fairness: {result.summary}")
    if result.selection_rate_ratio is not None:
        ctx.log_metrics(
            {
                "selection_rate_ratio": result.selection_rate_ratio,
                "equalized_odds_difference": result.equalized_odds_difference or 0.0,
            }
        )
    return {"breached": result.breached, "worst": result.worst}


def feedback_review(incident_id: str) -> dict[str, Any]:
    """The feedback loop as evidence: concentration by actor, thumbs-down shift, the poisoned slice.

    Reads every event, marked slices included, over the window before the incident opened;
    a poisoned slice not yet marked is marked now so the retrain excludes it (a dry run only
    reports it). The evidence names the excluded actors and counts.
    """
    from datetime import timedelta

    from firebreak.detection.feedback import review_feedback

    ctx = Context.load(incident_id)
    review = review_feedback(
        ctx.model,
        ctx.policy,
        ctx.settings,
        ctx.opened_at + timedelta(minutes=1),
        marked_by=f"incident {incident_id}",
        dry_run=ctx.dry_run,
    )
    if review is None:
        ctx.record(EvidenceKind.FEEDBACK, {"poisoned": False, "events": 0}, "feedback: the model has no feedback")
        return {"poisoned": False}
    ctx.record(EvidenceKind.FEEDBACK, review.payload, f"feedback: {review.summary}")
    return {"poisoned": review.poisoned, "excluded_events": review.excluded_events}
