"""Diagnosis: a failure class and a root cause from the investigation's evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from firebreak.incidents.enums import FailureClass, Remediation
from firebreak.policy.schema import Policy


@dataclass(frozen=True)
class Diagnosis:
    failure_class: FailureClass
    root_cause: str
    reasons: list[str] = field(default_factory=list)
    remediation: Remediation | None = None  # None: no automated remediation applies

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
    feedback: dict[str, Any] | None = None,
) -> Diagnosis:
    """Decide the failure class from the evidence, in the SOP's order of suspicion.

    1. Upstream skew: the contract fails or lineage shows unallowed/new sources.
    2. Bad release: the champion regressed on the golden dataset against its own baseline.
    3. Drift: the inputs moved (dataset drift) while the golden figures held.
    4. Bias: a protected group is served worse than the policy's fairness limits allow.
    5. Feedback poisoning: a few actors' feedback, contradicted by the labels, floods the loop.
    Otherwise the reported class stands (or ``unknown``).
    """
    reasons: list[str] = []
    failure = FailureClass.UNKNOWN
    cause = "no cause found in the evidence"
    if not contract.get("passed", True) or not lineage.get("passed", True):
        failure = FailureClass.SKEW
        failed = ", ".join(f"{f['column']} {f['expectation']}" for f in contract.get("failures", [])) or "none"
        cause = f"upstream data broke the contract (failed: {failed})"
        reasons.append(f"contract failures: {failed}; unallowed lineage rows: {lineage.get('unknown_rows', 0)}")
    elif golden.get("regressed"):
        failure = FailureClass.BAD_RELEASE
        cause = f"champion v{golden.get('version')} regressed on the golden dataset against its recorded baseline"
        reasons.append(f"golden {golden.get('figures')} vs baseline {golden.get('baseline')}")
    elif drift.get("dataset_drift"):
        failure = FailureClass.DRIFT
        top = [c["column"] for c in drift.get("columns", []) if c.get("drifted")][:3]
        cause = (
            f"input distribution moved away from the champion's training data (top drifted: {', '.join(top)}); "
            "golden figures held, so the model did not change: the world did"
        )
        reasons.append(f"drift share {drift.get('drift_share')} >= {drift.get('drift_share_threshold')}")
        reasons.append("golden dataset within tolerance of baseline")
    elif (fairness or {}).get("breached"):
        assert fairness is not None
        failure = FailureClass.BIAS
        cause = f"{fairness.get('attribute')}={fairness.get('worst')} is served worse than policy allows: {fairness.get('summary')}"
        reasons.append(
            f"selection-rate ratio {fairness.get('selection_rate_ratio')}, "
            f"equalized-odds difference {fairness.get('equalized_odds_difference')}"
        )
    elif (feedback or {}).get("poisoned"):
        assert feedback is not None
        failure = FailureClass.FEEDBACK_POISONING
        figures = feedback.get("figures", {})
        actors = ", ".join((feedback.get("slice") or {}).get("actors", []))
        cause = f"a few actors ({actors}) flooded the feedback loop the model learns from: {feedback.get('summary')}"
        reasons.append(
            f"top-actor share {figures.get('top_share')}, thumbs-down rate shift {figures.get('rate_shift')}, "
            f"their thumbs down contradicted by labels {figures.get('top_label_disagreement')}"
        )
    elif reported != FailureClass.UNKNOWN:
        failure = reported
        cause = f"evidence inconclusive; keeping the reported class {reported}"
    remediation = policy.remediation.by_failure_class.get(failure)
    return Diagnosis(failure, cause, reasons, remediation)
