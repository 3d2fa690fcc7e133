"""Triage ranks by the policy's matrix; the gate refuses what the policy refuses; diagnosis follows evidence."""

from __future__ import annotations

import pandas as pd
import pytest

from firebreak.detection.performance import Figures
from firebreak.incidents.enums import FailureClass, Remediation, Severity, Signal
from firebreak.investigation.diagnosis import diagnose
from firebreak.investigation.triage import triage
from firebreak.policy.schema import load_policy
from firebreak.settings import INCLUDE_DIR
from firebreak.verification.gate import evaluate_gate

POLICY = load_policy("pricing", INCLUDE_DIR / "policies")


def window(confidence: list[float], price_to_cost: list[float]) -> pd.DataFrame:
    n = len(confidence)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-11-27", periods=n, freq="min", tz="UTC"),
            "unit_cost": [10.0] * n,
            "recommended_price": [10.0 * r for r in price_to_cost],
            "confidence": confidence,
            "contract_violations": [""] * n,
        }
    )


@pytest.mark.parametrize(
    ("confidence", "ratios", "severity"),
    [
        ([0.9] * 90 + [0.5] * 10, [1.2] * 100, Severity.SEV4),  # 10% low confidence: under SEV2's 20%
        ([0.9] * 70 + [0.5] * 30, [1.2] * 100, Severity.SEV2),
        ([0.9] * 100, [1.2] * 94 + [0.8] * 6, Severity.SEV1),  # 6% below cost beats everything
    ],
)
def test_severity_from_the_policy_matrix(confidence: list[float], ratios: list[float], severity: Severity) -> None:
    result = triage(window(confidence, ratios), POLICY)
    assert result.severity == severity


def test_requested_severity_overrides_but_signals_stay() -> None:
    result = triage(window([0.5] * 100, [0.8] * 100), POLICY, requested=Severity.SEV3)
    assert result.severity == Severity.SEV3
    assert result.signals[Signal.SANITY_VIOLATION_RATE] == 1.0
    assert result.first_breach_at is not None


def figures(mae: float, sanity: float = 0.0, low: float = 0.0, rows: int = 1000) -> Figures:
    return Figures(rows, mae, mae / 100, sanity, low, 0.9)


def test_gate_passes_a_real_improvement() -> None:
    verdict = evaluate_gate(
        POLICY.gate,
        candidate_golden=figures(1.0),
        champion_golden=figures(1.0),
        candidate_recent=figures(2.0),
        champion_recent=figures(10.0),
    )
    assert verdict.passed, verdict.summary()


@pytest.mark.parametrize(
    ("kwargs", "failed_check"),
    [
        ({"candidate_golden": figures(1.2)}, "golden MAE no worse than champion"),  # fixes recent, breaks golden
        ({"candidate_recent": figures(9.0)}, "recent MAE improves on champion"),  # 10% better; policy wants 20%
        ({"candidate_recent": figures(2.0, sanity=0.01)}, "recent sanity violation rate"),
        ({"candidate_recent": figures(2.0, rows=50)}, "labelled recent rows"),
        ({"blocked": "shadow_evaluation: worse than champion"}, "candidate not blocked"),
    ],
)
def test_gate_refuses(kwargs: dict, failed_check: str) -> None:  # type: ignore[type-arg]
    base = {
        "candidate_golden": figures(1.0),
        "champion_golden": figures(1.0),
        "candidate_recent": figures(2.0),
        "champion_recent": figures(10.0),
    }
    verdict = evaluate_gate(POLICY.gate, **{**base, **kwargs})
    assert not verdict.passed
    assert [c["name"] for c in verdict.checks if not c["passed"]] == [failed_check]
    assert failed_check in verdict.summary()


def test_diagnosis_order_of_suspicion() -> None:
    ok_contract, ok_lineage = {"passed": True, "failures": []}, {"passed": True}
    drift = {
        "dataset_drift": True,
        "drift_share": 0.5,
        "drift_share_threshold": 0.5,
        "columns": [{"column": "demand_index", "drifted": True}],
    }
    fine = {"regressed": False}
    d = diagnose(
        POLICY, contract=ok_contract, lineage=ok_lineage, drift=drift, golden=fine, reported=FailureClass.UNKNOWN
    )
    assert (d.failure_class, d.remediation) == (FailureClass.DRIFT, Remediation.RETRAIN)
    d = diagnose(
        POLICY,
        contract=ok_contract,
        lineage=ok_lineage,
        drift=drift,
        golden={"regressed": True},
        reported=FailureClass.UNKNOWN,
    )
    assert (d.failure_class, d.remediation) == (FailureClass.BAD_RELEASE, Remediation.ROLLBACK)
    broken = {
        "passed": False,
        "failures": [{"column": "unit_cost", "expectation": "expect_column_values_to_be_between"}],
    }
    d = diagnose(POLICY, contract=broken, lineage=ok_lineage, drift=drift, golden=fine, reported=FailureClass.DRIFT)
    assert (d.failure_class, d.remediation) == (FailureClass.SKEW, Remediation.UPSTREAM_FIX)
    assert "unit_cost" in d.root_cause
    d = diagnose(
        POLICY,
        contract=ok_contract,
        lineage=ok_lineage,
        drift={"dataset_drift": False},
        golden=fine,
        reported=FailureClass.BIAS,
    )
    assert (d.failure_class, d.remediation) == (FailureClass.BIAS, None)
