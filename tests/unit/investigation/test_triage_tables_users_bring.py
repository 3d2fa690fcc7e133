"""Triage on the tables a team's own model and pipeline produce, not the ones Firebreak generates.

Column names that are numbers, class names as labels, multiclass integers, regressors with
infinite outputs, values near the float limits, list-valued columns: each either gets a
verdict with finite figures, or a FirebreakError that names the problem. A traceback is a bug.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from firebreak.cli import main
from firebreak.errors import FirebreakError
from firebreak.investigation.diagnosis import triage_tables

N = 2_000


def _scored(seed: int, rows: int = N, flip: float = 0.0) -> pd.DataFrame:
    """One input, a score from it, and labels that follow the score (``flip``: a share of labels flipped)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    score = 1 / (1 + np.exp(-2 * x))
    label = (rng.random(rows) < score).astype(int)
    flipped = rng.random(rows) < flip
    return pd.DataFrame(
        {"x": x, "z": rng.normal(0, 1, rows), "score": score, "label": np.where(flipped, 1 - label, label)}
    )


def _finite_numbers(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite_numbers(v) for v in value)
    return not (isinstance(value, float) and not math.isfinite(value))


def test_column_names_that_are_numbers_are_read_as_text() -> None:
    reference, current = _scored(1), _scored(2)
    reference.columns = current.columns = [0, 1, 2, 3]
    verdict, evidence = triage_tables(reference, current, label=3, prediction=2)  # type: ignore[arg-type]
    assert verdict.to_dict()["failure_class"] == "none"
    assert {c["column"] for c in evidence["drift"]["columns"]} == {"0", "1"}
    assert evidence["performance"]["metric"] == "accuracy"


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        (["x", "x", "score", "label"], r"reference table names 1 column\(s\) twice \('x'\)"),
        ([0, "0", "score", "label"], r"reference table names 1 column\(s\) twice \('0'\)"),
    ],
)
def test_two_columns_with_one_name_are_refused_by_name(columns: list[Any], match: str) -> None:
    reference = _scored(1)
    reference.columns = columns
    with pytest.raises(FirebreakError, match=match):
        triage_tables(reference, _scored(2))


def test_one_column_in_two_roles_is_refused() -> None:
    with pytest.raises(FirebreakError, match="the label and prediction columns are both 'score'"):
        triage_tables(_scored(1), _scored(2), label="score", prediction="score")


def test_a_confidence_column_of_text_is_refused() -> None:
    reference, current = _scored(1).assign(conf="high"), _scored(2).assign(conf="high")
    with pytest.raises(FirebreakError, match="confidence column 'conf' in the reference table must hold numbers"):
        triage_tables(reference, current, label="label", prediction="score", confidence="conf")


def _named_classes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        label=np.where(frame["label"] == 1, "yes", "no"), decision=np.where(frame["score"] >= 0.5, "yes", "no")
    )


def test_class_names_as_labels_and_decisions_are_judged_on_accuracy() -> None:
    reference, current = _named_classes(_scored(1)), _named_classes(_scored(2, flip=0.3))
    verdict, evidence = triage_tables(
        reference.drop(columns="score"), current.drop(columns="score"), label="label", prediction="decision"
    )
    performance = evidence["performance"]
    assert performance["metric"] == "accuracy"
    assert performance["reference"] - performance["current"] > 0.1  # 30% of the labels flipped: 0.77 -> 0.62
    assert performance["significant"]
    assert verdict.to_dict()["failure_class"] == "drift"  # inputs unchanged, answers worse: concept drift
    assert evidence["segments"]["signal"] == "wrong classes"


def test_class_names_as_labels_with_a_confidence_get_an_estimate() -> None:
    reference, current = _named_classes(_scored(1)), _named_classes(_scored(2))
    for frame in (reference, current):
        frame["confidence"] = np.maximum(frame["score"], 1 - frame["score"])
    _, evidence = triage_tables(
        reference.drop(columns="score"),
        current.drop(columns="score"),
        label="label",
        prediction="decision",
        confidence="confidence",
    )
    estimate = evidence["estimated_performance"]
    assert estimate["method"] == "CBPE"
    assert abs(estimate["estimate"] - evidence["performance"]["current"]) < 0.05


def _words(frame: pd.DataFrame, column: str, yes: str = "yes", no: str = "no") -> pd.DataFrame:
    return frame.assign(**{column: np.where(frame[column] == 1, yes, no)})


def test_yes_no_labels_beside_a_score_need_the_class_the_score_is_for() -> None:
    """Compared as they are, every answer reads wrong in both tables (accuracy 0 -> 0) and a real
    fall in accuracy goes unseen: triage asks which class the score stands for."""
    reference, current = _words(_scored(1), "label"), _words(_scored(2, flip=0.3), "label")
    with pytest.raises(FirebreakError) as refused:
        triage_tables(reference, current, label="label", prediction="score")
    message = str(refused.value)
    assert "the label column 'label' holds class names ('no', 'yes')" in message
    assert "the prediction column 'score' numbers" in message and "--positive-class" in message
    with pytest.raises(FirebreakError, match=r"positive class 'Yes' is not among the label column's classes"):
        triage_tables(reference, current, label="label", prediction="score", positive_class="Yes")


