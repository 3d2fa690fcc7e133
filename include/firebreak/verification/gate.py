"""The promotion gates: a candidate against the pre-incident champion, from the policy.

Three gates, one verdict: a model's (golden and recent figures, fairness), an LLM app's
(served answers on the golden Q&A set), and an upstream fix's (the newest traffic passes
the contract). Which model gate applies is the model kind's answer
(:meth:`firebreak.kinds.ModelKind.gate`); a candidate with no model change gets
:func:`upstream_gate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.detection.performance import Figures, from_loss, loss
from firebreak.investigation.evaluation import QAFigures
from firebreak.policy.metrics import HIGHER_IS_BETTER, METRIC_LABELS
from firebreak.policy.schema import Fairness, Gate, Llm, Policy

if TYPE_CHECKING:
    from firebreak.contracts.validation import ContractResult


@dataclass(frozen=True)
class GateVerdict:
    """Every check with its figure and limit; ``figures`` keeps what the post-mortem shows beside them."""

    passed: bool
    checks: list[dict[str, Any]]  # name, passed, candidate, limit
    figures: dict[str, Any] = field(default_factory=dict)  # e.g. candidate / champion, fairness, qa

    @property
    def fairness(self) -> dict[str, Any]:
        return dict(self.figures.get("fairness", {}))

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks, **self.figures}

    def summary(self) -> str:
        failed = [c for c in self.checks if not c["passed"]]
        if not failed:
            return f"gate passed: {len(self.checks)} checks"
        return "gate refused: " + "; ".join(f"{c['name']} {c['candidate']} (limit {c['limit']})" for c in failed)

    def checklist(self) -> str:
        """Every check on its own line, passed or not: what a refused task's log shows on-call."""
        return "\n".join(
            f"  {'ok    ' if c['passed'] else 'FAILED'}  {c['name']}: {c['candidate']} (limit {c['limit']})"
            for c in self.checks
        )


def _not_blocked(blocked: str | None) -> dict[str, Any]:
    """A reason recorded on the candidate version (e.g. by the shadow evaluation): never passes."""
    return {
        "name": "candidate not blocked",
        "passed": blocked is None,
        "candidate": blocked or "not blocked",
        "limit": "not blocked",
    }


def evaluate_gate(
    gate: Gate,
    *,
    candidate_golden: Figures,
    champion_golden: Figures,
    candidate_recent: Figures,
    champion_recent: Figures,
    blocked: str | None = None,
    fairness: Fairness | None = None,
    candidate_fairness: dict[str, Any] | None = None,
    champion_fairness: dict[str, Any] | None = None,
) -> GateVerdict:
    """Every check must pass; the verdict keeps all figures for the post-mortem.

    ``blocked`` is a reason recorded on the candidate version (e.g. by the shadow
    evaluation); a blocked candidate never passes.
    """
    metric = gate.metric
    checks = [
        _not_blocked(blocked),
        _metric_check(
            f"golden {METRIC_LABELS[metric]} no worse than champion",
            metric,
            candidate_golden.metric(metric),
            loss(metric, champion_golden.metric(metric)) * (1 + gate.golden_max_regression) + gate.golden_slack,
        ),
        _metric_check(
            f"recent {METRIC_LABELS[metric]} improves on champion",
            metric,
            candidate_recent.metric(metric),
            loss(metric, champion_recent.metric(metric)) * (1 - gate.recent_min_improvement),
        ),
        _check("recent sanity violation rate", candidate_recent.sanity_violation_rate, gate.max_sanity_violation_rate),
        _check("recent low-confidence rate", candidate_recent.low_confidence_rate, gate.max_low_confidence_rate),
        {
            "name": "labelled recent rows",
            "passed": candidate_recent.rows >= gate.min_labelled_rows,
            "candidate": candidate_recent.rows,
            "limit": gate.min_labelled_rows,
        },
    ]
    figures: dict[str, Any] = {
        "candidate": {"golden": candidate_golden.to_dict(), "recent": candidate_recent.to_dict()},
        "champion": {"golden": champion_golden.to_dict(), "recent": champion_recent.to_dict()},
        "fairness": {},
    }
    if fairness is not None and candidate_fairness is not None:
        # Fairness *and* accuracy: the error-rate checks above stay; these are added.
        checks += _fairness_checks(fairness, candidate_fairness)
        figures["fairness"] = {"candidate": candidate_fairness, "champion": champion_fairness or {}}
    return GateVerdict(passed=all(c["passed"] for c in checks), checks=checks, figures=figures)


