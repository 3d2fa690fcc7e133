"""The skew rules on derived contracts: rate and significance, not presence; continuation is drift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from firebreak.investigation.diagnosis import triage_tables


def table(seed: int, n: int = 30_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n).round(2),
            "age": rng.integers(18, 80, n).astype("int64"),
            "hours": rng.normal(40, 8, n).round(1),
            "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def verdict(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[str, str]:
    found, _ = triage_tables(reference, current)
    return (str(found.failure_class) if found.failure_class else "none"), found.root_cause


def test_a_rare_category_seen_once_is_no_failure() -> None:
    current = table(2)
    current.loc[7, "region"] = "north-east"  # one row of 30,000: what a second sample of the world shows
    assert verdict(table(1), current)[0] == "none"


def test_new_codes_on_two_percent_of_rows_are_skew() -> None:
    current = table(2)
    current.loc[current.sample(frac=0.02, random_state=0).index, "region"] = "NORTH"
    got, cause = verdict(table(1), current)
    assert got == "skew" and "region" in cause


def test_one_null_is_no_failure_but_five_percent_are_skew() -> None:
    current = table(2)
    current["hours"] = current["hours"].astype(float)
    current.loc[3, "hours"] = np.nan
    assert verdict(table(1), current)[0] == "none"
    current.loc[current.sample(frac=0.05, random_state=0).index, "hours"] = np.nan
    assert verdict(table(1), current)[0] == "skew"


def test_a_new_region_past_the_range_is_drift_not_skew() -> None:
    reference = table(1)
    reference = reference[reference["income"] < reference["income"].quantile(0.6)]
    got, cause = verdict(reference, table(2))
    assert got == "drift", cause


def test_a_sentinel_past_the_range_is_skew_and_says_so() -> None:
    current = table(2)
    current.loc[current.sample(frac=0.04, random_state=0).index, "hours"] = -999.0
    got, cause = verdict(table(1), current)
    assert got == "skew" and "sentinel" in cause


def test_a_value_new_to_a_column_the_reference_held_constant_is_judged_by_sign_not_by_distance() -> None:
    """A flag that never fired in the reference has no spread: 1 is not "far" from 0, -1 crosses a sign."""
    from firebreak.investigation.data_checks import beyond_range

    rng = np.random.default_rng(0)
    never = pd.Series(np.zeros(2000), name="promo")
    fires = pd.Series(np.where(rng.random(2000) < 0.2, 1.0, 0.0), name="promo")
    found = beyond_range(never, fires)
    assert found is not None and found["verdict"] == "drift", found
    assert "single value 0" in found["because"] and "interquartile" not in found["because"]
    flagged = pd.Series(np.where(rng.random(2000) < 0.2, -1.0, 0.0), name="promo")
    found = beyond_range(never, flagged)
    assert found is not None and found["verdict"] == "skew" and "a sign the reference never has" in found["because"]


def test_a_column_of_levels_reaching_its_next_level_is_a_new_region_and_a_far_code_on_it_a_sentinel() -> None:
    """Years of schooling: the reference saw 9-16; the world now holds 20-year degrees too.

    20 is one value on many rows, an interquartile range past the old top, but no heavier than
    the levels the column always held: a new level. 999 on the same column is a sentinel.
    """
    from firebreak.investigation.data_checks import beyond_range

    rng = np.random.default_rng(3)
    levels, shares = [9, 12, 14, 16, 17, 20], [0.1, 0.35, 0.2, 0.2, 0.07, 0.08]
    world = pd.Series(rng.choice(levels, 6000, p=shares).astype(float), name="educ")
    reference, current = world[:3000], world[3000:]
    reference = reference[reference <= 16]
    found = beyond_range(reference, current)
    assert found is not None and found["verdict"] == "drift", found
    assert "new level" in found["because"]
    coded = current.where(current <= 16, 999.0)
    found = beyond_range(reference, coded)
    assert found is not None and found["verdict"] == "skew" and "sentinel" in found["because"], found
    # A default filled in heavier than any level the column holds is a sentinel even near the range.
    heavy = reference.copy().reset_index(drop=True)
    heavy[rng.random(len(heavy)) < 0.5] = 19.0
    found = beyond_range(reference, heavy)
    assert found is not None and found["verdict"] == "skew" and "sentinel" in found["because"], found


def test_part_of_the_rows_in_cents_is_skew() -> None:
    current = table(2)
    rows = current.sample(frac=0.1, random_state=0).index
    current.loc[rows, "income"] = current.loc[rows, "income"] * 100
    got, cause = verdict(table(1), current)
    assert got == "skew" and "unit change" in cause


def test_declared_categories_from_parquet_are_allowed_unseen_or_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    levels = ["north", "south", "east", "west", "islands"]
    reference, current = table(1), table(2)
    current.loc[current.sample(frac=0.03, random_state=0).index, "region"] = "islands"
    for frame, name in ((reference, "ref"), (current, "cur")):
        frame["region"] = pd.Categorical(frame["region"], categories=levels)
        frame.to_parquet(tmp_path / f"{name}.parquet")
    read_ref, read_cur = pd.read_parquet(tmp_path / "ref.parquet"), pd.read_parquet(tmp_path / "cur.parquet")
    assert isinstance(read_ref["region"].dtype, pd.CategoricalDtype)
    got, cause = verdict(read_ref, read_cur)
    assert got != "skew", cause  # "islands" is a declared category: a share moving, not a new code


def test_an_integer_column_holding_nulls_as_floats_is_no_type_change() -> None:
    current = table(2)
    ages = current["age"].astype(float)
    ages.iloc[5] = np.nan
    current["age"] = ages
    assert verdict(table(1), current)[0] == "none"


def new_market(seed: int, share: float, *, apart: bool) -> pd.DataFrame:
    """``share`` of the rows from a region the reference never had: a new market whose incomes are
    higher (``apart``), or the same rows as any others with their region code replaced."""
    current = table(seed)
    rng = np.random.default_rng(seed + 100)
    hit = rng.random(len(current)) < share
    current.loc[hit, "region"] = "central"
    if apart:
        current.loc[hit, "income"] = (rng.lognormal(11, 0.4, int(hit.sum()))).round(2)
    return current


def test_unseen_codes_on_rows_unlike_the_others_are_a_new_part_of_the_population_drift() -> None:
    current = new_market(2, 0.2, apart=True)
    current.index = np.repeat(np.arange(len(current) // 2), 2)  # a user's table: index labels repeat
    found, _ = triage_tables(table(1), current)
    assert str(found.failure_class) == "drift", found.root_cause
    (region,) = [f for f in found.evidence if f.column == "region" and f.kind == "contract"]
    assert "past what the reference covered: region: unknown values on 20" in found.root_cause
    assert "the rows holding them differ from the other rows in income (K-S distance" in region.detail
    assert "a part of the population the reference did not cover" in region.detail


def test_unseen_codes_on_rows_like_any_others_are_substituted_codes_skew() -> None:
    found, _ = triage_tables(table(1), new_market(2, 0.2, apart=False))
    assert str(found.failure_class) == "skew", found.root_cause
    (region,) = [f for f in found.evidence if f.column == "region" and f.kind == "contract"]
    assert "look like the other rows in every other column: codes substituted upstream" in region.detail


def test_a_column_recoded_on_every_row_is_skew() -> None:
    current = table(2)
    current["region"] = current["region"].str[0]  # "north" -> "n" on every row: nothing to compare with
    found, _ = triage_tables(table(1), current)
    assert str(found.failure_class) == "skew", found.root_cause
    (region,) = [f for f in found.evidence if f.column == "region" and f.kind == "contract"]
    assert "no row holds a known value: the column was recoded" in region.detail


def test_a_contract_derived_from_the_reference_is_judged_like_triages_own_and_a_stated_one_stands() -> None:
    from firebreak.investigation.evidence import derive_contract

    reference = table(1)
    reference = reference[reference["income"] < reference["income"].quantile(0.6)]
    onboarded = derive_contract(reference)  # what `firebreak onboard` writes beside the policy
    found, _ = triage_tables(reference, table(2), contract=onboarded)
    assert str(found.failure_class) == "drift", found.root_cause  # values continuing past its range
    stated = {key: value for key, value in onboarded.items() if key != "meta"}  # the mark deleted: the team's word
    found, _ = triage_tables(reference, table(2), contract=stated)
    assert str(found.failure_class) == "skew", found.root_cause


def test_a_column_that_moved_whole_past_its_range_is_skew_even_by_an_odd_factor() -> None:
    from firebreak.investigation.data_checks import beyond_range

    rng = np.random.default_rng(4)
    years = pd.Series(rng.choice([17.5, 22.0, 27.0, 32.0, 37.0, 42.0], 2000), name="age")
    months = pd.Series(rng.choice([22.0, 27.0, 32.0, 37.0, 42.0, 47.0], 800) * 12, name="age")  # and older
    found = beyond_range(years, months)  # not the same quantiles times 12: the scale check cannot say it
    assert found is not None and found["share"] == 1.0
    assert found["verdict"] == "skew" and "the column moved whole" in found["because"]
    continued = pd.Series(np.concatenate([years.to_numpy()[:700], rng.uniform(50, 70, 100).round(1)]), name="age")
    assert beyond_range(years, continued)["verdict"] == "drift"  # a new region beside the old one
    few = pd.Series([300.0, 320.0, 340.0, 360.0, 380.0], name="age")  # five rows say nothing of a whole column
    assert "moved whole" not in beyond_range(years, few)["because"]


def _scored(rng: np.random.Generator, n: int, small: int) -> pd.DataFrame:
    """A model sure of 60% of its answers (0.99 / 0.01, right) and unsure of the rest (0.4-0.6); two groups."""
    frame = pd.DataFrame({"x": rng.normal(0, 1, n), "group": ["small"] * small + ["big"] * (n - small)})
    frame["y"] = rng.integers(0, 2, n)
    sure = rng.random(n) < 0.6
    frame["score"] = np.where(sure, np.where(frame["y"] == 1, 0.99, 0.01), rng.uniform(0.4, 0.6, n))
    return frame


def _error_z(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    """The small group's error-rate change against the big one's, as fairness_change tests it without scores."""
    rates = []
    for frame in (current, reference):
        wrong = (frame["score"] >= 0.5).astype(int) != frame["y"]
        rates += [(wrong[frame["group"] == g].mean(), (frame["group"] == g).sum()) for g in ("small", "big")]
    (g1, n1), (o1, m1), (g0, n0), (o0, m0) = rates
    variance = sum(p * (1 - p) / n for p, n in ((g1, n1), (g0, n0), (o1, m1), (o0, m0)))
    return float(((g1 - g0) - (o1 - o0)) / np.sqrt(variance))


def test_labels_that_changed_under_sure_answers_of_a_small_group_are_bias_on_the_brier_score() -> None:
    """100 rows of a group whose outcomes changed for 12% of them: among the misses of unsure answers
    its error rate's rise is noise, but the model was sure of those answers, and its Brier score says so."""
    rng = np.random.default_rng(4)
    reference, current = _scored(rng, 3000, 100), _scored(rng, 3000, 100)
    flipped = (current["group"] == "small") & (rng.random(len(current)) < 0.12)
    current.loc[flipped, "y"] = 1 - current.loc[flipped, "y"]
    assert _error_z(reference, current) < 3  # the error-rate test alone would not name it
    found, evidence = triage_tables(reference, current, label="y", prediction="score", protected="group")
    assert found.failure_class == "bias" and found.columns == ["group"]
    assert "on the Brier score" in found.evidence[0].detail
    unchanged, _ = triage_tables(reference, _scored(rng, 3000, 100), label="y", prediction="score", protected="group")
    assert unchanged.failure_class is None  # no failure