def test_class_names_the_reference_never_wrote_are_skew_not_every_answer_wrong() -> None:
    """A census export whose second file writes ">50K." and "<=50K.": read through the positive
    class ">50K", every current label would be the other class (accuracy falls, a group looks
    harmed). The names changed: skew, named as written."""
    reference, current = _scored(1), _scored(2)
    for frame in (reference, current):
        frame["label"] = np.where(frame["label"] == 1, ">50K", "<=50K")
        frame["sex"] = np.where(np.arange(len(frame)) % 3 == 0, "Female", "Male")
    current["label"] = current["label"] + "."
    verdict, evidence = triage_tables(
        reference, current, label="label", prediction="score", protected="sex", positive_class=">50K"
    )
    assert verdict.to_dict()["failure_class"] == "skew", verdict.root_cause
    assert "label: unknown values on every row" in verdict.root_cause
    assert "performance" not in evidence  # two forms: the figures say nothing


def test_a_flag_stored_as_booleans_then_as_text_is_skew_not_a_crash() -> None:
    """The training-fit check measured distances on every column numeric in the reference, and
    stopped at the text "True" ("could not convert string to float")."""
    reference, current = _scored(1), _scored(2)
    reference["flag"] = np.arange(len(reference)) % 3 == 0
    current["flag"] = np.where(np.arange(len(current)) % 3 == 0, "True", "False")
    verdict, _ = triage_tables(reference, current, label="label", prediction="score")
    assert verdict.to_dict()["failure_class"] == "skew" and verdict.columns == ["flag"], verdict.root_cause


@pytest.mark.parametrize(
    ("words", "column"),
    [(("yes", "no"), "label"), (("approve", "refer"), "decision")],
    ids=["labels-in-words-beside-a-score", "decisions-in-words-beside-0/1-labels"],
)
def test_classes_in_words_read_through_the_positive_class_as_their_numbers(words: tuple[str, str], column: str) -> None:
    """The same tables with 0/1 in place of the words give the same figures and the same verdict,
    a concept drift (30% of labels flipped) included."""

    def tables(flip: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        pair = _scored(1), _scored(2, flip=flip)
        return tuple(f.assign(decision=(f["score"] >= 0.5).astype(int)) for f in pair)  # type: ignore[return-value]

    prediction = "score" if column == "label" else "decision"
    for flip, expected in ((0.0, "none"), (0.3, "drift")):
        reference, current = tables(flip)
        as_numbers = triage_tables(reference, current, label="label", prediction=prediction)
        in_words = triage_tables(
            _words(reference, column, *words),
            _words(current, column, *words),
            label="label",
            prediction=prediction,
            positive_class=words[0],
        )
        assert in_words[0].to_dict()["failure_class"] == as_numbers[0].to_dict()["failure_class"] == expected
        assert in_words[1]["performance"] == as_numbers[1]["performance"]
        assert in_words[1].get("estimated_performance") == as_numbers[1].get("estimated_performance")
    assert in_words[1]["performance"]["current"] < in_words[1]["performance"]["reference"] - 0.1


def test_integer_classes_of_a_multiclass_model_are_classes_not_numbers() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (2 * N, 2))
    truth = np.digitize(x[:, 0], [-0.5, 0.5])  # classes 0, 1, 2
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": truth, "predicted": truth})
    frame.loc[rng.random(2 * N) < 0.1, "predicted"] = 2
    verdict, evidence = triage_tables(frame.iloc[:N], frame.iloc[N:], label="label", prediction="predicted")
    assert evidence["performance"]["metric"] == "accuracy"
    assert verdict.to_dict()["failure_class"] == "none"


def test_a_regressor_with_infinite_outputs_leaves_those_rows_out() -> None:
    rng = np.random.default_rng(4)

    def table() -> pd.DataFrame:
        x = rng.normal(0, 1, N)
        y = 3 * x + rng.normal(0, 0.5, N)
        prediction = np.where(np.arange(N) % 50 == 0, np.inf, 3 * x)
        return pd.DataFrame({"x": x, "z": rng.normal(0, 1, N), "y": y, "p": prediction})

    verdict, evidence = triage_tables(table(), table(), label="y", prediction="p")
    assert verdict.to_dict()["failure_class"] == "none"
    assert evidence["performance"]["metric"] == "mae"
    assert evidence["performance"]["rows"] == N - N // 50
    assert evidence["estimated_performance"]["method"] == "DLE"
    assert _finite_numbers(evidence["performance"]) and _finite_numbers(evidence["estimated_performance"])


def test_a_perfect_regressor_has_no_p_value_rather_than_nan() -> None:
    frame = _scored(5).assign(label=lambda f: 3 * f["x"], score=lambda f: 3 * f["x"])
    _, evidence = triage_tables(frame.iloc[:1000], frame.iloc[1000:], label="label", prediction="score")
    assert evidence["performance"]["p_value"] is None
    assert evidence["performance"]["significant"] is False


@pytest.mark.parametrize("scale", [1.7e308, 1e-320])
def test_values_near_the_float_limits_are_compared(scale: float) -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"x": rng.uniform(-1, 1, N) * scale, "z": rng.normal(0, 1, N)})
    current = pd.DataFrame({"x": rng.uniform(-1, 1, N) * scale, "z": rng.normal(0, 1, N)})
    verdict, evidence = triage_tables(reference, current)
    assert verdict.to_dict()["failure_class"] == "none"
    assert _finite_numbers(evidence["drift"])


