"""Scheduled audits: find incidents before users do.

``golden_dataset_audit`` checks one model's champion the way an incident would, without
one: its golden dataset against the baseline recorded for it, the Great Expectations
contract on the last day of logged inputs, and drift of that day against the champion's
training data. Evidence goes to an MLflow run (experiment ``firebreak-audits``). A breach
yields an incident request whose dedup key names the model, the day and the breached
checks, so the same breach never opens two incidents.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from firebreak.incidents.enums import FailureClass
from firebreak.incidents.identity import incident_id_for
from firebreak.settings import Settings

AUDIT_EXPERIMENT = "firebreak-audits"
# What a breached check suggests the incident is; the incident's own diagnosis decides.
FAILURE_FOR_CHECK = {
    "contract": FailureClass.SKEW,
    "golden": FailureClass.BAD_RELEASE,
    "drift": FailureClass.DRIFT,
    "shadow": FailureClass.UNKNOWN,  # the champion lost to its challenger: diagnosis says why
    "feedback": FailureClass.FEEDBACK_POISONING,
    "fairness": FailureClass.BIAS,
    "golden_qa": FailureClass.HALLUCINATION,
}


@dataclass(frozen=True)
class Finding:
    check: str
    breached: bool | None  # None: not applicable to this model
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    audit: str
    model: str
    day: str
    champion_version: str
    findings: list[Finding]
    mlflow_run_id: str

    @property
    def breaches(self) -> list[Finding]:
        return [f for f in self.findings if f.breached]

    def incident_request(self) -> dict[str, Any] | None:
        """The incident_response run to open (``trigger_run_id`` + ``conf``), or None when all is well."""
        if not self.breaches:
            return None
        checks = sorted(f.check for f in self.breaches)
        dedup_key = f"audit:{self.audit}:{self.day}:{'+'.join(checks)}"
        first = FAILURE_FOR_CHECK.get(checks[0], FailureClass.UNKNOWN)
        failure = first if len(checks) == 1 else FailureClass.UNKNOWN
        return {
            "trigger_run_id": incident_id_for(self.model, dedup_key),
            "conf": {
                "model": self.model,
                "failure_type": failure.value,
                "severity": "auto",
                "description": f"{self.audit} {self.day}: " + "; ".join(f.summary for f in self.breaches),
                "remediation": "auto",
                "dry_run": False,
                "dedup_key": dedup_key,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "incident": self.incident_request()}


def golden_dataset_audit(
    model: str, *, settings: Settings | None = None, now: datetime | None = None
) -> AuditResult | None:
    """The nightly audit of one model's champion (see the module docstring).

    The checks are the incident's own (:mod:`firebreak.investigation.checks` and the model
    kind's golden check) on the last 24 h of logged traffic. None when the model has a
    policy but was never released (no ``champion``): nothing to audit.
    """
    import pandas as pd

    from firebreak.incidents.enums import Alias
    from firebreak.investigation import checks
    from firebreak.kinds import kind_for
    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import PredictionLog
    from firebreak.registry.mlflow_registry import Registry

    settings = settings or Settings.from_env()
    now = now or datetime.now(UTC)
    day = now.date().isoformat()  # one audit verdict per model and day: the dedup key's day
    policy = load_policy(model, settings.policies_dir)
    registry = Registry(settings)
    champion = registry.version_for(model, Alias.CHAMPION)
    if champion is None:
        return None
    # The day's window, read whole when it is small, streamed in bounded batches when it is not.
    window = PredictionLog(settings.prediction_log_url).window(model, since=now - timedelta(hours=24), until=now)
    last_day = checks.in_memory(window)
    empty = window.stored_rows() == 0 if last_day is None else last_day.empty
    out = settings.evidence_dir / "audits" / f"golden_dataset-{model}-{day}"
    out.mkdir(parents=True, exist_ok=True)
    findings: list[Finding] = []
    sample = None
    if empty:
        findings.append(Finding("contract", None, "no logged traffic in the last 24 h"))
        findings.append(Finding("drift", None, "no logged traffic in the last 24 h"))
    else:
        traffic: checks.Traffic = window if last_day is None else last_day
        contract = checks.check_contract(traffic, policy, settings, result_path=out / "contract.json")
        findings.append(Finding("contract", not contract.passed, contract.summary(), contract.to_dict()))
        drift = checks.check_drift(registry.reference_frame(champion), traffic, policy, out)
        findings.append(Finding("drift", drift.result.dataset_drift, drift.summary(), drift.payload))
        sample = drift.sample
    # The golden check reads the log only for an LLM app's guardrail hits: on a streamed day, the day's sample.
    recent = last_day if last_day is not None else sample if sample is not None else pd.DataFrame()
    golden = kind_for(policy).golden_check(registry, champion, settings, recent, full=False)
    findings.insert(0, Finding(str(golden.kind), golden.breached, golden.summary, golden.payload))
    findings.append(_fairness_finding(window if last_day is None else last_day, policy, settings))

    result = AuditResult("golden_dataset_audit", model, day, champion.version, findings, "")
    (out / "findings.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    run_id = _audit_run(registry, "golden_dataset_audit", model, day, {"firebreak.champion": champion.version}, out)
    registry.log_metrics(run_id, {"breaches": len(result.breaches), **golden.metrics})
    return replace(result, mlflow_run_id=run_id)


def _fairness_finding(window: Any, policy: Any, settings: Settings) -> Finding:
    """Per-group figures on the day's labelled traffic, for the policy's protected attribute."""
    from firebreak.investigation.checks import check_fairness
    from firebreak.prediction_log import LabelStore, LogWindow

    if policy.fairness is None:
        return Finding("fairness", None, "not applicable: the policy names no protected attribute")
    attribute = policy.fairness.protected_attribute
    labels = LabelStore(settings.labels_dir)
    if isinstance(window, LogWindow):  # a streamed day: only the labelled rows are kept
        columns = ["request_id", attribute, policy.features.output, policy.features.confidence]
        batches = window.batches(columns, text_as_category=False)
        labelled = labels.join_batches(policy.model, batches, policy.features.label)
        if attribute not in labelled.columns:
            return Finding("fairness", None, f"no labelled traffic with '{attribute}' in the last 24 h")
    elif window.empty or attribute not in window.columns:
        return Finding("fairness", None, f"no logged traffic with '{attribute}' in the last 24 h")
    else:
        labelled = labels.join(policy.model, window, policy.features.label)
    result = check_fairness(labelled, policy)
    if result.breached is None:
        return Finding("fairness", None, result.summary)
    figures = {k: v for k, v in result.to_dict().items() if v is not None and k not in {"breached", "summary"}}
    return Finding("fairness", result.breached, result.summary, figures)


def _audit_run(registry: Any, audit: str, model: str, day: str, tags: dict[str, str], out: Any) -> str:
    """Log an audit's evidence folder to a finished MLflow run; returns the run id."""
    run = registry.client.create_run(
        registry.experiment_id(AUDIT_EXPERIMENT),
        run_name=f"{audit}-{model}-{day}",
        tags={"firebreak.audit": audit, "firebreak.model": model, **tags},
    )
    for path in sorted(out.iterdir()):
        registry.log_evidence(run.info.run_id, path, "audit")
    registry.client.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)


