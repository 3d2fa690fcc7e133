"""The golden sets: a model on its golden dataset against its baseline, an LLM model on its golden Q&A set.

Model figures on any labelled rows (:class:`~firebreak.detection.performance.Figures`,
:func:`~firebreak.detection.performance.evaluate`) live in :mod:`firebreak.detection.performance`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.detection.performance import Predictor, evaluate, from_loss, loss
from firebreak.errors import ConfigurationError
from firebreak.policy.metrics import HIGHER_IS_BETTER
from firebreak.policy.schema import Policy
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version


def load_golden(settings: Settings, policy: Policy) -> pd.DataFrame:
    """The model's golden dataset (CSV or Parquet, versioned under include/golden/)."""
    path = settings.resolve(policy.golden)
    if not path.is_file():
        raise ConfigurationError(f"golden dataset {path} for model {policy.model!r} does not exist")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def evaluate_golden(registry: Registry, version: Version, settings: Settings, policy: Policy) -> dict[str, Any]:
    """A version on the golden dataset against the baseline recorded for it; ``regressed`` past the tolerance.

    Judged on the policy's gate metric (``metric``, ``value``, ``limit``; the tolerance
    applies to its loss, see :func:`~firebreak.detection.performance.loss`). A version with
    no baseline for that metric cannot regress against it. ``limit_mae`` stays for MAE policies.
    """
    baseline = registry.golden_baseline(version)
    golden = load_golden(settings, policy)
    figures = evaluate(registry.predictor(version, policy), golden, policy)
    metric = policy.gate.metric
    value, limit, regressed = golden_verdict(metric, figures.metric(metric), baseline.get(metric), policy)
    payload: dict[str, Any] = {
        "version": version.version,
        "figures": figures.to_dict(),
        "baseline": baseline,
        "metric": metric,
        "value": value,
        "limit": limit,
        "regressed": regressed,
        "golden_rows": len(golden),
    }
    if metric == "mae":
        payload["limit_mae"] = limit
    return payload


def golden_verdict(metric: str, value: float, baseline: float | None, policy: Policy) -> tuple[float, float, bool]:
    """``value`` of ``metric`` against ``baseline`` widened by the policy's golden tolerance (on the loss).

    Returns the value, the limit on the metric's own scale (infinite for a lower-is-better
    metric without baseline, minus infinite for a higher-is-better one), and whether it regressed.
    """
    tolerance = policy.detection.golden_tolerance
    if baseline is None or math.isnan(baseline):
        limit = -math.inf if metric in HIGHER_IS_BETTER else math.inf
        return value, limit, False
    limit = from_loss(metric, loss(metric, baseline) * (1 + tolerance))
    return value, limit, bool(loss(metric, value) > loss(metric, limit))


# -- LLM models: the golden Q&A set ------------------------------------------------------------

QA_COLUMNS = ("question", "kind", "expected", "forbidden")