def test_huge_values_that_moved_have_the_distance_of_the_same_values_in_small_units() -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.uniform(-1, 1, N), rng.uniform(-1, 0.4, N)
    figures = []
    for scale in (1.7e308, 1.0):  # at 1.7e308 the span of the values overflows a float
        _, evidence = triage_tables(
            pd.DataFrame({"x": reference * scale, "z": reference[::-1]}),
            pd.DataFrame({"x": current * scale, "z": reference[::-1]}),
        )
        (x,) = [c for c in evidence["drift"]["columns"] if c["column"] == "x"]
        figures.append((x["drifted"], x["score"]))
    assert figures[0][0] and figures[1][0]
    assert figures[0][1] == pytest.approx(figures[1][1], rel=1e-6)


def test_list_and_mapping_columns_are_skipped_by_name() -> None:
    reference, current = _scored(1), _scored(2)
    for frame in (reference, current):
        frame["tags"] = [[i % 3] for i in range(N)]
        frame["meta"] = [{"k": i % 3} for i in range(N)]
    verdict, evidence = triage_tables(reference, current, label="label", prediction="score")
    assert verdict.to_dict()["failure_class"] == "none"
    skipped = {s["column"]: s["reason"] for s in evidence["drift"]["skipped"]}
    assert set(skipped) == {"tags", "meta"}
    assert "lists or mappings" in skipped["tags"]


def test_row_numbers_and_ids_of_the_next_batch_are_identifiers_not_drift() -> None:
    """The next day's rows carry the next ids: every id new and past the range, by construction."""
    reference, current = _scored(1), _scored(2)
    reference["PassengerId"], current["PassengerId"] = np.arange(1, N + 1), np.arange(N + 1, 2 * N + 1)
    reference["row"], current["row"] = np.arange(N) * 2, np.arange(N, 2 * N) * 2  # a sequence with gaps, no id name
    order = np.random.default_rng(0).permutation(10**6)  # ids drawn from a wide range: the name says it
    reference["customer_key"], current["customer_key"] = order[:N] + 10**6, order[N : 2 * N] + 3 * 10**6
    verdict, evidence = triage_tables(reference, current, label="label", prediction="score")
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause
    skipped = {s["column"]: s["reason"] for s in evidence["drift"]["skipped"]}
    assert set(skipped) == {"PassengerId", "row", "customer_key"}
    assert all("an identifier" in reason for reason in skipped.values())
    # A measurement recorded in whole numbers, all distinct but neither named nor numbered in a run, is compared.
    reference["cents"] = order[:N] * 7
    current["cents"] = order[N : 2 * N] * 7 + 5_000_000
    verdict, _ = triage_tables(reference, current, label="label", prediction="score")
    assert verdict.to_dict()["failure_class"] is not None and "cents" in verdict.root_cause


