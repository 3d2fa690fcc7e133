"""Diagnosis: a failure class and a root cause from the investigation's evidence.

One classifier, :func:`classify`, decides from the evidence (each kind read into findings by
:mod:`firebreak.investigation.findings`); the DAG's ``diagnose`` stage (through
:func:`diagnose`, which adds the policy's remediation) and ``firebreak triage`` both call it,
so an incident and a triage of the same tables get the same answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from firebreak.incidents.enums import FailureClass, Remediation, Severity
from firebreak.investigation.findings import (
    Finding,
    contract_findings,
    drift_findings,
    fairness_findings,
    golden_findings,
    lineage_findings,
    multivariate_findings,
    outcome_findings,
    performance_findings,
    reference_fit_findings,
    spike_findings,
)

if TYPE_CHECKING:
    from firebreak.policy.schema import Policy

__all__ = ["Diagnosis", "Finding", "Verdict", "classify", "diagnose", "triage_tables"]


@dataclass(frozen=True)
class Verdict:
    """What the evidence says: ``failure_class`` None means nothing is wrong."""

    failure_class: FailureClass | None
    severity: Severity | None
    confidence: float
    root_cause: str
    columns: list[str]
    evidence: list[Finding]  # ranked: the decisive findings first

    def to_dict(self) -> dict[str, Any]:
        return {
            "failure_class": str(self.failure_class) if self.failure_class else "none",
            "severity": str(self.severity) if self.severity else None,
            "confidence": self.confidence,
            "root_cause": self.root_cause,
            "columns": self.columns,
            "evidence": [{**asdict(f), "points_to": str(f.points_to) if f.points_to else None} for f in self.evidence],
        }


def classify(
    *,
    contract: dict[str, Any] | None = None,
    drift: dict[str, Any] | None = None,
    fairness: dict[str, Any] | None = None,
    golden: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    performance: dict[str, Any] | None = None,
    estimated: dict[str, Any] | None = None,
    segments: dict[str, Any] | None = None,
    reference_fairness: dict[str, Any] | None = None,
    reference_fit: dict[str, Any] | None = None,
) -> Verdict:
    """Decide the failure class from the evidence, in the SOP's order of suspicion.

    SOP stage: diagnose. Inputs are the evidence dicts the investigation records:
    ``contract`` (:meth:`ContractResult.to_dict`), ``drift`` (:meth:`DriftResult.to_dict`,
    optionally with ``scale_changes`` from :func:`~firebreak.investigation.evidence.scale_changes`),
    ``fairness`` (:meth:`FairnessResult.to_dict <firebreak.detection.fairness.FairnessResult>`), ``golden``
    (:func:`~firebreak.investigation.evaluation.evaluate_golden`) and ``lineage``
    (:meth:`LineageTrace.to_dict`). Missing evidence counts as quiet.

    1. Skew: the contract's shape checks fail (column gone, type, nulls, unknown values),
       values leave the contract's range on >= 1% of rows, a column was rescaled by one
       factor (units, currency), or lineage shows unallowed sources.
    2. Bad release: the champion regressed on the golden dataset (against its baseline or
       against ``last-known-good``).
    3. Bias: the fairness figures breached the policy's limits (an incident), with or without
       drift beside it, the further past a limit the stronger; in triage, a group served worse
       than the others since the reference (``reference_fairness``:
       :func:`~firebreak.investigation.findings.fairness_change`), which needs less once the
       model's labelled figure fell significantly overall with the inputs unchanged (whose
       fall it is).
    4. Drift: inputs moved (a column's drift test past its threshold; p-value tests at 1e-3;
       values past a derived contract's range that continue the distribution; values it never
       showed, on rows unlike the others (a part of the population it missed); the joint
       distribution, by PCA reconstruction error) while the contract held; or, with labels,
       the model's accuracy or error is significantly worse than on the reference with the
       inputs unchanged (concept drift: ``performance``, from
       :func:`~firebreak.detection.performance.performance_change`), unless the reference is
       the model's own training fit (``reference_fit``,
       :func:`~firebreak.detection.memorisation.memorised`: then a context finding says so).

    A **derived** contract (``contract["derived"]``, from ``firebreak triage``) is a guess
    from a sample: its unknown-value, null and range failures count as skew only when the
    statistical checks in ``drift["data_checks"]`` say so (``docs/triage.md``). A declared
    contract is the team's statement of what is valid: its failures stand.

    ``estimated`` (CBPE/DLE) and ``segments`` (where the failure concentrates) decide the
    severity with the class, and the root cause names the segment.
    """
    contract, drift, fairness = contract or {}, drift or {}, fairness or {}
    golden, lineage = golden or {}, lineage or {}
    checks = drift.get("data_checks") if contract.get("derived") else None
    findings: list[Finding] = []
    findings += contract_findings(contract, checks)
    findings += spike_findings(drift)
    findings += outcome_findings(drift)
    findings += lineage_findings(lineage)
    for change in drift.get("scale_changes", []) or []:
        findings.append(
            Finding(
                "scale",
                FailureClass.SKEW,
                change["column"],
                f"{change['column']} multiplied by {change['factor']:g} "
                f"({change.get('because', 'every quantile alike')}: a unit or currency change)",
                0.95,
            )
        )
    findings += golden_findings(golden)
    skew_columns = {f.column for f in findings if f.points_to == FailureClass.SKEW and f.column}
    moved = drift_findings(drift, explained=skew_columns) + multivariate_findings(drift)
    # A significant fall with the inputs unchanged is concept drift, established: whose fall it
    # is then needs less. With the inputs moved, the fall may be theirs (a shift towards harder
    # cases, and towards the group those cases belong to): a group needs the full bar.
    dropped = bool((performance or {}).get("significant")) and not any(f.points_to == FailureClass.DRIFT for f in moved)
    findings += fairness_findings(fairness, reference_fairness or {}, dropped=dropped)
    findings += moved
    findings += performance_findings(performance or {})
    findings += reference_fit_findings(reference_fit or {}, performance or {})

    for failure in (FailureClass.SKEW, FailureClass.BAD_RELEASE, FailureClass.BIAS, FailureClass.DRIFT):
        decisive = sorted((f for f in findings if f.points_to == failure), key=lambda f: -f.weight)
        if decisive:
            others = sorted((f for f in findings if f.points_to != failure), key=lambda f: -f.weight)
            columns = list(dict.fromkeys(f.column for f in decisive if f.column))
            return Verdict(
                failure_class=failure,
                severity=_severity(failure, decisive, drift, performance or estimated or {}, segments or {}),
                confidence=round(0.5 + 0.5 * decisive[0].weight, 3),
                root_cause=_root_cause(failure, decisive, findings) + _where(segments or {}),
                columns=columns,
                evidence=[*decisive, *others],
            )
    weak = max((f.weight for f in findings), default=0.0)
    return Verdict(
        failure_class=None,
        severity=None,
        confidence=round(1.0 - 0.5 * weak, 3),
        root_cause="no failure: the contract holds, no column moved past its drift threshold, groups are treated alike",
        columns=[],
        evidence=sorted(findings, key=lambda f: -f.weight),
    )


# A drop of this much accuracy (realised, or estimated before labels), or this rise of the
# error, is harm users notice: the SOP's "accuracy drop beyond policy" (SEV2).
HARMFUL_ACCURACY_DROP = 0.05
HARMFUL_ERROR_RISE = 0.2
# A failure confined to a segment of less than this share of traffic is one level less
# severe, unless it harms a protected group or breaks the pipeline.
SEGMENT_SHARE = 0.2


def _severity(
    failure: FailureClass,
    decisive: list[Finding],
    drift: dict[str, Any],
    impact: dict[str, Any],
    segments: dict[str, Any],
) -> Severity:
    """A triage severity from the evidence alone (incidents take theirs from the policy's matrix).

    Drift is ranked by its harm where it can be measured or estimated: the performance
    drop (realised with labels, CBPE/DLE before them), then by how much of the traffic it
    concerns (a segment under a fifth of it is one level lower).
    """
    if failure == FailureClass.SKEW:
        return Severity.SEV2 if any(f.weight >= 0.95 for f in decisive) else Severity.SEV3
    if failure == FailureClass.BAD_RELEASE:
        return Severity.SEV2
    if failure == FailureClass.BIAS:
        return Severity.SEV2 if decisive[0].weight >= 0.8 else Severity.SEV3
    harm = _harm(impact)
    if harm is None:
        severity = Severity.SEV2 if drift.get("dataset_drift") else Severity.SEV3
    else:
        severity = Severity.SEV2 if harm else Severity.SEV3
    top = (segments.get("segments") or [{}])[0]
    if segments.get("scope") == "segment" and top.get("share", 1.0) < SEGMENT_SHARE and severity == Severity.SEV2:
        return Severity.SEV3
    return severity


def _harm(impact: dict[str, Any]) -> bool | None:
    """Whether the performance change (realised or estimated) is harmful; None when there is none."""
    metric = impact.get("metric")
    before = impact.get("reference")
    after = impact.get("current", impact.get("estimate"))
    if metric is None or before is None or after is None:
        return None
    if metric == "accuracy":
        return bool(before - after >= HARMFUL_ACCURACY_DROP)
    return bool(after >= (1 + HARMFUL_ERROR_RISE) * before)


def _where(segments: dict[str, Any]) -> str:
    if segments.get("scope") == "segment":
        from firebreak.investigation.segments import describe

        return f"; concentrated in {describe(segments)}"
    if segments.get("scope") == "all users":
        return "; across all users (no segment stands out)"
    return ""


def _root_cause(failure: FailureClass, decisive: list[Finding], findings: list[Finding]) -> str:
    columns = ", ".join(dict.fromkeys(f.column for f in decisive if f.column))
    named = f" in {columns}" if columns else ""  # a finding on the whole table names no column
    if failure == FailureClass.SKEW:
        lineage = [f.detail for f in decisive if f.kind == "lineage"]
        where = f"; lineage: {lineage[0]}" if lineage and lineage[0] != decisive[0].detail else ""
        return f"upstream data changed (skew){named}: {decisive[0].detail}{where}"
    if failure == FailureClass.BAD_RELEASE:
        return f"the released model regressed on the golden dataset: {decisive[0].detail}"
    if failure == FailureClass.BIAS:
        return f"a protected group gets materially worse outcomes: {decisive[0].detail}"
    if all(f.kind == "performance" for f in decisive):
        return f"the relation between inputs and labels changed (concept drift): {decisive[0].detail.split(': ', 1)[1]}"
    if not columns:
        return f"input distribution moved (drift) within the contract's ranges: {decisive[0].detail}"
    beyond = [f for f in decisive if f.kind in ("range", "contract")]  # past the range, or unseen values
    if beyond:
        return (
            f"input distribution moved (drift) in {columns}, past what the reference covered: "
            f"{beyond[0].detail}; the world changed, the pipeline did not"
        )
    return (
        f"input distribution moved (drift) in {columns} within the contract's ranges: "
        "the world changed, the pipeline did not"
    )


# Classes where the version that served is itself the defect: a release that regressed, a
# prompt that promises what it may not, a model that harms a group, a model that learned
# from poisoned feedback. Drift (the world moved; the version fitted the old one) and skew
# (the pipeline changed) do not condemn it. Such a version never becomes last-known-good.
VERSION_FAULTS = frozenset(
    {FailureClass.BAD_RELEASE, FailureClass.HALLUCINATION, FailureClass.BIAS, FailureClass.FEEDBACK_POISONING}
)


@dataclass(frozen=True)
class Diagnosis:
    failure_class: FailureClass
    root_cause: str
    reasons: list[str] = field(default_factory=list)
    remediation: Remediation | None = None  # None: no automated remediation applies
    confidence: float | None = None
    columns: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    implicates_champion: bool = False  # the champion itself is the cause (:data:`VERSION_FAULTS`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(
    policy: Policy,
    *,
    contract: dict[str, Any],
    lineage: dict[str, Any],
    drift: dict[str, Any],
    golden: dict[str, Any],
    reported: FailureClass,
    fairness: dict[str, Any] | None = None,
    golden_qa: dict[str, Any] | None = None,
    feedback: dict[str, Any] | None = None,
) -> Diagnosis:
    """The incident's diagnosis: :func:`classify` on its evidence, and the policy's remediation.

    SOP stage: diagnose. :func:`classify` reads the contract, lineage, drift, golden and
    fairness evidence (``fairness_audit``: a protected group served worse than the policy's
    fairness limits is ``bias``, with or without drift beside it); the incident's own checks
    then refine it: skew stands; an LLM model failing its golden Q&A is ``hallucination``;
    a few actors' feedback, contradicted by the labels (``feedback_review``), is
    ``feedback_poisoning`` — the specific cause of a regression, a bias or a drift it
    explains. When the evidence shows nothing, the reported class stands (or ``unknown``):
    a person saw something the evidence does not cover.
    """
    verdict = classify(contract=contract, drift=drift, fairness=fairness, golden=golden, lineage=lineage)
    reasons = [f.detail for f in verdict.evidence if f.points_to == verdict.failure_class and verdict.failure_class]
    if verdict.failure_class != FailureClass.SKEW and golden_qa and golden_qa.get("failed"):
        failure = FailureClass.HALLUCINATION
        log = golden_qa.get("log", {})
        cause = (
            f"champion v{golden_qa.get('version')} ({golden_qa.get('prompt')}) answers outside policy: "
            + "; ".join(golden_qa.get("breaches", []))
        )
        reasons = [
            f"guardrail hits in the log: {log.get('guardrail_hits')}/{log.get('rows')} by rule {log.get('by_rule')}"
        ]
    elif verdict.failure_class != FailureClass.SKEW and (feedback or {}).get("poisoned"):
        assert feedback is not None
        failure = FailureClass.FEEDBACK_POISONING
        figures = feedback.get("figures", {})
        actors = ", ".join((feedback.get("slice") or {}).get("actors", []))
        cause = f"a few actors ({actors}) flooded the feedback loop the model learns from: {feedback.get('summary')}"
        reasons = [
            f"top-actor share {figures.get('top_share')}, thumbs-down rate shift {figures.get('rate_shift')}, "
            f"their thumbs down contradicted by labels {figures.get('top_label_disagreement')}"
        ]
    elif verdict.failure_class is not None:
        failure, cause = verdict.failure_class, verdict.root_cause
    elif reported != FailureClass.UNKNOWN:
        failure, cause = reported, f"evidence inconclusive; keeping the reported class {reported}"
    else:
        failure, cause = FailureClass.UNKNOWN, "no cause found in the evidence"
    return Diagnosis(
        failure,
        cause,
        reasons,
        policy.remediation.by_failure_class.get(failure),
        verdict.confidence,
        verdict.columns,
        verdict.to_dict()["evidence"],
        failure in VERSION_FAULTS,
    )


def triage_tables(
    reference: Any,
    current: Any,
    *,
    contract: dict[str, Any] | None = None,
    label: str | None = None,
    prediction: str | None = None,
    confidence: str | None = None,
    protected: str | None = None,
    positive_class: str | None = None,
) -> tuple[Verdict, dict[str, Any]]:
    """``firebreak triage`` as a call: the evidence from two tables, and the verdict on it.

    SOP stages: triage, investigate, diagnose. The one composition the command, the
    benchmarks and the accuracy tests share.
    """
    from firebreak.investigation.evidence import gather_evidence

    evidence = gather_evidence(
        reference,
        current,
        contract=contract,
        label=label,
        prediction=prediction,
        confidence=confidence,
        protected=protected,
        positive_class=positive_class,
    )
    verdict = classify(
        contract=evidence["contract"],
        drift=evidence["drift"],
        fairness=evidence.get("fairness"),
        reference_fairness=evidence.get("reference_fairness"),
        performance=evidence.get("performance"),
        estimated=evidence.get("estimated_performance"),
        segments=evidence.get("segments"),
        reference_fit=evidence.get("reference_fit"),
    )
    return verdict, evidence
