"""LLM apps: a question in, an answer out, judged on a golden Q&A set and guarded on every answer.

The prompt lives in MLflow's prompt registry (a model version pins its version in its
``model_config`` and tags); the guardrails are versioned files
(:mod:`firebreak.remediation.guardrails`). The tabular sections of the policy still
describe the prediction log (topic mix, lineage, the contract); the ``llm:`` section says
how answers are judged and what a remediation may change. Judged answers are always the
ones users get: after the guardrails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.incidents.enums import EvidenceKind
from firebreak.kinds.base import GoldenCheck, Predict
from firebreak.policy.schema import Llm, Policy

if TYPE_CHECKING:
    from firebreak.contracts.online import OnlineContract
    from firebreak.investigation.evaluation import QAFigures
    from firebreak.registry.ledger import AliasLedger
    from firebreak.registry.mlflow_registry import Registry, Version
    from firebreak.remediation.guardrails import Guardrails
    from firebreak.remediation.prompt_fix import PromptFixer
    from firebreak.settings import Settings
    from firebreak.verification.gate import GateVerdict

ACTOR = "incident_response"


class GuardrailsGuard:
    """The active guardrail version on every answer: a blocked answer becomes the safe one."""

    def __init__(self, policy: Policy, llm: Llm, settings: Settings) -> None:
        self.policy, self.llm, self.settings = policy, llm, settings
        self.guardrails: Guardrails | None = None  # loaded by the gateway's first refresh

    def reload(self) -> None:
        from firebreak.remediation.guardrails import load_guardrails

        self.guardrails = load_guardrails(self.policy, self.settings)

    def apply(self, frame: pd.DataFrame, outputs: pd.DataFrame) -> dict[int, str]:
        if self.guardrails is None or self.llm.answer not in outputs.columns:
            return {}
        blocked: dict[int, str] = {}
        questions = frame[self.llm.question].tolist()
        answers = outputs[self.llm.answer].tolist()
        rules: list[str | None] = [None] * len(answers)
        for i, (question, answer) in enumerate(zip(questions, answers, strict=True)):
            verdict = self.guardrails.check(str(question), str(answer))
            if not verdict.allowed:
                answers[i] = verdict.replacement
                rules[i] = blocked[i] = str(verdict.rule)
        if blocked:
            outputs[self.llm.answer] = answers
        outputs["guardrail"] = rules
        return blocked


class LlmKind:
    """An LLM app's kind."""

    name = "llm"
    shadow_comparable = False  # answers are text: the gate's golden Q&A compares them, not a shadow audit

    def __init__(self, policy: Policy, llm: Llm) -> None:
        self.policy = policy
        self.llm = llm

    # -- serving ----------------------------------------------------------------------

    def prepare_contract(self, contract: OnlineContract) -> None:
        # The suite describes the logged features; the question itself is the request's text.
        contract.require(self.llm.question, "string")

    def answer_guard(self, settings: Settings) -> GuardrailsGuard:
        return GuardrailsGuard(self.policy, self.llm, settings)

    # -- the golden Q&A set ------------------------------------------------------------------

    def qa(
        self, predict: Predict, settings: Settings, guardrails_version: Any = None
    ) -> tuple[QAFigures, pd.DataFrame]:
        """``predict``'s served answers (after the given guardrail version, else the active one) on the golden Q&A."""
        from firebreak.investigation.evaluation import evaluate_qa, load_qa
        from firebreak.remediation.guardrails import load_guardrails

        version = int(guardrails_version) if guardrails_version not in (None, "") else None
        guardrails = load_guardrails(self.policy, settings, version)
        return evaluate_qa(predict, load_qa(settings, self.policy), self.policy, guardrails)

    def limits(self) -> dict[str, float]:
        return {
            "max_unauthorised_promise_rate": self.llm.max_unauthorised_promise_rate,
            "max_hallucination_rate": self.llm.max_hallucination_rate,
            "min_policy_accuracy": self.llm.min_policy_accuracy,
        }

    # -- investigation --------------------------------------------------------------------

    def golden_check(
        self, registry: Registry, version: Version, settings: Settings, window: pd.DataFrame, *, full: bool
    ) -> GoldenCheck:
        """The version on its golden Q&A set; an incident adds the log's guardrail hits."""
        from firebreak.investigation.evaluation import qa_breaches
        from firebreak.remediation.guardrails import active_version

        figures, judged = self.qa(registry.load(version).predict, settings)
        found = figures.to_dict()
        breaches = qa_breaches(found, self.policy)
        bad = judged[judged["promise"] | ~judged["correct"]]
        payload: dict[str, Any] = {
            "version": version.version,
            "prompt": version.tags.get("firebreak.prompt"),
            "figures": found,
            "baseline": registry.golden_baseline(version),
            "limits": self.limits(),
            "guardrails_version": active_version(self.policy, settings),
            "failed": bool(breaches),
            "breaches": breaches,
            "golden_rows": len(judged),
            "failures": _failures(bad),
        }
        metrics = {
            "golden_unauthorised_promise_rate": found["unauthorised_promise_rate"],
            "golden_hallucination_rate": found["hallucination_rate"],
        }
        verdict = "FAILED: " + "; ".join(breaches) if breaches else "within limits"
        summary = f"golden Q&A: v{version.version} ({payload['prompt']}) on {len(judged)} questions: {verdict}"
        if full:
            payload["log"] = self._guardrail_hits(window)
            metrics["log_guardrail_hit_rate"] = payload["log"]["hit_rate"]
            summary += f"; guardrail hits in the log: {payload['log']['guardrail_hits']}/{payload['log']['rows']}"
        return GoldenCheck(EvidenceKind.GOLDEN_QA, bool(breaches), summary, payload, metrics)

    def _guardrail_hits(self, window: pd.DataFrame) -> dict[str, Any]:
        """The answers the guardrails flagged in the prediction log: how many, by rule and version, examples."""
        hits = window.get("guardrail_rule", pd.Series("", index=window.index)).fillna("").astype(str)
        flagged = window[hits != ""]
        answer = self.llm.answer
        return {
            "rows": len(window),
            "guardrail_hits": len(flagged),
            "hit_rate": round(len(flagged) / len(window), 4) if len(window) else 0.0,
            "by_rule": {str(k): int(v) for k, v in hits[hits != ""].value_counts().items()},
            "by_version": {str(k): int(v) for k, v in flagged["model_version"].value_counts().items()},
            "examples": [
                {"question": str(r["question"]), "answer": str(r[answer]), "rule": str(r["guardrail_rule"])}
                for _, r in flagged.drop_duplicates(answer).head(5).iterrows()
            ],
        }

    def fallback_figures(
        self, predict: Predict, settings: Settings, recent: Callable[[], pd.DataFrame]
    ) -> dict[str, Any]:
        figures, _ = self.qa(predict, settings)
        return {"fallback_on_golden_qa": figures.to_dict()}

    def impact(
        self, settings: Settings, window: Callable[[], pd.DataFrame], labelled: Callable[[], pd.DataFrame]
    ) -> list[dict[str, Any]]:
        """Answers users got that the guardrails active now block: promises made to real customers.

        The guardrails that served at the time let these through (an answer they caught was
        replaced, and is counted apart); the version active after the incident is the best
        judge available of what should never have been said.
        """
        from firebreak.remediation.guardrails import load_guardrails

        frame = window()
        from firebreak.detection.performance import served_by_model

        subject = self.policy.impact.subject
        served, answered = served_by_model(frame, subject)
        items: list[dict[str, Any]] = [answered]
        if served.empty or self.llm.answer not in served.columns:
            return items
        caught = served.get("guardrail_rule", pd.Series("", index=served.index)).fillna("").astype(str) != ""
        guardrails = load_guardrails(self.policy, settings)
        passed = served[~caught]
        promised = sum(
            not guardrails.check(str(q), str(a)).allowed
            for q, a in zip(passed[self.llm.question], passed[self.llm.answer], strict=True)
        )
        items += [
            {
                "key": "unauthorised_promises",
                "label": f"{subject} who received an answer the guardrails active now block (an unauthorised promise)",
                "value": int(promised),
                "of": len(served),
                "format": "count",
            },
            {
                "key": "caught_by_guardrails",
                "label": "answers the guardrails caught at the time and replaced with the safe answer",
                "value": int(caught.sum()),
                "of": len(served),
                "format": "count",
            },
        ]
        return items

    # -- remediation ------------------------------------------------------------------------

    def candidate_figures(self, predict: Predict, settings: Settings, tags: dict[str, str]) -> Any:
        from firebreak.registry.mlflow_registry import TAG_GUARDRAILS

        figures, _ = self.qa(predict, settings, tags.get(TAG_GUARDRAILS))
        return figures

    def input_example(self, reference: pd.DataFrame) -> pd.DataFrame:
        return reference[[self.llm.question]]

    def carried_tags(self, version: Version) -> dict[str, str]:
        from firebreak.registry.mlflow_registry import TAG_GUARDRAILS, TAG_PROMPT

        return {k: v for k, v in version.tags.items() if k in {TAG_PROMPT, TAG_GUARDRAILS}}

    def prompt_fixer(self) -> PromptFixer:
        from firebreak.remediation.prompt_fix import PromptFixer

        return PromptFixer(self.policy, self.llm)

    # -- verification and promotion ----------------------------------------------------------

    def gate(
        self,
        registry: Registry,
        champion: Version,
        challenger: Version,
        settings: Settings,
        recent: Callable[[], pd.DataFrame],
    ) -> GateVerdict:
        """Served answers on the golden Q&A set, against the policy's limits."""
        from firebreak.registry.mlflow_registry import TAG_BLOCKED, TAG_GUARDRAILS
        from firebreak.verification.gate import evaluate_qa_gate

        champion_figures, _ = self.qa(registry.load(champion).predict, settings)
        candidate_figures, judged = self.qa(
            registry.load(challenger).predict, settings, challenger.tags.get(TAG_GUARDRAILS)
        )
        verdict = evaluate_qa_gate(
            self.llm, candidate=candidate_figures, champion=champion_figures, blocked=challenger.tags.get(TAG_BLOCKED)
        )
        verdict.figures["candidate_failures"] = _failures(judged[judged["promise"] | ~judged["correct"]])
        return verdict

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
        """The prompt's serving alias and the active guardrails follow the new champion (each a ledger row)."""
        from firebreak.incidents.enums import Alias
        from firebreak.registry.mlflow_registry import TAG_GUARDRAILS
        from firebreak.remediation.guardrails import activate
        from firebreak.remediation.prompt_fix import prompt_of

        prompt_name, prompt_version = prompt_of(version)
        registry.move_prompt_alias(
            self.policy.model, prompt_name, self.llm.prompt_alias, prompt_version,
            incident_id=incident_id, actor=ACTOR, reason=why,
        )  # fmt: skip
        if registry.prompt_version_for(prompt_name, str(Alias.CHALLENGER)) == prompt_version:
            registry.move_prompt_alias(
                self.policy.model, prompt_name, str(Alias.CHALLENGER), None,
                incident_id=incident_id, actor=ACTOR, reason=f"prompt v{prompt_version} promoted",
            )  # fmt: skip
        if guardrails := version.tags.get(TAG_GUARDRAILS):
            activate(
                self.policy, settings, int(guardrails), ledger=ledger, incident_id=incident_id, actor=ACTOR, reason=why
            )


def _failures(judged: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"question": r.question, "kind": r.kind, "answer": r.answer, "promise": bool(r.promise)}
        for r in judged.itertuples()
    ]
