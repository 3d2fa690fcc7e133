"""The incident vocabulary, defined once and imported everywhere."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class FailureClass(StrEnum):
    """The SOP's failure classes; ``unknown`` lets triage and diagnosis decide."""

    DRIFT = "drift"
    SKEW = "skew"
    BIAS = "bias"
    HALLUCINATION = "hallucination"
    FEEDBACK_POISONING = "feedback_poisoning"
    BAD_RELEASE = "bad_release"
    UNKNOWN = "unknown"


class Remediation(StrEnum):
    """Remediations; each value is also the task id of its branch in ``incident_response``."""

    ROLLBACK = "rollback"
    RETRAIN = "retrain"
    PARAMETER_UPDATE = "parameter_update"
    UPSTREAM_FIX = "upstream_fix"
    GUARDRAIL_RULE = "guardrail_rule"


class IncidentStatus(StrEnum):
    OPEN = "open"
    CONTAINED = "contained"
    REMEDIATING = "remediating"
    RESOLVED = "resolved"
    CONTAINED_NEEDS_HUMAN = "contained_needs_human"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    # The alert was about a version that no longer serves, and the one serving shows no breach:
    # closed without touching routing (containing a healthy model is harm too).
    STALE = "stale"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {
    IncidentStatus.RESOLVED,
    IncidentStatus.CONTAINED_NEEDS_HUMAN,
    IncidentStatus.FAILED,
    IncidentStatus.DRY_RUN,
    IncidentStatus.STALE,
}


class Route(StrEnum):
    """Where a model's traffic goes (the routing state the gateway obeys)."""

    CHAMPION = "champion"
    FALLBACK_MODEL = "fallback_model"
    HEURISTIC = "heuristic"
    DISABLED = "disabled"


class BreakerState(StrEnum):
    """The serving gateway's circuit breaker (one per model, shared by all workers)."""

    CLOSED = "closed"  # the champion serves
    OPEN = "open"  # the policy's fallback serves; wait before probing
    HALF_OPEN = "half_open"  # the fallback serves; the champion is probed on live inputs

    @property
    def gauge(self) -> int:
        """The value of the ``firebreak_breaker_state`` metric: 0 closed, 1 half-open, 2 open."""
        return {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}[self]


class Alias(StrEnum):
    """MLflow registry aliases Firebreak moves."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    LAST_KNOWN_GOOD = "last-known-good"
    FALLBACK = "fallback"


class Signal(StrEnum):
    """Triage signals computed from the prediction log; the severity matrix refers to them."""

    LOW_CONFIDENCE_RATE = "low_confidence_rate"
    SANITY_VIOLATION_RATE = "sanity_violation_rate"
    CONTRACT_VIOLATION_RATE = "contract_violation_rate"
    GUARDRAIL_HIT_RATE = "guardrail_hit_rate"
    # 1.0 when the incident's fairness audit found a protected group served worse than the
    # policy's fairness limits, else 0.0. Known only after investigation (``fairness_audit``):
    # the diagnose stage re-ranks the severity with it.
    PROTECTED_GROUP_HARM = "protected_group_harm"


class EvidenceKind(StrEnum):
    """What a stage records about an incident (one row per kind, replaced on re-run).

    The stages write them, diagnosis and the post-mortem read them: one vocabulary.
    """

    OPENING = "opening"
    TRIAGE = "triage"
    CONTAINMENT = "containment"
    CONTRACT = "contract"
    LINEAGE = "lineage"
    DRIFT = "drift"
    GOLDEN = "golden"
    GOLDEN_QA = "golden_qa"
    FAIRNESS = "fairness"
    FEEDBACK = "feedback"
    DIAGNOSIS = "diagnosis"
    REMEDIATION_CHOICE = "remediation_choice"
    CANDIDATE = "candidate"
    UPSTREAM_CHECK = "upstream_check"
    GATE = "gate"
    PROMOTION = "promotion"
    RESTORE = "restore"
    APPROVAL = "approval"
    POSTMORTEM = "postmortem"
    IMPACT = "impact"  # the harm in the model's own terms (the post-mortem's first section)
    OUTPUTS = "outputs"  # output and confidence distributions, traffic by route (the post-mortem's charts)


class EventKind(StrEnum):
    """Timeline lines that are not evidence: bookkeeping of the run and of the alert intake."""

    REPLAY = "replay"
    TASK_STARTED = "task_started"
    TASK_SUCCEEDED = "task_succeeded"
    TASK_FAILED = "task_failed"
    CANDIDATE_REUSED = "candidate"
    GUARDRAILS = "guardrails"
    STALE = "stale"
    SEVERITY_RERANKED = "severity_reranked"
    CLOSED = "closed"
    ACKNOWLEDGED = "acknowledged"  # someone took the incident (data: by, reason)
    OPERATOR = "operator"  # a person acted by hand from the console or the shell (data: by, reason, action)
    ESCALATED = "escalated"
    DEADLINE_MET = "deadline_met"
    NOTIFIED = "notified"
    NOTIFY_FAILED = "notify_failed"
    STATUS_UPDATE = "status_update"


class ClockMark(StrEnum):
    """The incident clock, in the order an incident lives it (``acknowledged`` runs beside ``contained``).

    What on-call teams are measured by: time to detect (``detected`` - ``first_breach``),
    to acknowledge (``acknowledged`` - ``opened``), to contain (``contained`` - ``detected``)
    and to resolve (``resolved`` - ``detected``).
    """

    FIRST_BREACH = "first_breach"  # the first logged prediction that broke the policy (prediction log)
    DETECTED = "detected"  # the alert started firing (its startsAt), or the incident was opened by hand
    OPENED = "opened"  # the incident row exists and the SOP runs
    ACKNOWLEDGED = "acknowledged"  # a person took it (shell, REST, UI)
    CONTAINED = "contained"  # traffic is off the failing model
    MITIGATED = "mitigated"  # the fix serves users (traffic restored on the remediated champion)
    RESOLVED = "resolved"  # the incident closed resolved

    @property
    def chain(self) -> bool:
        """On the lifecycle chain whose marks never go backwards (acknowledged is beside it)."""
        return self is not ClockMark.ACKNOWLEDGED
