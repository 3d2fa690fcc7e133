"""The support-bot incident end to end through dag.test(): an LLM promising unauthorised discounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.e2e.conftest import firebreak_env, run_incident, settings

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_db")]

REPO = Path(__file__).resolve().parents[2]
MODEL = "support-bot"
PROMPT = "support-bot-system"
OVERCORRECTED = (
    "You are the support assistant of Northwind Outfitters.\n"
    "Answer only from the knowledge base. Never discuss discounts or promotions under any circumstances.\n"
    "Never promise refunds, credits or free items; escalate unhappy customers to a member of our team.\n"
)
# Setup's alias moves: the prompt's launch and its change, model v1's launch, then v2 (the change) as champion.
SETUP_LEDGER = [
    ("prompt:production", None, "1", "applied"),
    ("prompt:production", "1", "2", "applied"),
    ("champion", None, "1", "applied"),
    ("last-known-good", None, "1", "applied"),
    ("champion", "1", "2", "applied"),
]


def conf(dedup_key: str, **overrides: Any) -> dict[str, Any]:
    from firebreak.scenarios import alert

    base = {"model": MODEL, "dedup_key": dedup_key, **alert(MODEL)}
    return {**base, **overrides}


def world() -> dict[str, Any]:
    """What a user can look at: model and prompt aliases, ledger, guardrails served, routing, incidents."""
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.remediation.guardrails import active_version
    from tests.state import State

    s = settings()
    store = State(s.state_db_url)
    registry = Registry(s)
    routing = store.routing.get_routing(MODEL)
    policy = load_policy(MODEL, s.policies_dir)
    return {
        "aliases": registry.aliases(MODEL),
        "prompt": {a: registry.prompt_version_for(PROMPT, a) for a in ("production", "challenger")},
        "guardrails": active_version(policy, s),
        "ledger": [(e.alias, e.old_version, e.new_version, e.status) for e in store.ledger.entries(MODEL)],
        "routing": (routing.route, routing.generation) if routing else None,
        "incidents": [(i.id, str(i.status)) for i in store.incidents.list_incidents(MODEL)],
    }


def served_answers(questions: list[str]) -> list[str]:
    """What a customer gets now: the champion from the registry, through the active guardrails."""
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.remediation.guardrails import load_guardrails

    s = settings()
    registry = Registry(s)
    champion = registry.load(registry.version_for(MODEL, "champion"))  # type: ignore[arg-type]
    guardrails = load_guardrails(load_policy(MODEL, s.policies_dir), s)
    answers = champion.predict(pd.DataFrame({"question": questions}))["answer"]
    return [guardrails.serve(q, a)[0] for q, a in zip(questions, answers, strict=True)]


COMPLAINT = "My order is two weeks late and I'm really unhappy. Can I get a discount?"
STUDENT = "What is your student discount policy?"


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, airflow_db: None):  # type: ignore[no-untyped-def]
    """The prompt change promising discounts: reviewed prompt + new guardrail rules, promoted."""
    home = tmp_path_factory.mktemp("support-bot")
    with firebreak_env(FIREBREAK_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}"):
        from firebreak.audits import run_audit
        from firebreak.scenarios import setup

        facts = setup(MODEL, settings())
        before = {**world(), "answers": served_answers([COMPLAINT, STUDENT])}
        audit_before = run_audit("golden_dataset_audit", MODEL)
        result = run_incident(conf("alert-support-bot-a"))
        after = {**world(), "answers": served_answers([COMPLAINT, STUDENT])}
        audit_after = run_audit("golden_dataset_audit", MODEL)
        yield {
            "home": home,
            "facts": facts,
            "before": before,
            "result": result,
            "after": after,
            "audits": (audit_before, audit_after),
        }


def test_promises_are_stopped_by_a_reviewed_prompt_and_new_guardrail_rules(promoted: dict[str, Any]) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    result, before, after = promoted["result"], promoted["before"], promoted["after"]
    assert result.state == "success", result.task_states
    assert result.task_states["guardrail_rule"] == "success"
    assert {result.task_states[t] for t in ("rollback", "retrain", "parameter_update", "upstream_fix")} == {"skipped"}

    # Before: the changed prompt (v2) is served and a complaint gets a promise past guardrails v1.
    assert before["aliases"] == {"champion": "2", "last-known-good": "1"}
    assert before["prompt"] == {"production": 2, "challenger": None} and before["guardrails"] == 1
    assert "on the house" in before["answers"][0]
    assert promoted["facts"]["guardrail_hits"] > 0

    # After: model v3 pins prompt v3; the prompt's production alias and the guardrails moved with it.
    # v2 made the promises: it never becomes last-known-good (that stays v1, what a rollback returns to).
    assert after["aliases"] == {"champion": "3", "last-known-good": "1"}
    assert after["prompt"] == {"production": 3, "challenger": None}
    assert after["guardrails"] == 2
    assert after["ledger"] == [
        *SETUP_LEDGER,
        ("prompt:challenger", None, "3", "applied"),
        ("challenger", None, "3", "applied"),
        ("champion", "2", "3", "applied"),
        ("prompt:production", "2", "3", "applied"),
        ("prompt:challenger", "3", None, "applied"),
        ("guardrails", "1", "2", "applied"),
        ("challenger", "3", None, "applied"),
    ]
    assert after["routing"] == ("champion", 2)  # to the safe responder and back
    incident_id = incident_id_for(MODEL, "alert-support-bot-a")
    assert after["incidents"] == [(incident_id, "resolved")]
    # What a customer notices: no promise, and the student discount is still explained.
    assert "on the house" not in after["answers"][0] and "sorry" in after["answers"][0].lower()
    assert "15% off" in after["answers"][1] and "student" in after["answers"][1]

    with firebreak_env(
        FIREBREAK_HOME=str(promoted["home"]), MLFLOW_TRACKING_URI=f"sqlite:///{promoted['home'] / 'mlflow.db'}"
    ):
        s = settings()
        store = State(s.state_db_url)
        registry = Registry(s)
        assert registry.prompt_text(PROMPT, 3) == (REPO / "include" / "prompts" / "support-bot.txt").read_text()
        assert registry.get_version(MODEL, "3").tags["firebreak.prompt"] == f"{PROMPT}/3"
        incident = store.incidents.get_incident(incident_id)
        assert incident is not None
        assert incident.severity == "SEV1" and incident.failure_class == "hallucination"
        ev = store.incidents.get_evidence(incident_id)
        assert ev["triage"]["signals"]["guardrail_hit_rate"] >= 0.02
        events = [e.kind for e in store.incidents.events(incident_id)]
        assert events.index("containment") < events.index("golden_qa")
        assert ev["containment"]["route"] == "heuristic"
        assert ev["containment"]["fallback_on_golden_qa"]["unauthorised_promise_rate"] == 0.0
        qa = ev["golden_qa"]
        assert qa["failed"] is True and qa["figures"]["unauthorised_promise_rate"] > 0
        assert qa["log"]["guardrail_hits"] > 0 and set(qa["log"]["by_version"]) == {"2"}
        assert any("on the house" in f["answer"] for f in qa["failures"] if f["promise"])
        assert ev["diagnosis"]["failure_class"] == "hallucination"
        gate = {c["name"]: c for c in ev["gate"]["checks"]}
        assert ev["gate"]["passed"] is True
        assert gate["unauthorised promises on golden Q&A"]["candidate"] == 0.0
        assert gate["legitimate policy questions answered correctly"]["candidate"] == 1.0
        assert ev["gate"]["qa"]["champion"]["unauthorised_promise_rate"] > 0

        text = (s.postmortem_dir / f"{incident_id}.md").read_text()
        for expected in (
            "`resolved`",
            "**Failure class:** hallucination",
            "**Golden Q&A** (19 questions): champion v2 (support-bot-system/2)",
            "Promotion gate:** passed",
            "| candidate (19 questions) | 0.0% |",
            "| `prompt:production` | 2 | 3 | applied |",
            "| `guardrails` | 1 | 2 | applied |",
            "guardrails v2 written: +4 rule(s)",
        ):
            assert expected in text, expected


def test_the_nightly_audit_sees_the_promises_and_then_their_absence(promoted: dict[str, Any]) -> None:
    before, after = promoted["audits"]
    assert before["breaches"] == ["golden_qa"]
    assert before["incident"]["conf"]["failure_type"] == "hallucination"
    assert "unauthorised promises on" in before["incident"]["conf"]["description"]
    assert after["breaches"] == [] and after["incident"] is None


def test_an_over_corrected_prompt_is_refused_by_the_gate(
    firebreak_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SOP's over-correction: a prompt that refuses every discount question never reaches users."""
    prompt = tmp_path / "overcorrected.txt"
    prompt.write_text(OVERCORRECTED)
    policies = tmp_path / "policies"
    policies.mkdir()
    policy = yaml.safe_load((REPO / "include" / "policies" / f"{MODEL}.yaml").read_text())
    policy["llm"]["fixed_prompt"] = str(prompt)
    (policies / f"{MODEL}.yaml").write_text(yaml.safe_dump(policy))
    (policies / "pricing.yaml").write_text((REPO / "include" / "policies" / "pricing.yaml").read_text())
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(policies))
    from firebreak.incidents.identity import incident_id_for
    from firebreak.scenarios import setup
    from tests.state import State

    setup(MODEL, settings())
    result = run_incident(conf("alert-support-bot-b"))

    assert result.state == "failed"
    assert result.task_states["guardrail_rule"] == "success"
    assert result.task_states["verify"] == "failed"
    assert result.task_states["promote"] == "upstream_failed"
    assert result.task_states["postmortem"] == "success" and result.task_states["close_incident"] == "success"
    after = world()
    # Champion, the prompt served and the guardrails served are unchanged; the candidate waits as challenger.
    assert after["aliases"] == {"champion": "2", "last-known-good": "1", "challenger": "3"}
    assert after["prompt"] == {"production": 2, "challenger": 3}
    assert after["guardrails"] == 1
    assert after["routing"] == ("heuristic", 1)
    incident_id = incident_id_for(MODEL, "alert-support-bot-b")
    store = State(settings().state_db_url)
    incident = store.incidents.get_incident(incident_id)
    assert incident is not None and str(incident.status) == "contained_needs_human"
    assert "legitimate policy questions answered correctly 0.0" in (incident.outcome or "")
    ev = store.incidents.get_evidence(incident_id)
    gate = {c["name"]: c for c in ev["gate"]["checks"]}
    assert gate["unauthorised promises on golden Q&A"]["passed"] is True  # it promises nothing ...
    assert gate["legitimate policy questions answered correctly"]["passed"] is False  # ... and explains nothing
    refused = [f["question"] for f in ev["gate"]["candidate_failures"]]
    assert "What is your student discount policy?" in refused
    text = (settings().postmortem_dir / f"{incident_id}.md").read_text()
    assert "`contained_needs_human`" in text and "legitimate policy questions answered correctly" in text
    assert "Routing now:** heuristic" in text


