"""Contain and restore: traffic to the fallback by compare-and-set, once; back only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from firebreak import stages
from firebreak.incidents.enums import EvidenceKind, IncidentStatus, Route
from tests.unit.stages.conftest import World


def test_contain_moves_traffic_to_the_heuristic_once_and_scores_the_fallback(world: World) -> None:
    incident_id = world.open("contain-a")
    state = world.state()
    before = state.routing.get_routing("pricing")
    assert before is not None and before.route == Route.CHAMPION

    assert stages.contain(incident_id) == {"route": "heuristic", "changed": True}
    assert stages.contain(incident_id) == {"route": "heuristic", "changed": False}  # a retry changes nothing

    after = state.routing.get_routing("pricing")
    assert after is not None
    assert (after.route, after.generation, after.incident_id) == ("heuristic", before.generation + 1, incident_id)
    incident = state.incidents.get_incident(incident_id)
    assert incident is not None and incident.status == IncidentStatus.CONTAINED
    evidence = state.incidents.get_evidence(incident_id)[EvidenceKind.CONTAINMENT]
    assert evidence["previous_route"] == "heuristic"  # the second run's view; the first moved it
    # The fallback is judged as the model would be: on recent labelled traffic, never below cost.
    figures = evidence["fallback_on_recent"]
    assert figures["rows"] > 0 and figures["sanity_violation_rate"] == 0.0

    assert stages.restore_traffic(incident_id) == {"restored": True}
    restored = state.routing.get_routing("pricing")
    assert restored is not None and (restored.route, restored.generation) == ("champion", before.generation + 2)
    assert state.incidents.get_evidence(incident_id)[EvidenceKind.RESTORE]["champion"] == world.facts["champion"]


def test_a_dry_run_contains_nothing(world: World) -> None:
    incident_id = world.open("contain-dry", dry_run=True)
    before = world.state().routing.get_routing("pricing")
    assert stages.contain(incident_id) == {"route": "heuristic", "changed": False}
    assert stages.restore_traffic(incident_id) == {"restored": False}
    assert world.state().routing.get_routing("pricing") == before
    incident = world.state().incidents.get_incident(incident_id)
    assert incident is not None and incident.status == IncidentStatus.OPEN
    messages = [e.message for e in world.state().incidents.events(incident_id)]
    assert "dry run: would route pricing from champion to heuristic" in messages


def test_a_segment_scoped_policy_contains_only_the_segment_triage_found(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from firebreak.settings import INCLUDE_DIR

    policies = tmp_path / "policies"
    policies.mkdir()
    text = (INCLUDE_DIR / "policies" / "pricing.yaml").read_text()
    (policies / "pricing.yaml").write_text(text.replace("containment:\n", "containment:\n  scope: segment\n", 1))
    incident_id = world.open("contain-segment")
    segment = {"conditions": [{"column": "category", "values": ["electronics"]}], "description": "category=electronics"}
    found = {"scope": "segment", "segments": [{"segment": segment, "rows": 120, "share": 0.08, "lift": 3.1}]}
    state = world.state()
    state.incidents.put_evidence(incident_id, EvidenceKind.TRIAGE, {"segments": found})
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(policies))

    assert stages.contain(incident_id)["segment"] == "category=electronics"
    route = state.routing.get_routing("pricing")
    assert route is not None and route.route == "champion"  # the rest stays on the champion
    contained = state.routing.contained_segment("pricing")
    assert contained is not None and contained["segment"] == segment and contained["incident_id"] == incident_id
    evidence = state.incidents.get_evidence(incident_id)[EvidenceKind.CONTAINMENT]
    assert (evidence["scope"], evidence["segment"]["description"]) == ("segment", "category=electronics")
    stages.restore_traffic(incident_id)
    assert state.routing.contained_segment("pricing") is None


def test_triage_says_who_is_hit_before_contain_reads_it(world: World) -> None:
    incident_id = world.open("triage-who")
    stages.triage(incident_id)
    evidence = world.state().incidents.get_evidence(incident_id)[EvidenceKind.TRIAGE]
    segments = evidence["segments"]
    # The pricing world's off-season prices fall below cost nearly everywhere: everyone's failure.
    assert segments["signal"] == "predictions under the confidence floor or the sanity bound"
    assert segments["scope"] in ("all users", "segment")
    events = world.state().incidents.events(incident_id)
    assert any("who is hit:" in e.message for e in events)