def test_labels_that_changed_for_everyone_a_group_somewhat_more_are_concept_drift_not_bias() -> None:
    """Outcomes changed for 20% of all rows and for 30% of one group's: the model fails everyone.

    That group's extra worsening alone is significant, but most of its worsening is everyone's;
    flipping the same group's outcomes alone is bias.
    """
    rng = np.random.default_rng(5)
    reference = _scored(rng, 3000, 1000)

    def flipped(rates: dict[str, float]) -> pd.DataFrame:
        current = _scored(rng, 3000, 1000)
        flip = rng.random(len(current)) < current["group"].map(rates)
        current.loc[flip, "y"] = 1 - current.loc[flip, "y"]
        return current

    everyone = flipped({"small": 0.3, "big": 0.2})
    found, _ = triage_tables(reference, everyone, label="y", prediction="score", protected="group")
    assert found.failure_class == "drift", found.root_cause
    assert any(f.kind == "performance" and "concept drift" in f.detail for f in found.evidence)
    one_group = flipped({"small": 0.1, "big": 0.0})
    found, _ = triage_tables(reference, one_group, label="y", prediction="score", protected="group")
    assert found.failure_class == "bias" and found.columns == ["group"], found.root_cause


def test_text_among_the_numbers_is_a_type_change_named_by_its_values() -> None:
    """A few "N/A" in a numeric column: skew, and the evidence shows the text, not an error."""
    current = table(2)
    current["hours"] = current["hours"].astype(object)
    current.loc[current.sample(frac=0.02, random_state=0).index, "hours"] = "N/A"
    got, cause = verdict(table(1), current)
    assert got == "skew", cause
    assert "hours: type changed on 2.0% of rows" in cause and "N/A" in cause
    assert "<error" not in cause