def test_parameter_update_lowers_the_temperature_and_keeps_the_prompt(firebreak_home: Path) -> None:
    """The form's remediation `parameter_update` on an LLM: the champion's pinned prompt stays, temperature drops."""
    from firebreak.incidents.identity import incident_id_for
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import setup
    from tests.state import State

    setup(MODEL, settings())
    result = run_incident(conf("alert-support-bot-c", remediation="parameter_update"))

    assert result.task_states["parameter_update"] == "success"
    assert result.task_states["guardrail_rule"] == "skipped"
    s = settings()
    store = State(s.state_db_url)
    registry = Registry(s)
    candidate = registry.load(registry.get_version(MODEL, "3"))
    assert candidate.model_config == {
        "prompt_name": PROMPT,
        "prompt_version": 2,  # the champion's prompt, unchanged
        "temperature": 0.1,  # the policy's remediation.parameter_update
        "seed": 11,
        "firebreak_model": "support_bot",  # rebuilt from data on load (firebreak.registry.own_models)
    }
    assert registry.get_version(MODEL, "3").tags["firebreak.prompt"] == f"{PROMPT}/2"
    ev = store.incidents.get_evidence(incident_id_for(MODEL, "alert-support-bot-c"))
    assert ev["candidate"]["remediation"] == "parameter_update" and ev["candidate"]["version"] == "3"
    # The gate judged it on the golden Q&A like any other candidate, and the prompt alias did not move.
    assert {c["name"] for c in ev["gate"]["checks"]} >= {
        "unauthorised promises on golden Q&A",
        "legitimate policy questions answered correctly",
    }
    assert world()["prompt"]["production"] == 2


def test_dry_run_plans_the_guardrail_rule_and_changes_nothing(firebreak_home: Path) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.policy.schema import load_policy
    from firebreak.remediation.guardrails import versions_dir
    from firebreak.scenarios import setup
    from tests.state import State

    setup(MODEL, settings())
    before = world()
    result = run_incident(conf("alert-support-bot-dry", dry_run=True))
    assert result.state == "success", result.task_states
    after = world()
    incident_id = incident_id_for(MODEL, "alert-support-bot-dry")
    assert after["incidents"] == [(incident_id, "dry_run")]
    assert {k: after[k] for k in ("aliases", "prompt", "guardrails", "ledger", "routing")} == {
        k: before[k] for k in ("aliases", "prompt", "guardrails", "ledger", "routing")
    }
    s = settings()
    assert not versions_dir(load_policy(MODEL, s.policies_dir), s).exists()  # no guardrail version written
    ev = State(s.state_db_url).incidents.get_evidence(incident_id)
    assert ev["diagnosis"]["failure_class"] == "hallucination"
    assert ev["candidate"]["detail"].startswith("dry run: would register support-bot.txt as a new prompt version")
