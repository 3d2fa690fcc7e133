"""Tests for firebreak.detection.stats and the ``drift`` subcommand (compares against real Evidently).

Agreement contract with Evidently 0.7.23's DataDriftPreset, checked per column:
method, threshold and drifted verdict are equal; scores are equal within
``rel=1e-6`` for p-values and Jensen-Shannon (same formulas, summed in another
order) and within ``abs=1e-3`` for the normed Wasserstein distance (the grid's
guaranteed error; observed errors are around 1e-6).
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special
from scipy import stats as scipy_stats

from firebreak.detection import drift_cli
from firebreak.detection.columns import as_text
from firebreak.detection.drift import DriftInputError, DriftResult, rank_columns, run_drift_report
from firebreak.detection.stats import (
    CHI_SQUARE,
    JENSEN_SHANNON,
    KS,
    WASSERSTEIN,
    Z_TEST,
    _jensenshannon,
    _kstwo_sf,
    _smirnov_sum,
    binomial_tail,
    compute_drift,
    homogeneity_p_value,
    ks_p_value,
    sample_for_report,
)

WASSERSTEIN_TOLERANCE = 1e-3
P_VALUE_REL_TOLERANCE = 1e-6
CATEGORICAL = ["segment", "channel", "region"]


def _frame(rng: np.random.Generator, rows: int, *, drifted: bool) -> pd.DataFrame:
    """Columns covering every default test, with shifts from none to large when ``drifted``."""
    on = 1.0 if drifted else 0.0
    return pd.DataFrame(
        {
            "steady": rng.normal(0, 1, rows),
            "nudge": rng.normal(0.03 * on, 1, rows),
            "shift": rng.normal(0.25 * on, 1, rows),
            "jump": rng.normal(1.5 * on, 1, rows),
            "scale": rng.normal(0, 1 + 0.6 * on, rows),
            "skewed": rng.lognormal(0.15 * on, 1, rows),
            "counts": rng.poisson(4 + on, rows),  # integers, > 5 values
            "few": rng.choice(
                [0.0, 1.0, 2.0, 3.0], rows, p=[0.4, 0.3, 0.2, 0.1] if not drifted else [0.3, 0.3, 0.2, 0.2]
            ),
            "binary": (rng.random(rows) < 0.5 + 0.1 * on).astype(int),
            "segment": rng.choice(
                list("abcd"), rows, p=[0.4, 0.3, 0.2, 0.1] if not drifted else [0.25, 0.25, 0.25, 0.25]
            ),
            "channel": rng.choice(["web", "app"], rows),
            "region": rng.choice(["n", "e", "s", "w", "c", "x"], rows),
        }
    )


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, out: Path) -> DriftResult:
    return run_drift_report(
        reference,
        current,
        columns=list(reference.columns),
        categorical=[c for c in CATEGORICAL if c in reference.columns],
        html_path=out / "drift.html",
        json_path=out / "drift.json",
    )


def _assert_agree(ours: DriftResult, theirs: DriftResult) -> None:
    expected = {c.column: c for c in theirs.columns}
    assert {c.column for c in ours.columns} == set(expected)
    for column in ours.columns:
        reference = expected[column.column]
        assert (column.column, column.method, column.threshold, column.drifted) == (
            reference.column,
            reference.method,
            reference.threshold,
            reference.drifted,
        )
        if column.method == WASSERSTEIN:
            assert column.score == pytest.approx(reference.score, abs=WASSERSTEIN_TOLERANCE), column.column
        else:
            assert column.score == pytest.approx(reference.score, rel=P_VALUE_REL_TOLERANCE, abs=1e-15), column.column
    # Evidently's own share can disagree with its per-column verdicts (see test_infinite_values_*),
    # so the share is compared with the share of its per-column verdicts.
    assert ours.drift_share == pytest.approx(len(theirs.drifted_columns) / len(theirs.columns))
    assert ours.columns == rank_columns(ours.columns)


@pytest.mark.parametrize(
    ("reference_rows", "current_rows", "seed", "methods"),
    [
        pytest.param(2000, 1500, 0, {WASSERSTEIN, JENSEN_SHANNON}, id="large-seed0"),
        pytest.param(2000, 1500, 1, {WASSERSTEIN, JENSEN_SHANNON}, id="large-seed1"),
        pytest.param(600, 800, 0, {KS, CHI_SQUARE, Z_TEST}, id="small-seed0"),
        pytest.param(600, 800, 1, {KS, CHI_SQUARE, Z_TEST}, id="small-seed1"),
        # current above scipy's exact K-S limit (10,000 rows): the asymptotic p-value path
        pytest.param(400, 12_000, 2, {KS, CHI_SQUARE, Z_TEST}, id="small-reference-large-current"),
    ],
)
def test_verdicts_agree_with_evidently(
    tmp_path: Path, reference_rows: int, current_rows: int, seed: int, methods: set[str]
) -> None:
    rng = np.random.default_rng(seed)
    reference = _frame(rng, reference_rows, drifted=False)
    current = _frame(rng, current_rows, drifted=True)

    theirs = _evidently(reference, current, tmp_path)
    ours = compute_drift(reference, current, columns=list(reference.columns), categorical=CATEGORICAL)

    _assert_agree(ours, theirs)
    assert {c.method for c in ours.columns} == methods
    assert ours.drift_share == theirs.drift_share
    assert ours.dataset_drift == theirs.dataset_drift
    assert (ours.reference_rows, ours.current_rows) == (reference_rows, current_rows)
    by_name = {c.column: c for c in ours.columns}
    assert by_name["jump"].drifted
    assert not by_name["steady"].drifted


def test_missing_values_agree_with_evidently(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    reference = _frame(rng, 1100, drifted=False)
    current = _frame(rng, 1000, drifted=True)
    # 150 NaNs leave 950 reference rows in "shift": Evidently then picks K-S, per column.
    reference.loc[reference.index[:150], "shift"] = np.nan
    current.loc[current.index[::7], "jump"] = np.nan
    reference.loc[reference.index[::9], "segment"] = None
    current.loc[current.index[::5], "few"] = np.nan

    theirs = _evidently(reference, current, tmp_path)
    ours = compute_drift(reference, current, columns=list(reference.columns), categorical=CATEGORICAL)

    _assert_agree(ours, theirs)
    by_name = {c.column: c for c in ours.columns}
    assert by_name["shift"].method == KS
    assert by_name["steady"].method == WASSERSTEIN
    assert ours.drift_share == theirs.drift_share


# Evidently's histograms and correlations warn about the infinities; compute_drift must not.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_infinite_values_are_dropped_like_evidently_value_drift(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000)})
    current = pd.DataFrame({"a": rng.normal(1, 1, 2000), "b": rng.normal(0, 1, 2000)})
    current.loc[:4, "a"] = np.inf

    theirs = _evidently(reference, current, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = compute_drift(reference, current, columns=["a", "b"])

    _assert_agree(ours, theirs)
    assert ours.drifted_columns == ["a"]
    assert ours.drift_share == 0.5
    assert ours.dataset_drift
    # Evidently 0.7.23 quirk: its DriftedColumnsCount only cleans columns that
    # contain NaN, so "a" (inf, no NaN) scores NaN there and is not counted,
    # although its own ValueDrift test for "a" fails.
    assert theirs.drift_share == 0.0


def test_missing_rows_are_dropped_per_column() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 5000), "seg": rng.choice(list("abc"), 5000)})
    current = pd.DataFrame({"x": rng.normal(0.3, 1, 4000), "seg": rng.choice(list("abc"), 4000)})
    holed_reference = reference.copy()
    holed_current = current.copy()
    holed_reference.loc[::3, "x"] = np.nan
    holed_current.loc[::4, "x"] = -np.inf
    holed_current.loc[::6, "seg"] = None

    holed = compute_drift(holed_reference, holed_current, columns=["x", "seg"], categorical=["seg"])
    x_only = compute_drift(
        pd.DataFrame({"x": holed_reference["x"].dropna()}),
        pd.DataFrame({"x": holed_current["x"].replace(-np.inf, np.nan).dropna()}),
        columns=["x"],
    )
    seg_only = compute_drift(reference[["seg"]], holed_current[["seg"]].dropna(), columns=["seg"], categorical=["seg"])

    by_name = {c.column: c for c in holed.columns}
    assert by_name["x"] == x_only.columns[0]
    assert by_name["seg"] == seg_only.columns[0]
    assert holed.reference_rows == 5000  # rows of the frames, not non-null rows


@pytest.mark.parametrize("rows", [600, 5000])
def test_unchanged_data_does_not_drift(rows: int) -> None:
    frame = _frame(np.random.default_rng(10), rows, drifted=False)

    result = compute_drift(frame, frame.copy(), columns=list(frame.columns), categorical=CATEGORICAL)

    assert not result.dataset_drift
    assert result.drift_share == 0.0
    assert result.drifted_columns == []
    for column in result.columns:
        assert column.score == (1.0 if column.p_value_based else 0.0), column


def test_fresh_sample_of_the_same_distribution_does_not_drift() -> None:
    rng = np.random.default_rng(11)

    result = compute_drift(
        _frame(rng, 200_000, drifted=False),
        _frame(rng, 150_000, drifted=False),
        columns=list(_frame(rng, 1, drifted=False).columns),
        categorical=CATEGORICAL,
    )

    assert result.drifted_columns == []
    assert max(c.score for c in result.columns) < 0.02


@pytest.mark.parametrize(("factor", "drifted"), [(1 + 1e-6, True), (1 - 1e-6, False)])
def test_wasserstein_verdict_is_exact_at_the_threshold(factor: float, drifted: bool) -> None:
    # A constant shift of delta moves the sample by exactly delta in W1, so the
    # normed score sits 1e-7 from 0.1: inside the grid's error bound, which
    # makes compute_drift recompute it exactly.
    reference = np.random.default_rng(12).normal(0, 1, 20_000)
    current = reference + 0.1 * float(np.std(reference)) * factor

    result = compute_drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), columns=["x"])

    (column,) = result.columns
    assert column.method == WASSERSTEIN
    assert column.drifted is drifted
    exact = scipy_stats.wasserstein_distance(reference, current) / np.std(reference)
    assert column.score == pytest.approx(exact, rel=1e-12)


def test_far_outliers_fall_back_to_the_exact_distance() -> None:
    # One current value 1e9 reference stds away: the grid over [min, max] would
    # be too coarse for 1e-3, so the distance is computed exactly instead.
    rng = np.random.default_rng(13)
    reference = rng.normal(0, 1, 50_000)
    current = rng.normal(0.05, 1, 50_000)
    current[0] = 1e9

    result = compute_drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), columns=["x"])

    exact = scipy_stats.wasserstein_distance(reference, current) / np.std(reference)
    assert result.columns[0].score == pytest.approx(exact, rel=1e-12)
    assert result.columns[0].drifted


@pytest.mark.parametrize(
    ("values", "rows", "method"),
    [
        (5, 3000, JENSEN_SHANNON),
        (6, 3000, WASSERSTEIN),
        (5, 500, CHI_SQUARE),
        (2, 500, Z_TEST),
        (6, 500, KS),
    ],
)
def test_numerical_columns_with_few_values_use_categorical_tests(values: int, rows: int, method: str) -> None:
    rng = np.random.default_rng(15)
    # Sorted, so the first rows hold fewer distinct values than the column: the
    # count must cover every row.
    reference = pd.DataFrame({"x": np.sort(rng.integers(0, values, rows))})
    reference.loc[rows - 1, "x"] = values - 1
    current = pd.DataFrame({"x": rng.integers(0, values, rows)})

    result = compute_drift(reference, current, columns=["x"])

    assert result.columns[0].method == method


@pytest.mark.parametrize(("drift_share", "dataset_drift"), [(0.5, True), (0.51, False)])
def test_dataset_drift_at_exactly_the_share(drift_share: float, dataset_drift: bool) -> None:
    rng = np.random.default_rng(16)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000)})
    current = pd.DataFrame({"a": rng.normal(2, 1, 2000), "b": rng.normal(0, 1, 2000)})

    result = compute_drift(reference, current, columns=["a", "b"], drift_share=drift_share)

    assert result.drift_share == 0.5
    assert result.drift_share_threshold == drift_share
    assert result.dataset_drift is dataset_drift
    assert [c.column for c in result.columns] == ["a", "b"]


@pytest.mark.parametrize(
    ("mutate", "kwargs", "match"),
    [
        (lambda f: f.iloc[:0], {}, "current frame is empty"),
        (lambda f: f.drop(columns=["x"]), {}, r"current frame is missing columns: \['x'\]"),
        (lambda f: f, {"columns": []}, "no columns given"),
        (lambda f: f, {"categorical": ["nope"]}, "categorical columns not listed in columns"),
        (lambda f: f.assign(x="a"), {}, "numerical column 'x' has dtype object"),
        (lambda f: f.assign(x=np.nan), {}, "column 'x' has no non-null values in the current frame"),
        (lambda f: f.assign(x=np.inf), {}, "column 'x' has no finite values in the current frame"),
        (lambda f: f.assign(seg=np.inf), {"categorical": ["seg"]}, "column 'seg' has no finite values"),
        (lambda f: f, {"drift_share": 0.0}, r"drift_share must be in \(0, 1\], got 0.0"),
        (lambda f: f, {"drift_share": 1.5}, r"drift_share must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_inputs_raise(mutate: Any, kwargs: dict[str, Any], match: str) -> None:
    rng = np.random.default_rng(17)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 50), "seg": rng.choice(list("ab"), 50)})
    call: dict[str, Any] = {"columns": ["x", "seg"], "categorical": ["seg"], **kwargs}

    with pytest.raises(DriftInputError, match=match):
        compute_drift(reference, mutate(reference.copy()), **call)


def test_sampler_returns_small_frames_unchanged() -> None:
    frame = pd.DataFrame({"x": range(100)})

    assert sample_for_report(frame, cap=100) is frame


def test_uniform_sample_respects_the_cap_and_row_order() -> None:
    frame = pd.DataFrame({"x": np.arange(100_000)}, index=np.arange(100_000) * 2)

    sample = sample_for_report(frame, cap=1000, seed=3)

    assert len(sample) == 1000
    assert sample.index.is_unique
    assert sample.index.is_monotonic_increasing
    assert sample.index.isin(frame.index).all()
    assert sample.equals(sample_for_report(frame, cap=1000, seed=3))
    assert not sample.equals(sample_for_report(frame, cap=1000, seed=4))


def test_stratified_sample_keeps_strata_shares() -> None:
    rng = np.random.default_rng(18)
    labels = np.array(["big"] * 60_000 + ["mid"] * 30_000 + ["small"] * 9_970 + ["rare"] * 20 + [None] * 10)
    frame = pd.DataFrame({"segment": rng.permutation(labels), "x": rng.normal(size=labels.size)})

    sample = sample_for_report(frame, cap=1000, stratify="segment", seed=1)

    assert len(sample) == 1000
    assert sample.index.is_monotonic_increasing
    full = frame["segment"].value_counts(dropna=False, normalize=True)
    got = sample["segment"].value_counts(dropna=False)
    for label, share in full.items():
        assert abs(got[label] - 1000 * share) <= 1, label
    assert got["rare"] >= 1
    assert got[None] >= 1  # missing values are a stratum of their own


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"stratify": "nope"}, "stratify column 'nope' is not in the frame"), ({"cap": 0}, "cap must be at least 1")],
)
def test_sampler_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DriftInputError, match=match):
        sample_for_report(pd.DataFrame({"x": [1, 2, 3]}), **kwargs)


@pytest.fixture
def drift_files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(19)
    rows = 3000
    reference = pd.DataFrame(
        {
            "price": rng.normal(50, 10, rows),
            "latency": rng.gamma(2.0, 30.0, rows),
            "segment": rng.choice(list("abc"), rows),
            "only_here": 1,
        }
    )
    current = pd.DataFrame(
        {
            "price": rng.normal(70, 10, rows),
            "latency": rng.gamma(2.0, 30.0, rows),
            "segment": rng.choice(list("abc"), rows, p=[0.1, 0.1, 0.8]),
        }
    )
    reference_path = tmp_path / "reference.parquet"
    current_path = tmp_path / "current.csv"
    reference.to_parquet(reference_path)
    current.to_csv(current_path, index=False)
    return reference_path, current_path


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="firebreak")
    drift_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return drift_cli.run(parser.parse_args(["drift", *argv]))


def test_cli_prints_ranked_json(drift_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    reference_path, current_path = drift_files

    code = _run_cli("--reference", str(reference_path), "--current", str(current_path), "--json")

    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"dataset_drift", "drift_share", "columns"}
    assert out["dataset_drift"] is True
    assert out["drift_share"] == pytest.approx(2 / 3)
    assert [c["column"] for c in out["columns"]][:2] == ["price", "segment"]  # drifted, strongest first
    latency = out["columns"][2]
    assert set(latency) == {"column", "method", "score", "threshold", "drifted"}
    assert (latency["column"], latency["method"], latency["threshold"], latency["drifted"]) == (
        "latency",
        WASSERSTEIN,
        0.1,
        False,
    )
    assert 0 <= latency["score"] < 0.1
    assert {c["method"] for c in out["columns"]} == {WASSERSTEIN, JENSEN_SHANNON}  # segment defaults to categorical


def test_cli_prints_a_table_for_chosen_columns(
    drift_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference_path, current_path = drift_files

    code = _run_cli("--reference", str(reference_path), "--current", str(current_path), "--columns", "latency,price")

    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("dataset: DRIFT (1 of 2 columns drifted")
    lines = out.splitlines()
    assert lines[3].split()[0] == "column"
    assert lines[4].split()[0] == "price"
    assert lines[4].split()[-1] == "yes"
    assert "segment" not in out


@pytest.mark.parametrize(
    ("which", "columns", "match"),
    [
        ("missing", None, r"cannot read .*missing\.csv: .*No such file"),
        ("garbage", None, r"cannot read .*garbage\.parquet: "),
        ("text", None, r"cannot read .*notes\.txt: unknown extension '\.txt'"),
        (None, "price,ghost", r"column 'ghost' is not in .*reference\.parquet"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    drift_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    which: str | None,
    columns: str | None,
    match: str,
) -> None:
    reference_path, current_path = drift_files
    folder = reference_path.parent
    (folder / "garbage.parquet").write_text("not parquet")
    (folder / "notes.txt").write_text("x")
    current = {
        None: current_path,
        "missing": folder / "missing.csv",
        "garbage": folder / "garbage.parquet",
        "text": folder / "notes.txt",
    }[which]
    argv = ["--reference", str(reference_path), "--current", str(current), "--json"]
    if columns is not None:
        argv += ["--columns", columns]

    code = _run_cli(*argv)

    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith("firebreak drift: error: ")
    assert re.search(match, err), err


def test_cli_html_builds_evidently_report_on_samples(
    drift_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reference_path, current_path = drift_files
    html_path = tmp_path / "out" / "drift.html"

    code = _run_cli(
        "--reference",
        str(reference_path),
        "--current",
        str(current_path),
        "--columns",
        "price,segment",
        "--html",
        str(html_path),
    )

    assert code == 0
    captured = capsys.readouterr()
    assert "building Evidently's report on 3,000 reference and 3,000 current rows" in captured.err
    assert "<html" in html_path.read_text(encoding="utf-8")[:2000].lower()
    snapshot = json.loads((tmp_path / "out" / "drift.json").read_text(encoding="utf-8"))
    assert snapshot["metrics"]
    assert "disagrees" not in captured.err


# -- the p-values computed without importing scipy.stats (its import costs about a second) ------


@pytest.mark.parametrize("n", [1, 2, 3, 50, 140, 141, 1000, 5000])
def test_the_kolmogorov_tail_is_scipys_at_every_branch_and_its_edges(n: int) -> None:
    """Every closed form of scipy's kstwo.sf evaluated here (d*n <= 0.5, d >= 1, d*n >= n - 1,
    d >= 0.5, n*d^2 past 4 or from 2.2, 0 from 370) and the middle handed to scipy: equal."""
    edges = [0.5 / n, 1 / n, (n - 1) / n, (0.754693 / n) ** 0.5, (2.2 / n) ** 0.5, (4 / n) ** 0.5, (370 / n) ** 0.5]
    points = {0.0, 0.5, 1.0, *np.linspace(0, 1, 41).tolist(), *np.geomspace(1e-5, 1, 40).tolist()}
    for edge in [*edges, 0.5]:
        points |= {float(v) for v in (edge, np.nextafter(edge, 0), np.nextafter(edge, 2)) if 0 <= v <= 1}
    for d in sorted(points):
        expected = float(np.clip(scipy_stats.kstwo.sf(d, float(n)), 0, 1))
        if n <= 140:
            assert _kstwo_sf(d, float(n)) == expected, d
        else:  # Smirnov's tail summed at once (_smirnov_sum): scipy's value to 1e-9
            assert _kstwo_sf(d, float(n)) == pytest.approx(expected, rel=1e-9, abs=1e-300), d


@pytest.mark.parametrize("n", [141, 15_000, 999_999, 1_000_000])
def test_smirnovs_tail_summed_at_once_is_scipys_where_scipy_sums_it(n: int) -> None:
    """From the edge of the middle region (n*d^2 = 2.2) to values near 1e-250, and d past 0.5."""
    for d in [*np.linspace((2.2 / n) ** 0.5, (370 / n) ** 0.5, 12).tolist(), 0.5, 0.75, 0.99]:
        if d * n < n - 1:
            assert _smirnov_sum(n, d) == pytest.approx(special.smirnov(n, d), rel=1.5e-9, abs=1e-300), d


@pytest.mark.parametrize(
    "shift",
    # n*d^2 under 2.2 (scipy's own code), 2.2 to 370, over 370 (p = 0), and d over 0.5
    [0.0, 0.02, 0.05, 0.3, 0.6, 1.5],
)
@pytest.mark.parametrize("rows", [(12_000, 30_000), (40_000, 11_000)])
def test_the_large_sample_ks_p_value_is_scipys(shift: float, rows: tuple[int, int]) -> None:
    rng = np.random.default_rng(int(shift * 1000) + rows[0])
    reference = rng.normal(0, 1, rows[0]).round(2)  # ties, as real columns have
    current = rng.normal(shift, 1, rows[1]).round(2)
    assert ks_p_value(reference, current) == pytest.approx(
        scipy_stats.ks_2samp(reference, current).pvalue, rel=1e-9, abs=1e-300
    )


def test_binomial_tail_is_scipys_survival_function_at_count_minus_one() -> None:
    rng = np.random.default_rng(11)
    trials = rng.integers(0, 3000, 5000)
    count = rng.integers(-2, 3200, 5000).astype(float)  # below the support, inside it, and past the trials
    count[:100] += 0.5  # scipy floors a fractional count
    rate = rng.choice([np.nan, 0.0, 1.0, 1e-4, 0.02, 0.5, 0.97], 5000)
    expected = scipy_stats.binom.sf(count - 1, trials, rate)
    np.testing.assert_array_equal(binomial_tail(count, trials, rate), expected)
    assert float(binomial_tail(3, 10, 1.5)) == 1.0  # a rate over 1 is clipped: every trial a hit


def test_jensen_shannon_is_scipys() -> None:
    from scipy.spatial import distance

    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(1, 30))
        p, q = rng.integers(0, 500, k).astype(float), rng.integers(0, 500, k).astype(float)
        p[rng.integers(0, k)] = 0.0  # a value one side never had
        p[0], q[-1] = p[0] + 1, q[-1] + 1
        assert _jensenshannon(p / p.sum(), q / q.sum()) == float(distance.jensenshannon(p / p.sum(), q / q.sum()))


def test_the_homogeneity_test_is_scipys_chi_square_contingency() -> None:
    rng = np.random.default_rng(11)
    for _ in range(100):
        k = int(rng.integers(2, 60))
        reference = pd.Series(rng.integers(0, k, int(rng.integers(20, 3000))).astype(str))
        current = pd.Series(rng.integers(0, k + 3, int(rng.integers(20, 3000))).astype(str))  # values one side lacks
        table = pd.concat([reference.value_counts(), current.value_counts()], axis=1).fillna(0).to_numpy().T
        expected = scipy_stats.chi2_contingency(table, correction=False).pvalue
        assert homogeneity_p_value(as_text(reference), as_text(current)) == pytest.approx(
            expected, rel=1e-9, abs=1e-300
        )
    assert homogeneity_p_value(pd.Series(["a", None]), pd.Series(["a", "a"])) == 1.0  # one value: nothing to test