@pytest.mark.parametrize(
    "column",
    [
        pd.date_range("2024-01-01", periods=2 * N, freq="h").strftime("%Y-%m-%d"),  # days as text, each on 24 rows
        pd.date_range("2024-01-01", periods=2 * N, freq="h").strftime("%Y-%m"),
        pd.date_range("2024-01-01", periods=2 * N, freq="h").strftime("%d/%m/%Y %H:%M"),
        (pd.date_range("2024-01-01", periods=2 * N, freq="h").astype("int64") // 10**9).to_numpy(),  # epoch seconds
        pd.date_range("2024-01-01", periods=2 * N, freq="h").strftime("%Y%m%d").astype(int).to_numpy(),
        pd.date_range("2015-01-01", periods=2 * N, freq="D").strftime("%b-%Y"),  # a loan book's "Dec-2015"
        pd.date_range("2015-01-01", periods=2 * N, freq="D").strftime("%B %Y"),
        pd.date_range("2015-01-01", periods=2 * N, freq="D").strftime("%d-%b-%Y"),
        pd.date_range("2015-01-01", periods=2 * N, freq="D").strftime("%b %d, %Y"),
        pd.date_range("2015-01-01", periods=2 * N, freq="D").strftime("%m/%Y"),
        pd.date_range("2015-01-01", periods=2 * N, freq="D").date,  # Parquet's date columns
        np.concatenate(  # dates from Parquet in the reference, ISO text from a CSV now
            [
                pd.date_range("2015-01-01", periods=N, freq="D").date,
                pd.date_range("2015-01-01", periods=N).strftime("%F"),
            ]
        ),
    ],
    ids=[
        "days-as-text",
        "months-as-text",
        "day-first-times",
        "epoch-seconds",
        "yyyymmdd",
        "month-names",
        "month-names-in-full",
        "day-month-name-year",
        "month-name-day-year",
        "month-slash-year",
        "date-objects",
        "date-objects-then-text",
    ],
)
def test_times_written_as_text_or_numbers_are_not_compared(column: Any) -> None:
    """A time-ordered split: every date of the next batch is new. A time, not drift and not skew."""
    reference, current = _scored(1), _scored(2)
    reference["created_at"], current["created_at"] = np.asarray(column[:N]), np.asarray(column[N:])
    verdict, evidence = triage_tables(reference, current, label="label", prediction="score")
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause
    skipped = {s["column"]: s["reason"] for s in evidence["drift"]["skipped"]}
    assert skipped == {"created_at": "a time (dates, epoch numbers or a count of periods): not compared"}


def test_words_that_begin_like_a_month_are_categories_not_times() -> None:
    """ "Marketing-20", "Decimal 12", "Mayo 12": a month's letters, not a month."""
    rng = np.random.default_rng(3)
    codes = ["Marketing-20", "Decimal 12", "Mayo 12", "Junior-3"]
    reference, current = _scored(1), _scored(2)
    reference["team"], current["team"] = rng.choice(codes, N), rng.choice(codes, N, p=[0.7, 0.1, 0.1, 0.1])
    verdict, evidence = triage_tables(reference, current, label="label", prediction="score")
    assert "team" in {c["column"] for c in evidence["drift"]["columns"]}
    assert verdict.to_dict()["failure_class"] == "drift" and "team" in verdict.root_cause


def test_a_number_under_a_times_name_outside_any_epoch_is_compared() -> None:
    """``response_time`` in seconds is a measurement: it moved, and triage says so."""
    reference, current = _scored(1), _scored(2)
    rng = np.random.default_rng(5)
    reference["response_time"] = rng.gamma(2, 0.2, N)
    current["response_time"] = rng.gamma(2, 0.2, N) + 0.3
    verdict, _ = triage_tables(reference, current, label="label", prediction="score")
    assert verdict.to_dict()["failure_class"] == "drift" and "response_time" in verdict.root_cause


@pytest.mark.parametrize("seed", range(6))
def test_one_row_of_a_new_category_on_a_small_reference_is_no_failure(seed: int) -> None:
    """Under 1,000 reference rows the fit test takes the reference's counts as exact: a value it never
    held has an expected count of 0 and reads p = 0. The homogeneity test weighs one row as one row."""
    rng = np.random.default_rng(seed)
    frames = [
        pd.DataFrame({"city": rng.choice(["NY", "LA", "SF", "CHI"], 800), "x": rng.normal(0, 1, 800)}) for _ in range(2)
    ]
    frames[1].loc[3, "city"] = "Boston"
    verdict, _ = triage_tables(*frames)
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause


@pytest.mark.parametrize("seed", range(8))
def test_a_small_reference_of_heavy_tailed_columns_is_not_drift_by_its_next_samples_largest_values(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    reference, current = (
        pd.DataFrame({f"v{i}": rng.lognormal(3, 1, 300).round(2) for i in range(10)}) for _ in range(2)
    )
    verdict, _ = triage_tables(reference, current)
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause


def test_a_new_region_on_a_small_table_is_still_drift() -> None:
    """One in ten rows far past the reference's top: no sample of one world does that."""
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"v": rng.lognormal(3, 0.5, 300).round(2), "w": rng.normal(0, 1, 300)})
    current = pd.DataFrame({"v": rng.lognormal(3, 0.5, 300).round(2), "w": rng.normal(0, 1, 300)})
    current.loc[:29, "v"] = rng.uniform(200, 400, 30).round(2)
    verdict, _ = triage_tables(reference, current)
    assert verdict.to_dict()["failure_class"] == "drift" and "v" in verdict.columns


@pytest.mark.parametrize("missing", [0.1, 1.0], ids=["a-tenth-unlabelled", "no-labels-yet"])
def test_fairness_is_judged_on_the_rows_whose_labels_arrived(missing: float) -> None:
    """Labels come late: the unlabelled rows are left out of the figures with outcomes, not refused."""
    reference, current = _scored(1), _scored(2)
    for frame in (reference, current):
        frame["group"] = np.where(np.arange(len(frame)) % 3 == 0, "a", "b")
    current["label"] = current["label"].astype(float)
    current.loc[current.sample(frac=missing, random_state=0).index, "label"] = np.nan
    verdict, evidence = triage_tables(reference, current, label="label", prediction="score", protected="group")
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause
    groups = evidence["fairness"]["groups"]
    assert set(groups) == {"a", "b"}
    assert all(("accuracy" in g) == (missing < 1) for g in groups.values())


@pytest.mark.parametrize("seed", range(4))
def test_a_column_of_thousands_of_codes_from_one_world_is_not_drift(seed: int) -> None:
    # Jensen-Shannon distance between two samples of 10,000 equally likely codes is about 0.31:
    # past its 0.1 threshold on noise alone. The chi-square test of homogeneity does not confirm it.
    rng = np.random.default_rng(seed)
    reference, current = (
        pd.DataFrame({"code": rng.integers(0, 10_000, 30_000).astype(str), "x": rng.normal(0, 1, 30_000)})
        for _ in range(2)
    )
    verdict, evidence = triage_tables(reference, current)
    assert verdict.to_dict()["failure_class"] == "none"
    code = next(c for c in evidence["drift"]["columns"] if c["column"] == "code")
    assert code["drifted"] and code["confirm_test"] == "chi-square" and code["confirm_p_value"] > 1e-3


def test_thousands_of_codes_whose_mix_moved_are_drift() -> None:
    rng = np.random.default_rng(9)
    codes = np.arange(10_000).astype(str)
    weights = rng.gamma(2.0, 1.0, 10_000)
    moved = weights * np.where(np.arange(10_000) < 2_000, 3.0, 1.0)  # a fifth of the codes three times as common
    reference = pd.DataFrame(
        {"code": rng.choice(codes, 30_000, p=weights / weights.sum()), "x": rng.normal(0, 1, 30_000)}
    )
    current = pd.DataFrame({"code": rng.choice(codes, 30_000, p=moved / moved.sum()), "x": rng.normal(0, 1, 30_000)})
    verdict, evidence = triage_tables(reference, current)
    assert verdict.to_dict()["failure_class"] == "drift"
    assert "code" in verdict.to_dict()["columns"]


