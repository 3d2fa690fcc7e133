"""Bias as a group meets it: more wrong answers, or fewer selections.

A model update that raises one group's threshold (or lowers its scores) denies its rows while
its error rate barely moves (or falls, where positives are rare): its selection rate is judged
with labels as without, unless its own outcomes fell alike. For a rarely selected group, whose
rate cannot fall by five points, the fall of its ratio to the others' rate is the measure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from firebreak.investigation.diagnosis import triage_tables
from firebreak.investigation.findings import fairness_change


def scored(seed: int, rows: int = 4_000, *, base: float = 0.0) -> pd.DataFrame:
    """Applicants: two inputs, a group, the model's score and decision, and the outcome the score predicts."""
    rng = np.random.default_rng(seed)
    income, debt = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    score = 1 / (1 + np.exp(-(base + 1.5 * income - debt)))
    return pd.DataFrame(
        {
            "income": income.round(3),
            "debt": debt.round(3),
            "gender": rng.choice(["F", "M"], rows),
            "score": score.round(4),
            "approved": (score >= 0.5).astype(int),
            "repaid": (rng.random(rows) < score).astype(int),
        }
    )


def threshold_raised(frame: pd.DataFrame, group: str, threshold: float) -> pd.DataFrame:
    changed = frame.copy()
    rows = changed["gender"] == group
    changed.loc[rows, "approved"] = (changed.loc[rows, "score"] >= threshold).astype(int)
    return changed


ROLES = {"label": "repaid", "prediction": "approved", "protected": "gender"}


def test_a_threshold_raised_for_one_group_is_bias_on_its_selection_rate_with_labels() -> None:
    """Women's threshold 0.5 -> 0.65 with labels in both tables: their rows are denied, while their
    error rate barely moves (the answers turned from approve to deny are right about half the time)."""
    reference, current = scored(1), threshold_raised(scored(2), "F", 0.65)
    found, evidence = triage_tables(reference, current, **ROLES)
    assert found.failure_class == "bias" and found.columns == ["gender"], found.root_cause
    (bias,) = [f for f in found.evidence if f.points_to == "bias"]
    assert bias.detail.startswith("gender=F: selection rate 0.50 -> 0.3")
    groups = evidence["fairness"]["groups"]
    assert groups["F"]["positives"] == int(((current["gender"] == "F") & (current["repaid"] == 1)).sum())


def test_fewer_selections_that_a_groups_own_inputs_explain_are_not_bias() -> None:
    """Women's incomes fell: the model approves fewer of them, and fewer of them repay. The model
    followed the world (the group's inputs moved: drift), it did not turn on the group."""
    current = scored(2)
    rng = np.random.default_rng(9)
    women = current["gender"] == "F"
    current.loc[women, "income"] -= 0.6
    score = 1 / (1 + np.exp(-(1.5 * current["income"] - current["debt"])))
    current["score"], current["approved"] = score.round(4), (score >= 0.5).astype(int)
    current["repaid"] = (rng.random(len(current)) < score).astype(int)
    found, evidence = triage_tables(scored(1), current, **ROLES)
    assert found.failure_class == "drift", found.root_cause
    groups, before = evidence["fairness"]["groups"], evidence["reference_fairness"]["groups"]
    assert groups["F"]["selection_rate"] < before["F"]["selection_rate"] - 0.1  # the fall is there
    (context,) = [f for f in found.evidence if f.kind == "fairness"]
    assert context.points_to is None and "which follows the inputs of gender=F" in context.detail


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_an_unchanged_model_is_no_bias_with_or_without_labels(seed: int) -> None:
    reference, current = scored(seed), scored(seed + 100)
    with_labels, _ = triage_tables(reference, current, **ROLES)
    assert with_labels.failure_class is None, with_labels.root_cause
    rare = {"base": -3.0}  # about 5% selected
    without, _ = triage_tables(
        scored(seed, **rare).drop(columns="repaid"),
        scored(seed + 100, **rare).drop(columns="repaid"),
        prediction="approved",
        protected="gender",
    )
    assert without.failure_class is None, without.root_cause


def test_a_rarely_selected_group_whose_selections_vanish_is_bias_without_labels() -> None:
    """About 5% of each group selected; then almost none of the women. Five points cannot be
    lost from five percent and more: the fall of their rate against the men's is the measure."""
    reference = scored(7, base=-3.0).drop(columns="repaid")
    current = threshold_raised(scored(8, base=-3.0), "F", 0.9).drop(columns="repaid")
    assert current.loc[current["gender"] == "M", "approved"].mean() < 0.1
    found, _ = triage_tables(reference, current, prediction="approved", protected="gender")
    assert found.failure_class == "bias", found.root_cause
    assert "gender=F: selection rate" in found.evidence[0].detail


def test_a_disparity_the_reference_did_not_have_is_not_called_standing() -> None:
    """A new gap too small to be significant: context, named for what it is."""

    def result(rates: dict[str, float], breached: bool) -> dict[str, object]:
        return {
            "attribute": "region",
            "breached": breached,
            "summary": "region=north is selected ...",
            "groups": {g: {"selection_rate": r, "rows": 40} for g, r in rates.items()},
        }

    reference = result({"north": 0.5, "south": 0.5}, breached=False)
    (context,) = fairness_change(result({"north": 0.38, "south": 0.5}, breached=True), reference)
    assert context.points_to is None
    assert context.detail.startswith("a disparity the reference did not have, but no group's change since")
    standing = result({"north": 0.3, "south": 0.5}, breached=True)
    (context,) = fairness_change(result({"north": 0.3, "south": 0.5}, breached=True), standing)
    assert context.detail.startswith("standing disparity, as in the reference")


