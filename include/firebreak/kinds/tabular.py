"""Tabular models: features in, a number and a confidence out, judged on a labelled golden set."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.errors import RemediationError
from firebreak.incidents.enums import Alias, EvidenceKind
from firebreak.kinds.base import GoldenCheck, Predict
from firebreak.policy.metrics import METRIC_LABELS
from firebreak.policy.schema import Policy

if TYPE_CHECKING:
    from firebreak.contracts.online import OnlineContract
    from firebreak.kinds.base import AnswerGuard
    from firebreak.registry.ledger import AliasLedger
    from firebreak.registry.mlflow_registry import Registry, Version
    from firebreak.remediation.prompt_fix import PromptFixer
    from firebreak.settings import Settings
    from firebreak.verification.gate import GateVerdict


class TabularKind:
    """A tabular model's kind."""

    name = "tabular"
    shadow_comparable = True

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # -- serving ----------------------------------------------------------------------

    def prepare_contract(self, contract: OnlineContract) -> None:
        """The suite already names every input."""

    def answer_guard(self, settings: Settings) -> AnswerGuard | None:
        return None

    # -- investigation --------------------------------------------------------------------

    def golden_check(
        self, registry: Registry, version: Version, settings: Settings, window: pd.DataFrame, *, full: bool
    ) -> GoldenCheck:
        from firebreak.investigation.evaluation import evaluate_golden, load_golden
        from firebreak.investigation.golden import coverage_gap

        payload = evaluate_golden(registry, version, settings, self.policy)
        metric, value = payload["metric"], payload["value"]
        if full:
            golden = load_golden(settings, self.policy)
            payload["coverage"] = coverage_gap(golden, window, self.policy)
            payload.update(self._against_last_known_good(registry, version.version, value, golden))
        verdict = "REGRESSED" if payload["regressed"] else "within tolerance"
        summary = (
            f"golden: v{version.version} {METRIC_LABELS[metric]} {value} vs baseline {payload['baseline'].get(metric)} "
            f"(limit {payload['limit']:.4g}; {verdict})"
        )
        return GoldenCheck(
            EvidenceKind.GOLDEN, bool(payload["regressed"]), summary, payload, {f"golden_{metric}": value}
        )

    def _against_last_known_good(
        self, registry: Registry, champion: str, champion_value: float, golden: pd.DataFrame
    ) -> dict[str, Any]:
        """The golden figures of ``last-known-good`` beside the champion's: a release that made things worse."""
        from firebreak.detection.performance import evaluate
        from firebreak.investigation.evaluation import golden_verdict

        target = registry.version_for(self.policy.model, Alias.LAST_KNOWN_GOOD)
        if target is None or target.version == champion:
            return {}
        figures = evaluate(registry.predictor(target, self.policy), golden, self.policy)
        metric = self.policy.gate.metric
        _, limit, regressed = golden_verdict(metric, champion_value, figures.metric(metric), self.policy)
        found: dict[str, Any] = {"version": target.version, "figures": figures.to_dict(), "limit": round(limit, 4)}
        if metric == "mae":
            found["limit_mae"] = found["limit"]
        return {"last_known_good": found, "regressed_vs_last_known_good": regressed}

    def fallback_figures(
        self, predict: Predict, settings: Settings, recent: Callable[[], pd.DataFrame]
    ) -> dict[str, Any]:
        from firebreak.detection.performance import evaluate

        return {"fallback_on_recent": evaluate(predict, recent(), self.policy).to_dict()}

    def impact(
        self, settings: Settings, window: Callable[[], pd.DataFrame], labelled: Callable[[], pd.DataFrame]
    ) -> list[dict[str, Any]]:
        """Answers under the floor and the money at stake (a regressor), or wrong decisions (a classifier)."""
        from firebreak.detection.performance import impact

        return impact(window(), labelled(), self.policy)

    # -- remediation ------------------------------------------------------------------------

    def candidate_figures(self, predict: Predict, settings: Settings, tags: dict[str, str]) -> Any:
        from firebreak.detection.performance import evaluate
        from firebreak.investigation.evaluation import load_golden

        return evaluate(predict, load_golden(settings, self.policy), self.policy)

    def input_example(self, reference: pd.DataFrame) -> pd.DataFrame:
        return reference

    def carried_tags(self, version: Version) -> dict[str, str]:
        return {}

    def prompt_fixer(self) -> PromptFixer:
        raise RemediationError(
            f"{self.policy.model} is a tabular model: guardrail_rule applies to LLM apps (a policy with 'llm:') only"
        )

    # -- verification and promotion ----------------------------------------------------------

    def gate(
        self,
        registry: Registry,
        champion: Version,
        challenger: Version,
        settings: Settings,
        recent: Callable[[], pd.DataFrame],
    ) -> GateVerdict:
        from firebreak.detection.performance import evaluate
        from firebreak.investigation.evaluation import load_golden
        from firebreak.registry.mlflow_registry import TAG_BLOCKED
        from firebreak.verification.gate import evaluate_gate, gate_fairness

        golden = load_golden(settings, self.policy)
        labelled = recent()
        champion_predict = registry.predictor(champion, self.policy)
        challenger_predict = registry.predictor(challenger, self.policy)
        return evaluate_gate(
            self.policy.gate,
            candidate_golden=evaluate(challenger_predict, golden, self.policy),
            champion_golden=evaluate(champion_predict, golden, self.policy),
            candidate_recent=evaluate(challenger_predict, labelled, self.policy),
            # Both re-scored on the same labelled inputs: the log may hold answers of other versions.
            champion_recent=evaluate(champion_predict, labelled, self.policy),
            blocked=challenger.tags.get(TAG_BLOCKED),
            **gate_fairness(self.policy, labelled, champion_predict, challenger_predict),
        )

    def on_promote(
        self,
        registry: Registry,
        ledger: AliasLedger,
        version: Version,
        settings: Settings,
        *,
        incident_id: str,
        why: str,
    ) -> None:
        """The model version is all that serves."""