def test_numbers_sent_as_text_are_a_type_change_of_the_whole_column() -> None:
    current = table(2)
    current["hours"] = current["hours"].astype(str)  # every value still reads as a number
    got, cause = verdict(table(1), current)
    assert got == "skew", cause
    assert "hours: type changed on 100.0% of rows" in cause


def test_known_codes_respelled_on_rows_of_another_market_are_still_an_encoding_change() -> None:
    """Upper case or padding on the rows of one source: known values written differently are
    skew, even where those rows differ in another column (which alone would read as a new market)."""
    current = new_market(2, 0.2, apart=True)
    known = table(2)["region"]
    moved = current["region"] == "central"
    current.loc[moved, "region"] = " " + known[moved].str.upper()  # " NORTH" for "north"
    found, _ = triage_tables(table(1), current)
    assert str(found.failure_class) == "skew", found.root_cause
    (region,) = [f for f in found.evidence if f.column == "region" and f.kind == "contract"]
    assert "100% of them are known values written differently (' " in region.detail
    assert "case or white space): an encoding change upstream" in region.detail


def _groups(accuracy: dict[str, float], rows: int = 400) -> dict[str, Any]:
    return {"attribute": "region", "groups": {g: {"accuracy": a, "rows": rows} for g, a in accuracy.items()}}


