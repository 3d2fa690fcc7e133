"""The gateway in front of the support assistant: guardrails stand between its answers and users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from firebreak.prediction_log import PredictionLog
from firebreak.serving.app import create_app
from firebreak.serving.gateway import Gateway
from firebreak.settings import Settings
from tests.gateway_helpers import many_callers
from tests.state import State

pytestmark = pytest.mark.integration

LATE = "My order is late and I'm unhappy about it"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("gateway-llm")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        from firebreak.scenarios import support_bot

        settings = Settings.from_env()
        support_bot.setup(settings)
        yield settings


def chat(question: str, topic: str) -> dict[str, Any]:
    from firebreak.scenarios import support_bot

    return {
        "question": question,
        "topic": topic,
        "question_chars": len(question),
        "upstream_source": support_bot.UPSTREAM_SOURCE,
        "feature_pipeline_version": "kb-2026.11",
    }


def test_answers_the_active_guardrails_block_never_reach_a_user(world: Settings) -> None:
    from firebreak.remediation.guardrails import load_guardrails
    from firebreak.scenarios import support_bot

    gateway = Gateway("support-bot", world, refresh_seconds=3600)
    gateway.refresh()
    chats = support_bot.generate_traffic(5, 200)
    ids = [f"chat-{i}" for i in range(len(chats))]
    with TestClient(many_callers(create_app(gateway, start=False))) as http:
        answers = [
            http.post(
                "/invocations",
                json={"dataframe_records": [chat(c["question"], c["topic"])]},
                headers={"X-Request-Id": i},
            )
            for i, c in zip(ids, chats.to_dict("records"), strict=True)
        ]
        missing = http.post("/invocations", json={"dataframe_records": [{"topic": "discounts", "question_chars": 5}]})
    assert [a.status_code for a in answers] == [200] * len(chats)
    assert "question: required field missing" in missing.json()["error"]
    served = [a.json()["predictions"][0]["answer"] for a in answers]
    routes = [a.headers["X-Firebreak-Route"] for a in answers]
    guardrails = load_guardrails(gateway.policy, world)
    assert "guardrail" in routes  # v2's prompt made promises the rules know...
    assert all(guardrails.check(q, a).allowed for q, a in zip(chats["question"], served, strict=True))  # ...none served
    # Blocked answers count against the breaker: over 5% of answers, it opens and the safe responder serves.
    assert gateway.breaker.state == "open" and routes[-1] == "heuristic"
    students = [a for q, a in zip(chats["question"], served, strict=True) if q == "Do students get a discount?"]
    assert students and all("15%" in a for a in students)  # policy, not a promise: still explained
    gateway.drain()
    log = PredictionLog(world.prediction_log_dir).read("support-bot")
    log = log[log["request_id"].isin(ids)]
    assert len(log) == len(chats)
    assert (log["route"] == "guardrail").sum() == routes.count("guardrail")
    assert log.loc[log["route"] == "guardrail", "guardrail"].notna().all()


def test_a_guardrail_version_activated_by_an_incident_is_enforced_at_the_next_refresh(world: Settings) -> None:
    from firebreak.remediation.guardrails import activate, add_rules

    gateway = Gateway("support-bot", world, refresh_seconds=3600)
    store = State(world.state_db_url)
    with store.begin() as conn:
        conn.exec_driver_sql("DELETE FROM breakers")
    gateway.refresh()
    with TestClient(many_callers(create_app(gateway, start=False))) as http:
        before = http.post("/invocations", json={"dataframe_records": [chat(LATE, "shipping")]})
        assert before.headers["X-Firebreak-Route"] == "champion"
        assert "waive" in before.json()["predictions"][0]["answer"]  # v1's rules miss this promise

        llm = gateway.policy.llm
        assert llm is not None and llm.guardrail_additions
        additions = yaml.safe_load(world.resolve(llm.guardrail_additions).read_text())
        version = add_rules(
            gateway.policy,
            world,
            rules=additions["rules"],
            exemplars=additions.get("exemplars", []),
            incident_id="inc-llm",
            reason="promises of waived costs",
        )
        activate(
            gateway.policy, world, version, ledger=store.ledger, incident_id="inc-llm", actor="test", reason="new rule"
        )
        gateway.refresh()
        after = http.post("/invocations", json={"dataframe_records": [chat(LATE, "shipping")]})
    assert after.headers["X-Firebreak-Route"] == "guardrail"
    assert "waive" not in after.json()["predictions"][0]["answer"]
    assert "guardrail" not in after.json()["predictions"][0]  # the rule is logged, not sent to the client