def test_a_one_row_current_table_prints_json_without_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _scored(8).assign(label=lambda f: 3 * f["x"] + 0.1, score=lambda f: 3 * f["x"])
    reference.to_csv(tmp_path / "ref.csv", index=False)
    reference.iloc[:1].to_csv(tmp_path / "cur.csv", index=False)
    code = main(
        ["triage", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv")]
        + ["--label-column", "label", "--prediction-column", "score", "--json"]
    )
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert report["multivariate"] is None  # one row has no spread to test
    assert report["failure_class"] == "none"  # a value seen once is not a filled-in default (a spike)
    assert report["current"]["rows"] == 1


def test_integer_column_names_from_parquet_work_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, seed in (("ref", 1), ("cur", 2)):
        frame = _scored(seed)
        frame.columns = [0, 1, 2, 3]
        frame.to_parquet(tmp_path / f"{name}.parquet")
    code = main(
        ["triage", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet")]
        + ["--label-column", "3", "--prediction-column", "2", "--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["failure_class"] == "none"


def test_categories_binned_differently_upstream_are_skew() -> None:
    rng = np.random.default_rng(10)
    reference = pd.DataFrame({"band": pd.cut(rng.normal(0, 1, N), 5), "z": rng.normal(0, 1, N)})
    current = pd.DataFrame({"band": pd.cut(rng.normal(0, 1, N), 5), "z": rng.normal(0, 1, N)})  # other edges
    verdict, _ = triage_tables(reference, current)
    assert verdict.to_dict()["failure_class"] == "skew"
    assert verdict.to_dict()["columns"] == ["band"]
    assert triage_tables(reference, reference.copy())[0].to_dict()["failure_class"] == "none"


def test_a_finding_on_the_whole_table_is_quoted_not_named() -> None:
    from firebreak.incidents.enums import FailureClass
    from firebreak.investigation.diagnosis import _root_cause
    from firebreak.investigation.findings import Finding

    finding = Finding("multivariate", FailureClass.DRIFT, None, "joint distribution moved: error 1.2 -> 1.5", 0.8)
    cause = _root_cause(FailureClass.DRIFT, [finding], [finding])
    assert (
        cause
        == "input distribution moved (drift) within the contract's ranges: joint distribution moved: error 1.2 -> 1.5"
    )


def _levels(seed: int, rows: int = 5_000, **columns: Any) -> pd.DataFrame:
    """A lognormal amount (its derived range always leaves a tail value or two), a 1-5 rating, a constant."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"amount": rng.lognormal(4, 0.8, rows).round(2), "stars": rng.integers(1, 6, rows), "schema": 5}
    )
    return frame.assign(**columns)


def test_a_constant_that_changed_on_every_row_is_skew_for_all_users(tmp_path: Path, capsys: Any) -> None:
    """A version or default column the pipeline sets (5 -> 6 on every row): the pipeline changed.
    Inside the derived range (a constant's is +-25%) no contract fails: the spike check says it."""
    verdict, evidence = triage_tables(_levels(1), _levels(2, schema=6))
    assert (verdict.failure_class, verdict.columns) == ("skew", ["schema"])
    assert "the reference holds the single value 5 on every row; now 6 on 100.0% of rows" in verdict.root_cause
    assert evidence["segments"]["segments"] == []  # a segment of every row is everyone, not a segment
    (changed,) = evidence["drift"]["data_checks"]["spikes"]
    assert (changed["value"], changed["share"]) == (6.0, 1.0) and changed["p_value"] < 1e-100
    reference, current = tmp_path / "ref.csv", tmp_path / "cur.csv"
    _levels(1).to_csv(reference, index=False)
    _levels(2, schema=6).to_csv(current, index=False)
    assert main(["triage", "--reference", str(reference), "--current", str(current)]) == 0
    assert "who is hit:    all users" in capsys.readouterr().out


def test_a_flag_that_fires_on_some_rows_of_a_constant_column_is_a_new_segment() -> None:
    flag = np.where(np.arange(5_000) < 165, 1, 0)
    verdict, evidence = triage_tables(_levels(1, schema=0), _levels(2, schema=flag))
    assert verdict.failure_class == "drift"
    top = evidence["segments"]["segments"][0]
    assert (top["description"], top["rows"], top["lift"]) == ("schema=1", 165, None)


def test_a_new_level_of_a_rating_is_named_by_its_value_not_as_missing() -> None:
    """12% of ratings now 6 on a 1-5 scale, inside the derived range; the lognormal column's tail
    breaks the derived contract on a row or two, which is not the failure to localise."""
    stars = np.where(np.arange(5_000) < 600, 6, _levels(2)["stars"])
    verdict, evidence = triage_tables(_levels(1), _levels(2, stars=stars))
    assert (verdict.failure_class, verdict.columns) == ("drift", ["stars"])
    assert evidence["segments"]["signal"] == "traffic share"
    top = evidence["segments"]["segments"][0]
    assert (top["description"], top["rows"]) == ("stars=6", 600)
    assert "concentrated in segment stars=6: 600 rows, 12.0% of traffic" in verdict.root_cause


@pytest.mark.parametrize(
    ("change", "column", "because"),
    [
        ({"label": lambda f: f["label"].map({0: "no", 1: "yes"})}, "label", "its values changed type: "),
        ({"score": lambda f: (f["score"] * 100).round(2)}, "score", "the whole column is rescaled by one factor"),
        ({"label": lambda f: f["label"].map({0: "legit", 1: "fraud"})}, "label", "its values changed type: "),
    ],
    ids=["labels-yes-no", "scores-in-percent", "labels-as-names"],
)
def test_answers_or_labels_in_another_form_are_skew_not_concept_drift(
    change: dict[str, Any], column: str, because: str
) -> None:
    """The label pipeline writing yes/no for 1/0, scores sent in percent: the performance figures
    would compare two forms (accuracy 0, an MAE of 50) and read as concept drift, or nothing."""
    current = _scored(2).assign(**change)
    verdict, evidence = triage_tables(_scored(1), current, label="label", prediction="score")
    assert (verdict.failure_class, verdict.columns) == ("skew", [column]), verdict.root_cause
    assert because in verdict.root_cause
    assert "performance" not in evidence and "estimated_performance" not in evidence


@pytest.mark.parametrize("column", ["value", "predicted"])
def test_a_regressors_target_or_answer_in_thousands_is_skew_though_inside_the_range(column: str) -> None:
    """House values from 15,000 to 500,000, sent in thousands: 15-500 lies inside the range a
    non-negative column's contract allows (down to 0), so no value leaves it; the scale check
    finds every quantile divided by 1,000. Read as they are, the MAE rose fourfold: concept drift."""

    def houses(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        income = rng.lognormal(1.3, 0.45, N)
        value = np.clip(income * 40_000 + rng.normal(30_000, 50_000, N), 15_000, 500_000).round(-2)
        return pd.DataFrame({"income": income, "value": value, "predicted": (income * 40_000 + 30_000).round(-2)})

    current = houses(2)
    current[column] = current[column] / 1000
    verdict, evidence = triage_tables(houses(1), current, label="value", prediction="predicted")
    assert (verdict.failure_class, verdict.columns) == ("skew", [column]), verdict.root_cause
    factor = float(verdict.root_cause.split("every value multiplied by ")[1].split(":")[0])
    assert factor == pytest.approx(0.001, rel=0.05)  # the quantiles' median ratio
    assert verdict.root_cause.endswith("the whole column is rescaled by one factor")
    assert "performance" not in evidence


def test_answers_and_labels_in_their_usual_form_are_judged_on_performance() -> None:
    """Class names in both tables, a score whose distribution moved inside [0, 1], a regressor's
    label past its old range: no form changed, so the figures judge."""
    names = {0: "legit", 1: "fraud"}
    reference = _scored(1).assign(label=lambda f: f["label"].map(names))
    current = _scored(2).assign(label=lambda f: f["label"].map(names))
    _, evidence = triage_tables(reference, current, label="label", prediction="score", positive_class="fraud")
    assert evidence["drift"]["data_checks"]["outcome_changes"] == []
    verdict, evidence = triage_tables(
        _scored(1), _scored(2, flip=0.3).assign(score=lambda f: f["score"] ** 2), label="label", prediction="score"
    )
    assert evidence["drift"]["data_checks"]["outcome_changes"] == []
    assert verdict.failure_class == "drift" and "accuracy on labelled rows" in verdict.root_cause
    assert "estimated_performance" in evidence
    rng = np.random.default_rng(3)
    x_ref, x_cur = rng.uniform(0, 10, 3000), rng.uniform(0, 14, 3000)
    regression = [pd.DataFrame({"x": x, "y": 3 * x + rng.normal(0, 1, 3000), "yhat": 3 * x}) for x in (x_ref, x_cur)]
    verdict, evidence = triage_tables(*regression, label="y", prediction="yhat")
    assert evidence["drift"]["data_checks"]["outcome_changes"] == []
    assert verdict.failure_class == "drift" and "performance" in evidence


def test_a_type_change_of_labels_quotes_long_values_by_their_first_characters() -> None:
    names = {0: "n" * 5000, 1: "y" * 5000}
    reference = _scored(1).assign(label=lambda f: f["label"].map(names))
    verdict, _ = triage_tables(reference, _scored(2), label="label", prediction="score")
    assert (verdict.failure_class, verdict.columns) == ("skew", ["label"])
    assert "(5,000 characters)" in verdict.root_cause and len(verdict.root_cause) < 1000


def _quarterly(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fifty years of quarters: seven series growing with time, two that do not; split at random."""
    rng = np.random.default_rng(seed)
    t = np.arange(200) / 4.0
    frame = pd.DataFrame({"year": 1960 + np.floor(t).astype(int), "quarter": np.arange(200) % 4 + 1})
    for k, name in enumerate(["gdp", "consumption", "income", "prices", "population", "money", "investment"]):
        frame[name] = np.exp(0.02 * (k + 1) * t) * 100 * (1 + rng.normal(0, 0.01, 200))
    frame["rate"], frame["unemployment"] = rng.normal(5, 2, 200), rng.normal(6, 1.5, 200)
    order = rng.permutation(200)
    return frame.iloc[np.sort(order[:100])], frame.iloc[np.sort(order[100:])]


def test_columns_that_move_together_count_once_for_dataset_drift() -> None:
    """A random split whose halves differ in year at p = 0.006 moves the year and the seven
    series that trend with it at Evidently's 0.05 together: eight of eleven columns, a
    "dataset drift" by share, though no column is significant for a table of eleven."""
    reference, current = _quarterly(25)
    verdict, evidence = triage_tables(reference, current)
    assert evidence["drift"]["dataset_drift"] and evidence["drift"]["drift_share"] >= 0.5
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause
    # The same series from later years: each column significant on its own, drift as before.
    later = _quarterly(26)[1].assign(year=lambda f: f["year"] + 25, gdp=lambda f: f["gdp"] * 1.6)
    verdict, _ = triage_tables(reference, later)
    assert verdict.failure_class == "drift" and "year" in verdict.columns


@pytest.mark.parametrize("factor", [1000.0, 0.001, 100.0])
@pytest.mark.parametrize("kind", ["skewed, 110 rows", "counts, mostly 0"])
def test_a_unit_change_on_a_small_or_few_valued_column_is_skew(kind: str, factor: float) -> None:
    """Two samples' quantiles of 110 skewed values, or of counts that are mostly 0, do not agree
    to 20% even unscaled: the quantile rule alone read these unit changes as drift."""
    rng = np.random.default_rng(8)
    if kind == "skewed, 110 rows":
        frames = [pd.DataFrame({"invest": rng.lognormal(4, 1.5, 110), "value": rng.normal(50, 10, 110)}) for _ in "ab"]
        column = "invest"
    else:
        frames = [
            pd.DataFrame(
                {"pixel": rng.choice(np.arange(17.0), 900, p=[0.6, *[0.025] * 16]), "other": rng.normal(0, 1, 900)}
            )
            for _ in "ab"
        ]
        column = "pixel"
    reference, current = frames[0], frames[1].assign(**{column: frames[1][column] * factor})
    verdict, evidence = triage_tables(reference, current)
    assert (verdict.failure_class, verdict.columns) == ("skew", [column]), verdict.root_cause
    (change,) = evidence["drift"]["scale_changes"]
    assert change["factor"] == pytest.approx(factor)  # a power of ten, read as one
    said = f"multiplied by {factor:g} (divided by {factor:g} the values match the reference's"
    assert any(said in e["detail"] for e in verdict.to_dict()["evidence"])
    # Unchanged, nothing is rescaled; moved by a factor under 5, it is the world's drift.
    assert triage_tables(*frames)[1]["drift"]["scale_changes"] == []
    assert (
        triage_tables(reference, frames[1].assign(**{column: frames[1][column] * 3}))[1]["drift"]["scale_changes"] == []
    )


def test_answers_missing_on_a_few_rows_of_both_tables_leave_every_figure_on_the_rest() -> None:
    """A model that could not score 1% of rows (a feature it cannot read) in both tables alike:
    no failure, and the fairness figures are on the rows it answered, not refused."""
    reference, current = _scored(1), _scored(2)
    for seed, frame in enumerate((reference, current)):
        frame["group"] = np.where(np.arange(len(frame)) % 3 == 0, "a", "b")
        frame.loc[frame.sample(frac=0.01, random_state=seed).index, "score"] = np.nan
    verdict, evidence = triage_tables(reference, current, label="label", prediction="score", protected="group")
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause
    groups = evidence["fairness"]["groups"]
    assert sum(g["rows"] for g in groups.values()) == current["score"].notna().sum()


def test_answers_missing_on_many_more_rows_than_the_reference_are_skew() -> None:
    reference, current = _scored(1), _scored(2)
    for frame in (reference, current):
        frame["group"] = np.where(np.arange(len(frame)) % 3 == 0, "a", "b")
    current.loc[current.sample(frac=0.2, random_state=0).index, "score"] = np.nan
    verdict, _ = triage_tables(reference, current, label="label", prediction="score", protected="group")
    assert verdict.to_dict()["failure_class"] == "skew", verdict.root_cause
    assert (
        "score: the model's answers are missing on 20.0% of rows, against 0.0% in the reference" in verdict.root_cause
    )


def rates(seed: int, rows: int = 3_000, shift: float = 0.0) -> pd.DataFrame:
    """A loan book as its export writes it: rates and utilisation as "13.56%", amounts as "$1,200.00"."""
    rng = np.random.default_rng(seed)
    rate = (rng.gamma(6, 2.2, rows) + 5 + shift).round(2)
    return pd.DataFrame(
        {
            "int_rate": [f"{r:.2f}%" for r in rate],
            "amount": [f"${a:,.2f}" for a in (rng.lognormal(9.3, 0.6, rows) / 25).round() * 25],
            "grade": rng.choice(list("ABCDEFG"), rows, p=[0.17, 0.29, 0.28, 0.15, 0.07, 0.03, 0.01]),
        }
    )


def test_numbers_written_with_a_unit_are_compared_as_numbers() -> None:
    """Thousands of distinct "13.56%" strings read as text are an identifier, set aside: rates that
    rose by three points went unseen. Read as numbers, they are compared as any number is."""
    verdict, evidence = triage_tables(rates(1), rates(2))
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause
    assert {c["column"] for c in evidence["drift"]["columns"]} == {"int_rate", "amount", "grade"}
    verdict, _ = triage_tables(rates(1), rates(2, shift=3.0))
    assert verdict.to_dict()["failure_class"] == "drift" and "int_rate" in verdict.columns, verdict.root_cause


def test_rates_sent_as_fractions_where_the_reference_wrote_percent_are_skew() -> None:
    current = rates(2)
    current["int_rate"] = (current["int_rate"].str.rstrip("%").astype(float) / 100).round(4)
    verdict, _ = triage_tables(rates(1), current)
    assert verdict.to_dict()["failure_class"] == "skew" and "int_rate" in verdict.columns, verdict.root_cause


def test_grades_sent_as_numbers_are_a_type_change() -> None:
    current = rates(2)
    current["grade"] = current["grade"].map({g: i for i, g in enumerate("ABCDEFG")})
    verdict, _ = triage_tables(rates(1), current)
    assert verdict.to_dict()["failure_class"] == "skew", verdict.root_cause
    assert "grade: its values changed type: C, B, A in the reference, 1, 2, 0 now" in verdict.root_cause


def test_a_currency_sign_the_reference_never_wrote_is_skew_but_a_dropped_sign_is_not() -> None:
    """Amounts written "€1,104.00" where the reference wrote "$1,200.00": 0.92 is no factor the
    scale check can tell from the world, but the sign says what changed. "1200.00" without its
    sign is the same number."""

    def amounts(seed: int, sign: str = "$", factor: float = 1.0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        values = rng.lognormal(9, 0.6, N) * factor
        return pd.DataFrame({"amount": [f"{sign}{v:,.2f}" for v in values], "x": rng.normal(0, 1, N)})

    verdict, _ = triage_tables(amounts(1), amounts(2, "€", 0.92))
    assert verdict.to_dict()["failure_class"] == "skew", verdict.root_cause
    assert "amount: its currency changed: $ in the reference, € now" in verdict.root_cause
    verdict, _ = triage_tables(amounts(1), amounts(2, ""))
    assert verdict.to_dict()["failure_class"] == "none", verdict.root_cause


def test_text_held_as_python_objects_or_arrow_text_gets_the_same_findings() -> None:
    """A CSV gives text as Python objects, Parquet's ``string`` columns as Arrow text: one verdict, one evidence."""
    rng = np.random.default_rng(5)

    def table(rows: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.6 - shift, 0.3, 0.1 + shift]),
                "region": np.where(rng.random(rows) < 0.05, None, rng.choice(["n", "s", "e", "w"], rows)),
                "amount": rng.lognormal(3, 0.5, rows).round(2),
            }
        )

    reference, current = table(3_000, 0.0), table(3_000, 0.25)
    current["amount"] = current["amount"].astype(object)
    current.loc[:40, "amount"] = "N/A"  # text among numbers: the type check's to name, in either form
    as_arrow = {c: pd.StringDtype("pyarrow") for c in ("plan", "region")}

    def findings(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[str, list[str]]:
        verdict, evidence = triage_tables(ref, cur)
        return str(verdict.failure_class), [e.detail for e in verdict.evidence]

    as_objects = findings(reference, current)
    assert as_objects == findings(reference.astype(as_arrow), current.astype(as_arrow))
    assert as_objects[0] == "skew"
    assert any("amount" in detail and "N/A" in detail for detail in as_objects[1])


def test_a_third_more_errors_of_a_model_of_rare_positives_is_concept_drift() -> None:
    """Fraud on 3% of rows, half of it flagged: errors on 1.5% of rows. A new pattern the model
    misses adds 1.5 points: short of the 2 points of accuracy, but twice the errors."""
    rng = np.random.default_rng(21)

    def flags(rows: int, missed: float) -> pd.DataFrame:
        amount = rng.lognormal(4, 1, rows).round(2)
        fraud = (rng.random(rows) < 0.03).astype(int)
        flagged = np.where(rng.random(rows) < 0.5, fraud, 0)  # half the fraud caught, no false flags
        new_pattern = rng.random(rows) < missed  # fraud the model does not see
        return pd.DataFrame({"amount": amount, "fraud": np.maximum(fraud, new_pattern.astype(int)), "flag": flagged})

    reference, current = flags(30_000, 0.0), flags(30_000, 0.015)
    found, evidence = triage_tables(reference, current, label="fraud", prediction="flag")
    assert found.failure_class == "drift", found.root_cause
    performance = evidence["performance"]
    assert performance["significant"] and performance["reference"] - performance["current"] < 0.02
    unchanged, _ = triage_tables(reference, flags(30_000, 0.0), label="fraud", prediction="flag")
    assert unchanged.failure_class is None, unchanged.root_cause


def test_text_that_is_not_valid_unicode_is_shown_escaped_not_a_crash() -> None:
    # A JSON escape can carry a lone surrogate ("\ud800"), which no UTF-8 text can hold.
    rng = np.random.default_rng(31)
    reference = pd.DataFrame({"amount": rng.gamma(2, 30, N), "channel": rng.choice(["web", "app"], N).astype(object)})
    current = reference.sample(frac=1, random_state=1).reset_index(drop=True)
    current.loc[:199, "channel"] = "web\ud800"

    found, evidence = triage_tables(reference, current)

    assert found.failure_class == "skew" and found.columns == ["channel"], found.root_cause
    assert evidence["drift"]["data_checks"]["unknown_values"][0]["sample"] == ["web\\ud800"]
    json.dumps(evidence)  # the evidence is writable as it is