def test_a_significant_overall_fall_that_concentrates_in_one_group_is_that_groups_bias() -> None:
    """Error rate 0.20 -> 0.30 for north, 0.20 -> 0.21 for the rest: z ~ 2.2 on its own, short of
    the 3 a bias needs from nothing; once the model's accuracy fell significantly overall, the
    question is whose fall it is, and it is north's."""
    from firebreak.investigation.findings import fairness_change

    reference = _groups({"north": 0.80, "south": 0.80})
    current = _groups({"north": 0.70, "south": 0.79})
    assert fairness_change(current, reference) == []
    (found,) = fairness_change(current, reference, dropped=True)
    assert found.points_to == "bias" and "region=north: error rate 0.20 -> 0.30" in found.detail
    # A fall everyone shares is concept drift, whatever the z: most of north's is the others'.
    everyone = _groups({"north": 0.66, "south": 0.70})
    assert fairness_change(everyone, reference, dropped=True) == []


def long_tail(seed: int, n: int) -> pd.DataFrame:
    """A state of residence over 51 states whose shares fall geometrically (14% to 0.005%), as a
    loan book's: a table of 1,500 rows holds a dozen states on a handful of rows each."""
    rng = np.random.default_rng(seed)
    shares = np.geomspace(0.14, 0.00005, 51)
    states = [f"S{i:02d}" for i in range(51)]
    return pd.DataFrame(
        {
            "state": rng.choice(states, n, p=shares / shares.sum()),
            "amount": rng.lognormal(9, 0.6, n).round(-1),
            "dti": rng.gamma(4, 4.5, n).round(2),
        }
    )


def halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed + 50).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]].reset_index(drop=True), frame.iloc[order[half:]].reset_index(drop=True)


def test_a_long_tail_of_rare_states_split_at_random_is_no_failure() -> None:
    """A dozen current rows over rare states the reference half never drew is a split's luck: each
    of those states holds a handful of rows in the two halves together. (The rate a reference
    leaves unseen, estimated from its own values seen once, called 14 of 300 such splits skew.)"""
    from firebreak.investigation.data_checks import unknown_values

    flagged = []
    for seed in range(300):
        reference, current = halves(long_tail(seed, 1_500), seed)
        found = unknown_values(reference["state"], current["state"])
        if found is not None and found["skew"]:
            flagged.append((seed, found["rows"], found["p_value"]))
    assert len(flagged) <= 1, flagged
    got, cause = verdict(*halves(long_tail(42, 1_500), 42))  # 13 rows over rare states: skew before
    assert got == "none", cause


