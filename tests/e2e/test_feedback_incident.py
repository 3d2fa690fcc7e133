"""The feedback scenario opened by hand (the demo's path): the incident finds and marks the slice itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import pricing_conf, run_incident, settings

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_db")]


@pytest.mark.parametrize("dry_run", [False, True], ids=["incident", "dry-run"])
def test_incident_before_the_audit_marks_the_slice_unless_dry_run(firebreak_home: Path, dry_run: bool) -> None:
    from firebreak.feedback import FeedbackStore
    from firebreak.incidents.identity import incident_id_for
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import feedback
    from tests.state import State

    s = settings()
    facts = feedback.setup(s)
    store = FeedbackStore(s.feedback_dir)
    assert store.poisoned(feedback.MODEL) == []
    result = run_incident(
        pricing_conf(f"alert-feedback-{dry_run}", model=feedback.MODEL, dry_run=dry_run, **feedback.ALERT)
    )
    assert result.state == "success", result.task_states

    state = State(s.state_db_url)
    incident_id = incident_id_for(feedback.MODEL, f"alert-feedback-{dry_run}")
    ev = state.incidents.get_evidence(incident_id)
    assert ev["diagnosis"]["failure_class"] == "feedback_poisoning"
    assert ev["feedback"]["slice"]["actors"] == feedback.BOTS
    assert ev["feedback"]["slice_events"] == facts["flood_events"]
    aliases = Registry(s).aliases(feedback.MODEL)
    if dry_run:
        # Reported, not marked: the feedback and the registry are as they were.
        assert ev["feedback"]["marked_by_this_incident"] is False and store.poisoned(feedback.MODEL) == []
        assert len(store.read(feedback.MODEL)) == facts["feedback_events"]
        assert aliases == {"champion": facts["champion"]}
    else:
        [marked] = store.poisoned(feedback.MODEL)
        assert marked.actors == feedback.BOTS and marked.marked_by == f"incident {incident_id}"
        assert ev["feedback"]["marked_by_this_incident"] is True
        assert len(store.read(feedback.MODEL)) == facts["feedback_events"] - facts["flood_events"]
        assert ev["candidate"]["training"]["excluded_events"] == facts["flood_events"]
        assert aliases == {"champion": "3"}  # the champion that learned from the poison never becomes last-known-good
        assert str(state.incidents.get_incident(incident_id).status) == "resolved"  # type: ignore[union-attr]
