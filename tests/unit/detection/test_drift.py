"""Tests for firebreak.detection.drift (runs real Evidently)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from firebreak.detection.drift import (
    ColumnDrift,
    DriftInputError,
    DriftResult,
    _parse_snapshot,
    run_drift_report,
)
from firebreak.errors import FirebreakError

ROWS = 2000
NUMERIC = ["price", "basket_size", "latency_ms"]


def _numeric_frame(rng: np.random.Generator, rows: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": rng.normal(50, 10, rows),
            "basket_size": rng.poisson(4, rows).astype(float),
            "latency_ms": rng.gamma(2.0, 30.0, rows),
        }
    )


@pytest.fixture(scope="module")
def shifted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DriftResult, Path, Path]:
    rng = np.random.default_rng(11)
    reference = _numeric_frame(rng)
    current = _numeric_frame(rng)
    current["price"] = current["price"] + 25  # 2.5 sd shift
    current["basket_size"] = current["basket_size"] * 3
    out = tmp_path_factory.mktemp("drift")
    html_path = out / "reports" / "drift.html"
    json_path = out / "reports" / "nested" / "drift.json"
    result = run_drift_report(reference, current, columns=NUMERIC, html_path=html_path, json_path=json_path)
    return result, html_path, json_path


def test_identical_distributions_do_not_drift(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reference = _numeric_frame(rng)
    current = _numeric_frame(rng)
    reference["segment"] = rng.choice(["a", "b", "c"], ROWS)
    current["segment"] = rng.choice(["a", "b", "c"], ROWS)

    result = run_drift_report(
        reference,
        current,
        columns=[*NUMERIC, "segment"],
        categorical=["segment"],
        html_path=tmp_path / "r.html",
        json_path=tmp_path / "r.json",
    )

    assert not result.dataset_drift
    assert result.drift_share == 0.0
    assert result.drift_share_threshold == 0.5
    assert not any(c.drifted for c in result.columns)
    assert result.top() == []
    assert {c.column for c in result.columns} == {*NUMERIC, "segment"}
    assert result.reference_rows == ROWS
    assert result.current_rows == ROWS


def test_two_of_three_shifted_columns_drift_and_rank_first(
    shifted_run: tuple[DriftResult, Path, Path],
) -> None:
    result, _, _ = shifted_run

    assert result.dataset_drift
    assert result.drift_share == pytest.approx(2 / 3)
    assert {c.column for c in result.columns[:2]} == {"price", "basket_size"}
    assert all(c.drifted for c in result.columns[:2])
    assert result.columns[2].column == "latency_ms"
    assert not result.columns[2].drifted
    assert [c.column for c in result.top(3)] == [c.column for c in result.columns[:2]]
    assert len(result.top(1)) == 1
    for column in result.columns:
        assert column.method  # reported by Evidently, not hard-coded
        assert column.threshold > 0
        assert column.drifted == (column.score >= column.threshold)  # distance methods at 2k rows
    json.dumps(result.to_dict())


def test_report_files_written(shifted_run: tuple[DriftResult, Path, Path]) -> None:
    _, html_path, json_path = shifted_run

    assert html_path.stat().st_size > 0
    assert "<html" in html_path.read_text(encoding="utf-8")[:2000].lower()
    snapshot = json.loads(json_path.read_text(encoding="utf-8"))
    value_drift_columns = {
        m["config"]["column"] for m in snapshot["metrics"] if m["config"]["type"].endswith(":ValueDrift")
    }
    assert value_drift_columns == set(NUMERIC)
    assert snapshot["tests"]


def test_categorical_shift_detected(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = 600  # Evidently uses p-value tests (K-S, chi-square) for small samples
    reference = pd.DataFrame(
        {
            "channel": rng.choice(["web", "store", "partner"], rows, p=[0.6, 0.3, 0.1]),
            "tier": rng.choice(["gold", "silver"], rows),
            "amount": rng.normal(100, 15, rows),
        }
    )
    current = pd.DataFrame(
        {
            "channel": rng.choice(["web", "store", "partner"], rows, p=[0.1, 0.2, 0.7]),
            "tier": rng.choice(["gold", "silver"], rows),
            "amount": rng.normal(100, 15, rows),
        }
    )

    result = run_drift_report(
        reference,
        current,
        columns=["channel", "tier", "amount"],
        categorical=["channel", "tier"],
        html_path=tmp_path / "cat.html",
        json_path=tmp_path / "cat.json",
    )

    by_name = {c.column: c for c in result.columns}
    assert by_name["channel"].drifted
    assert by_name["channel"].p_value_based
    assert by_name["channel"].score < by_name["channel"].threshold
    assert not by_name["tier"].drifted
    assert not by_name["amount"].drifted
    assert result.columns[0].column == "channel"
    assert [c.column for c in result.top()] == ["channel"]
    assert not result.dataset_drift  # 1 of 3 < 0.5


def test_ranking_mixes_p_value_and_distance_methods() -> None:
    def metric(mid: str, column: str, method: str, threshold: float, score: float) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "evidently:metric_v2:ValueDrift", "column": column}
        config.update(method=method, threshold=threshold)
        return {"id": mid, "config": config, "value": score}

    snapshot = {
        "metrics": [
            {
                "id": "count",
                "config": {"type": "evidently:metric_v2:DriftedColumnsCount", "drift_share": 0.5},
                "value": {"count": 3.0, "share": 0.75},
            },
            metric("m1", "weak_distance", "Wasserstein distance (normed)", 0.1, 0.15),
            metric("m2", "strong_p", "K-S p_value", 0.05, 1e-12),
            metric("m3", "quiet", "chi-square p_value", 0.05, 0.8),
            metric("m4", "strong_distance", "Jensen-Shannon distance", 0.1, 0.9),
        ],
        # no per-column tests: verdicts fall back to the method's direction
        "tests": [{"id": "lt", "status": "FAIL", "metric_config": {"metric_id": "count"}}],
    }

    result = _parse_snapshot(
        snapshot,
        columns=["weak_distance", "strong_p", "quiet", "strong_distance"],
        reference_rows=10,
        current_rows=12,
    )

    assert [c.column for c in result.columns] == [
        "strong_p",
        "strong_distance",
        "weak_distance",
        "quiet",
    ]
    assert [c.drifted for c in result.columns] == [True, True, True, False]
    assert result.dataset_drift
    assert result.top(2) == result.columns[:2]


def test_missing_verdict_raises() -> None:
    with pytest.raises(FirebreakError, match="no ValueDrift metric for columns"):
        _parse_snapshot({"metrics": [], "tests": []}, columns=["a"], reference_rows=1, current_rows=1)


def test_column_drift_strength() -> None:
    assert ColumnDrift("a", "K-S p_value", 0.0, 0.05, True).strength == float("inf")
    assert ColumnDrift("a", "PSI", 0.2, 0.1, True).strength == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("which", "match"),
    [("reference", "reference frame is empty"), ("current", "current frame is empty")],
)
def test_empty_frame_raises(tmp_path: Path, which: str, match: str) -> None:
    frame = _numeric_frame(np.random.default_rng(1), rows=50)
    reference = frame.iloc[:0] if which == "reference" else frame
    current = frame.iloc[:0] if which == "current" else frame

    with pytest.raises(DriftInputError, match=match):
        run_drift_report(
            reference, current, columns=NUMERIC, html_path=tmp_path / "x.html", json_path=tmp_path / "x.json"
        )
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    ("mutate", "kwargs", "match"),
    [
        (lambda f: f.drop(columns=["price"]), {}, r"current frame is missing columns: \['price'\]"),
        (lambda f: f, {"columns": []}, "no columns given"),
        (lambda f: f, {"categorical": ["segment"]}, "categorical columns not listed in columns"),
        (lambda f: f.assign(price=True), {}, "list it in categorical"),
        (lambda f: f.assign(price="x"), {}, "numerical column 'price' has dtype object"),
        (lambda f: f.assign(price=np.nan), {}, "column 'price' has no non-null values in the current frame"),
    ],
)
def test_bad_inputs_raise(tmp_path: Path, mutate: Any, kwargs: dict[str, Any], match: str) -> None:
    reference = _numeric_frame(np.random.default_rng(2), rows=50)
    call: dict[str, Any] = {"columns": NUMERIC, **kwargs}

    with pytest.raises(DriftInputError, match=match):
        run_drift_report(
            reference,
            mutate(reference.copy()),
            html_path=tmp_path / "x.html",
            json_path=tmp_path / "x.json",
            **call,
        )


def test_drift_input_error_is_firebreak_error() -> None:
    assert issubclass(DriftInputError, FirebreakError)
