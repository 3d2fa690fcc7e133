"""LLM apps: a question in, an answer out, judged on a golden Q&A set and guarded on every answer.

The prompt lives in MLflow's prompt registry (a model version pins its version); the
guardrails are versioned files (:mod:`firebreak.remediation.guardrails`). The tabular
sections of the policy still describe the prediction log (topic mix, lineage, contract).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from firebreak.policy.schema import Llm, Policy

if TYPE_CHECKING:
    from firebreak.contracts.online import OnlineContract
    from firebreak.remediation.guardrails import Guardrails
    from firebreak.settings import Settings


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

    def __init__(self, policy: Policy, llm: Llm) -> None:
        self.policy = policy
        self.llm = llm

    # -- serving ----------------------------------------------------------------------

    def prepare_contract(self, contract: OnlineContract) -> None:
        # The suite describes the logged features; the question itself is the request's text.
        contract.require(self.llm.question, "string")

    def answer_guard(self, settings: Settings) -> GuardrailsGuard:
        return GuardrailsGuard(self.policy, self.llm, settings)