def test_one_new_code_on_twelve_rows_of_a_small_table_is_still_skew() -> None:
    frame = long_tail(3, 1_500)
    reference, current = frame.iloc[:750].reset_index(drop=True), frame.iloc[750:].reset_index(drop=True)
    current.loc[current.sample(n=12, random_state=0).index, "state"] = "XX"
    got, cause = verdict(reference, current)
    assert got == "skew" and "state" in cause and "XX" in cause, cause


@pytest.mark.parametrize(("sizes", "n_cur"), [([1, 1, 2, 3, 3], 5), ([1, 1, 1, 1, 2, 2, 4], 9), ([5, 1, 1, 2, 1], 3)])
def test_the_split_test_is_exact_for_rows_sent_to_either_table_at_random(sizes: list[int], n_cur: int) -> None:
    """Against every way of sending each row to the current table (with chance n_cur / n): the
    p-value and the expected count are the exact ones."""
    from itertools import product

    from firebreak.investigation.unseen import unseen_p_value

    rows = [value for value, size in enumerate(sizes) for _ in range(size)]
    chance = n_cur / len(rows)
    counts, weights = [], []
    for sides in product((0, 1), repeat=len(rows)):  # 1: the row went to the current table
        seen = {rows[i] for i, side in enumerate(sides) if side == 0}
        counts.append(sum(1 for i, side in enumerate(sides) if side == 1 and rows[i] not in seen))
        weights.append(chance ** sum(sides) * (1 - chance) ** (len(rows) - sum(sides)))
    counts_a, weights_a = np.array(counts), np.array(weights)
    for threshold in range(1, max(counts) + 1):
        p_value, expected = unseen_p_value(np.array(sizes), threshold, n_ref=len(rows) - n_cur, n_cur=n_cur)
        assert p_value == pytest.approx(float(weights_a[counts_a >= threshold].sum()), abs=1e-12)
        assert expected == pytest.approx(float((counts_a * weights_a).sum()), rel=1e-9)


def test_the_split_test_holds_its_level_on_tables_of_fixed_size() -> None:
    """Halves of fixed size split more evenly than rows sent at random: over 400 random splits of a
    long-tailed column, the p-value falls under 0.01 at most about as often as 1%."""
    from firebreak.investigation.data_checks import unknown_values

    rng = np.random.default_rng(11)
    shares = np.geomspace(0.14, 0.00005, 51)
    p_values = []
    for _ in range(400):
        values = pd.Series(rng.choice(51, 600, p=shares / shares.sum()).astype(str))
        found = unknown_values(values[:300].reset_index(drop=True), values[300:].reset_index(drop=True))
        p_values.append(1.0 if found is None else found["p_value"])
    assert np.mean(np.array(p_values) < 0.01) <= 0.02
    assert np.mean(np.array(p_values) < 0.5) > 0.2  # and it is a test: not every split reads 1


def capped(seed: int, n: int = 6_000, shift: float = 0.0) -> pd.DataFrame:
    """Census-style incomes recorded with a cap (15.0001), and a second column that varies."""
    rng = np.random.default_rng(seed)
    income = np.minimum(rng.lognormal(1.3 + shift, 0.5, n), 15.0001).round(4)
    return pd.DataFrame({"income": income, "rooms": rng.lognormal(7.8, 0.7, n).round(), "age": rng.integers(1, 53, n)})


def test_a_cap_the_world_moves_towards_is_drift_but_a_default_at_the_floor_is_skew() -> None:
    """Richer districts pile up at the recorded cap, and every other income rises with them: the
    world moved. A default of 0 filled in at the column's floor leaves the other rows as they were."""
    got, cause = verdict(capped(1), capped(2, shift=0.9))
    assert got == "drift" and "income" in cause, cause
    assert "default or sentinel" not in cause
    reference, current = capped(1), capped(2)
    reference.loc[:2, "income"] = 0.0  # three rows of 0 in the reference: 0 is its floor
    current.loc[current.sample(frac=0.05, random_state=0).index, "income"] = 0.0
    got, cause = verdict(reference, current)
    assert got == "skew" and "the single value 0 on 5.0% of rows" in cause, cause