@dataclass(frozen=True)
class QAFigures:
    """An LLM model's served answers (after guardrails) on its golden Q&A set."""

    rows: int
    hallucination_rate: float  # answers missing their expected content
    unauthorised_promise_rate: float  # answers matching their row's forbidden promises
    policy_accuracy: float  # legitimate policy questions (kind 'policy') answered correctly
    policy_rows: int
    guardrail_block_rate: float
    mean_confidence: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def load_qa(settings: Settings, policy: Policy) -> pd.DataFrame:
    """The golden Q&A set (JSONL or CSV): question, kind, expected and forbidden regexes."""
    path = settings.resolve(policy.llm_section("golden Q&A set").golden_qa)
    if not path.is_file():
        raise ConfigurationError(f"golden Q&A set {path} for model {policy.model!r} does not exist")
    frame = pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_csv(path)
    missing = [c for c in QA_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigurationError(f"golden Q&A set {path} lacks columns {missing}")
    frame = frame.fillna({"forbidden": "", "expected": ""})
    for column in ("expected", "forbidden"):
        for row, source in enumerate(frame[column]):
            try:
                _qa_pattern(source)
            except re.error as error:
                raise ConfigurationError(
                    f"golden Q&A set {path}, row {row + 1}: its {column!r} pattern {str(source)[:80]!r} "
                    f"is not a regular expression ({error})"
                ) from None
    return frame


def _qa_pattern(source: Any) -> re.Pattern[str] | None:
    """A golden row's ``expected`` or ``forbidden`` pattern, read as the guardrails read: in the
    reading form of the answer (a promise split by zero-width characters, written in full-width
    or look-alike letters, still matches its ``forbidden`` pattern). None for an empty cell.
    """
    from firebreak.remediation.guardrails import compile_pattern

    return compile_pattern(source) if str(source) else None


def evaluate_qa(
    predict: Predictor, golden: pd.DataFrame, policy: Policy, guardrails: Any = None
) -> tuple[QAFigures, pd.DataFrame]:
    """Ask every golden question; judge the answer users would get (after ``guardrails``, if given).

    Returns the figures and one row per question: answer served, guardrail rule, correct, promise.
    """
    from firebreak.remediation.guardrails import reading_form

    llm = policy.llm_section("golden Q&A evaluation")
    questions = golden[["question"]].rename(columns={"question": llm.question}).reset_index(drop=True)
    outputs = predict(questions).reset_index(drop=True)
    served, rules = [], []
    for question, answer in zip(golden["question"], outputs[llm.answer], strict=True):
        if guardrails is None:
            served.append(str(answer))
            rules.append("")
        else:
            text, verdict = guardrails.serve(str(question), str(answer))
            served.append(text)
            rules.append(verdict.rule or "")
    judged = golden.reset_index(drop=True)[list(QA_COLUMNS)].copy()
    judged["answer"] = served
    judged["guardrail_rule"] = rules
    read = [reading_form(a) for a in served]
    expected = [_qa_pattern(e) for e in judged["expected"]]
    forbidden = [_qa_pattern(f) for f in judged["forbidden"]]
    judged["correct"] = [bool(e.search(a)) if e else True for e, a in zip(expected, read, strict=True)]
    judged["promise"] = [bool(f.search(a)) if f else False for f, a in zip(forbidden, read, strict=True)]
    policy_rows = judged[judged["kind"] == "policy"]
    figures = QAFigures(
        rows=len(judged),
        hallucination_rate=round(float(1 - judged["correct"].mean()), 4) if len(judged) else 0.0,
        unauthorised_promise_rate=round(float(judged["promise"].mean()), 4) if len(judged) else 0.0,
        policy_accuracy=round(float(policy_rows["correct"].mean()), 4) if len(policy_rows) else 1.0,
        policy_rows=len(policy_rows),
        guardrail_block_rate=round(float((judged["guardrail_rule"] != "").mean()), 4) if len(judged) else 0.0,
        mean_confidence=round(float(outputs["confidence"].astype(float).mean()), 4) if len(judged) else 0.0,
    )
    return figures, judged


def qa_breaches(figures: dict[str, Any], policy: Policy) -> list[str]:
    """What in an LLM model's golden Q&A figures breaks the policy's ``llm`` limits, in words."""
    llm = policy.llm_section("Q&A limits")
    out = []
    if figures["unauthorised_promise_rate"] > llm.max_unauthorised_promise_rate:
        out.append(
            f"unauthorised promises on {figures['unauthorised_promise_rate']:.1%} of golden answers "
            f"(limit {llm.max_unauthorised_promise_rate:.1%})"
        )
    if figures["hallucination_rate"] > llm.max_hallucination_rate:
        out.append(
            f"{figures['hallucination_rate']:.1%} of golden answers miss their expected content "
            f"(limit {llm.max_hallucination_rate:.1%})"
        )
    if figures["policy_accuracy"] < llm.min_policy_accuracy:
        out.append(
            f"policy questions answered correctly {figures['policy_accuracy']:.1%} (at least {llm.min_policy_accuracy:.1%})"
        )
    return out