def shadow_evaluation(
    model: str, *, settings: Settings | None = None, now: datetime | None = None
) -> AuditResult | None:
    """Challenger vs champion on the logged traffic; None when the model has no challenger.

    Both versions score the logged inputs of the policy's shadow window (offline shadow
    mode). Disagreement: share of requests whose outputs differ by more than the policy's
    tolerance. Where labels arrived, MAE of each. When they disagree beyond the policy and
    the challenger is the worse one, the challenger is blocked (the gate will refuse it);
    when the champion is the worse one, that is an incident.
    """
    import numpy as np
    import pandas as pd

    from firebreak.detection.performance import loss, score_outputs
    from firebreak.incidents.enums import Alias
    from firebreak.kinds import kind_for
    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import LabelStore, PredictionLog
    from firebreak.registry.mlflow_registry import TAG_BLOCKED, Registry

    settings = settings or Settings.from_env()
    now = now or datetime.now(UTC)
    day = now.date().isoformat()
    policy = load_policy(model, settings.policies_dir)
    shadow = policy.shadow
    registry = Registry(settings)
    champion = registry.version_for(model, Alias.CHAMPION)
    challenger = registry.version_for(model, Alias.CHALLENGER)
    if champion is None or challenger is None or challenger.version == champion.version:
        return None
    if not kind_for(policy).shadow_comparable:  # answers are text: the gate's golden Q&A compares them
        return None
    log = PredictionLog(settings.prediction_log_url).read_window(model, shadow.window_hours, now=now)
    findings: list[Finding] = []
    if len(log) < shadow.min_rows:
        findings.append(
            Finding("shadow", None, f"{len(log)} logged requests in {shadow.window_hours:g} h; need {shadow.min_rows}")
        )
    else:
        inputs = log[policy.features.inputs].reset_index(drop=True)
        ours = registry.predictor(champion, policy)(inputs)
        theirs = registry.predictor(challenger, policy)(inputs)
        out_col = policy.features.output
        if pd.api.types.is_numeric_dtype(ours[out_col]) and pd.api.types.is_numeric_dtype(theirs[out_col]):
            a, b = ours[out_col].to_numpy(dtype=float), theirs[out_col].to_numpy(dtype=float)
            differs = np.abs(a - b) > shadow.output_tolerance * np.maximum(np.abs(a), 1e-9)
        else:  # class labels: they agree or they do not
            differs = ours[out_col].to_numpy() != theirs[out_col].to_numpy()
        disagreement = float(differs.mean())
        labels = LabelStore(settings.labels_dir).read(model)
        figures: dict[str, Any] = {
            "rows": len(log),
            "disagreement_rate": round(disagreement, 4),
            "champion_version": champion.version,
            "challenger_version": challenger.version,
        }
        verdict = "agree"
        if policy.features.label in labels.columns:
            joined = log.reset_index(drop=True).merge(
                labels[["request_id", policy.features.label]], on="request_id", how="left"
            )
            has_label = joined[policy.features.label].notna().to_numpy()
            if has_label.any():
                labelled = joined[has_label].reset_index(drop=True)
                champ = score_outputs(ours[has_label].reset_index(drop=True), labelled, policy)
                chall = score_outputs(theirs[has_label].reset_index(drop=True), labelled, policy)
                figures.update({"labelled_rows": champ.rows, "champion_mae": champ.mae, "challenger_mae": chall.mae})
                # Judged on the policy's gate metric, as a loss (MAE itself for the policies that predate it).
                metric = policy.gate.metric
                ours_loss, theirs_loss = loss(metric, champ.metric(metric)), loss(metric, chall.metric(metric))
                if metric != "mae":
                    figures.update(
                        {f"champion_{metric}": champ.metric(metric), f"challenger_{metric}": chall.metric(metric)}
                    )
                if disagreement > shadow.max_disagreement_rate:
                    if theirs_loss > ours_loss * (1 + shadow.min_mae_gain):
                        verdict = "challenger_worse"
                    elif ours_loss > theirs_loss * (1 + shadow.min_mae_gain):
                        verdict = "champion_worse"
        figures["verdict"] = verdict
        summary = f"challenger v{challenger.version} vs champion v{champion.version}: {disagreement:.0%} disagree" + (
            f", MAE {figures['challenger_mae']} vs {figures['champion_mae']}" if "champion_mae" in figures else ""
        )
        if verdict == "challenger_worse":
            reason = f"shadow_evaluation {now:%Y-%m-%d %H:%M}Z: {summary}"
            registry.set_version_tags(model, challenger.version, {TAG_BLOCKED: reason})
            findings.append(Finding("shadow", False, f"{summary}; challenger blocked from promotion", figures))
        else:
            findings.append(Finding("shadow", verdict == "champion_worse", summary, figures))
    out = settings.evidence_dir / "audits" / f"shadow_evaluation-{model}-{now:%Y%m%dT%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "findings.json").write_text(json.dumps([asdict(f) for f in findings], indent=2, default=str))
    run_id = _audit_run(
        registry,
        "shadow_evaluation",
        model,
        day,
        {"firebreak.champion": champion.version, "firebreak.challenger": challenger.version},
        out,
    )
    # The dedup key names the challenger: the same comparison never opens two incidents.
    return AuditResult("shadow_evaluation", model, f"{day}:v{challenger.version}", champion.version, findings, run_id)