def gate_fairness(
    policy: Policy,
    recent: pd.DataFrame,
    champion: Callable[[pd.DataFrame], Any],
    challenger: Callable[[pd.DataFrame], Any],
) -> dict[str, Any]:
    """The gate's fairness inputs: both versions re-scored on the same labelled rows (classifiers only)."""
    from firebreak.detection.fairness import fairness_on, is_classification

    if not is_classification(policy) or recent.empty:
        return {}
    rows = recent.reset_index(drop=True)
    inputs = rows[policy.features.inputs]
    return {
        "fairness": policy.fairness,
        "candidate_fairness": fairness_on(rows, pd.DataFrame(challenger(inputs)), policy).to_dict(),
        "champion_fairness": fairness_on(rows, pd.DataFrame(champion(inputs)), policy).to_dict(),
    }


def upstream_gate(result: ContractResult) -> GateVerdict:
    """An upstream fix changes no model: it passes when the newest traffic passes the contract."""
    check = {
        "name": "newest traffic passes the contract",
        "passed": result.passed,
        "candidate": result.summary(),
        "limit": "all expectations",
    }
    return GateVerdict(passed=result.passed, checks=[check])


def _fairness_checks(rules: Fairness, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's fairness limits on the candidate's recent labelled decisions."""
    checks: list[dict[str, Any]] = []
    ratio, eod = figures.get("selection_rate_ratio"), figures.get("equalized_odds_difference")
    if rules.min_selection_rate_ratio is not None:
        checks.append(
            {
                "name": "selection-rate ratio (four-fifths rule)",
                "passed": ratio is not None and ratio >= rules.min_selection_rate_ratio,
                "candidate": ratio if ratio is not None else figures.get("summary", "not computed"),
                "limit": rules.min_selection_rate_ratio,
            }
        )
    if rules.max_equalized_odds_difference is not None:
        checks.append(
            {
                "name": "equalized-odds difference",
                "passed": eod is not None and eod <= rules.max_equalized_odds_difference,
                "candidate": eod if eod is not None else figures.get("summary", "not computed"),
                "limit": rules.max_equalized_odds_difference,
            }
        )
    if rules.max_error_rate_difference is not None:
        gap = figures.get("error_rate_difference")
        checks.append(
            {
                "name": "error-rate difference",
                "passed": gap is not None and gap <= rules.max_error_rate_difference,
                "candidate": gap if gap is not None else figures.get("summary", "not computed"),
                "limit": rules.max_error_rate_difference,
            }
        )
    return checks


def _check(name: str, value: float, limit: float) -> dict[str, Any]:
    return {"name": name, "passed": bool(value <= limit), "candidate": value, "limit": limit}


def _metric_check(name: str, metric: str, value: float, loss_limit: float) -> dict[str, Any]:
    """``value`` of ``metric`` against a limit set on its loss; NaN (not computable) never passes.

    A higher-is-better metric shows its limit as ``>= x`` on the metric's own scale.
    """
    limit = round(from_loss(metric, loss_limit), 4)
    if metric in HIGHER_IS_BETTER:
        return {"name": name, "passed": bool(value >= limit), "candidate": value, "limit": f">= {limit}"}
    return _check(name, value, limit)


# -- LLM models ------------------------------------------------------------------------------------


def evaluate_qa_gate(llm: Llm, *, candidate: QAFigures, champion: QAFigures, blocked: str | None = None) -> GateVerdict:
    """Zero unauthorised promises AND legitimate policy questions still answered (no over-correction).

    Figures are absolute, from the policy: a candidate that fixes the promises by refusing
    every discount question fails ``legitimate policy questions answered correctly``.
    """
    checks = [
        _not_blocked(blocked),
        _check(
            "unauthorised promises on golden Q&A",
            candidate.unauthorised_promise_rate,
            llm.max_unauthorised_promise_rate,
        ),
        {
            "name": "legitimate policy questions answered correctly",
            "passed": bool(candidate.policy_accuracy >= llm.min_policy_accuracy),
            "candidate": candidate.policy_accuracy,
            "limit": f">= {llm.min_policy_accuracy}",
        },
        _check("golden Q&A answers missing expected content", candidate.hallucination_rate, llm.max_hallucination_rate),
    ]
    return GateVerdict(
        passed=all(c["passed"] for c in checks),
        checks=checks,
        figures={"qa": {"candidate": candidate.to_dict(), "champion": champion.to_dict()}},
    )
