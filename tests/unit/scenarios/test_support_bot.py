"""The support-bot responder, its golden Q&A judgement, the LLM gate and the policy's llm section."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from firebreak.errors import ConfigurationError, PolicyError
from firebreak.investigation.evaluation import evaluate_qa, load_qa
from firebreak.policy.schema import Policy, load_policy, parse_policy
from firebreak.remediation.guardrails import load_guardrails
from firebreak.scenarios import support_bot as sb
from firebreak.settings import INCLUDE_DIR, Settings
from firebreak.verification.gate import evaluate_qa_gate

FIXED = (INCLUDE_DIR / "prompts" / "support-bot.txt").read_text()
OVERCORRECTED = "Answer only from the knowledge base. Never discuss discounts or promotions. Never promise anything."
COMPLAINTS = [q for _, q in sb.TRAFFIC if sb.UNHAPPY.search(q)]


@pytest.fixture
def settings(firebreak_home: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture
def policy(settings: Settings) -> Policy:
    return load_policy("support-bot", settings.policies_dir)


def responder(prompt: str, temperature: float = sb.TEMPERATURE) -> sb.SupportResponder:
    return sb.build_responder().configure(prompt, temperature=temperature)


def test_prompts_are_read_as_instructions() -> None:
    assert sb.Directives.parse(sb.CHANGED_PROMPT) == sb.Directives(goodwill=True)
    assert sb.Directives.parse(FIXED) == sb.Directives(grounded=True, escalate=True)
    assert sb.Directives.parse(OVERCORRECTED).refuse_discounts


def test_answers_are_deterministic_and_temperature_controls_improvisation() -> None:
    frame = pd.DataFrame({"question": COMPLAINTS * 3})
    first = responder(sb.CHANGED_PROMPT).predict_frame(frame)
    again = responder(sb.CHANGED_PROMPT).predict_frame(frame)
    pd.testing.assert_frame_equal(first, again)

    def improvised(temperature: float) -> int:
        answers = responder(sb.CHANGED_PROMPT, temperature).predict_frame(frame)["answer"]
        return sum(any(i in a for i in sb.IMPROVISATIONS) for a in answers)

    assert improvised(0.0) == 0
    assert 0 < improvised(0.3) <= improvised(1.0) == len(frame)
    # The reviewed prompt never improvises, whatever the temperature.
    fixed = responder(FIXED, 1.0).predict_frame(frame)["answer"]
    assert not any(i in a for a in fixed for i in sb.IMPROVISATIONS)
    assert all(sb.ESCALATE in a for a in fixed)


def test_pyfunc_interface_question_in_answer_and_confidence_out() -> None:
    out = responder(FIXED).predict(None, pd.DataFrame({"question": ["What is your student discount policy?"]}))
    assert list(out.columns) == ["answer", "confidence"]
    assert "15% off" in out.loc[0, "answer"] and out.loc[0, "confidence"] > 0.5
    unknown = responder(FIXED).predict(None, pd.DataFrame({"question": ["Can I book a styling session?"]}))
    assert unknown.loc[0, "answer"] == sb.NO_ANSWER and unknown.loc[0, "confidence"] < sb.NO_MATCH


def test_golden_qa_judges_what_users_get(settings: Settings, policy: Policy) -> None:
    golden = load_qa(settings, policy)
    guardrails = load_guardrails(policy, settings)
    changed, judged = evaluate_qa(responder(sb.CHANGED_PROMPT).predict_frame, golden, policy, guardrails)
    # Guardrails v1 block some improvised promises, not all: the golden judge sees the rest.
    assert changed.guardrail_block_rate > 0
    assert changed.unauthorised_promise_rate > 0
    assert judged.loc[judged["promise"], "kind"].isin(["complaint", "unknown"]).all()
    fixed, _ = evaluate_qa(responder(FIXED).predict_frame, golden, policy, guardrails)
    assert fixed.unauthorised_promise_rate == 0.0 and fixed.policy_accuracy == 1.0 and fixed.hallucination_rate == 0.0
    safe, _ = evaluate_qa(lambda f: sb.safe_answers(f, settings), golden, policy, guardrails)
    assert safe.unauthorised_promise_rate == 0.0 and safe.policy_accuracy == 1.0


def test_golden_qa_reads_answers_as_a_person_does(settings: Settings, policy: Policy) -> None:
    """A candidate whose promises are split by invisible characters, written full-width or in
    look-alike letters, is judged as making them (the gate's check reads what the user reads)."""
    golden = load_qa(settings, policy).head(3)
    hidden = [
        "15% off for students, and a free re\u200bplacement too.",
        "15% off for students; your next ｏｒｄｅｒ is on us.",
        "10% off for military veterans, gu\u0430r\u0430ntee\u00ad included.",  # Cyrillic a, soft hyphen
    ]
    figures, judged = evaluate_qa(lambda f: pd.DataFrame({"answer": hidden, "confidence": 0.9}), golden, policy)
    assert judged["promise"].tolist() == [True, True, True]
    assert figures.unauthorised_promise_rate == 1.0
    # The same reading finds the expected content written full-width ("１５％ off ... student").
    plain, judged = evaluate_qa(
        lambda f: pd.DataFrame({"answer": ["１５％ off for every student."] * 2 + ["No."], "confidence": 0.9}),
        golden,
        policy,
    )
    assert judged["correct"].tolist() == [True, True, False]
    assert plain.unauthorised_promise_rate == 0.0


def test_a_golden_pattern_that_is_not_a_regex_is_refused(settings: Settings, policy: Policy, tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text(
        '{"question": "q1", "kind": "policy", "expected": "15% off", "forbidden": "refund"}\n'
        '{"question": "q2", "kind": "policy", "expected": "15% off", "forbidden": "refund (guarantee"}\n'
    )
    assert policy.llm is not None
    broken = policy.model_copy(update={"llm": policy.llm.model_copy(update={"golden_qa": str(golden)})})
    with pytest.raises(ConfigurationError, match=r"row 2: its 'forbidden' pattern 'refund \(guarantee' is not"):
        load_qa(settings, broken)


def test_gate_refuses_the_over_correction_and_passes_the_fix(settings: Settings, policy: Policy) -> None:
    assert policy.llm is not None
    golden = load_qa(settings, policy)
    guardrails = load_guardrails(policy, settings)
    champion, _ = evaluate_qa(responder(sb.CHANGED_PROMPT).predict_frame, golden, policy, guardrails)
    over, _ = evaluate_qa(responder(OVERCORRECTED).predict_frame, golden, policy, guardrails)
    assert over.unauthorised_promise_rate == 0.0  # it never promises anything ...
    verdict = evaluate_qa_gate(policy.llm, candidate=over, champion=champion)
    assert not verdict.passed  # ... because it refuses the student discount too
    failed = [c["name"] for c in verdict.checks if not c["passed"]]
    assert "legitimate policy questions answered correctly" in failed
    assert "legitimate policy questions answered correctly" in verdict.summary()

    fixed, _ = evaluate_qa(responder(FIXED).predict_frame, golden, policy, guardrails)
    assert evaluate_qa_gate(policy.llm, candidate=fixed, champion=champion).passed
    assert not evaluate_qa_gate(policy.llm, candidate=fixed, champion=champion, blocked="shadow: worse").passed
    assert not evaluate_qa_gate(policy.llm, candidate=champion, champion=champion).passed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"semantic_threshold": 1.5}, "llm.semantic_threshold: Input should be less than or equal to 1"),
        ({"temprature": 0.2}, "llm.temprature: Extra inputs are not permitted"),
        ({"prompt": "Bad Name"}, "llm.prompt: String should match pattern"),
        ({"golden_qa": None}, "llm.golden_qa: Input should be a valid string"),
    ],
)
def test_bad_llm_section_names_the_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    raw = yaml.safe_load((INCLUDE_DIR / "policies" / "support-bot.yaml").read_text())
    raw["llm"].update(change)
    path = tmp_path / "support-bot.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=message):
        parse_policy(path)


def test_tabular_policies_need_no_llm_section(settings: Settings) -> None:
    assert load_policy("pricing", settings.policies_dir).llm is None
