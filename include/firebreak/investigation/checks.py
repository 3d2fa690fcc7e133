"""The investigation's checks, composed once: the incident's stages and the scheduled audits call these.

SOP stage: investigate. Each check returns its evidence (a typed result or the payload
recorded as evidence) and decides nothing; the caller persists it, then decides.

* :func:`check_contract` — the model's Great Expectations suite on logged traffic;
* :func:`check_drift` — the full-data drift engine's verdicts, Evidently's report (the
  evidence people read, on capped samples), the K-S confirmations and unit/scale changes
  diagnosis needs;
* :func:`check_fairness` — the policy's fairness figures on labelled traffic;
* the golden check is the model kind's (:meth:`firebreak.kinds.ModelKind.golden_check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.policy.schema import Policy

if TYPE_CHECKING:
    from firebreak.contracts.validation import ContractResult
    from firebreak.detection.drift import DriftResult
    from firebreak.detection.fairness import FairnessResult
    from firebreak.settings import Settings


def check_contract(
    frame: pd.DataFrame, policy: Policy, settings: Settings, *, result_path: Path | None = None
) -> ContractResult:
    """The contract on the inputs and lineage columns of ``frame`` (the full GX result to ``result_path``)."""
    from firebreak.contracts.validation import validate_frame

    columns = [c for c in [*policy.features.inputs, *policy.features.lineage] if c in frame.columns]
    return validate_frame(frame[columns], settings.resolve(policy.contract), result_json_path=result_path)


@dataclass(frozen=True)
class DriftCheck:
    """Drift verdicts (full data), the payload recorded as evidence, and Evidently's report files."""

    result: DriftResult
    payload: dict[str, Any]
    reports: list[Path]

    def summary(self) -> str:
        top = ", ".join(f"{c.column} ({c.method} {c.score:.3g})" for c in self.result.top(3)) or "none"
        return f"{len(self.result.drifted_columns)}/{len(self.result.columns)} inputs drifted (top: {top})"


def check_drift(reference: pd.DataFrame, current: pd.DataFrame, policy: Policy, out_dir: Path) -> DriftCheck:
    """Drift of ``current`` inputs against ``reference`` (the champion's training inputs).

    Verdicts come from the full-data engine (Evidently's tests and thresholds, every row);
    Evidently's HTML/JSON report is built on capped stratified samples, and the payload says
    whether the two agree.
    """
    from firebreak.detection.drift import run_drift_report
    from firebreak.detection.stats import compute_drift, sample_for_report
    from firebreak.investigation.evidence import add_drift_checks

    features = policy.features
    result = compute_drift(
        reference,
        current,
        columns=features.inputs,
        categorical=features.categorical,
        drift_share=policy.detection.drift_share,
    )
    stratify = features.categorical[0] if features.categorical else None
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = [out_dir / "drift_report.html", out_dir / "drift_report.json"]
    report = run_drift_report(
        sample_for_report(reference, stratify=stratify),
        sample_for_report(current, stratify=stratify),
        columns=features.inputs,
        categorical=features.categorical,
        html_path=reports[0],
        json_path=reports[1],
    )
    payload = result.to_dict()
    add_drift_checks(payload, reference, current)  # K-S confirmations and unit/scale changes, for diagnose
    payload["report_agrees"] = sorted(report.drifted_columns) == sorted(result.drifted_columns)
    return DriftCheck(result, payload, reports)


def check_fairness(labelled: pd.DataFrame, policy: Policy) -> FairnessResult:
    """The policy's fairness figures for the decisions users got, on labelled traffic."""
    from firebreak.detection.fairness import fairness_on

    rows = labelled.reset_index(drop=True)
    return fairness_on(rows, rows, policy)