def test_traffic_that_raised_the_other_groups_selections_is_not_one_groups_harm() -> None:
    """Richer men arrive: men's approvals rise, women's stay as they were. The gap between the
    groups widened, but no group was served worse: the inputs moved (drift)."""
    current = scored(2)
    men = current["gender"] == "M"
    current.loc[men, "income"] += 0.8
    score = 1 / (1 + np.exp(-(1.5 * current["income"] - current["debt"])))
    current["score"], current["approved"] = score.round(4), (score >= 0.5).astype(int)
    current["repaid"] = (np.random.default_rng(3).random(len(current)) < score).astype(int)
    for labels in (True, False):  # without labels no outcome explains the gap: the others' gain does
        roles = ROLES if labels else {"prediction": "approved", "protected": "gender"}
        reference, now = (
            (scored(1), current) if labels else (scored(1).drop(columns="repaid"), current.drop(columns="repaid"))
        )
        found, _ = triage_tables(reference, now, **roles)
        assert found.failure_class == "drift", found.root_cause
        assert not [f for f in found.evidence if f.points_to == "bias"]


def test_selections_that_fell_alike_for_every_group_are_no_groups_harm() -> None:
    """Women approved at about 80%, men at 20%; then every approval kept with chance 0.4: 32% and 8%.
    Women lost 48 points against men's 12, but their rate relative to men's did not fall."""
    rng = np.random.default_rng(11)

    def approvals(frame: pd.DataFrame, kept: float) -> pd.DataFrame:
        threshold = np.where(frame["gender"] == "F", 0.2, 0.8)
        approved = (frame["score"] >= threshold) & (rng.random(len(frame)) < kept)
        return frame.assign(approved=approved.astype(int)).drop(columns="repaid")

    reference, current = approvals(scored(1), 1.0), approvals(scored(2), 0.4)
    before = reference.groupby("gender")["approved"].mean()
    assert before["F"] > 0.75 and before["M"] < 0.25
    rates = current.groupby("gender")["approved"].mean() / before
    assert 0.3 < rates["F"] < 0.5 and 0.3 < rates["M"] < 0.5  # every group's selections fell alike
    found, _ = triage_tables(reference, current, prediction="approved", protected="gender")
    assert not [f for f in found.evidence if f.points_to == "bias"], found.root_cause
    singled_out, _ = triage_tables(
        reference,
        approvals(scored(2), 1.0).pipe(
            lambda f: f.assign(approved=np.where((f["gender"] == "F") & (rng.random(len(f)) < 0.6), 0, f["approved"]))
        ),
        prediction="approved",
        protected="gender",
    )
    assert singled_out.failure_class == "bias", singled_out.root_cause


def test_one_group_flagged_far_more_than_before_is_bias_unless_its_inputs_moved() -> None:
    """A fraud model now flags 60+ customers at 18% where it flagged every group at about 3%:
    a disparity one group's change made (whichever way a flag cuts). Older customers who
    really spend differently (their inputs moved) are the traffic: drift."""
    rng = np.random.default_rng(31)

    def payments(rows: int, *, flagged_60: float, shift_60: float = 0.0) -> pd.DataFrame:
        age = rng.choice(["18-25", "26-59", "60+"], rows, p=[0.3, 0.5, 0.2])
        amount = rng.lognormal(4 + np.where(age == "60+", shift_60, 0.0), 0.6, rows).round(2)
        risk = 1 / (1 + np.exp(3.4 - 3 * (np.log(amount) - 4)))  # about 3% above 0.5
        flag = risk >= 0.5
        older = age == "60+"
        flag = np.where(older & (rng.random(rows) < flagged_60), True, flag)
        return pd.DataFrame({"amount": amount, "age_band": age, "flag": flag.astype(int)})

    reference = payments(20_000, flagged_60=0.0)
    found, _ = triage_tables(reference, payments(20_000, flagged_60=0.15), prediction="flag", protected="age_band")
    assert found.failure_class == "bias" and found.columns == ["age_band"], found.root_cause
    assert (
        "age_band=60+: selection rate 0.0" in found.evidence[0].detail
        and "more than the rest" in found.evidence[0].detail
    )
    spend, _ = triage_tables(
        reference, payments(20_000, flagged_60=0.0, shift_60=0.8), prediction="flag", protected="age_band"
    )
    assert spend.failure_class == "drift", spend.root_cause


def test_a_score_logged_beside_the_decisions_is_the_models_output_not_the_groups_input() -> None:
    """Women's scores lowered by an update, the score logged as a column beside the decision: the
    group's score moved, but it is what the model answered, not what the group brought."""
    current = scored(2)
    women = current["gender"] == "F"
    current.loc[women, "score"] = (current.loc[women, "score"] * 0.6).round(4)
    current["approved"] = (current["score"] >= 0.5).astype(int)
    found, evidence = triage_tables(scored(1), current, label="repaid", prediction="approved", protected="gender")
    assert found.failure_class == "bias" and found.columns == ["gender"], found.root_cause
    assert evidence["fairness"]["inputs_moved"]["F"] > 0.001  # income and debt did not move