def test_one_record_repeated_by_a_weighted_sample_is_not_a_filled_in_default() -> None:
    """A current table drawn with weights rising along one column repeats its heaviest rows whole:
    each repeated value comes with the same values in every other column, where a default is one
    column's alone."""
    rng = np.random.default_rng(5)
    reference, world = (
        pd.DataFrame(
            {
                "x": rng.normal(0, 1, 6_000).round(4),
                "y": rng.normal(0, 1, 6_000).round(4),
                "z": rng.integers(0, 90, 6_000),
            }
        )
        for _ in range(2)
    )
    current = world.sample(len(world), replace=True, weights=np.exp(1.5 * world["x"]), random_state=4)
    current = current.reset_index(drop=True)
    assert current["x"].value_counts().iloc[0] >= 60  # one record on 1% of the rows or more
    got, cause = verdict(reference, current)
    assert got == "drift" and "x" in cause, cause
    current.loc[current.sample(frac=0.05, random_state=1).index, "y"] = 1.2345  # now a default in one column
    got, cause = verdict(reference, current)
    assert got == "skew" and "the single value 1.2345" in cause, cause


def test_a_default_in_a_small_table_of_counts_with_ties_is_still_a_spike() -> None:
    """750 reference rows of room counts hold a value four times by chance (0.53% of rows, over the
    0.5% the rule allowed): the rule switched off, and 0 filled in on 8% of rows read as nothing.
    No more rows than a spike's least is still a column of many values."""
    rng = np.random.default_rng(7)
    reference, current = (
        pd.DataFrame({"rooms": np.round(rng.lognormal(7.8, 0.75, 750)).astype(int), "x": rng.normal(0, 1, 750)})
        for _ in range(2)
    )
    assert 4 <= reference["rooms"].value_counts().iloc[0] <= 5
    current.loc[current.sample(frac=0.08, random_state=0).index, "rooms"] = 0
    got, cause = verdict(reference, current)
    assert got == "skew" and "the single value 0 on 8.0% of rows" in cause, cause


def shoppers(seed: int, new_share: float, *, dropped: float = 0.0, rows: int = 8_000) -> pd.DataFrame:
    """A new customer has no account age: the column's nulls are the new customers' share."""
    rng = np.random.default_rng(seed)
    new = rng.random(rows) < new_share
    frame = pd.DataFrame(
        {
            "is_new_customer": new,
            "account_age_days": np.where(new, np.nan, rng.gamma(3, 200, rows).round()),
            "basket": rng.lognormal(4, 0.5, rows).round(2),
            "category": rng.choice(["a", "b", "c"], rows),
        }
    )
    frame.loc[rng.random(rows) < dropped, "account_age_days"] = np.nan
    return frame


@pytest.mark.parametrize(
    ("current", "expected"),
    [(shoppers(2, 0.40), "drift"), (shoppers(2, 0.25, dropped=0.2), "skew"), (shoppers(2, 0.40, dropped=0.2), "skew")],
    ids=["more-new-customers", "a-feed-dropping-the-field", "both"],
)
def test_nulls_that_rose_with_the_rows_that_always_lack_them_are_the_traffic_not_the_pipeline(
    current: pd.DataFrame, expected: str
) -> None:
    """A holiday brings more new customers (25% -> 40%): the account age is missing on 40% of rows,
    as it always was on theirs. A feed that drops the field on other rows is skew, with or without them."""
    found, evidence = triage_tables(shoppers(1, 0.25), current)
    assert str(found.failure_class) == expected, found.root_cause
    (nulls,) = evidence["drift"]["data_checks"]["null_changes"]
    assert nulls["skew"] is (expected == "skew")
    if expected == "drift":
        assert "the rows of the is_new_customer levels that lacked it in the reference grew" in nulls["because"]


