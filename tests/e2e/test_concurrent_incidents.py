"""Two incidents for one model at once: alias moves never interleave on a stale verdict.

Drives the SOP stages as plain library calls (what each DAG task calls), interleaved the
way two concurrent runs could interleave them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firebreak import stages
from firebreak.errors import GateRefused

pytestmark = pytest.mark.e2e

STAGES_TO_VERIFY = [
    "triage",
    "contain",
    "validate_contract",
    "trace_lineage",
    "drift_report",
    "golden_eval",
    "diagnose",
]


def test_the_second_promotion_is_refused_when_champion_moved(firebreak_home: Path) -> None:
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings
    from tests.state import State

    pricing.setup(Settings.from_env())
    conf = {"model": "pricing", "description": "concurrent"}
    a = stages.open_incident({**conf, "dedup_key": "alert-a"}, run_id="run-a")["incident_id"]
    b = stages.open_incident({**conf, "dedup_key": "alert-b"}, run_id="run-b")["incident_id"]
    for stage in STAGES_TO_VERIFY:
        stages.STAGES[stage](a)
        stages.STAGES[stage](b)
    assert stages.choose_remediation(a) == stages.choose_remediation(b) == "retrain"
    version_a = stages.retrain(a)["version"]
    version_b = stages.retrain(b)["version"]
    assert stages.verify(a)["passed"] and stages.verify(b)["passed"]

    stages.promote(a)
    stages.restore_traffic(a)
    with pytest.raises(GateRefused, match=f"moved from v1 to v{version_a} while this incident ran"):
        stages.promote(b)

    settings = Settings.from_env()
    store = State(settings.state_db_url)
    aliases = Registry(settings).aliases("pricing")
    assert aliases["champion"] == version_a and aliases["last-known-good"] == "1"
    champion_moves = [
        (e.old_version, e.new_version, e.incident_id) for e in store.ledger.entries("pricing") if e.alias == "champion"
    ]
    assert champion_moves == [(None, "1", None), ("1", version_a, a)]  # b never moved champion
    assert aliases["challenger"] == version_b  # b's candidate waits for a human, unpromoted
    closed = stages.close_incident(b)
    assert closed["status"] == "failed"
    assert f"re-run the incident to verify against v{version_a}" in closed["outcome"]
    assert f"restored by {a}" in closed["outcome"]
    assert stages.close_incident(a)["status"] == "resolved"
