"""Triage: signals from the recent prediction log, severity from the policy's matrix.

SOP stage *Triage*, and what is decided with it: which logged rows are evidence at all
(:func:`champion_traffic`: only the version that serves now), whether the alert is about
a version that no longer serves (:func:`staleness`), and the severity again once the
investigation knows more (:func:`rerank`: harm to a protected group is only known after
``fairness_audit``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
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
        return {s: 0.0 for s in Signal if s != Signal.PROTECTED_GROUP_HARM}
    confidence = _confidence(window, policy)
    contract = window.get("contract_violations", pd.Series("", index=window.index)).fillna("")
    guardrail = window.get("guardrail_rule", pd.Series("", index=window.index)).fillna("")
    return {
        Signal.LOW_CONFIDENCE_RATE: round(float((confidence < policy.detection.confidence_floor).mean()), 4),
        Signal.SANITY_VIOLATION_RATE: round(float(sanity_violations(window, window, policy).mean()), 4),
        Signal.CONTRACT_VIOLATION_RATE: round(float((contract.astype(str) != "").mean()), 4),
        # LLM models: answers the guardrails flagged (logged by the gateway; empty when none fired).
        Signal.GUARDRAIL_HIT_RATE: round(float((guardrail.astype(str) != "").mean()), 4),
    }


def champion_traffic(window: pd.DataFrame, version: str) -> pd.DataFrame:
    """The rows ``version`` answered: the only traffic that is evidence about the model serving now
    (:func:`firebreak.prediction_log.answered_by`)."""
    from firebreak.prediction_log import answered_by

    return answered_by(window, version)


def rank(signals: dict[Signal, float], policy: Policy) -> tuple[Severity, dict[str, Any] | None]:
    """The policy's matrix on ``signals``: the first rule any signal reaches wins (signals not known count 0)."""
    for rule in policy.severity.rules:
        hits = {str(s): signals.get(s, 0.0) for s, threshold in rule.when.items() if signals.get(s, 0.0) >= threshold}
        if hits:
            return rule.severity, {
                "severity": str(rule.severity),
                "thresholds": {str(k): v for k, v in rule.when.items()},
                "hits": hits,
            }
    return policy.severity.default, None


def triage(window: pd.DataFrame, policy: Policy, *, requested: Severity | None = None) -> TriageResult:
    """Rank the incident: the first severity rule any signal reaches wins.

    It also answers the SOP's first question, who is hit: the segments where the breaching
    predictions concentrate (``segments``; "all users" when they do not), which a policy
    with ``containment.scope: segment`` contains alone.

    ``requested`` (the form's explicit severity) overrides the matrix but is still
    reported next to the signals, so the post-mortem shows both.
    """
    signals = compute_signals(window, policy)
    severity, matched = rank(signals, policy)
    if requested is not None:
        severity = requested
    breach = pd.Series(False, index=window.index)
    if not window.empty:
        breach = (_confidence(window, policy) < policy.detection.confidence_floor) | pd.Series(
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


def _confidence(window: pd.DataFrame, policy: Policy) -> pd.Series:
    """The logged confidence; a log without it (a team's own server that answers labels only) has no
    low-confidence signal rather than a failed triage."""
    column = policy.features.confidence
    if column not in window.columns:
        return pd.Series(float("nan"), index=window.index)
    return window[column].astype(float)


def staleness(
    triaged: TriageResult,
    *,
    champion: str,
    champion_since: datetime | None,
    alert_version: str | None,
    alert_started_at: datetime | None,
) -> str | None:
    """Why the alert is about a version that no longer serves, or None when it may be about this one.

    Stale needs both: the alert points before the current champion (it names another
    version, or its episode began before the champion started serving), *and* the
    champion's own traffic (``triaged``, on :func:`champion_traffic`) reaches no rule of
    the matrix. A failure the new champion shows too is never called stale.
    """
    if triaged.matched_rule is not None:
        return None
    if alert_version is not None and alert_version != champion:
        why = f"the alert is about v{alert_version}, and v{champion} serves now"
    elif alert_started_at is not None and champion_since is not None and alert_started_at < champion_since:
        why = (
            f"the alert's episode began at {alert_started_at.isoformat()}, before v{champion} started serving "
            f"at {champion_since.isoformat()}"
        )
    else:
        return None
    return f"{why}; v{champion}'s own traffic ({triaged.rows} predictions) reaches no severity rule"


@dataclass(frozen=True)
class Rerank:
    """The severity again after investigation, with the signals only the investigation knows."""

    before: Severity
    after: Severity
    signals: dict[str, float]
    matched_rule: dict[str, Any] | None
    why: str

    @property
    def changed(self) -> bool:
        return self.after != self.before


_ORDER = [Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4]


def rerank(
    policy: Policy,
    *,
    triaged: dict[str, Any],
    fairness: dict[str, Any] | None,
    current: Severity,
    requested: Severity | None,
) -> Rerank:
    """Re-rank after investigation: triage's signals plus ``protected_group_harm`` from the fairness audit.

    SOP: "a protected group is being harmed" is SEV1, and "when in doubt between two levels,
    take the higher one". So the matrix is applied again to every signal now known, and the
    severity only ever rises: the investigation adds evidence of harm, it never makes the
    harm triage saw smaller. A severity set by hand (``requested``) stands, as at triage.
    """
    signals = {
        Signal(k): float(v) for k, v in (triaged.get("signals") or {}).items() if k in Signal.__members__.values()
    }
    signals[Signal.PROTECTED_GROUP_HARM] = 1.0 if (fairness or {}).get("breached") else 0.0
    ranked, matched = rank(signals, policy)
    if requested is not None:
        after, why = current, f"kept {current}: set by hand"
    elif _ORDER.index(ranked) < _ORDER.index(current):
        after, why = ranked, f"raised {current} -> {ranked} by {', '.join((matched or {}).get('hits', {}))}"
    else:
        after, why = current, f"kept {current}: the investigation's signals rank it {ranked}"
    return Rerank(current, after, {str(k): v for k, v in signals.items()}, matched, why)


def _first_hour_over(window: pd.DataFrame, policy: Policy) -> dict[str, str]:
    if window.empty:
        return {}
    hours = pd.to_datetime(window["ts"], utc=True).dt.floor("h")
    rates = {hour: compute_signals(part, policy) for hour, part in window.groupby(hours)}
    found: dict[str, str] = {}
    for rule in policy.severity.rules:
        for signal, threshold in rule.when.items():
            over = [hour for hour, values in sorted(rates.items()) if values.get(signal, 0.0) >= threshold]
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
