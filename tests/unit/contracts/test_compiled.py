"""The suite compiled into vectorised checks gives Great Expectations' result, without a GX context."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from firebreak.contracts.compiled import compile_suite
from firebreak.contracts.validation import validate_frame
from firebreak.detection.columns import as_text

SUITE = {
    "name": "orders",
    "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "price"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "price", "min_value": 0, "max_value": 100}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "channel", "mostly": 0.9}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "channel", "value_set": ["web", "app"]}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "coupon"}},
    ],
}


def test_failures_shares_and_samples_equal_great_expectations(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "price": rng.uniform(1, 90, 500).round(2),
            "channel": rng.choice(["web", "app"], 500).astype(object),
        }
    )
    frame.loc[[3, 9], "price"] = [-5.0, 250.0]
    frame.loc[[4], "price"] = np.nan
    frame.loc[[10, 11, 12], "channel"] = ["store", "store", "kiosk"]
    frame.loc[[20, 21], "channel"] = None  # 0.4% nulls: within mostly 0.9
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(SUITE))
    compiled = compile_suite(SUITE)
    assert compiled is not None
    ours, theirs = compiled.validate(frame), validate_frame(frame, path)

    def shape(result: object) -> list[tuple[object, ...]]:
        return [
            (f.expectation, f.column, f.unexpected_count, round(f.unexpected_percent, 6), sorted(map(str, f.sample)))
            for f in result.failures  # type: ignore[attr-defined]
        ]

    assert shape(ours) == shape(theirs)
    assert (ours.passed, ours.evaluated_rows) == (theirs.passed, theirs.evaluated_rows) == (False, 500)
    assert [f.column for f in ours.failures] == ["price", "price", "channel", "coupon"]
    # The same text as triage holds it (Arrow, its set checked through the column's codes).
    as_arrow = compiled.validate(frame.assign(channel=as_text(frame["channel"])))
    assert shape(as_arrow) == shape(theirs) and as_arrow.passed == theirs.passed


def test_an_expectation_it_does_not_know_leaves_the_suite_to_great_expectations() -> None:
    suite = {"expectations": [{"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 0}}]}
    assert compile_suite(suite) is None


def test_one_run_gives_the_result_and_each_row_broken() -> None:
    frame = pd.DataFrame({"price": [5.0, -5.0, np.nan, 50.0], "channel": ["web", "web", "app", "kiosk"]})
    compiled = compile_suite(SUITE)
    assert compiled is not None

    result, broken = compiled.validate_rows(frame)

    assert result == compiled.validate(frame)
    # "coupon" is missing: every row breaks the suite, as violations() says.
    assert broken.tolist() == compiled.violations(frame).tolist() == [True] * 4
    present = frame.assign(coupon=1)
    assert (
        compiled.validate_rows(present)[1].tolist()
        == compiled.violations(present).tolist()
        == [
            False,
            True,
            True,
            True,
        ]
    )
