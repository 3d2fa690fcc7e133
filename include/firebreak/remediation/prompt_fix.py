"""The ``guardrail_rule`` remediation of an LLM app: a reviewed prompt version and new guardrail rules.

* registers the policy's reviewed prompt (``llm.fixed_prompt``) as a new version in MLflow's
  prompt registry and moves the prompt's ``challenger`` alias to it (an alias-ledger row);
* writes a new guardrail version: the active rules plus ``llm.guardrail_additions`` and the
  incident's own violating sentences as exemplars (the file keeps parent, incident, reason);
* returns the champion's responder pinned to the new prompt, tagged with both versions, for
  the stage to register as the candidate.

Nothing is served until the gate passes and promotion moves the aliases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firebreak.errors import RemediationError
from firebreak.incidents.enums import Alias
from firebreak.policy.schema import Llm, Policy

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version
    from firebreak.settings import Settings


@dataclass(frozen=True)
class PromptFixPlan:
    """What the fix will add, known before anything changes (a dry run reports it)."""

    prompt_path: Path
    rules: list[dict[str, Any]]
    exemplars: list[str]

    def describe(self) -> str:
        return f"register {self.prompt_path.name} as a new prompt version and add {len(self.rules)} rule(s)"


@dataclass(frozen=True)
class PromptFix:
    """The changes made, and the candidate model to register."""

    python_model: Any
    model_config: dict[str, Any]
    tags: dict[str, str]
    detail: str
    events: list[str] = field(default_factory=list)  # timeline lines for the incident


def prompt_of(version: Version) -> tuple[str, int]:
    """The prompt (name, version) a model version serves with, from its ``firebreak.prompt`` tag."""
    from firebreak.registry.mlflow_registry import TAG_PROMPT

    tag = version.tags.get(TAG_PROMPT)
    if not tag:
        raise RemediationError(f"{version.model} v{version.version} has no '{TAG_PROMPT}' tag naming its prompt")
    name, _, number = str(tag).rpartition("/")
    return name, int(number)


def violating_sentences(golden_qa: dict[str, Any]) -> list[str]:
    """The sentences of the incident's own bad answers that made a promise: new exemplars for the semantic check."""
    out = []
    for failure in golden_qa.get("failures", []):
        if failure.get("promise"):
            sentences = re.split(r"(?<=[.!?])\s+", str(failure["answer"]))
            out += [s for s in sentences[1:] if s] or sentences  # the improvised tail, not the grounded answer
    return list(dict.fromkeys(out))


class PromptFixer:
    """The prompt-and-guardrails fix of one LLM app."""

    def __init__(self, policy: Policy, llm: Llm) -> None:
        self.policy = policy
        self.llm = llm

    def plan(self, settings: Settings, golden_qa: dict[str, Any]) -> PromptFixPlan:
        """The reviewed prompt and the rules and exemplars to add; raises when a file the policy names is missing."""
        import yaml

        prompt_path = settings.resolve(self.llm.fixed_prompt)
        if not prompt_path.is_file():
            raise RemediationError(f"reviewed prompt {prompt_path} for {self.policy.model} does not exist")
        additions: dict[str, Any] = {}
        if self.llm.guardrail_additions:
            additions_path = settings.resolve(self.llm.guardrail_additions)
            if not additions_path.is_file():
                raise RemediationError(f"guardrail additions {additions_path} for {self.policy.model} do not exist")
            additions = yaml.safe_load(additions_path.read_text()) or {}
        exemplars = [*additions.get("exemplars", []), *violating_sentences(golden_qa)]
        return PromptFixPlan(prompt_path, list(additions.get("rules", [])), exemplars)

    def apply(
        self,
        plan: PromptFixPlan,
        registry: Registry,
        champion: Version,
        settings: Settings,
        *,
        incident_id: str,
        actor: str,
    ) -> PromptFix:
        """Register the prompt version, write the guardrail version; the candidate's model and tags."""
        from firebreak.registry import own_models
        from firebreak.registry.mlflow_registry import llm_tags
        from firebreak.remediation.guardrails import add_rules

        prompt_name, champion_prompt = prompt_of(champion)
        text = plan.prompt_path.read_text()
        prompt_version = champion_prompt
        if text != registry.prompt_text(prompt_name, champion_prompt):
            prompt_version = registry.register_prompt(
                prompt_name, text, commit_message=f"{incident_id}: reviewed prompt {self.llm.fixed_prompt}"
            )
        registry.move_prompt_alias(
            self.policy.model, prompt_name, str(Alias.CHALLENGER), prompt_version,
            incident_id=incident_id, actor=actor, reason=f"reviewed prompt for {incident_id}",
        )  # fmt: skip
        guardrails_version = add_rules(
            self.policy,
            settings,
            rules=plan.rules,
            exemplars=plan.exemplars,
            incident_id=incident_id,
            reason=f"unauthorised promises found by {incident_id}",
        )
        written = (
            f"guardrails v{guardrails_version} written: +{len(plan.rules)} rule(s) "
            f"({', '.join(r['id'] for r in plan.rules) or 'none'}), +{len(plan.exemplars)} exemplar(s); "
            "served after promotion"
        )
        loaded = registry.load(champion)
        return PromptFix(
            python_model=own_models.python_model(loaded),
            model_config={**(loaded.model_config or {}), "prompt_name": prompt_name, "prompt_version": prompt_version},
            tags={
                **llm_tags(prompt_name, prompt_version, guardrails_version),
                "firebreak.guardrail_rules": ",".join(r["id"] for r in plan.rules),
            },
            detail=(
                f"prompt {prompt_name} v{prompt_version} (was v{champion_prompt}) with guardrails v{guardrails_version}"
            ),
            events=[written],
        )
