"""Codes that changed places upstream (a lookup or an encoder changed): each code carries another's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from firebreak.investigation.diagnosis import triage_tables

PLANS = {"P20": 20.0, "P45": 45.0, "P70": 70.0, "P99": 99.0}


def subscribers(seed: int, rows: int = 6_000, shares: tuple[float, ...] = (0.4, 0.25, 0.2, 0.15)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(list(PLANS), rows, p=shares)
    fee = np.array([PLANS[p] for p in plan])
    return pd.DataFrame(
        {
            "plan": plan,
            "monthly_charges": (fee * rng.lognormal(0, 0.08, rows)).round(2),
            "tenure_months": rng.gamma(2 + fee / 30, 8, rows).round(0),
            "support_calls": rng.poisson(1.5, rows),
        }
    )


def test_two_plans_whose_codes_swapped_are_skew_naming_both() -> None:
    current = subscribers(2)
    current["plan"] = current["plan"].replace({"P20": "P45", "P45": "P20"})

    found, _ = triage_tables(subscribers(1), current)

    assert found.failure_class == "skew" and found.columns == ["plan"], found.root_cause
    detail = found.evidence[0].detail
    assert "its codes changed places upstream" in detail
    assert "P20 holds what P45 held" in detail and "P45 holds what P20 held" in detail


def test_plans_whose_customers_moved_are_not_a_swap() -> None:
    # The cheapest plan loses customers to the dearest: shares move, each plan's charges stay.
    moved = subscribers(2, shares=(0.2, 0.25, 0.2, 0.35))
    found, evidence = triage_tables(subscribers(1), moved)
    assert evidence["drift"]["data_checks"]["type_changes"] == []
    assert found.failure_class == "drift", found.root_cause

    # Every plan dearer by a third: the charges move, the codes keep their order.
    dearer = subscribers(3).assign(monthly_charges=lambda f: (f["monthly_charges"] * 1.33).round(2))
    assert triage_tables(subscribers(1), dearer)[1]["drift"]["data_checks"]["type_changes"] == []


def _incomes(seed: int, favoured: str, rows: int = 4_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gender = rng.choice(["F", "M"], rows)
    second = rng.lognormal(9.5, 0.9, rows) * np.where(gender == favoured, 1.15, 1.0)
    return pd.DataFrame({"gender": gender, "second_income": second.round(2), "age": rng.integers(18, 80, rows)})


def test_two_codes_whose_small_difference_reverses_are_not_a_swap() -> None:
    # Women's second incomes a little above men's where men's were a little above women's: two
    # close figures that traded places (a tenth of the spread of incomes), not two codes.
    found = [triage_tables(_incomes(2 * s, "M"), _incomes(2 * s + 1, "F"))[1] for s in range(6)]

    assert [e["drift"]["data_checks"]["type_changes"] for e in found] == [[]] * 6
