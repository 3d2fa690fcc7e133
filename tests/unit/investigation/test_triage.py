"""Which traffic is evidence, when an alert is stale, and the severity after investigation."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from firebreak.incidents.enums import Severity
from firebreak.investigation.triage import champion_traffic, rerank, staleness, triage
from firebreak.policy.schema import load_policy
from firebreak.settings import INCLUDE_DIR

PRICING = load_policy("pricing", INCLUDE_DIR / "policies")
LOANS = load_policy("loan_approval", INCLUDE_DIR / "policies")
PROMOTED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def log(version: str, confidence: float, n: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-11-30 08:00", periods=n, freq="min", tz="UTC"),
            "model_version": version,
            "unit_cost": 10.0,
            "recommended_price": 12.0,
            "confidence": confidence,
        }
    )


def test_only_the_serving_versions_rows_are_evidence() -> None:
    window = pd.concat([log("1", 0.3), log("2", 0.95), log("heuristic", 1.0)], ignore_index=True)
    assert set(champion_traffic(window, "2")["model_version"]) == {"2"}
    # Read whole, v1's collapse would rank the healthy v2 SEV2.
    assert triage(window, PRICING).severity == Severity.SEV2
    assert triage(champion_traffic(window, "2"), PRICING).severity == Severity.SEV4


@pytest.mark.parametrize(
    ("version", "started", "champion_confidence", "stale"),
    [
        ("1", None, 0.95, "the alert is about v1, and v2 serves now"),
        (None, datetime(2026, 11, 29, tzinfo=UTC), 0.95, "before v2 started serving"),
        ("1", None, 0.3, None),  # v2 shows the failure too: never stale
        (None, datetime(2026, 11, 30, 10, tzinfo=UTC), 0.95, None),  # began while v2 served
        ("2", None, 0.95, None),
    ],
    ids=["names-old-version", "began-before-promotion", "champion-breaches", "began-after", "names-champion"],
)
def test_an_alert_is_stale_only_about_another_version_and_a_healthy_champion(
    version: str | None, started: datetime | None, champion_confidence: float, stale: str | None
) -> None:
    triaged = triage(log("2", champion_confidence), PRICING)
    found = staleness(triaged, champion="2", champion_since=PROMOTED, alert_version=version, alert_started_at=started)
    if stale is None:
        assert found is None
    else:
        assert found is not None and stale in found


def test_harm_to_a_protected_group_raises_severity_after_investigation() -> None:
    triaged = {"signals": {"low_confidence_rate": 0.05, "contract_violation_rate": 0.0}}
    raised = rerank(LOANS, triaged=triaged, fairness={"breached": True}, current=Severity.SEV3, requested=None)
    assert (raised.before, raised.after) == (Severity.SEV3, Severity.SEV1)
    assert raised.why == "raised SEV3 -> SEV1 by protected_group_harm"
    kept = rerank(LOANS, triaged=triaged, fairness={"breached": False}, current=Severity.SEV2, requested=None)
    assert kept.after == Severity.SEV2 and not kept.changed  # the investigation never lowers it
    by_hand = rerank(
        LOANS, triaged=triaged, fairness={"breached": True}, current=Severity.SEV3, requested=Severity.SEV3
    )
    assert by_hand.after == Severity.SEV3
