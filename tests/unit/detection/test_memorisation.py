"""A reference scored by the model on its own training rows: recognised, and not read as concept drift.

Users often triage against the rows a model was trained on. A forest or boosted trees is far
more accurate there than anywhere else, and every later window read as concept drift (on the
packages' tables, 28 of 30 unchanged splits). The models here are scikit-learn's, trained as a
user would; the data is a logistic world with noise, and scikit-learn's own diabetes table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from firebreak.cli import main
from firebreak.detection.memorisation import memorised
from firebreak.investigation.diagnosis import triage_tables

FEATURES = ["x1", "x2", "x3", "x4"]


def _world(seed: int, rows: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame["x1"] += shift
    logit = 1.2 * frame["x1"] - 0.8 * frame["x2"] + 0.5 * frame["x3"] * frame["x4"]
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _scored(model: Any, *frames: pd.DataFrame, decisions: bool = False) -> list[pd.DataFrame]:
    out = []
    for frame in frames:
        answers = model.predict(frame[FEATURES]) if decisions else model.predict_proba(frame[FEATURES])[:, 1]
        out.append(frame.assign(score=np.round(answers, 4)))
    return out


def _fresh(scored: pd.DataFrame) -> pd.DataFrame:
    """A current table the reference's model never saw: the same world, scored alike (by a logistic
    regression fitted elsewhere: its own pull is that of a model on rows it did not train on)."""
    train, current = _world(99, 2_000), _world(98, 2_000)
    return _scored(LogisticRegression().fit(train[FEATURES], train["label"]), current)[0]


def _forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=60, random_state=0)


@pytest.mark.parametrize("model", [_forest, HistGradientBoostingClassifier], ids=["forest", "boosted"])
def test_a_flexible_models_scores_on_its_training_rows_are_recognised(model: Any) -> None:
    reference = _world(1, 2_000)
    (scored,) = _scored(model().fit(reference[FEATURES], reference["label"]), reference)
    fit = memorised(scored, _fresh(scored), label="label", prediction="score", inputs=FEATURES)
    assert fit is not None and fit["memorised"] and fit["z"] >= 3.09, fit


@pytest.mark.parametrize("model", [_forest, HistGradientBoostingClassifier], ids=["forest", "boosted"])
def test_the_same_models_scores_on_rows_they_did_not_see_are_not(model: Any) -> None:
    train, reference = _world(1, 2_000), _world(2, 2_000)
    (scored,) = _scored(model().fit(train[FEATURES], train["label"]), reference)
    fit = memorised(scored, _fresh(scored), label="label", prediction="score", inputs=FEATURES)
    assert fit is not None and not fit["memorised"], fit


def test_a_logistic_regression_on_its_own_training_rows_is_not_a_memorised_fit() -> None:
    """Four coefficients cannot learn 2,000 rows' labels: its fit is its baseline."""
    reference = _world(3, 2_000)
    (scored,) = _scored(LogisticRegression().fit(reference[FEATURES], reference["label"]), reference)
    fit = memorised(scored, _fresh(scored), label="label", prediction="score", inputs=FEATURES)
    assert fit is not None and not fit["memorised"] and abs(fit["z"]) < 3, fit


def test_decisions_alone_get_no_verdict() -> None:
    """0/1 answers: the own answer beats the neighbour's whenever the model read a column the
    table does not hold, trained on these rows or not; there is no test that tells the two apart."""
    reference = _world(4, 2_000)
    (inside,) = _scored(_forest().fit(reference[FEATURES], reference["label"]), reference, decisions=True)
    assert memorised(inside, _fresh(inside), label="label", prediction="score", inputs=FEATURES) is None


def test_scores_that_read_a_column_the_table_does_not_hold_are_not_a_memorised_fit() -> None:
    """A calibrated score on an input the table leaves out: its noise is still unknowable to the neighbour."""
    train, reference = _world(17, 3_000), _world(18, 3_000)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    (scored,) = _scored(model, reference)
    fit = memorised(scored, _fresh(scored), label="label", prediction="score", inputs=["x1", "x2"])  # x3, x4 not logged
    assert fit is not None and not fit["memorised"], fit


def test_a_regressor_on_its_training_rows_and_a_line_on_its_own() -> None:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False).frame.sample(frac=1.0, random_state=0)
    inputs = [c for c in data.columns if c != "target"]
    reference, current = data.iloc[:221], data.iloc[221:]
    for model, expected in (
        (RandomForestRegressor(n_estimators=60, random_state=0), True),
        (LinearRegression(), False),
    ):
        model.fit(reference[inputs], reference["target"])
        ref, cur = (t.assign(pred=model.predict(t[inputs])) for t in (reference, current))
        fit = memorised(ref, cur, label="target", prediction="pred", inputs=inputs)
        assert fit is not None and fit["memorised"] is expected, (model, fit)


