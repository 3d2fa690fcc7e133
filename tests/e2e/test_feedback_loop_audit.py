"""The feedback loop audit tells poisoning from a model that earned its thumbs down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_dags")]

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
