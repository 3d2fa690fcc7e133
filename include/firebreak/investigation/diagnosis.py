"""Diagnosis: a failure class and a root cause from the investigation's evidence.

One classifier, :func:`classify`, decides from the evidence; the DAG's ``diagnose`` stage
(through :func:`diagnose`, which adds the policy's remediation) and ``firebreak triage``
both call it, so an incident and a triage of the same tables get the same answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from firebreak.incidents.enums import FailureClass, Remediation, Severity
from firebreak.investigation.evidence import CONFIRM_P_VALUE
from firebreak.policy.schema import Policy

__all__ = ["Diagnosis", "Finding", "Verdict", "classify", "diagnose"]

# A range expectation failing on at least this share of rows (percent) is an upstream change;
# below it, a few values just past the widened range are what a moving world looks like.
RANGE_SKEW_PERCENT = 1.0
# p-value drift tests (used on references of <= 1000 rows) count only below this p-value:
# at Evidently's 0.05, ten unchanged columns raise a false alarm in 40% of comparisons.
STRICT_P_VALUE = 1e-3

# Contract expectations whose failure means the data's shape changed, not its distribution.
_STRUCTURAL = {
    "expect_column_to_exist": "column missing",
    "expect_table_columns_to_match_set": "columns changed",
    "expect_table_columns_to_match_ordered_list": "columns changed",
    "expect_column_values_to_be_of_type": "type changed",
    "expect_column_values_to_be_in_type_list": "type changed",
    "expect_column_values_to_not_be_null": "nulls appeared",
    "expect_column_values_to_be_in_set": "unknown values",
    "expect_column_values_to_match_regex": "format changed",
}
_RANGE = "expect_column_values_to_be_between"


@dataclass(frozen=True)
class Finding:
    """One piece of evidence, with the class it points to (None: context, points nowhere)."""

    kind: str  # contract | lineage | scale | golden | fairness | drift
    points_to: FailureClass | None
    column: str | None
    detail: str
    weight: float  # 0..1, how strongly it points there


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
    3. Bias: the fairness figures breached their limits (the policy's in an incident; in
       triage the four-fifths rule and 10 points more errors), with or without drift
       beside it; the further past a limit, the stronger the evidence.
    4. Drift: inputs moved (a column's drift test past its threshold; p-value tests at 1e-3)
       while the contract held.
    """
    contract, drift, fairness = contract or {}, drift or {}, fairness or {}
    golden, lineage = golden or {}, lineage or {}
    findings: list[Finding] = []
    findings += _contract_findings(contract)
    findings += _lineage_findings(lineage)
    for change in drift.get("scale_changes", []) or []:
        findings.append(
            Finding(
                "scale",
                FailureClass.SKEW,
                change["column"],
                f"{change['column']} multiplied by {change['factor']:g} (every quantile alike: a unit or currency change)",
                0.95,
            )
        )
    findings += _golden_findings(golden)
    findings += _fairness_findings(fairness)
    skew_columns = {f.column for f in findings if f.points_to == FailureClass.SKEW and f.column}
    findings += _drift_findings(drift, explained=skew_columns)

    for failure in (FailureClass.SKEW, FailureClass.BAD_RELEASE, FailureClass.BIAS, FailureClass.DRIFT):
        decisive = sorted((f for f in findings if f.points_to == failure), key=lambda f: -f.weight)
        if decisive:
            others = sorted((f for f in findings if f.points_to != failure), key=lambda f: -f.weight)
            columns = list(dict.fromkeys(f.column for f in decisive if f.column))
            return Verdict(
                failure_class=failure,
                severity=_severity(failure, decisive, drift, contract),
                confidence=round(0.5 + 0.5 * decisive[0].weight, 3),
                root_cause=_root_cause(failure, decisive, findings),
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


def _contract_findings(contract: dict[str, Any]) -> list[Finding]:
    found = []
    rows = contract.get("evaluated_rows")
    for failure in contract.get("failures", []) or []:
        kind = str(failure.get("expectation", ""))
        column = failure.get("column")
        percent = failure.get("unexpected_percent")
        sample = failure.get("sample") or []
        shown = f"; e.g. {', '.join(map(str, sample[:3]))}" if sample else ""
        if kind == _RANGE:
            share = 100.0 if percent is None else float(percent)
            if share >= RANGE_SKEW_PERCENT:
                detail = f"{column}: {share:.1f}% of values outside the contract range{shown}"
                found.append(Finding("contract", FailureClass.SKEW, column, detail, min(1.0, 0.7 + share / 100)))
            else:
                detail = f"{column}: {share:.2f}% of values just outside the contract range (tail of a shift)"
                found.append(Finding("contract", None, column, detail, 0.2))
            continue
        what = _STRUCTURAL.get(kind, kind)
        if failure.get("sample") == ["<column missing>"]:
            what = "column missing"
        on = f" on {float(percent):.1f}% of rows" if percent is not None and what != "column missing" else ""
        weight = 1.0 if what == "column missing" else 0.95
        found.append(Finding("contract", FailureClass.SKEW, column, f"{column}: {what}{on}{shown}", weight))
    if found and rows is not None:
        found = [Finding(f.kind, f.points_to, f.column, f.detail + f" ({rows} rows checked)", f.weight) for f in found]
    return found


def _lineage_findings(lineage: dict[str, Any]) -> list[Finding]:
    found = []
    groups = lineage.get("groups", []) or []
    if lineage and not lineage.get("passed", True):
        unallowed = "; ".join(
            f"{_source(g)} first seen {g.get('first_seen')} ({g.get('rows')} rows)"
            for g in groups
            if not g.get("allowed", True)
        )
        found.append(
            Finding(
                "lineage",
                FailureClass.SKEW,
                None,
                f"{lineage.get('unknown_rows', 0)} predictions from unallowed upstream sources or pipelines"
                + (f": {unallowed}" if unallowed else ""),
                0.95,
            )
        )
    return found


def _source(group: dict[str, Any]) -> str:
    skip = {"rows", "first_seen", "last_seen", "allowed", "model_version"}
    return ", ".join(f"{k}={v}" for k, v in group.items() if k not in skip)


def _golden_findings(golden: dict[str, Any]) -> list[Finding]:
    found = []
    figures = golden.get("figures") or {}
    if golden.get("regressed"):
        found.append(
            Finding(
                "golden",
                FailureClass.BAD_RELEASE,
                None,
                f"champion v{golden.get('version')} golden MAE {figures.get('mae')} vs its baseline "
                f"{(golden.get('baseline') or {}).get('mae')} (limit {golden.get('limit_mae')})",
                0.95,
            )
        )
    lkg = golden.get("last_known_good") or {}
    if golden.get("regressed_vs_last_known_good"):
        found.append(
            Finding(
                "golden",
                FailureClass.BAD_RELEASE,
                None,
                f"champion v{golden.get('version')} golden MAE {figures.get('mae')} vs last-known-good "
                f"v{lkg.get('version')} {(lkg.get('figures') or {}).get('mae')} (limit {lkg.get('limit_mae')})",
                0.95,
            )
        )
    return found


# Fairness figures a result judges against a limit: whether the limit is a floor (else a
# ceiling), and the evidence's weight at the limit; past it the weight grows by the distance
# (a ratio's shortfall, a difference's excess), up to 1. A selection ratio 0.1 under its floor
# weighs what an error-rate difference at its limit does (0.7), as triage's rules always had it.
_FAIRNESS_LIMITS: dict[str, tuple[bool, float]] = {
    "selection_rate_ratio": (True, 0.6),
    "error_rate_difference": (False, 0.7),
    "equalized_odds_difference": (False, 0.7),
    "error_ratio": (False, 0.7),
}


def _fairness_findings(fairness: dict[str, Any]) -> list[Finding]:
    """A breached fairness result (``FairnessResult.to_dict``): one finding per figure past its limit."""
    if not fairness.get("breached"):
        return []
    attribute, worst = fairness.get("attribute"), fairness.get("worst")
    limits = fairness.get("limits") or {}
    found = []
    for figure, (floor, base) in _FAIRNESS_LIMITS.items():
        value, limit = fairness.get(figure), limits.get(figure)
        if value is None or limit is None:
            continue
        past = limit - value if floor else value - limit
        if past <= 0:
            continue
        if figure == "selection_rate_ratio":
            detail = f"{attribute}={worst} selected at {value:.2f}x the best group's rate (floor {limit:g})"
        elif figure == "error_rate_difference":
            detail = (
                f"{attribute}={fairness.get('error_rate_worst')} error rate {value:.2f} above the best group's "
                f"(limit {limit:g})"
            )
        elif figure == "equalized_odds_difference":
            detail = (
                f"{attribute}={worst} selected least; true- or false-positive rates {value:.2f} apart across "
                f"groups (equalized-odds limit {limit:g})"
            )
        else:
            detail = (
                f"{attribute}={worst} gets {value:.2f}x the error of {attribute}={fairness.get('best')} "
                f"(limit {limit:g}x)"
            )
        found.append(Finding("fairness", FailureClass.BIAS, attribute, detail, min(1.0, base + past)))
    if not found:  # breached, but no figure past a recorded limit: the result's own words
        detail = f"{attribute}={worst} is served worse than policy allows: {fairness.get('summary')}"
        found.append(
            Finding("fairness", FailureClass.BIAS, attribute, detail, _FAIRNESS_LIMITS["selection_rate_ratio"][1])
        )
    return found


def _drift_findings(drift: dict[str, Any], *, explained: set[str]) -> list[Finding]:
    found = []
    for column in drift.get("columns", []) or []:
        if not column.get("drifted"):
            continue
        name, method = column.get("column"), str(column.get("method") or "")
        score, threshold = column.get("score"), column.get("threshold")
        p_value = "p_value" in method
        if p_value and score is not None and score >= STRICT_P_VALUE:
            continue  # Evidently's 0.05 alone: too weak to alarm on
        if name in explained:
            continue  # the upstream change moved it; not the world
        confirm = column.get("confirm_p_value")
        if confirm is not None and confirm >= CONFIRM_P_VALUE:
            detail = f"{name}: {method} {score:.3g} past its threshold, but K-S p={confirm:.2g} does not confirm it"
            found.append(Finding("drift", None, name, detail, 0.3))
            continue
        if score is None or threshold is None:
            weight = 0.7
        elif p_value:
            weight = min(1.0, 0.5 + (-math.log10(max(score, 1e-300)) - 3) / 20)
        else:
            weight = min(1.0, 0.5 + 0.25 * (score / threshold - 1))
        described = f"{method} {score:.3g}" if score is not None else "drifted"
        found.append(Finding("drift", FailureClass.DRIFT, name, f"{name}: {described} (threshold {threshold})", weight))
    if drift.get("dataset_drift") and not found and not explained:
        share = drift.get("drift_share")
        found.append(
            Finding("drift", FailureClass.DRIFT, None, f"dataset drift: share {share} of columns drifted", 0.7)
        )
    return found


def _severity(
    failure: FailureClass, decisive: list[Finding], drift: dict[str, Any], contract: dict[str, Any]
) -> Severity:
    """A triage severity from the evidence alone (incidents take theirs from the policy's matrix)."""
    if failure == FailureClass.SKEW:
        return Severity.SEV2 if any(f.weight >= 0.95 for f in decisive) else Severity.SEV3
    if failure == FailureClass.BAD_RELEASE:
        return Severity.SEV2
    if failure == FailureClass.BIAS:
        return Severity.SEV2 if decisive[0].weight >= 0.8 else Severity.SEV3
    return Severity.SEV2 if drift.get("dataset_drift") else Severity.SEV3


def _root_cause(failure: FailureClass, decisive: list[Finding], findings: list[Finding]) -> str:
    columns = ", ".join(dict.fromkeys(f.column for f in decisive if f.column)) or "see evidence"
    if failure == FailureClass.SKEW:
        lineage = [f.detail for f in decisive if f.kind == "lineage"]
        where = f"; lineage: {lineage[0]}" if lineage and lineage[0] != decisive[0].detail else ""
        return f"upstream data changed (skew) in {columns}: {decisive[0].detail}{where}"
    if failure == FailureClass.BAD_RELEASE:
        return f"the released model regressed on the golden dataset: {decisive[0].detail}"
    if failure == FailureClass.BIAS:
        return f"a protected group gets materially worse outcomes: {decisive[0].detail}"
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
