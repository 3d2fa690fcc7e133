"""The feedback loop audit tells poisoning from a model that earned its thumbs down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_dags")]

REPO = Path(__file__).resolve().parents[2]
BOTS = ["acct-7731", "acct-7732", "acct-7733"]


def test_a_failing_model_earns_its_thumbs_down_and_no_incident_opens(firebreak_home: Path) -> None:
    from firebreak.audits import feedback_loop_audit
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    pricing.setup(settings)  # the demo's world: v1 fails out of season, managers say so
    result = feedback_loop_audit("pricing", settings=settings)
    assert result is not None
    [finding] = result.findings
    assert finding.breached is False
    assert finding.figures["rate_shift"] > 0.3  # thumbs down rose sharply ...
    assert finding.figures["top_share"] < 0.1  # ... from many managers ...
    assert finding.figures["label_disagreement"] < 0.2  # ... and the labels agree with them
    assert "the model earned them" in finding.summary
    assert result.incident_request() is None


def test_a_few_actors_flooding_thumbs_down_is_marked_excluded_and_opens_one_incident(firebreak_home: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from firebreak.feedback import FeedbackStore
    from firebreak.prediction_log import PredictionLog
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    now = datetime.now(UTC)
    # Still in season: the last six hours of traffic were served well by v1.
    pricing.setup(settings, now=now + timedelta(hours=24))
    seen = PredictionLog(settings.prediction_log_dir).read_window("pricing", 24, now=now - timedelta(minutes=5))
    store = FeedbackStore(settings.feedback_dir)
    store.append("pricing", pricing.poisoned_feedback(seen, actors=BOTS, events=400))
    before = len(store.read("pricing"))

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["feedback_loop_audit"]
    dag.test()
    with create_session() as session:
        opened = [
            r
            for r in session.query(DagRun).filter(DagRun.dag_id == "incident_response")
            if str(r.conf.get("dedup_key", "")).startswith("audit:feedback_loop_audit:")
        ]
    [run] = opened
    assert run.conf["failure_type"] == "feedback_poisoning"
    assert "poisoned slice (3 actors, 400 events) excluded" in run.conf["description"]

    [marked] = store.poisoned("pricing")
    assert marked.actors == BOTS
    assert len(store.read("pricing")) == before - 400  # every later read excludes the slice
    assert len(store.read("pricing", exclude_poisoned=False)) == before

    # Audited again: the slice is gone from the data, nothing new opens.
    dag.test()
    with create_session() as session:
        again = [
            r
            for r in session.query(DagRun).filter(DagRun.dag_id == "incident_response")
            if str(r.conf.get("dedup_key", "")).startswith("audit:feedback_loop_audit:")
        ]
    assert len(again) == 1
    assert len(store.poisoned("pricing")) == 1


def test_audit_opens_the_incident_and_a_clean_retrain_replaces_the_poisoned_champion(firebreak_home: Path) -> None:
    """Scenario feedback, the whole chain: audit -> incident -> retrain on clean feedback -> gate -> promote."""
    import pandas as pd
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from firebreak.detection.performance import evaluate
    from firebreak.feedback import FeedbackStore
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import feedback, lending
    from firebreak.settings import Settings
    from tests.e2e.conftest import run_incident
    from tests.state import State

    settings = Settings.from_env()
    facts = feedback.setup(settings)
    # The nightly retrain declines good applicants.
    assert facts["approval_rate_after"] < facts["approval_rate_before"] / 2

    DagBag(dag_folder=str(REPO / "dags")).dags["feedback_loop_audit"].test()
    with create_session() as session:
        [run] = [
            r
            for r in session.query(DagRun).filter(DagRun.dag_id == "incident_response")
            if r.conf.get("model") == feedback.MODEL
            and str(r.conf.get("dedup_key", "")).startswith("audit:feedback_loop_audit:")
        ]
        conf = dict(run.conf)
    assert conf["failure_type"] == "feedback_poisoning"
    assert f"poisoned slice (3 actors, {facts['flood_events']} events) excluded" in conf["description"]

    # The poisoned-trained model would have been worse than the clean one on the labelled traffic.
    policy = load_policy(feedback.MODEL, settings.policies_dir)
    decisions = pd.read_parquet(settings.resolve(policy.training.dataset))
    labelled = lending.golden_frame()
    poisoned = evaluate(lending.train_from_all_feedback(decisions, settings=settings).predict_frame, labelled, policy)
    clean = evaluate(lending.train_from_feedback(decisions, settings=settings).predict_frame, labelled, policy)
    assert clean.mae < poisoned.mae * 0.5

    # The incident the audit asked for, run as the trigger would run it.
    result = run_incident(conf)
    assert result.state == "success", result.task_states
    store = State(settings.state_db_url)
    [incident] = store.incidents.list_incidents(feedback.MODEL)
    assert str(incident.status) == "resolved" and incident.failure_class == "feedback_poisoning"
    # v2 learned from the poisoned feedback: it never becomes last-known-good.
    assert Registry(settings).aliases(feedback.MODEL) == {"champion": "3"}
    ledger = [(e.alias, e.old_version, e.new_version) for e in store.ledger.entries(feedback.MODEL)]
    assert ledger[-2:] == [("champion", "2", "3"), ("challenger", "3", None)]
    routing = store.routing.get_routing(feedback.MODEL)
    assert routing is not None and routing.route == "champion"

    ev = store.incidents.get_evidence(incident.id)
    assert ev["feedback"]["poisoned"] is True
    assert set(ev["feedback"]["excluded_actors"]) == set(feedback.BOTS)  # the flooding accounts, nobody else
    assert sum(ev["feedback"]["excluded_actors"].values()) == facts["flood_events"]
    assert ev["feedback"]["figures"]["top_share"] > 0.3
    assert ev["feedback"]["figures"]["rate_shift"] > 0.2  # thumbs down jumped against the day before
    assert "thumbs-down rate shift" in " ".join(ev["diagnosis"]["reasons"])
    assert ev["feedback"]["marked_by_this_incident"] is False  # the audit had marked it
    training = ev["candidate"]["training"]
    assert training["excluded_events"] == facts["flood_events"]
    assert training["feedback_events"] == facts["feedback_events"] - facts["flood_events"]
    assert set(training["excluded_actors"]) == set(feedback.BOTS)
    gate = {c["name"]: c for c in ev["gate"]["checks"]}
    assert ev["gate"]["passed"] is True
    recent = gate["recent accuracy improves on champion"]  # loan_review is gated on accuracy
    assert recent["passed"] and recent["candidate"] > float(recent["limit"].removeprefix(">= "))

    text = (settings.postmortem_dir / f"{incident.id}.md").read_text()
    for expected in (
        "`resolved`",
        "**Failure class:** feedback_poisoning",
        f"Poisoned slice excluded from every later read and from the retrain: {facts['flood_events']} events from",
        *(f"`{bot}` ({training['excluded_actors'][bot]} events)" for bot in feedback.BOTS),
        "| `champion` | 2 | 3 | applied |",
    ):
        assert expected in text, expected
    assert len(FeedbackStore(settings.feedback_dir).poisoned(feedback.MODEL)) == 1
