"""The investigation's checks, composed once: the incident's stages and the scheduled audits call these.

SOP stage: investigate. Each check returns its evidence (a typed result or the payload
recorded as evidence) and decides nothing; the caller persists it, then decides.

* :func:`check_contract` — the model's Great Expectations suite on logged traffic;
* :func:`check_drift` — the full-data drift engine's verdicts, Evidently's report (the
  evidence people read, on capped samples), the K-S confirmations and unit/scale changes
  diagnosis needs;
* :func:`check_fairness` — the policy's fairness figures on labelled traffic;
* the golden check is the model kind's (:meth:`firebreak.kinds.ModelKind.golden_check`).

Traffic is a frame, or a :class:`~firebreak.prediction_log.LogWindow` of the prediction
log. A window of up to :data:`IN_MEMORY_ROWS` stored rows is read whole and checked as a
frame (the path small windows always took); a bigger one is streamed in bounded batches:
the contract's counts merged over batches (:func:`~firebreak.contracts.validation.validate_batches`),
the drift verdicts from the streamed engine (:func:`~firebreak.detection.streaming.stream_drift`,
the same verdicts as the in-memory one), Evidently's report and the scale check on a
uniform sample of the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from firebreak.policy.schema import Policy
from firebreak.prediction_log import LogWindow

# Windows up to this many stored rows are read whole (about 1 GB at pricing's width); bigger
# ones are streamed. The drift engine needs ~330 bytes a row in memory at 20 columns.
IN_MEMORY_ROWS = 2_000_000
Traffic: TypeAlias = pd.DataFrame | LogWindow

if TYPE_CHECKING:
    from firebreak.contracts.validation import ContractResult
    from firebreak.detection.drift import DriftResult
    from firebreak.detection.fairness import FairnessResult
    from firebreak.settings import Settings


def in_memory(traffic: Traffic, columns: list[str] | None = None) -> pd.DataFrame | None:
    """The traffic as one frame when it is small enough to hold (None: stream it)."""
    if isinstance(traffic, pd.DataFrame):
        return traffic
    if traffic.stored_rows() <= IN_MEMORY_ROWS:
        return traffic.frame(columns)
    return None


def check_contract(
    traffic: Traffic, policy: Policy, settings: Settings, *, result_path: Path | None = None
) -> ContractResult:
    """The contract on the inputs and lineage columns of the traffic (the full GX result to ``result_path``)."""
    from firebreak.contracts.validation import validate_batches, validate_frame

    wanted = [*policy.features.inputs, *policy.features.lineage]
    suite = settings.resolve(policy.contract)
    frame = in_memory(traffic)
    if frame is None:
        assert isinstance(traffic, LogWindow)
        batches = (batch[[c for c in wanted if c in batch.columns]] for batch in traffic.batches(wanted))
        return validate_batches(batches, suite, result_json_path=result_path)
    columns = [c for c in wanted if c in frame.columns]
    return validate_frame(frame[columns], suite, result_json_path=result_path)


@dataclass(frozen=True)
class DriftCheck:
    """Drift verdicts (full data), the payload recorded as evidence, and Evidently's report files."""

    result: DriftResult
    payload: dict[str, Any]
    reports: list[Path]
    sample: pd.DataFrame  # the current rows the report was built on (all of them, or the stream's sample)

    def summary(self) -> str:
        top = ", ".join(f"{c.column} ({c.method} {c.score:.3g})" for c in self.result.top(3)) or "none"
        return f"{len(self.result.drifted_columns)}/{len(self.result.columns)} inputs drifted (top: {top})"


def check_drift(reference: pd.DataFrame, traffic: Traffic, policy: Policy, out_dir: Path) -> DriftCheck:
    """Drift of the traffic's inputs against ``reference`` (the champion's training inputs).

    Verdicts come from the full-data engine (Evidently's tests and thresholds, every row);
    Evidently's HTML/JSON report is built on capped stratified samples, and the payload says
    whether the two agree.
    """
    from firebreak.detection.drift import run_drift_report
    from firebreak.detection.stats import compute_drift, sample_for_report
    from firebreak.detection.streaming import stream_drift
    from firebreak.investigation.evidence import add_drift_checks

    features = policy.features
    current = in_memory(traffic, features.inputs)
    ks_p_values: dict[str, float] | None = None
    streamed: dict[str, Any] | None = None
    if current is None:
        assert isinstance(traffic, LogWindow)
        window = traffic
        stream = stream_drift(
            reference,
            lambda: window.batches(features.inputs),
            columns=features.inputs,
            categorical=features.categorical,
            drift_share=policy.detection.drift_share,
        )
        result, current, ks_p_values = stream.result, stream.sample, stream.ks_p_values
        streamed = {"passes": stream.passes, "sample_rows": len(stream.sample), "approximate": stream.approximate}
    else:
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
    # K-S confirmations (on every row) and unit/scale changes (on the sample when streamed), for diagnose.
    add_drift_checks(payload, reference, current, ks_p_values=ks_p_values)
    payload["report_agrees"] = sorted(report.drifted_columns) == sorted(result.drifted_columns)
    if streamed is not None:
        payload["streamed"] = streamed
    return DriftCheck(result, payload, reports, current)


def check_fairness(labelled: pd.DataFrame, policy: Policy) -> FairnessResult:
    """The policy's fairness figures for the decisions users got, on labelled traffic."""
    from firebreak.detection.fairness import fairness_on

    rows = labelled.reset_index(drop=True)
    return fairness_on(rows, rows, policy)
