"""Tests for firebreak.contracts.validation (runs real Great Expectations)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from firebreak.contracts.validation import (
    COLUMN_MISSING,
    ContractResult,
    load_suite,
    validate_batches,
    validate_frame,
)
from firebreak.errors import ContractError

ROWS = 2000

PRICING_SUITE: dict[str, Any] = {
    "name": "pricing_inputs",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}, "meta": {}},
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "unit_cost"},
            "meta": {},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "unit_cost", "min_value": 0, "max_value": 500},
            "meta": {"notes": "negative costs mean a broken upstream join"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "quantity", "min_value": 1, "max_value": 100},
            "meta": {},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "discount", "min_value": 0.0, "max_value": 0.6},
            "meta": {},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "region", "value_set": ["eu", "us", "apac"]},
            "meta": {},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "channel", "value_set": ["web", "store", "partner"]},
            "meta": {},
        },
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "sku"}, "meta": {}},
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "sku", "regex": r"^SKU-\d{5}$"},
            "meta": {},
        },
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "demand_index", "min_value": -0.5, "max_value": 0.5},
            "meta": {},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "list_price"},
            "meta": {},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "list_price", "min_value": 1, "max_value": 1000, "mostly": 0.99},
            "meta": {},
        },
    ],
    "meta": {"great_expectations_version": "1.24.1"},
}


def _write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture()
def suite_path(tmp_path: Path) -> Path:
    return _write(tmp_path / "pricing_inputs.json", PRICING_SUITE)


@pytest.fixture()
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "unit_cost": rng.uniform(1, 400, ROWS),
            "quantity": rng.integers(1, 101, ROWS),
            "discount": rng.uniform(0, 0.5, ROWS),
            "region": rng.choice(["eu", "us", "apac"], ROWS),
            "channel": rng.choice(["web", "store", "partner"], ROWS),
            "sku": [f"SKU-{i:05d}" for i in range(ROWS)],
            "demand_index": rng.normal(0, 1, ROWS),
            "list_price": rng.uniform(5, 900, ROWS),
        }
    )


def test_valid_frame_passes(frame: pd.DataFrame, suite_path: Path) -> None:
    result = validate_frame(frame, suite_path)

    assert isinstance(result, ContractResult)
    assert result.passed
    assert result.failures == []
    assert result.suite == "pricing_inputs"
    assert result.evaluated_rows == ROWS
    assert result.evaluated_expectations == len(PRICING_SUITE["expectations"])
    assert result.summary() == "contract pricing_inputs: all 12 expectations passed on 2000 rows"
    json.dumps(result.to_dict())


def test_out_of_range_values_fail_naming_column(frame: pd.DataFrame, suite_path: Path) -> None:
    frame.loc[:239, "unit_cost"] = -3.5  # 240 rows = 12 %
    frame.loc[:9, "quantity"] = 250

    result = validate_frame(frame, suite_path)

    assert not result.passed
    by_column = {f.column: f for f in result.failures}
    assert set(by_column) == {"unit_cost", "quantity"}
    cost = by_column["unit_cost"]
    assert cost.expectation == "expect_column_values_to_be_between"
    assert cost.unexpected_count == 240
    assert cost.unexpected_percent == pytest.approx(12.0)
    assert cost.sample == [-3.5]
    assert type(by_column["quantity"].sample[0]) is int  # numpy scalar converted
    summary = result.summary()
    assert summary.startswith("contract pricing_inputs: 2 of 12 expectations failed: ")
    assert "unit_cost expect_column_values_to_be_between (12.0% unexpected)" in summary
    json.dumps(result.to_dict())


def test_value_outside_set_fails(frame: pd.DataFrame, suite_path: Path) -> None:
    frame.loc[:4, "region"] = "mars"
    frame.loc[5:9, "region"] = "moon"

    result = validate_frame(frame, suite_path)

    assert [(f.column, f.expectation) for f in result.failures] == [("region", "expect_column_values_to_be_in_set")]
    failure = result.failures[0]
    assert failure.unexpected_count == 10
    assert failure.sample == ["mars", "moon"]
    assert "region expect_column_values_to_be_in_set (0.5% unexpected)" in result.summary()


def test_missing_column_is_a_failure_not_a_crash(frame: pd.DataFrame, suite_path: Path) -> None:
    result = validate_frame(frame.drop(columns=["list_price"]), suite_path)

    assert not result.passed
    assert result.evaluated_expectations == 12
    assert [f.column for f in result.failures] == ["list_price", "list_price"]
    for failure in result.failures:
        assert failure.column_missing
        assert failure.unexpected_count == ROWS
        assert failure.unexpected_percent == 100.0
        assert failure.sample == [COLUMN_MISSING]
    assert "list_price expect_column_values_to_not_be_null (column missing)" in result.summary()


def test_aggregate_failure_reports_observed_value(frame: pd.DataFrame, suite_path: Path) -> None:
    frame["demand_index"] += 3.0

    result = validate_frame(frame, suite_path)

    (failure,) = result.failures
    assert failure.expectation == "expect_column_mean_to_be_between"
    assert failure.unexpected_count == 0
    assert failure.sample[0] == pytest.approx(frame["demand_index"].mean())
    assert "demand_index expect_column_mean_to_be_between (observed " in result.summary()


def test_writes_result_json_only_where_asked_and_stays_offline(
    frame: pd.DataFrame,
    suite_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[Any] = []

    def refuse(self: socket.socket, *args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network disabled in test")

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    out = tmp_path / "results" / "contract.json"

    frame.loc[:1, "channel"] = "fax"
    result = validate_frame(frame, suite_path, result_json_path=out)

    assert not result.passed
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["success"] is False
    assert len(written["results"]) == 12
    assert os.listdir(workdir) == []
    assert attempts == []


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "file not found"),
        ("{not json", "invalid JSON"),
        (json.dumps({"name": "x"}), 'missing "expectations" list'),
        (json.dumps({"name": "x", "expectations": {}}), 'missing "expectations" list'),
        (json.dumps([1, 2]), "expected a JSON object"),
        (json.dumps({"name": "x", "expectations": [{"kwargs": {}}]}), 'expectation #0 has no "type"'),
        (
            json.dumps(
                {
                    "expectation_suite_name": "x",
                    "expectations": [{"expectation_type": "expect_column_to_exist"}],
                }
            ),
            "Great Expectations 0.x",
        ),
    ],
)
def test_bad_suite_file_raises_contract_error(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "suite.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(ContractError, match=match) as excinfo:
        load_suite(path)
    assert str(path) in str(excinfo.value)


def test_unknown_expectation_type_raises_contract_error(frame: pd.DataFrame, tmp_path: Path) -> None:
    # GX itself would only log and silently drop this expectation.
    path = _write(
        tmp_path / "typo.json",
        {"name": "typo", "expectations": [{"type": "expect_column_to_be_awesome", "kwargs": {"column": "sku"}}]},
    )

    with pytest.raises(ContractError, match=r"expectation #0 \(expect_column_to_be_awesome\) is invalid"):
        validate_frame(frame, path)


def test_invalid_expectation_kwargs_raise_contract_error(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "nokw.json",
        {"name": "nokw", "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {}}]},
    )

    with pytest.raises(ContractError, match="column field required"):
        validate_frame(frame, path)


def test_a_window_validated_in_batches_gets_the_whole_window_verdict(frame: pd.DataFrame, tmp_path: Path) -> None:
    row_level = [e for e in PRICING_SUITE["expectations"] if "column" in e["kwargs"] and "mean" not in e["type"]]
    row_level = [e for e in row_level if e["type"] not in ("expect_column_values_to_be_unique",)]
    suite = _write(tmp_path / "rows.json", {"name": "rows", "expectations": row_level})
    window = frame.copy()
    window.loc[[10, 700, 1900], "unit_cost"] = -1.0  # spread over the batches
    window.loc[1500:1515, "list_price"] = 5000.0  # 16 of 2000 (0.8%): within mostly=0.99 overall,
    window.loc[300, "region"] = "mars"  # though 16 of the last batch's 500 (3.2%) would fail it alone
    whole = validate_frame(window, suite)
    batched = validate_batches((window.iloc[i : i + 500] for i in range(0, ROWS, 500)), suite)
    assert batched.passed == whole.passed is False
    assert batched.evaluated_rows == ROWS
    assert [
        (f.expectation, f.column, f.unexpected_count, round(f.unexpected_percent, 9)) for f in batched.failures
    ] == [(f.expectation, f.column, f.unexpected_count, round(f.unexpected_percent, 9)) for f in whole.failures]
    assert {f.column for f in batched.failures} == {"unit_cost", "region"}
    assert sorted(batched.failures[0].sample) == [-1.0]
