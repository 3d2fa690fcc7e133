"""How a column is read once for every check: Arrow text, shared codes, counts, frames sharing values."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from firebreak.detection import columns
from firebreak.detection.columns import (
    as_text,
    columns_of,
    factorized,
    level_codes,
    ranked_levels,
    sorted_counts,
    sorted_quantiles,
    value_counts,
)

_TEXT_COLUMNS = {
    "strings with missing": pd.Series(["web", None, "app", "web", np.nan, "store"], dtype=object),
    "booleans with missing": pd.Series([True, False, None, True], dtype=object),
    "mixed types": pd.Series([1, "1", 2.5, None, "x"], dtype=object),
    "declared categories": pd.Series(["b", "a", None, "b"], dtype=pd.CategoricalDtype(["a", "b", "c"])),
    "pandas text": pd.Series(["a", pd.NA, "b"], dtype="string"),
    "all missing": pd.Series([None, None], dtype=object),
    "bytes and NaT": pd.Series(["a", b"b", pd.NaT, np.str_("c")], dtype=object),
    "text then a number": pd.Series(["a", "b", 7], dtype=object, index=[5, 3, 9], name="code"),
}


def test_text_that_utf8_cannot_carry_is_escaped_and_the_rest_kept() -> None:
    column = pd.Series(["a", "b\ud800c", None, 7], dtype=object, name="code")

    assert as_text(column).tolist() == ["a", "b\\ud800c", pd.NA, "7"]


@pytest.mark.parametrize("column", _TEXT_COLUMNS.values(), ids=_TEXT_COLUMNS.keys())
def test_text_and_level_codes_are_what_pandas_default_text_gives(column: pd.Series) -> None:
    text = as_text(column)
    expected = column.astype("string")
    assert text.isna().tolist() == expected.isna().tolist()
    assert text.dropna().tolist() == expected.dropna().tolist()
    assert text.index.equals(column.index) and text.name == column.name
    assert as_text(text) is text  # already Arrow text: not converted again
    for levels in (["web", "b", "True", "1"], ["a", "c"], [], ["absent"]):
        codes = pd.Categorical(expected, categories=levels).codes.astype(np.intp)
        np.testing.assert_array_equal(level_codes(text, levels), codes)


@pytest.mark.parametrize("column", _TEXT_COLUMNS.values(), ids=_TEXT_COLUMNS.keys())
def test_counts_ranks_and_codes_from_shared_codes_are_pandas_own(column: pd.Series) -> None:
    text = as_text(column)
    expected = column.astype("string").astype(object).dropna()
    counts = expected.value_counts()
    got = value_counts(text)
    assert got.to_dict() == counts.to_dict()
    assert list(got.index) == list(pd.unique(expected))  # in the order the values first appear
    ranks, distinct, frequencies = ranked_levels(text)
    assert frequencies.tolist() == sorted(counts.tolist(), reverse=True)
    assert [counts[v] for v in distinct] == frequencies.tolist()
    assert [distinct[r] if r >= 0 else None for r in ranks] == [
        None if pd.isna(v) else v for v in column.astype("string").astype(object)
    ]


def test_a_column_of_arrow_text_is_factorized_once_and_its_codes_cannot_be_written() -> None:
    text = as_text(pd.Series(np.random.default_rng(0).choice(["web", "app", "store"], 1000), dtype=object))
    first = factorized(text)
    assert factorized(text)[0] is first[0]  # read again: the same codes, not a second pass
    assert factorized(columns_of(pd.DataFrame({"c": text}))["c"])[0] is first[0]  # the same values in another frame
    with pytest.raises(ValueError):
        first[0][0] = 5
    np.testing.assert_array_equal(first[0], pd.factorize(text)[0])


def test_codes_are_forgotten_with_their_values_and_never_read_for_other_values() -> None:
    text = as_text(pd.Series(["a", "b", "a"], dtype=object))
    key = id(text.array._pa_array)
    codes = factorized(text)[0]
    assert columns._FACTORIZED[key][1] is codes
    del text
    gc.collect()
    assert key not in columns._FACTORIZED
    # Values made after others died (their id may be reused) are read afresh.
    for letters in (["x", "y"], ["y", "y", "z"], ["q"]):
        fresh = as_text(pd.Series(letters, dtype=object))
        assert value_counts(fresh).to_dict() == pd.Series(letters).value_counts().to_dict()
        del fresh


def test_at_most_the_kept_number_of_columns_keep_their_codes() -> None:
    held = [as_text(pd.Series([str(i), "x"], dtype=object)) for i in range(columns._FACTORIZED_KEPT + 10)]
    for text in held:
        factorized(text)
    assert len(columns._FACTORIZED) <= columns._FACTORIZED_KEPT
    assert value_counts(held[0]).to_dict() == {"0": 1, "x": 1}  # forgotten, then read afresh


def test_a_frame_of_some_columns_shares_their_values_and_leaves_the_table_as_it_was() -> None:
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", None], "c": [1, 2, 3]}, index=[7, 7, 9])
    text = as_text(table["b"])
    frame = columns_of(table, ["b", "a"], {"b": text})
    assert list(frame.columns) == ["b", "a"] and frame.index.equals(table.index)
    assert np.shares_memory(frame["a"].to_numpy(), table["a"].to_numpy())
    assert frame["b"].dtype == text.dtype and table["b"].dtype == object
    frame["a"] = 0.0  # replacing a column of the frame does not write into the table
    assert table["a"].tolist() == [1.0, 2.0, 3.0]
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert columns_of(twice).equals(twice)  # a name given twice: copied as pandas would


def test_sorted_counts_are_numpys_unique_without_a_sort() -> None:
    rng = np.random.default_rng(3)
    for values in (
        rng.integers(0, 20, 500).astype(float),
        rng.normal(size=300),
        np.array([]),
        np.array([-0.0, 0.0, 1.0]),
    ):
        ordered = np.sort(values)
        distinct, counts = sorted_counts(ordered)
        expected_distinct, expected_counts = np.unique(values, return_counts=True)
        np.testing.assert_array_equal(distinct, expected_distinct)
        np.testing.assert_array_equal(counts, expected_counts)


def test_quantiles_of_sorted_values_are_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(5)
    quantile_sets = [
        (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
        [0.25, 0.75],
        [0.0, 1.0, 0.5],
        rng.random(40),
    ]
    for size in (1, 2, 3, 7, 100, 1001, 30_000):
        for values in (rng.lognormal(3, 2, size), rng.integers(-5, 5, size).astype(float), np.full(size, 2.5)):
            ordered = np.sort(values)
            for quantiles in quantile_sets:
                expected = np.quantile(values, quantiles)
                assert sorted_quantiles(ordered, quantiles).tobytes() == np.asarray(expected).tobytes()
    with pytest.raises(ValueError, match="no values"):
        sorted_quantiles(np.array([]), [0.5])


def test_ranks_and_codes_of_some_rows_are_those_of_the_rows_taken_out() -> None:
    rng = np.random.default_rng(9)
    # Ties among the sampled rows' counts, values the sample lacks, missing values.
    column = pd.Series(rng.choice(["a", "b", "c", "d", None], 2_000, p=[0.3, 0.3, 0.2, 0.15, 0.05]), dtype=object)
    text = as_text(column)
    for size in (1, 7, 40, 500, 2_000):
        rows = np.sort(rng.choice(len(text), size, replace=False))
        sample = as_text(column.iloc[rows].reset_index(drop=True))
        got, expected = ranked_levels(text, rows), ranked_levels(sample)
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1].tolist() == expected[1].tolist() and got[2].tolist() == expected[2].tolist()
        for levels in (["a", "c"], ["d", "b", "zz"], []):
            np.testing.assert_array_equal(level_codes(text, levels, rows), level_codes(sample, levels))


def test_threads_reading_columns_at_once_get_each_columns_own_codes() -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(2)
    texts = [
        as_text(pd.Series(rng.choice(list("abcdefg"), 3_000), dtype=object))
        for _ in range(columns._FACTORIZED_KEPT + 8)
    ]

    def read(index: int) -> bool:
        text = texts[index % len(texts)]
        codes, distinct = factorized(text)
        return bool(np.array_equal(np.asarray(distinct, dtype=object)[codes], text.to_numpy(dtype=object)))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(read, range(600)))
