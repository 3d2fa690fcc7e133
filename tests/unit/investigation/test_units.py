"""Unit changes the world does not make: pounds for kilograms, cents from one source of several.

And the moves the world does make, which must stay drift: claims 1.5 times larger (a heavy
tail cannot tell x1.5 from miles-to-kilometres' x1.61), a new segment of claims ten times
the others'.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from firebreak.investigation.diagnosis import triage_tables


def claims(seed: int, rows: int = 4_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "weight_kg": rng.normal(75, 14, rows).clip(35, 200).round(1),
            "claim_amount": rng.lognormal(8, 1.1, rows).round(2),
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["n", "s", "e", "w"], rows),
        }
    )


def on_share(column: str, share: float, change: Callable[[pd.Series, np.random.Generator], pd.Series]):  # type: ignore[no-untyped-def]
    def changed(frame: pd.DataFrame) -> pd.DataFrame:
        rng = np.random.default_rng(5)
        rows = rng.random(len(frame)) < share
        frame = frame.copy()
        frame.loc[rows, column] = change(frame.loc[rows, column], rng)
        return frame

    return changed


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: f.assign(weight_kg=(f["weight_kg"] * 2.20462).round(1)), "rescaled by one factor"),
        (
            on_share("claim_amount", 0.4, lambda v, _: v * 100),
            "of the rows multiplied by 100 and the rest as they were",
        ),
        (
            on_share("claim_amount", 0.1, lambda v, _: v * 100),
            "of the rows multiplied by 100 and the rest as they were",
        ),
    ],
    ids=["kilograms-to-pounds", "cents-on-40%", "cents-on-10%"],
)
def test_a_unit_changed_on_a_column_or_part_of_its_rows_is_skew(
    change: Callable[[pd.DataFrame], pd.DataFrame], words: str
) -> None:
    found, evidence = triage_tables(claims(1), change(claims(2)))
    assert found.failure_class == "skew", found.root_cause
    assert words in found.evidence[0].detail


def test_pounds_for_kilograms_is_named_by_its_conversion() -> None:
    converted = claims(2).assign(weight_kg=lambda f: (f["weight_kg"] * 2.20462).round(1))
    _, evidence = triage_tables(claims(1), converted)
    (scale,) = evidence["drift"]["scale_changes"]
    assert scale["column"] == "weight_kg" and scale["factor"] == pytest.approx(2.205)
    assert scale["because"].startswith("kilograms to pounds: divided by 2.20462 the values match")


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(claim_amount=f["claim_amount"] * 1.5),
        on_share("claim_amount", 0.2, lambda v, rng: pd.Series(rng.lognormal(10.3, 1.1, len(v)), index=v.index)),
        lambda f: f.assign(weight_kg=f["weight_kg"] + 20),
    ],
    ids=["claims-grew-by-half", "a-segment-of-claims-ten-times-larger", "heavier-patients"],
)
def test_moves_of_the_world_stay_drift(change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    found, _ = triage_tables(claims(1), change(claims(2)))
    assert found.failure_class == "drift", found.root_cause
