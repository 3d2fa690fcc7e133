"""Triage: signals from the recent prediction log, severity from the policy's matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from firebreak.detection.performance import sanity_violations
from firebreak.incidents.enums import FailureClass, Severity, Signal
from firebreak.policy.schema import Policy


@dataclass(frozen=True)
class TriageResult:
    rows: int
    signals: dict[Signal, float]
    severity: Severity
    matched_rule: dict[str, Any] | None  # the severity rule that matched, with the signal values
    provisional_class: FailureClass
    first_breach_at: str | None  # first logged prediction that broke the floor or the sanity bound
    # Per severity-rule signal: the first clock hour whose rate alone reached the rule's threshold,
    # i.e. when an hourly check of the same rule would have opened this incident.
    first_hour_over: dict[str, str]
    # Where the breaching predictions concentrate (firebreak.investigation.segments.localise).
    segments: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["signals"] = {str(k): v for k, v in self.signals.items()}
        return data


def compute_signals(window: pd.DataFrame, policy: Policy) -> dict[Signal, float]:
    """Rates over the window: low confidence, sanity violations, contract violations."""
    if window.empty:
        return {s: 0.0 for s in Signal}
    confidence = window[policy.features.confidence].astype(float)
    contract = window.get("contract_violations", pd.Series("", index=window.index)).fillna("")
    guardrail = window.get("guardrail_rule", pd.Series("", index=window.index)).fillna("")
    return {
        Signal.LOW_CONFIDENCE_RATE: round(float((confidence < policy.detection.confidence_floor).mean()), 4),
        Signal.SANITY_VIOLATION_RATE: round(float(sanity_violations(window, window, policy).mean()), 4),
        Signal.CONTRACT_VIOLATION_RATE: round(float((contract.astype(str) != "").mean()), 4),
        # LLM models: answers the guardrails flagged (logged by the gateway; empty when none fired).
        Signal.GUARDRAIL_HIT_RATE: round(float((guardrail.astype(str) != "").mean()), 4),
    }


def triage(window: pd.DataFrame, policy: Policy, *, requested: Severity | None = None) -> TriageResult:
    """Rank the incident: the first severity rule any signal reaches wins.

    It also answers the SOP's first question, who is hit: the segments where the breaching
    predictions concentrate (``segments``; "all users" when they do not), which a policy
    with ``containment.scope: segment`` contains alone.

    ``requested`` (the form's explicit severity) overrides the matrix but is still
    reported next to the signals, so the post-mortem shows both.
    """
    signals = compute_signals(window, policy)
    matched: dict[str, Any] | None = None
    severity = policy.severity.default
    for rule in policy.severity.rules:
        hits = {str(s): signals[s] for s, threshold in rule.when.items() if signals[s] >= threshold}
        if hits:
            severity = rule.severity
            matched = {
                "severity": str(rule.severity),
                "thresholds": {str(k): v for k, v in rule.when.items()},
                "hits": hits,
            }
            break
    if requested is not None:
        severity = requested
    breach = pd.Series(False, index=window.index)
    if not window.empty:
        breach = (window[policy.features.confidence].astype(float) < policy.detection.confidence_floor) | pd.Series(
            sanity_violations(window, window, policy), index=window.index
        )
    first = str(window.loc[breach, "ts"].min()) if breach.any() else None
    segments = None
    if breach.any():
        from firebreak.investigation.segments import localise

        inputs = [c for c in policy.features.inputs if c in window.columns]
        segments = localise(
            None,
            window.reset_index(drop=True),
            columns=inputs,
            current_flags=breach.to_numpy(),
            signal="predictions under the confidence floor or the sanity bound",
        )
    return TriageResult(
        rows=len(window),
        signals=signals,
        severity=severity,
        matched_rule=matched,
        provisional_class=_provisional_class(signals),
        first_breach_at=first,
        first_hour_over=_first_hour_over(window, policy),
        segments=segments,
    )


def _first_hour_over(window: pd.DataFrame, policy: Policy) -> dict[str, str]:
    if window.empty:
        return {}
    hours = pd.to_datetime(window["ts"], utc=True).dt.floor("h")
    rates = {hour: compute_signals(part, policy) for hour, part in window.groupby(hours)}
    found: dict[str, str] = {}
    for rule in policy.severity.rules:
        for signal, threshold in rule.when.items():
            over = [hour for hour, values in sorted(rates.items()) if values[signal] >= threshold]
            if over and str(signal) not in found:
                found[str(signal)] = str(over[0])
    return found


def _provisional_class(signals: dict[Signal, float]) -> FailureClass:
    """A first guess for the form's "unknown"; diagnosis decides from the evidence."""
    if signals[Signal.CONTRACT_VIOLATION_RATE] > 0:
        return FailureClass.SKEW
    if signals.get(Signal.GUARDRAIL_HIT_RATE, 0.0) > 0:
        return FailureClass.HALLUCINATION
    if signals[Signal.LOW_CONFIDENCE_RATE] > 0 or signals[Signal.SANITY_VIOLATION_RATE] > 0:
        return FailureClass.DRIFT
    return FailureClass.UNKNOWN
