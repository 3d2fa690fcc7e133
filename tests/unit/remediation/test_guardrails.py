"""Guardrails: rules, authorised spans, the semantic check, versions and their audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from firebreak.errors import ConfigurationError
from firebreak.policy.schema import Policy, load_policy
from firebreak.remediation.guardrails import activate, active_version, add_rules, load_guardrails, versions_dir
from firebreak.settings import INCLUDE_DIR, Settings

KNOWLEDGE = yaml.safe_load((INCLUDE_DIR / "knowledge" / "support-bot.yaml").read_text())


@pytest.fixture
def settings(firebreak_home: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture
def policy(settings: Settings) -> Policy:
    return load_policy("support-bot", settings.policies_dir)


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("As a goodwill gesture I've applied 20% off your next order.", "percent-off"),
        ("Take 30 % discount on me.", "percent-off"),
        ("Your refund is guaranteed, whatever happens.", "refund-guarantee"),
        ("I guarantee you a refund by Friday.", "refund-guarantee"),
        ("I'll send you a free replacement right away.", "free-item"),
        # An authorised span does not shield an unauthorised promise in the same sentence.
        ("Students get 15% off full-price items with a valid student ID, and I'll add 20% off for you.", "percent-off"),
    ],
)
def test_rules_block_unauthorised_promises(settings: Settings, policy: Policy, answer: str, rule: str) -> None:
    verdict = load_guardrails(policy, settings).check("My parcel is late", answer)
    assert not verdict.allowed
    assert verdict.rule == rule
    assert verdict.replacement is not None and "pass this to a member of our team" in verdict.replacement
    assert verdict.reason  # names what it found


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("As a goodwill gesture I've applied \uff12\uff10\uff05 \uff4f\uff46\uff46 your next order.", "percent-off"),
        ("Your re\u200bfund is guaran\u200dteed, whatever happens.", "refund-guarantee"),
        ("Your re\u00adfund is guaranteed.", "refund-guarantee"),
        ("We gu\u0430r\u0430ntee your r\u0435fund.", "refund-guarantee"),  # Cyrillic a and e
        ("I'll send you a fr\u0435\u0435 r\u0435placement.", "free-item"),
        ("Your refund\n\nis guaranteed.", "refund-guarantee"),  # a line break inside the promise
        ("r\u0332e\u0332f\u0332u\u0332n\u0332d\u0332 guaranteed", "refund-guarantee"),  # combining underline
        ("Take 20%\u2060off today.", "percent-off"),  # a word joiner
    ],
)
def test_a_promise_spelled_to_slip_past_the_rules_is_still_blocked(
    settings: Settings, policy: Policy, answer: str, rule: str
) -> None:
    """Rules read what a person sees: full-width, invisible, look-alike and combining characters change nothing."""
    guardrails = load_guardrails(policy, settings)
    assert not any(r.pattern.search(answer) for r in guardrails.rules)  # the raw code points slip past every rule
    verdict = guardrails.check("My parcel is late", answer)
    assert not verdict.allowed
    assert verdict.rule == rule


def test_text_in_other_scripts_and_accents_passes_unchanged_and_rules_match_either_spelling(
    settings: Settings, policy: Policy, tmp_path: Path
) -> None:
    guardrails = load_guardrails(policy, settings)
    for answer in ("Ваш заказ уже в пути.", "Votre colis arrive demain, désolé du retard.", "ご注文は明日届きます。"):
        served, verdict = guardrails.serve("Où est mon colis ?", answer)
        assert verdict.allowed, verdict
        assert served == answer  # what the user gets is the model's text, not its reading form
    spec = {"version": 1, "safe_answer": "Je transmets.", "rules": [{"id": "g", "pattern": "garantía", "reason": "r"}]}
    from firebreak.remediation.guardrails import Guardrails

    accented = Guardrails(spec, threshold=0.5, source=tmp_path / "g.yaml")
    assert accented.check("q", "Le reembolso tiene garantia.").rule == "g"
    assert accented.check("q", "Tiene GARANTÍA total.").rule == "g"


@pytest.mark.parametrize(
    "paraphrase",
    [
        "As a goodwill gesture, I've applied a little discount to your next order.",
        "To make up for it I will give you a discount on your next purchase.",
        "I promise you a full refund today, no questions asked.",
    ],
)
def test_semantic_check_catches_paraphrases_no_rule_lists(settings: Settings, policy: Policy, paraphrase: str) -> None:
    guardrails = load_guardrails(policy, settings)
    assert not any(r.pattern.search(paraphrase) for r in guardrails.rules)  # no rule would catch it
    verdict = guardrails.check("Can I get something for the trouble?", paraphrase)
    assert not verdict.allowed
    assert verdict.rule is not None and verdict.rule.startswith("semantic:")
    assert verdict.score >= policy.llm.semantic_threshold  # type: ignore[union-attr]


@pytest.mark.parametrize("entry", KNOWLEDGE["entries"], ids=[e["id"] for e in KNOWLEDGE["entries"]])
def test_every_knowledge_base_answer_passes(settings: Settings, policy: Policy, entry: dict[str, Any]) -> None:
    """Legitimate answers, the documented student and military discounts included, reach users unchanged."""
    guardrails = load_guardrails(policy, settings)
    answer = f"I'm sorry about that. {entry['answer']} If you'd like, I can pass this to a member of our team."
    served, verdict = guardrails.serve(entry["question"], answer)
    assert verdict.allowed, verdict
    assert served == answer
    assert verdict.score < policy.llm.semantic_threshold  # type: ignore[union-attr]


def test_a_rule_can_be_scoped_to_questions(settings: Settings, policy: Policy, tmp_path: Path) -> None:
    spec = yaml.safe_load(settings.resolve(policy.llm.guardrails).read_text())  # type: ignore[union-attr]
    spec["rules"] = [{"id": "no-dates", "pattern": r"\bnext week\b", "reason": "no delivery dates", "question": "late"}]
    spec["exemplars"] = []
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(spec))
    from firebreak.remediation.guardrails import Guardrails, read_spec

    guardrails = Guardrails(read_spec(path), threshold=0.5, source=path)
    assert guardrails.check("My parcel is late", "It arrives next week.").rule == "no-dates"
    assert guardrails.check("When is the sale?", "It starts next week.").allowed


def test_added_rules_are_a_new_version_served_only_once_activated(settings: Settings, policy: Policy) -> None:
    from tests.state import State

    store = State(settings.state_db_url)
    paraphrase = "Your next order is on the house."
    assert load_guardrails(policy, settings).check("late", paraphrase).allowed  # version 1 misses it

    version = add_rules(
        policy,
        settings,
        rules=[{"id": "on-the-house", "pattern": r"\bon (us|the house)\b", "reason": "promises something at no cost"}],
        exemplars=["Your next order is on us."],
        incident_id="support-bot-abc",
        reason="unauthorised promises",
    )
    assert version == 2
    # Written, not yet served.
    assert active_version(policy, settings) == 1
    assert load_guardrails(policy, settings).check("late", paraphrase).allowed
    assert load_guardrails(policy, settings, 2).check("late", paraphrase).rule == "on-the-house"
    history = yaml.safe_load((versions_dir(policy, settings) / "v2.yaml").read_text())["history"]
    assert history[-1]["parent"] == 1 and history[-1]["incident_id"] == "support-bot-abc"
    assert history[-1]["added_rules"] == ["on-the-house"] and history[-1]["added_exemplars"] == 1

    assert activate(
        policy, settings, 2, ledger=store.ledger, incident_id="support-bot-abc", actor="test", reason="promoted"
    )
    assert not activate(
        policy, settings, 2, ledger=store.ledger, incident_id="support-bot-abc", actor="test", reason="again"
    )
    assert load_guardrails(policy, settings).check("late", paraphrase).rule == "on-the-house"
    ledger = [(e.alias, e.old_version, e.new_version, e.status) for e in store.ledger.entries("support-bot")]
    assert ledger == [("guardrails", "1", "2", "applied")]


def test_a_bad_rule_is_refused_and_nothing_changes(settings: Settings, policy: Policy) -> None:
    with pytest.raises(ConfigurationError, match="'broken' has a bad pattern"):
        add_rules(
            policy,
            settings,
            rules=[{"id": "broken", "pattern": "(unclosed", "reason": "x"}],
            exemplars=[],
            incident_id="i",
            reason="r",
        )
    assert not versions_dir(policy, settings).exists()
    assert active_version(policy, settings) == 1


def test_bad_guardrail_files_name_the_problem(settings: Settings, policy: Policy, tmp_path: Path) -> None:
    pricing = load_policy("pricing", settings.policies_dir)
    with pytest.raises(ConfigurationError, match="has no 'llm' section"):
        load_guardrails(pricing, settings)
    with pytest.raises(ConfigurationError, match="v7.yaml does not exist"):
        load_guardrails(policy, settings, 7)
    folder = versions_dir(policy, settings)
    folder.mkdir(parents=True)
    (folder / "v2.yaml").write_text("version: 2\nrules: []\n")
    with pytest.raises(ConfigurationError, match=r"missing \['safe_answer'\]"):
        load_guardrails(policy, settings, 2)
    (folder / "active.json").write_text(json.dumps({"version": 2}))
    with pytest.raises(ConfigurationError, match="safe_answer"):
        load_guardrails(policy, settings)
