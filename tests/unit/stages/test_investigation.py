"""Investigate: each check records its evidence (and artifacts) before anything decides on it."""

from __future__ import annotations

from firebreak import stages
from firebreak.incidents.enums import EvidenceKind
from tests.unit.stages.conftest import World


def test_the_checks_record_what_the_pricing_world_shows(world: World) -> None:
    incident_id = world.open("investigate-a")
    assert stages.validate_contract(incident_id) == {"passed": True, "failures": 0}
    assert stages.trace_lineage(incident_id) == {"passed": True, "groups": 1}
    drift = stages.drift_report(incident_id)
    golden = stages.golden_eval(incident_id)
    assert stages.fairness_audit(incident_id) == {"breached": None}  # pricing names no protected attribute
    feedback = stages.feedback_review(incident_id)

    ev = world.state().incidents.get_evidence(incident_id)
    # The world moved out of season: the drift engine and Evidently's report agree on it.
    assert drift["dataset_drift"] is True and "demand_index" in drift["top"]
    assert ev[EvidenceKind.DRIFT]["report_agrees"] is True
    assert ev[EvidenceKind.DRIFT]["scale_changes"] == []  # no unit change: not skew
    # The champion still matches its golden baseline (not a bad release), and the golden set
    # does not cover most of the recent traffic: what golden checks could not see.
    assert golden["check"] == "golden" and golden["breached"] is False
    assert ev[EvidenceKind.GOLDEN]["figures"]["mae"] == golden["golden_mae"]
    assert max(ev[EvidenceKind.GOLDEN]["coverage"].values()) > 0.05
    assert ev[EvidenceKind.CONTRACT]["passed"] is True and ev[EvidenceKind.LINEAGE]["unknown_rows"] == 0
    assert feedback == {"poisoned": False, "excluded_events": 0}
    assert ev[EvidenceKind.FEEDBACK]["events_total"] > 0

    # Artifacts a person reads are in the incident's MLflow run.
    run_id = world.state().incidents.get_incident(incident_id).mlflow_run_id  # type: ignore[union-attr]
    client = world.registry().client
    logged = {f.path for d in ("contract", "drift") for f in client.list_artifacts(run_id, d)}
    assert logged == {"contract/contract_result.json", "drift/drift_report.html", "drift/drift_report.json"}
    assert client.get_run(run_id).data.metrics["golden_mae"] == golden["golden_mae"]