def test_scores_made_from_the_labels_pull_alike_in_both_tables_and_are_not_a_training_fit() -> None:
    """A score that knows the label through nothing the table holds (as a generator writes one,
    or a model reading text the table leaves out): its own-label pull is as strong on the new
    rows, so the reference is no training fit and the labelled figures stay judged."""
    tables = []
    for seed in (20, 21):
        frame = _world(seed, 3_000)
        right = np.random.default_rng(seed).random(len(frame)) < 0.95
        frame["score"] = np.where(right == (frame["label"] == 1), 0.8, 0.2)
        tables.append(frame)
    fit = memorised(*tables, label="label", prediction="score", inputs=FEATURES)
    assert fit is not None and fit["z"] >= 3.09 and fit["z_current"] >= 3.09  # both pull
    assert not fit["memorised"], fit


def test_no_numeric_input_or_too_few_rows_gives_no_verdict() -> None:
    frame = pd.DataFrame({"city": ["a", "b"] * 50, "label": [0, 1] * 50, "score": [0.2, 0.8] * 50})
    assert memorised(frame, frame, label="label", prediction="score", inputs=["city"]) is None
    small = _world(6, 20).assign(score=0.5)
    assert memorised(small, small, label="label", prediction="score", inputs=FEATURES) is None


def test_duplicate_rows_are_each_others_neighbours_not_their_own() -> None:
    """Every row twice: the nearest other row is the twin, with the same answer, so T is 0, not a self-match."""
    reference = _world(7, 500)
    (scored,) = _scored(LogisticRegression().fit(reference[FEATURES], reference["label"]), reference)
    twice = pd.concat([scored, scored], ignore_index=True)
    fit = memorised(twice, twice, label="label", prediction="score", inputs=FEATURES)
    assert fit is None or not fit["memorised"]


def test_triage_against_a_forests_training_rows_is_no_failure_and_says_why() -> None:
    reference, current = _world(8, 3_000), _world(9, 3_000)
    ref, cur = _scored(_forest().fit(reference[FEATURES], reference["label"]), reference, current)
    verdict, evidence = triage_tables(ref, cur, label="label", prediction="score")
    assert verdict.failure_class is None, verdict.root_cause
    performance = evidence["performance"]
    assert performance["reference"] - performance["current"] > 0.1  # the fit's figure, far above the new rows'
    assert performance["significant"] is False and "training fit" in performance["set_aside"]
    (note,) = [f for f in verdict.evidence if f.kind == "reference_fit"]
    assert "looks like the model's training rows" in note.detail and "validation split" in note.detail


def test_concept_drift_against_rows_the_model_did_not_see_is_still_found() -> None:
    train, reference, current = _world(10, 3_000), _world(11, 3_000), _world(12, 3_000)
    flipped = np.random.default_rng(0).random(len(current)) < 0.3
    current.loc[flipped, "label"] = 1 - current.loc[flipped, "label"]
    ref, cur = _scored(_forest().fit(train[FEATURES], train["label"]), reference, current)
    verdict, evidence = triage_tables(ref, cur, label="label", prediction="score")
    assert str(verdict.failure_class) == "drift" and evidence["performance"]["significant"]
    assert not evidence["reference_fit"]["memorised"]


def test_inputs_that_moved_are_still_drift_against_a_training_fit() -> None:
    reference, current = _world(13, 3_000), _world(14, 3_000, shift=1.0)
    ref, cur = _scored(_forest().fit(reference[FEATURES], reference["label"]), reference, current)
    verdict, evidence = triage_tables(ref, cur, label="label", prediction="score")
    assert evidence["reference_fit"]["memorised"]
    assert str(verdict.failure_class) == "drift" and "x1" in verdict.columns


def test_the_shell_report_carries_the_reference_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference, current = _world(15, 2_000), _world(16, 2_000)
    ref, cur = _scored(_forest().fit(reference[FEATURES], reference["label"]), reference, current)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    args = ["triage", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv")]
    args += ["--label-column", "label"]
    assert main([*args, "--prediction-column", "score", "--json", "--fail-on", "any"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failure_class"] == "none"
    assert report["figures"]["reference_fit"]["memorised"] is True
    assert any(item["detail"].startswith("the reference looks like") for item in report["evidence"])


@pytest.mark.parametrize("seed", [0, 1])
def test_columns_the_model_never_read_do_not_hide_its_training_fit(seed: int) -> None:
    """statsmodels' `fair` table, a forest on five of its columns, the table logging three more it
    never read (religion, occupations: codes 1-6). By plain distance the nearest row shares those
    codes and is far on what the answers follow (z 1.8 and 3.0 here); weighted by how strongly the
    answers follow each input it is near where it counts (4.8 and 4.6)."""
    import statsmodels.api as sm

    data = sm.datasets.fair.load_pandas().data
    data = data.assign(had_affair=(data["affairs"] > 0).astype("int64")).drop(columns="affairs")
    used = ["rate_marriage", "age", "yrs_married", "children", "educ"]
    order = np.random.default_rng(seed).permutation(len(data))
    reference, current = data.iloc[order[: len(data) // 2]], data.iloc[order[len(data) // 2 :]]
    model = RandomForestClassifier(n_estimators=60, random_state=0).fit(reference[used], reference["had_affair"])
    ref, cur = (t.assign(score=model.predict_proba(t[used])[:, 1].round(4)) for t in (reference, current))
    logged = [*used, "religious", "occupation", "occupation_husb"]
    fit = memorised(ref, cur, label="had_affair", prediction="score", inputs=logged)
    assert fit is not None and fit["memorised"], fit
