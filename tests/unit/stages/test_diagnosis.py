"""Diagnose and choose: the class from recorded evidence, the remediation from the policy or the form."""

from __future__ import annotations

import pytest

from firebreak import stages
from firebreak.errors import RemediationError
from firebreak.incidents.enums import EvidenceKind, IncidentStatus
from tests.unit.stages.conftest import World

DRIFTED = {
    "dataset_drift": True,
    "drift_share": 0.6,
    "columns": [
        {"column": "demand_index", "method": "wasserstein", "score": 0.9, "threshold": 0.1, "drifted": True},
        {"column": "unit_cost", "method": "wasserstein", "score": 0.01, "threshold": 0.1, "drifted": False},
    ],
    "scale_changes": [],
}


def test_recorded_drift_is_diagnosed_and_the_policy_picks_retrain(world: World) -> None:
    incident_id = world.open("diagnose-a")
    world.state().incidents.put_evidence(incident_id, EvidenceKind.DRIFT, DRIFTED)
    assert stages.diagnose(incident_id) == {"failure_class": "drift", "remediation": "retrain"}
    assert stages.choose_remediation(incident_id) == "retrain"
    ev = world.state().incidents.get_evidence(incident_id)
    assert "demand_index" in ev[EvidenceKind.DIAGNOSIS]["root_cause"]
    assert ev[EvidenceKind.REMEDIATION_CHOICE] == {"choice": "retrain", "source": "policy for drift"}
    incident = world.state().incidents.get_incident(incident_id)
    assert incident is not None and (incident.failure_class, incident.status) == ("drift", IncidentStatus.REMEDIATING)


def test_the_form_overrides_the_policy(world: World) -> None:
    incident_id = world.open("diagnose-b", remediation="rollback")
    world.state().incidents.put_evidence(incident_id, EvidenceKind.DRIFT, DRIFTED)
    stages.diagnose(incident_id)
    assert stages.choose_remediation(incident_id) == "rollback"
    choice = world.state().incidents.get_evidence(incident_id)[EvidenceKind.REMEDIATION_CHOICE]
    assert choice == {"choice": "rollback", "source": "requested"}


def test_no_evidence_and_no_report_leaves_it_to_a_human(world: World) -> None:
    incident_id = world.open("diagnose-c")
    assert stages.diagnose(incident_id) == {"failure_class": "unknown", "remediation": None}
    with pytest.raises(
        RemediationError, match="no automated remediation for failure class 'unknown' of pricing"
    ) as raised:
        stages.choose_remediation(incident_id)
    # A false alarm ends here too: the on-call is told how to send traffic back once they checked.
    assert "firebreak route --model pricing champion --reason 'checked: healthy' --by YOUR_NAME" in str(raised.value)
    assert world.state().incidents.get_evidence(incident_id)[EvidenceKind.REMEDIATION_CHOICE] == {"choice": None}