def feedback_loop_audit(
    model: str, *, settings: Settings | None = None, now: datetime | None = None
) -> AuditResult | None:
    """The feedback loop as a critical dependency: is a few actors' voice drowning everyone else's?

    Over the policy's window: the share of feedback from the most active actors, the rise of
    the thumbs-down rate against the previous window, and how often thumbs down land on
    predictions the labels call good. Poisoning is concentration *and* disagreement with the
    labels (a failing model earns thumbs down honestly); the poisoned slice is marked so every
    later read excludes it, and an incident opens. None when the model has no feedback.
    """
    from firebreak.detection.feedback import assess_feedback
    from firebreak.feedback import FeedbackStore
    from firebreak.incidents.enums import Alias
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry

    settings = settings or Settings.from_env()
    now = now or datetime.now(UTC)
    policy = load_policy(model, settings.policies_dir)
    assessment = assess_feedback(model, policy, settings, now)
    if assessment is None:
        return None
    findings: list[Finding] = []
    if assessment.poisoned is not None:
        FeedbackStore(settings.feedback_dir).mark_poisoned(model, assessment.poisoned)
        figures = {**assessment.figures, "poisoned_slice": asdict(assessment.poisoned)}
        findings.append(
            Finding(
                "feedback",
                True,
                f"poisoned slice ({len(assessment.poisoned.actors)} actors, {assessment.poisoned_events} events) "
                f"excluded: {assessment.summary}",
                figures,
            )
        )
    else:
        findings.append(Finding("feedback", assessment.breached, assessment.summary, assessment.figures))
    registry = Registry(settings)
    champion = registry.version_for(model, Alias.CHAMPION)
    day = now.date().isoformat()
    out = settings.evidence_dir / "audits" / f"feedback_loop_audit-{model}-{now:%Y%m%dT%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "findings.json").write_text(json.dumps([asdict(f) for f in findings], indent=2, default=str))
    run_id = _audit_run(registry, "feedback_loop_audit", model, day, {}, out)
    return AuditResult("feedback_loop_audit", model, day, champion.version if champion else "-", findings, run_id)


def run_audit(audit: str, model: str) -> dict[str, Any]:
    """Run one audit for one model; the small JSON a DAG task returns (with the incident to open, if any)."""
    audits = {
        "golden_dataset_audit": golden_dataset_audit,
        "shadow_evaluation": shadow_evaluation,
        "feedback_loop_audit": feedback_loop_audit,
    }
    if audit not in audits:
        raise ValueError(f"unknown audit {audit!r}; known: {sorted(audits)}")
    result = audits[audit](model)
    if result is None:
        return {"model": model, "audit": audit, "skipped": "nothing to audit", "breaches": [], "incident": None}
    for finding in result.findings:
        state = {True: "BREACH", False: "ok", None: "n/a"}[finding.breached]
        print(f"{audit} {model} {finding.check}: {state} — {finding.summary}")
    return {
        "model": model,
        "audit": audit,
        "breaches": [f.check for f in result.breaches],
        "incident": result.incident_request(),
        "mlflow_run_id": result.mlflow_run_id,
    }
