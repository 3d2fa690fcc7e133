"""An audit's breaches become one deterministic incident request."""

from __future__ import annotations

import pytest

from firebreak.audits import AuditResult, Finding, run_audit
from firebreak.incidents.identity import incident_id_for


def result(*breached: str, ok: str = "golden") -> AuditResult:
    findings = [Finding(ok, False, "fine")] + [Finding(c, True, f"{c} broke") for c in breached]
    return AuditResult("golden_dataset_audit", "pricing", "2026-11-27", "3", findings, "run-1")


@pytest.mark.parametrize(
    ("breached", "failure"),
    [
        (["fairness"], "bias"),
        (["drift"], "drift"),
        (["contract"], "skew"),
        (["feedback"], "feedback_poisoning"),
        (["drift", "fairness"], "unknown"),
    ],
)
def test_breaches_map_to_a_failure_class(breached: list[str], failure: str) -> None:
    request = result(*breached).incident_request()
    assert request is not None
    assert request["conf"]["failure_type"] == failure
    assert request["conf"]["description"].startswith("golden_dataset_audit 2026-11-27: ")


def test_the_same_breach_maps_to_the_same_incident() -> None:
    a, b = result("drift").incident_request(), result("drift").incident_request()
    assert a is not None and b is not None
    assert a["conf"]["dedup_key"] == "audit:golden_dataset_audit:2026-11-27:drift"
    assert a["trigger_run_id"] == b["trigger_run_id"] == incident_id_for("pricing", a["conf"]["dedup_key"])
    other = result("drift", "contract").incident_request()
    assert other is not None and other["trigger_run_id"] != a["trigger_run_id"]


def test_no_breach_no_incident() -> None:
    assert result().incident_request() is None


def test_unknown_audit_is_named() -> None:
    with pytest.raises(ValueError, match="unknown audit 'nightly'"):
        run_audit("nightly", "pricing")