def experience(seed: int, rows: int = 4_000) -> pd.DataFrame:
    """Years of experience to one decimal: a lumpy column, 1.4% of rows on its commonest value."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "years_experience": np.maximum(rng.gamma(1.3, 6, rows).round(1), 0.1),
            "skill_test": rng.normal(60, 12, rows).round(1),
            "education": rng.choice(["school", "bachelor", "master"], rows),
        }
    )


def test_a_default_towering_over_a_lumpy_columns_values_is_skew() -> None:
    """0 filled into 30% of the rows, where the reference's commonest value holds about 1%: skew,
    though that lumpiness switches the spike rule's usual bar (0.5%) off. Unchanged: none."""
    reference = experience(1)
    assert reference["years_experience"].value_counts(normalize=True).max() > 0.005
    current = experience(2)
    current.loc[np.random.default_rng(3).random(len(current)) < 0.3, "years_experience"] = 0.0
    found, _ = triage_tables(reference, current)
    assert str(found.failure_class) == "skew", found.root_cause
    assert found.evidence[0].detail.startswith("years_experience: the single value 0 on 3")
    unchanged, _ = triage_tables(reference, experience(2))
    assert unchanged.failure_class is None, unchanged.root_cause


def promotions(seed: int, rows: int = 3_000) -> pd.DataFrame:
    """A fifth of the rows on promotion, at a discount of 5-35% to the thousandth; the rest at 0."""
    rng = np.random.default_rng(seed)
    promo = rng.random(rows) < 0.2
    return pd.DataFrame(
        {
            "discount_rate": np.where(promo, rng.uniform(0.05, 0.35, rows).round(3), 0.0),
            "price": rng.lognormal(3, 0.4, rows).round(2),
            "units": rng.poisson(4, rows),
        }
    )


def test_values_rounded_upstream_are_skew() -> None:
    """Discounts written 0.1, 0.2, 0.3 where the reference had 0.137: a writer that truncates.
    Prices rounded to whole numbers likewise; counts, whole in both tables, are not."""
    current = promotions(2)
    current["discount_rate"] = np.floor(current["discount_rate"] * 10) / 10
    found, evidence = triage_tables(promotions(1), current)
    assert str(found.failure_class) == "skew" and found.columns == ["discount_rate"], found.root_cause
    (item,) = evidence["drift"]["data_checks"]["rounded"]
    assert item["grid"] == 0.1 and item["share"] == 1.0 and item["reference_share"] < 0.1
    whole, _ = triage_tables(promotions(1), promotions(2).assign(price=lambda f: f["price"].round()))
    assert str(whole.failure_class) == "skew" and whole.columns == ["price"], whole.root_cause
    unchanged, evidence = triage_tables(promotions(1), promotions(2))
    assert unchanged.failure_class is None and evidence["drift"]["data_checks"]["rounded"] == []
    # Large values to the thousandth are on no coarser grid, however a float writes 11958.595.
    from firebreak.investigation.data_checks import rounded

    rng = np.random.default_rng(4)
    before = pd.Series(rng.lognormal(7, 1, 2_000).round(3), name="distance")
    assert rounded(before, pd.Series(rng.lognormal(11, 1, 2_000).round(3), name="distance")) is None


def test_the_grid_found_is_the_coarsest_holding_the_share_when_the_first_rows_rule_grids_out() -> None:
    """The first rows rule a grid out only when they alone hold more values off it than the
    whole may: the grid found is the one a pass over every value finds, near the share too."""
    from firebreak.investigation.data_checks import _GRIDS, _ROUNDED_SHARE, rounded

    def coarsest(values: np.ndarray) -> float | None:
        values = values[values != 0]
        for grid in _GRIDS:
            steps = values / grid
            if np.mean(np.abs(steps - np.round(steps)) <= 1e-6 + 1e-12 * np.abs(steps)) >= _ROUNDED_SHARE:
                return grid
        return None

    rng = np.random.default_rng(8)
    reference = pd.Series(rng.uniform(0, 100, 5_000).round(3), name="x")
    for rows in (999, 1_000, 1_001, 1_500, 30_000):
        for off in (0.0, 0.005, 0.0099, 0.0101, 0.02, 0.3):
            values = rng.uniform(1, 100, rows).round(1)  # on the 0.1 grid, bar a share `off`
            moved = rng.random(rows) < off
            values[moved] += 0.05
            if rng.random() < 0.5:  # the values off the grid all first (the first rows' worst case)
                values = np.concatenate([values[moved], values[~moved]])
            found = rounded(reference, pd.Series(values, name="x"))
            assert (found["grid"] if found else None) == coarsest(values), (rows, off)
