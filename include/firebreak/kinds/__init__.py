"""What differs between kinds of model, behind one strategy: tabular models and LLM apps.

A model's kind follows from its policy (:func:`kind_for`). The stages, the audits and the
serving gateway ask the kind wherever the two differ (how the golden set is judged, which
gate applies, what promotion moves, what guards an answer) and never branch on it
themselves. Adding a third kind is one new module here and one line in :func:`kind_for`.
"""

from __future__ import annotations

from firebreak.kinds.base import AnswerGuard, ModelKind
from firebreak.policy.schema import Policy

__all__ = ["AnswerGuard", "ModelKind", "kind_for"]


def kind_for(policy: Policy) -> ModelKind:
    """The kind of the policy's model: an LLM app when the policy has an ``llm:`` section, else tabular."""
    from firebreak.kinds.llm import LlmKind
    from firebreak.kinds.tabular import TabularKind

    if policy.llm is not None:
        return LlmKind(policy, policy.llm)
    return TabularKind(policy)
