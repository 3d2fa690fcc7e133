"""The GX suite compiled for the request path: the same rules as batch, per row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from firebreak.contracts.online import OnlineContract
from firebreak.contracts.validation import validate_frame
from firebreak.errors import ContractError
from firebreak.serving.protocol import ProtocolError, parse_records

REPO = Path(__file__).resolve().parents[3]
SUITE = REPO / "include" / "contracts" / "pricing.json"
ROW = {
    "unit_cost": 10.0,
    "competitor_price": 14.0,
    "demand_index": 1.2,
    "inventory_days": 30,
    "day_of_year": 40,
    "category": "grocery",
    "upstream_source": "erp.sales_daily",
    "feature_pipeline_version": "features-2.3.1",
}


@pytest.fixture(scope="module")
def contract() -> OnlineContract:
    return OnlineContract.load(SUITE)


def test_a_valid_row_passes(contract: OnlineContract) -> None:
    assert contract.check([ROW, dict(ROW, category="home")]) == []


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"unit_cost": "10"}, "unit_cost", "type"),
        ({"unit_cost": True}, "unit_cost", "type"),
        ({"demand_index": float("nan")}, "demand_index", "not_finite"),
        ({"competitor_price": float("inf")}, "competitor_price", "not_finite"),
        ({"day_of_year": 400}, "day_of_year", "range"),
        ({"unit_cost": 0}, "unit_cost", "range"),
        ({"category": "toys"}, "category", "not_allowed"),
        ({"category": ["grocery"]}, "category", "not_allowed"),
        ({"upstream_source": None}, "upstream_source", "null"),
        ({"discount": 0.1}, "discount", "unknown_field"),
    ],
)
def test_each_broken_rule_is_named(contract: OnlineContract, change: dict[str, Any], field: str, rule: str) -> None:
    [violation] = contract.check([ROW, dict(ROW, **change)])
    assert (violation.row, violation.field, violation.rule) == (1, field, rule)


def test_a_missing_field_is_named(contract: OnlineContract) -> None:
    row = {k: v for k, v in ROW.items() if k != "inventory_days"}
    [violation] = contract.check([row])
    assert (violation.field, violation.rule, violation.detail) == (
        "inventory_days",
        "missing",
        "required field missing",
    )


def test_online_and_batch_agree_on_the_same_rows(contract: OnlineContract) -> None:
    """The compiled rules refuse exactly the rows that make Great Expectations fail the batch."""
    cases = [ROW, dict(ROW, day_of_year=400), dict(ROW, unit_cost=-1.0), dict(ROW, category="toys")]
    for row in cases:
        online_ok = contract.check([row]) == []
        batch = validate_frame(pd.DataFrame([row]), SUITE)
        assert online_ok == batch.passed, (row, batch.summary())


def test_statistical_expectations_stay_batch_only() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "mostly": 0.9}},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 0}},
        ],
    }
    compiled = OnlineContract.compile(suite)
    assert compiled.batch_only == [
        "expect_column_values_to_be_between(x)",
        "expect_column_mean_to_be_between(x)",
    ]
    assert compiled.check([{"x": -5}]) == []


def test_a_type_the_request_path_cannot_check_is_a_clear_error() -> None:
    suite = {
        "expectations": [
            {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "x", "type_": "datetime64"}}
        ]
    }
    with pytest.raises(ContractError, match=r"expect_column_values_to_be_of_type\(x\).*datetime64"):
        OnlineContract.compile(suite)


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_records": [ROW]},
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())], "index": [0]}},
        {"instances": [ROW]},
        {"inputs": [ROW]},
        {"inputs": {k: [v] for k, v in ROW.items()}},
    ],
)
def test_every_mlflow_scoring_format_reads_the_same_rows(body: dict[str, Any]) -> None:
    assert parse_records(json.dumps(body).encode(), max_rows=10) == [ROW]


@pytest.mark.parametrize(
    ("body", "status", "match"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"records": []}', 400, "exactly one of"),
        (b'{"dataframe_records": [], "instances": []}', 400, "found: dataframe_records, instances"),
        (b'{"dataframe_records": []}', 400, "no rows"),
        (b'{"dataframe_records": [1]}', 400, "list of objects"),
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', 400, "row 0 does not have 1 values"),
        (b'{"inputs": {"a": [1], "b": [1, 2]}}', 400, "same length"),
        (b'{"instances": [{}, {}, {}]}', 413, "3 rows in one request; the limit is 2"),
    ],
)
def test_unreadable_bodies_are_refused_with_the_reason(body: bytes, status: int, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as caught:
        parse_records(body, max_rows=2)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"dataframe_records": [{"unit_cost": ' + b"9" * 5000 + b"}]}", "a number of 5000 characters; at most 64"),
        (b'{"dataframe_records": [{"unit_cost": 1e400}]}', r"number 1e400 is out of range"),
        (b'{"dataframe_records": [{"unit_cost": -1.5e999}]}', r"number -1.5e999 is out of range"),
    ],
)
def test_hostile_json_is_a_400_naming_the_problem(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as caught:
        parse_records(body, max_rows=2)
    assert caught.value.status == 400


def test_a_request_of_invented_fields_costs_no_more_than_the_violations_reported(contract: OnlineContract) -> None:
    record = dict(ROW, **{f"x{i}": i for i in range(50_000)})
    violations = contract.check([record], limit=100)
    assert len(violations) == 100 and {v.rule for v in violations} == {"unknown_field"}
